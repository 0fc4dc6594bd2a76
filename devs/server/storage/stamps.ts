// [P§9] The `at` of a datapoint written without one. A datapoint is identified by (feed, datastream,
// `at`), so two writes the server stamped with its clock in one millisecond would share an identity and
// the second would replace the first. The server's stamps are therefore strictly increasing per feed:
// each write's stamps are max(now, the feed's last stamp + 1), the datastreams of one write sharing that
// stamp and several points of one datastream in one body taking the next ones. Per feed, not per
// datastream: a stamp is then above every stamp committed to the feed before it, so a `since` replay of
// a whole feed from the last `at` its subscriber handled holds every stamped point committed after that
// one [P§8] (per datastream, a burst on one datastream ran its stamps ahead of another's, and the other's
// later point fell below the `since`). A given `at` is the writer's identity and is left alone.
// This is the in-memory stamper of a store only one process writes (SQLite), run in the order writes are
// committed; the PostgreSQL store keeps each feed's last stamp in its row, so that several processes stamp
// in turn, in commit order, whatever their clocks (postgres.ts, reserve_stamps).
import type { PointInput } from "./store.ts"

/** A point with its `at`, given or stamped. */
export type StampedPoint = PointInput & { atMs: number }

/** Past this many remembered stamps, those already behind the clock are forgotten (a feed stamped faster than once a millisecond keeps the clock from passing them all). */
const PRUNE_STAMPS_ABOVE = 10_000

export class ServerStamps {
    /** the last stamp per feed; only stamps not yet behind the clock matter */
    private last = new Map<number, number>()
    private newestMs = -Infinity

    /**
     * `aheadOfClock`: when a store opens, each feed's newest `at` that is ahead of the clock, taken as its
     * last stamp. The stamps live in memory, and a burst runs them ahead of the clock; without this, a
     * point stamped after a restart (or a crash) that came sooner than that lead took the `at` of a point
     * stamped before it and replaced that acknowledged point, and a `since` replay from the last `at` a
     * client handled left it out. A point written with its own `at` ahead of the clock counts too: no one
     * can tell the two apart afterwards, so a feed's first stamps after a restart come after it.
     */
    constructor(aheadOfClock: Iterable<readonly [feed: number, atMs: number]> = []) {
        for (const [feed, atMs] of aheadOfClock) {
            this.last.set(feed, Math.max(atMs, this.last.get(feed) ?? -Infinity))
            if (atMs > this.newestMs) this.newestMs = atMs
        }
    }

    /**
     * `points` with every missing `at` stamped, in order (two of one datastream in one body get two
     * stamps). Runs synchronously before the write is queued, so concurrent requests never draw the same
     * stamp, and writes are committed in the order they drew them.
     */
    stamp(feed: number, points: PointInput[], nowMs: number): StampedPoint[] {
        // every point carries its `at` (a device's update, as the firmware writes it): nothing to stamp, no copy
        let given = 0
        while (given < points.length && points[given].atMs !== undefined) ++given
        if (given === points.length) return points as StampedPoint[]
        // every earlier stamp is behind the clock: none can collide, so none needs remembering (this
        // bounds the map by the feeds stamped within about a millisecond)
        if (nowMs > this.newestMs) this.last.clear()
        else if (this.last.size > PRUNE_STAMPS_ABOVE) for (const [key, at] of this.last) if (at < nowMs) this.last.delete(key)
        const prev = this.last.get(feed)
        const base = prev === undefined || prev < nowMs ? nowMs : prev + 1
        // each datastream's next stamp in this body; the first point of each takes `base`
        const next = new Map<string, number>()
        let top = base
        const out = points.map((p) => {
            if (p.atMs !== undefined) return p as StampedPoint
            const at = next.get(p.stream) ?? base
            next.set(p.stream, at + 1)
            if (at > top) top = at
            return { stream: p.stream, atMs: at, value: p.value }
        })
        this.last.set(feed, top)
        if (top > this.newestMs) this.newestMs = top
        return out
    }
}
