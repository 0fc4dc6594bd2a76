// [P§8, §9] A feed's pushes in the order its changes committed, where several processes commit to it.
// A feed's commits are in turn (its row, locked) and their sequence numbers (seqs) and server stamps follow
// that order, but each process publishes its own commits over the bus, so a process can hear seq 6
// (committed on B, or by itself) before seq 5 (committed on A, its publish later). Handed on as heard, a
// subscriber would take 6 first; a device, whose cursor keeps the newest `at` handled, would then drop a
// stamped 5 as old, and a replay after a reconnect from 6 (`since`, or `after` = the highest seq handled,
// which also covers points with their own `at`) would leave 5 out: a command never handled. So each
// commit's changes carry the feed's last seq before that commit (`prevSeq`, read under the same lock), and
// a change is handed on only once the one it follows has been (this process's highest seq handed on for
// the feed is at least its `prevSeq`); what arrives meanwhile waits, in arrival order. Changes without
// `prevSeq` (deletions, and a publisher of an older version's) are in no such chain: they go at once, or
// behind a change of their feed that is waiting.
// Which seqs were handed on before this process heard anything: the store's last seq of each feed, read
// once it listens to the bus (load), and again whenever its link to the others broke (their subscribers
// here resubscribe): a change that follows one committed before that read need not wait. Seqs are per feed
// [P§8] (no tenant may count the others' writes in them), so nothing about one feed's says anything about
// another's: a feed this process knows nothing of (not among the feeds the read listed, or forgotten to keep
// memory bounded, the least recently handed on first) is as before load(): its changes go as heard, and the
// first one handed on starts its chain here. The read lists every feed with a seq when there are fewer than
// maxFeeds: then a feed it did not list has had none, and its first commit (`prevSeq` 0) alone goes at once.
// A change whose predecessor does not come within holdMs (its publisher died, the bus lost it) makes the
// feed a gap (expired): the hub then reads the feed's changes after the last seq handed on from the store
// (hub/catch-up.ts), with the feed paused (what arrives meanwhile waits), and resumes it with them: what
// waited and the read holds is not handed on twice. A change whose seqs were all handed on already (a
// catch-up pushed it from the store before its publish arrived, or one given up on) is dropped when
// offered, or when it waited: only those, not every seq below the highest handed on (one commit's changes
// arrive as several messages, one per write it held, in any order, all with the same `prevSeq`). An older
// version's change too: in no chain, but its seqs say whether the store's read had it.
// A change whose seqs are all at or below the highest handed on is stale: a late publish, a piece of a commit
// heard after a later piece, or a history that went back (the store failed over to a restored replica, or was
// restored in place: its seqs start again below ours, and such a change, dropped as handed on, reached nobody).
// Only the store can tell which (its last seq below the place read before it: catch-up.ts), so offer() says so
// and the hub reads the feed; a history gone back is rewound (rewind) and the feed's subscribers resubscribe.
// The hub orders only the feeds subscribed to in its process: a feed's place is set where its subscribers
// start (startAt), read from the store with their replays.
// Pure: the caller passes the time and delivers what is released.
import type { ChangeEvent } from "./push.ts"

/** One commit's changes of one feed, as they arrived. */
interface Waiting {
    events: ChangeEvent[]
    /** the feed's last seq before this commit; undefined: in no chain */
    after?: number
    /** its highest seq */
    top?: number
    arrivedMs: number
}

/** A feed with changes waiting for an earlier commit. */
interface Held {
    list: Waiting[]
    /** the first arrival among them: the feed is a gap holdMs after it */
    sinceMs: number
}

export interface CommitOrderLimits {
    /** a change waits this long for the one before it, then the feed is a gap */
    holdMs: number
    /** changes (events) one feed may have waiting; past it, a gap at once */
    maxHeldEvents: number
    /** feeds whose last seq is remembered; past it, the quarter handed on least recently is forgotten */
    maxFeeds: number
}

/**
 * `stale`: every seq of the change was handed on already (and the feed is not being caught up): a late publish,
 * or the store's history went back; the hub reads the feed from the store to know which (Hub.catchUp)
 */
