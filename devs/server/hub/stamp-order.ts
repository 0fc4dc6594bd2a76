// [P§8, §9] A feed's pushes in the order of its server stamps, where several processes commit to it.
// Stamps are given in commit order (the feed's row, locked), but each process publishes its own commits
// over the bus, so a process can hear stamp 6 (committed on B, or by itself) before stamp 5 (committed
// on A, its publish later). Handed on as heard, a subscriber would take 6 first; a device, whose cursor
// keeps the newest `at` handled, would then drop 5 as old, and its replay after a reconnect (since = 6)
// would leave 5 out: a command never handled. So each stamped change carries the feed's last stamp before
// its commit (`after`, read under the same lock), and a change is handed on only once the one it follows
// has been (this process's highest stamp handed on for the feed is at least its `after`); what arrives
// meanwhile waits, in arrival order. Changes without `after` (points with their own `at`, deletions) are
// in no such chain: they go at once, or behind a change of their feed that is waiting.
// Which stamps were handed on before this process heard anything: the store's last stamp of each feed,
// read once it listens to the bus (load), and again whenever its link to the others broke (their
// subscribers here resubscribe): a change that follows one committed before that read need not wait.
// A change whose predecessor does not come within holdMs (its publisher died, the bus lost it) makes the
// feed a gap: what waits is dropped, not handed on, and the hub tells the feed's subscribers here to
// resubscribe with `since` (their cursors stand before the gap, so the replay holds both, in order).
// Pure: the caller passes the time and delivers what is released.
import type { ChangeEvent } from "./push.ts"

/** One commit's changes of one feed, as they arrived. */
interface Waiting {
    events: ChangeEvent[]
    /** the feed's last stamp before this commit; undefined: not stamped (no chain) */
    after?: number
    /** its highest stamp */
    top?: number
    arrivedMs: number
}

/** A feed with changes waiting for an earlier stamp. */
interface Held {
    list: Waiting[]
    /** the first arrival among them: the feed is a gap holdMs after it */
    sinceMs: number
}

export interface StampOrderLimits {
    /** a change waits this long for the one before it, then the feed is a gap */
    holdMs: number
    /** changes (events) one feed may have waiting; past it, a gap at once */
    maxHeldEvents: number
    /** feeds whose last stamp is remembered; past it, the quarter with the oldest stamps is forgotten */
    maxFeeds: number
}

export type Offered = { released: ChangeEvent[][]; held: boolean; gap: boolean }

export class StampOrder {
    /** the highest stamp handed on per feed */
    private readonly last = new Map<number, number>()
    /**
     * every feed not in `last` has had every stamp up to this handed on (or none): Infinity until load()
     * says (changes then go as heard, as with one process)
     */
    private floorMs = Infinity
    private readonly held = new Map<number, Held>()

    constructor(private readonly limits: StampOrderLimits) {}

    /**
     * What was committed before now: each feed's last stamp (those not listed have none above floorMs),
     * read from the store after this process began to hear the others' changes.
     */
    load(stamps: Iterable<[feed: number, stampMs: number]>, floorMs: number): { feed: number; events: ChangeEvent[] }[] {
        for (const [feed, stampMs] of stamps) this.handedOn(feed, stampMs)
        this.floorMs = this.floorMs === Infinity ? floorMs : Math.max(this.floorMs, floorMs)
        // a change that waited for one committed before the read goes now
        const released: { feed: number; events: ChangeEvent[] }[] = []
        for (const [feed, h] of [...this.held]) for (const events of this.releaseFrom(feed, h)) released.push({ feed, events })
        return released
    }

    /** Feeds with changes waiting. */
    get waiting(): number {
        return this.held.size
    }

    /** When the oldest waiting change makes its feed a gap (monotonic ms), if any waits. */
    nextDeadlineMs(): number | undefined {
        let min: number | undefined
        for (const h of this.held.values()) if (min === undefined || h.sinceMs < min) min = h.sinceMs
        return min === undefined ? undefined : min + this.limits.holdMs
    }

