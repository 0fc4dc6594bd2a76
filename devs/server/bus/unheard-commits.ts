// Which other processes committed changes whose pushes never reached this one (several processes on
// PostgreSQL and Redis). Redis pub/sub keeps nothing: a process that commits while its own link to Redis
// is down, and dies before the link is back, never publishes those changes, and no later message of its
// tells the others (bus/redis.ts numbers messages, which shows a gap only when a next one comes). So each
// commit that changes datapoints, or deletes a datastream or a feed, also records, in PostgreSQL, the
// committing process's last transaction id (Store.recordCommitsAs; one process's such commits run one at
// a time, so its last is its highest); every process reads those now and then (Store.lastCommits) and
// compares them with the transaction ids it heard from each publisher. A commit still unheard
// UNHEARD_LAPSE_MS after it was first seen is a change missed: the feeds subscribed in the process are
// caught up from the store (hub/catch-up.ts: the missed datapoints and deletions pushed; only a feed where
// that cannot be done, a datastream deleted twice say, has its subscribers told to resubscribe with
// `after`, E_PUSHES_INTERRUPTED). Pure: the caller passes the time.

/** Publishers whose last heard commit a process remembers; past this it forgets them and takes the store's list as heard. */
const MAX_PUBLISHERS = 10_000

export class UnheardCommits {
    /** each publisher's highest transaction id heard (or counted as heard) */
    private readonly heard = new Map<string, number>()
    /** a publisher's commit seen in the store but not heard: since when, and which */
    private readonly waiting = new Map<string, { txn: number; sinceMs: number }>()
    /** the next snapshot only sets what counts as heard (at start, and after this process's own link came back) */
    private baseline = true

    constructor(
        /** this process: its own commits are its hub's already */
        private readonly self: string,
        private readonly lapseMs: number,
    ) {}

    /** A publisher's message carried changes of transaction `txn`. */
    heardFrom(publisher: string, txn: number): void {
        if (txn <= (this.heard.get(publisher) ?? -Infinity)) return
        // one entry per publisher ever heard (a new one each start): past the bound, start over from the store's list
        if (this.heard.size >= MAX_PUBLISHERS && !this.heard.has(publisher)) {
            this.heard.clear()
            this.rebaseline()
        }
        this.heard.set(publisher, txn)
    }

    /**
     * This process's link to the others broke and came back: what was committed meanwhile counts as heard
     * (the catch-up on its return reads it from the store).
     */
    rebaseline(): void {
        this.baseline = true
        this.waiting.clear()
    }

    /**
     * The store's last commit of each publisher, read at `nowMs`: returns the publishers with a commit
     * unheard for lapseMs or longer (each such commit once).
     */
    check(lastCommits: Map<string, number>, nowMs: number): string[] {
        const late: string[] = []
        for (const [publisher, txn] of lastCommits) {
            if (publisher === this.self) continue
            const heard = this.heard.get(publisher) ?? -Infinity
            if (this.baseline || txn <= heard) {
                if (txn > heard) this.heard.set(publisher, txn)
                this.waiting.delete(publisher)
                continue
            }
            const w = this.waiting.get(publisher)
            // a newer commit than the one waited for, once that one was heard: its own wait starts now
            if (!w || w.txn <= heard) this.waiting.set(publisher, { txn, sinceMs: nowMs })
            else if (nowMs - w.sinceMs >= this.lapseMs) {
                late.push(publisher)
                this.heard.set(publisher, txn)
                this.waiting.delete(publisher)
            }
        }
        this.baseline = false
        return late
    }
}