export type Offered = { released: ChangeEvent[][]; held: boolean; gap: boolean; stale: boolean }

export class CommitOrder {
    /** the highest seq handed on per feed, the feed handed on least recently first (forgetOldest) */
    private readonly last = new Map<number, number>()
    /**
     * every feed not in `last` has had every seq up to this handed on: 0 when the store listed every feed with
     * a seq and none was forgotten since (the others have none); Infinity when nothing is known of them (until
     * load(), after a forgetting, or when the store listed only some): their changes then go as heard, as with
     * one process. Never a seq of some feed: seqs are per feed.
     */
    private floor = Infinity
    private readonly held = new Map<number, Held>()
    /** feeds being caught up from the store (pause .. resume): everything offered waits */
    private readonly paused = new Set<number>()
    /** paused feeds whose waiting changes grew past maxHeldEvents meanwhile (dropped): resume says so */
    private readonly overflowed = new Set<number>()
    /** per feed, every seq up to this went out from the store (resume) or was given up on (giveUp): offered again, dropped */
    private readonly covered = new Map<number, number>()

    constructor(private readonly limits: CommitOrderLimits) {}

    /**
     * What was committed before now: each feed's last seq, read from the store after this process began to
     * hear the others' changes; `complete`: those are all the feeds with a seq (the others have none).
     */
    load(seqs: Iterable<[feed: number, seq: number]>, complete: boolean): { feed: number; events: ChangeEvent[] }[] {
        // before the feeds go in: making room for them forgets others, which makes the floor unknown again
        this.floor = complete ? 0 : Infinity
        for (const [feed, seq] of seqs) this.handedOn(feed, seq)
        // a change that waited for one committed before the read goes now
        const released: { feed: number; events: ChangeEvent[] }[] = []
        for (const [feed, h] of [...this.held]) for (const events of this.releaseFrom(feed, h)) released.push({ feed, events })
        return released
    }

    /** Feeds with changes waiting. */
    get waiting(): number {
        return this.held.size
    }

    /** When the oldest waiting change makes its feed a gap (monotonic ms), if any waits (and its feed is not paused). */
    nextDeadlineMs(): number | undefined {
        let min: number | undefined
        for (const [feed, h] of this.held) if (!this.paused.has(feed) && (min === undefined || h.sinceMs < min)) min = h.sinceMs
        return min === undefined ? undefined : min + this.limits.holdMs
    }

    /**
     * One commit's changes of `feed`, heard at `nowMs`: what may go now (this one, and those it
     * unblocked), in order. `chained` false: from a publisher that does not say `prevSeq` (an older
     * version): no chain, but its seqs count as handed on.
     */
    offer(feed: number, events: ChangeEvent[], nowMs: number, chained = true): Offered {
        let after: number | undefined
        let top: number | undefined
        for (const ev of events) {
            // a deletion's seq is Infinity where the store gives it none: it moves no chain
            const inChain = chained ? ev.prevSeq !== undefined : Number.isFinite(ev.seq)
            if (!inChain) continue
            if (chained && (after === undefined || ev.prevSeq! < after)) after = ev.prevSeq
            if (top === undefined || ev.seq > top) top = ev.seq
        }
        const item: Waiting = { events, after: chained ? after : undefined, top, arrivedMs: nowMs }
        const paused = this.paused.has(feed)
        // a catch-up under way reads the store after the place it had: it finds a history gone back by itself
        const stale = !paused && item.top !== undefined && item.top <= this.handedOnUpTo(feed)
        // handed on already: a catch-up pushed it from the store before its publish arrived, or it was given up on
        // (an older version's change too: in no chain, but its seqs were in that read)
        if (item.top !== undefined && item.top <= (this.covered.get(feed) ?? -Infinity)) return { released: [], held: false, gap: false, stale }
        const h = this.held.get(feed)
        if (h === undefined && !paused && this.ready(feed, item)) {
            this.handedOn(feed, item.top)
            return { released: [events], held: false, gap: false, stale }
        }
        if (h === undefined) {
            this.held.set(feed, { list: [item], sinceMs: nowMs })
            return { released: [], held: true, gap: false, stale }
        }
        h.list.push(item)
        if (paused) {
            if (heldEvents(h) > this.limits.maxHeldEvents) {
                this.held.delete(feed)
                this.overflowed.add(feed)
            }
            return { released: [], held: true, gap: false, stale }
        }
        const released = this.releaseFrom(feed, h)
        if (this.held.has(feed) && heldEvents(h) > this.limits.maxHeldEvents) {
            // not counted as handed on: the catch-up the gap calls for reads them from the store
            this.held.delete(feed)
            return { released, held: false, gap: true, stale }
        }
        return { released, held: this.held.has(feed), gap: false, stale }
    }