    /**
     * One commit's changes of `feed`, heard at `nowMs`: what may go now (this one, and those it
     * unblocked), in order. `chained` false: from a publisher that does not say `after` (an older version):
     * no chain, but its stamps count as handed on.
     */
    offer(feed: number, events: ChangeEvent[], nowMs: number, chained = true): Offered {
        let after: number | undefined
        let top: number | undefined
        for (const ev of events) {
            const stamped = chained ? ev.after !== undefined : ev.atMs !== undefined
            if (!stamped) continue
            if (chained && (after === undefined || ev.after! < after)) after = ev.after
            if (top === undefined || ev.atMs! > top) top = ev.atMs
        }
        const item: Waiting = { events, after: chained ? after : undefined, top, arrivedMs: nowMs }
        const h = this.held.get(feed)
        if (h === undefined) {
            if (this.ready(feed, item)) {
                this.handedOn(feed, item.top)
                return { released: [events], held: false, gap: false }
            }
            this.held.set(feed, { list: [item], sinceMs: nowMs })
            return { released: [], held: true, gap: false }
        }
        h.list.push(item)
        const released = this.releaseFrom(feed, h)
        if (this.held.has(feed) && heldEvents(h) > this.limits.maxHeldEvents) {
            this.dropHeld(feed, h)
            return { released, held: false, gap: true }
        }
        return { released, held: this.held.has(feed), gap: false }
    }

    /** The feeds whose waiting changes waited holdMs: dropped (gaps), their stamps counted as handed on. */
    expired(nowMs: number): number[] {
        const gaps: number[] = []
        for (const [feed, h] of this.held) {
            if (nowMs - h.sinceMs < this.limits.holdMs) continue
            this.dropHeld(feed, h)
            gaps.push(feed)
        }
        return gaps
    }

    /** The feed was deleted: what waits goes now, in arrival order, and the feed is forgotten. */
    release(feed: number): ChangeEvent[][] {
        const h = this.held.get(feed)
        this.held.delete(feed)
        this.last.delete(feed)
        return h ? h.list.map((w) => w.events) : []
    }

    /**
     * The link to the other processes broke or came back: every subscriber here is told to resubscribe
     * (its replay holds what waits), so what waits is dropped.
     */
    dropAll(): void {
        for (const [feed, h] of this.held) this.dropHeld(feed, h)
    }

    private ready(feed: number, w: Waiting): boolean {
        return w.after === undefined || w.after <= (this.last.get(feed) ?? this.floorMs)
    }

    private handedOn(feed: number, top: number | undefined): void {
        if (top === undefined) return
        const last = this.last.get(feed)
        if (last === undefined) {
            if (this.last.size >= this.limits.maxFeeds) this.forgetOldest()
            this.last.set(feed, top)
        } else if (top > last) this.last.set(feed, top)
    }

    /**
     * Hands on, in arrival order, every waiting change that is ready: a stamped one once its predecessor
     * went, one in no chain once no stamped one before it waits. Repeats while that unblocks more.
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
        // a predecessor that comes late goes on at once (a subscriber that replayed it does not get it twice: Replay.seen)
        for (const w of h.list) this.handedOn(feed, w.top)
    }

    /**
     * Forgets the quarter of the feeds with the oldest last stamps (none waiting); the floor rises to the
     * newest of them, so a change of one of them that follows a stamp at or below it goes at once.
     */
    private forgetOldest(): void {
        const quiet = [...this.last].filter(([feed]) => !this.held.has(feed)).sort((x, y) => x[1] - y[1])
        const gone = quiet.slice(0, Math.max(1, Math.floor(quiet.length / 4)))
        for (const [feed] of gone) this.last.delete(feed)
        if (gone.length && this.floorMs !== Infinity) this.floorMs = Math.max(this.floorMs, gone[gone.length - 1][1])
    }
}

function heldEvents(h: Held): number {
    let n = 0
    for (const w of h.list) n += w.events.length
    return n
}