    /**
     * The feeds (not paused) whose waiting changes waited holdMs: gaps, to be caught up from the store
     * (pause, then resume). Their changes keep waiting meanwhile.
     */
    expired(nowMs: number): number[] {
        const gaps: number[] = []
        for (const [feed, h] of this.held) if (!this.paused.has(feed) && nowMs - h.sinceMs >= this.limits.holdMs) gaps.push(feed)
        return gaps
    }

    /** The feed is being caught up from the store: what is offered for it waits until resume(). */
    pause(feed: number): void {
        this.paused.add(feed)
    }

    /**
     * The catch-up of a paused feed is done: `repaired` (the changes after handedOnUpTo read from the store,
     * in commit order, to go first) and every seq up to `storeSeq` (the store's last for the feed in that
     * read) count as handed on; what waited and was among them is dropped, the rest goes as it may.
     * `overflowed`: more than maxHeldEvents waited meanwhile and were dropped (the feed's subscribers cannot
     * be sure to have everything).
     */
    resume(feed: number, storeSeq: number | undefined, repaired: ChangeEvent[]): { released: ChangeEvent[][]; overflowed: boolean } {
        this.paused.delete(feed)
        const overflowed = this.overflowed.delete(feed)
        const released: ChangeEvent[][] = repaired.length ? [repaired] : []
        for (const ev of repaired) this.handedOn(feed, ev.seq)
        if (storeSeq !== undefined) this.moveTo(feed, storeSeq)
        released.push(...this.releaseCovered(feed))
        return { released, overflowed }
    }

    /**
     * Every subscriber of the feed in this process read the store at the feed's head `seq` or later (hub/index.ts
     * startsAt): every seq up to it counts as handed on, what waited and is among them is dropped, the rest goes as
     * it may. While the feed is paused the place moves all the same (its catch-up, under way, goes on from there,
     * or reads again from there: Hub.catchUp), and what waits waits for the catch-up.
     */
    startAt(feed: number, seq: number): ChangeEvent[][] {
        this.moveTo(feed, seq)
        return this.paused.has(feed) ? [] : this.releaseCovered(feed)
    }

    /**
     * The store's history of the feed went back below what was handed on here (a failover to a restored replica, a
     * restored backup): `storeSeq`, its last seq now, is the feed's place; what waits and what was known of the old
     * history is dropped (the feed's subscribers here resubscribe; their replays come from the new one).
     */
    rewind(feed: number, storeSeq: number): void {
        this.paused.delete(feed)
        this.overflowed.delete(feed)
        this.held.delete(feed)
        this.last.delete(feed)
        this.covered.delete(feed)
        this.moveTo(feed, storeSeq)
    }

    /**
     * The highest seq of `feed` handed on (every one up to it went, or was committed before this process
     * listened); -Infinity before load() (nothing is known).
     */
    handedOnUpTo(feed: number): number {
        const last = this.last.get(feed)
        if (last !== undefined) return last
        return this.floor === Infinity ? -Infinity : this.floor
    }

    /** The feed was deleted: what waits goes now, in arrival order, and the feed is forgotten. */
    release(feed: number): ChangeEvent[][] {
        const h = this.held.get(feed)
        this.held.delete(feed)
        this.last.delete(feed)
        this.covered.delete(feed)
        return h ? h.list.map((w) => w.events) : []
    }

    /**
     * The link to the other processes broke or came back: every subscriber here is told to resubscribe
     * (its replay holds what waits), so what waits is dropped.
     */
    dropAll(): void {
        for (const [feed, h] of this.held) this.dropHeld(feed, h)
    }

    /** The feed's subscribers here were told to resubscribe (their replays hold what waits): what waits is dropped, counted as handed on. */
    giveUp(feed: number): void {
        const h = this.held.get(feed)
        if (h) this.dropHeld(feed, h)
        const last = this.last.get(feed)
        if (last !== undefined) this.cover(feed, last)
    }

    /**
     * A paused feed's catch-up ends without repairs (nobody subscribes here, the store could not be read, or its
     * subscribers are told to resubscribe): every seq up to `storeSeq` counts as handed on, and what waited is dropped.
     */
    abandon(feed: number, storeSeq?: number): void {
        this.resume(feed, storeSeq, [])
        this.giveUp(feed)
    }

    /** Every seq of the feed up to `seq` counts as handed on (went out, or is before every subscriber's replay): offered again, dropped. */
    private moveTo(feed: number, seq: number): void {
        this.handedOn(feed, seq)
        this.cover(feed, seq)
    }

    /** Drops the waiting changes whose seqs were all handed on, and hands on what may go. */
    private releaseCovered(feed: number): ChangeEvent[][] {
        const h = this.held.get(feed)
        if (h === undefined) return []
        const upTo = this.covered.get(feed) ?? -Infinity
        h.list = h.list.filter((w) => w.top === undefined || w.top > upTo)
        return this.releaseFrom(feed, h)
    }

    private cover(feed: number, seq: number): void {
        // bounded as `last` is; forgetting a feed's mark only lets a late duplicate through
        if (this.covered.size >= this.limits.maxFeeds && !this.covered.has(feed)) this.covered.clear()
        if (seq > (this.covered.get(feed) ?? -Infinity)) this.covered.set(feed, seq)
    }

    private ready(feed: number, w: Waiting): boolean {
        return w.after === undefined || w.after <= (this.last.get(feed) ?? this.floor)
    }

    private handedOn(feed: number, top: number | undefined): void {
        if (top === undefined) return
        const last = this.last.get(feed)
        if (last === undefined) {
            if (this.last.size >= this.limits.maxFeeds) this.forgetOldest()
            this.last.set(feed, top)
        } else if (top > last) {
            // to the end: `last` stays in the order feeds were handed on
            this.last.delete(feed)
            this.last.set(feed, top)
        }
    }

    /**
     * Hands on, in arrival order, every waiting change that is ready: a chained one once its predecessor
     * went, one in no chain once no chained one before it waits. Repeats while that unblocks more.
     */
    private releaseFrom(feed: number, h: Held): ChangeEvent[][] {
        const out: ChangeEvent[][] = []
        for (let moved = true; moved; ) {
            moved = false
            let blocked = false
            for (let i = 0; i < h.list.length; ) {
                const w = h.list[i]
                const go = w.after === undefined ? !blocked : this.ready(feed, w)
                if (!go) {
                    if (w.after !== undefined) blocked = true
                    i++
                    continue
                }
                h.list.splice(i, 1)
                this.handedOn(feed, w.top)
                out.push(w.events)
                moved = true
            }
        }
        if (h.list.length === 0) this.held.delete(feed)
        else h.sinceMs = h.list[0].arrivedMs
        return out
    }

    private dropHeld(feed: number, h: Held): void {
        this.held.delete(feed)
        // a predecessor that comes late is dropped as handed on (the resubscribed replay it)
        for (const w of h.list) this.handedOn(feed, w.top)
    }

    /**
     * Forgets the quarter of the feeds handed on least recently (none waiting or paused): nothing is known of
     * a feed not in `last` from then on (floor Infinity), so a change of one of them goes at once and starts
     * its chain again.
     */
    private forgetOldest(): void {
        const quarter = Math.max(1, Math.floor(this.last.size / 4))
        let gone = 0
        for (const feed of this.last.keys()) {
            if (gone >= quarter) break
            if (this.held.has(feed) || this.paused.has(feed)) continue
            this.last.delete(feed)
            gone++
        }
        if (gone) this.floor = Infinity
    }
}

function heldEvents(h: Held): number {
    let n = 0
    for (const w of h.list) n += w.events.length
    return n
}
