// [P§9] The `at` of a datapoint written without one. A datapoint is identified by (feed, datastream,
// `at`), so two writes the server stamped with its clock in one millisecond would share an identity and
// the second would replace the first. The server's stamps are therefore strictly increasing per
// datastream: max(now, last stamp + 1). A given `at` is the writer's identity and is left alone.
// This is the in-memory stamper of a store only one process writes (SQLite); the PostgreSQL store keeps
// the last stamp per datastream in the database, so that two processes stamp in turn (postgres.ts).
import type { PointInput } from "./store.ts"

/** A point with its `at`, given or stamped. */
export type StampedPoint = PointInput & { atMs: number }

/** Past this many remembered stamps, those already behind the clock are forgotten (a datastream stamped faster than once a millisecond keeps the clock from passing them all). */
const PRUNE_STAMPS_ABOVE = 10_000

export class ServerStamps {
    /** the last stamp per "feed/stream"; only stamps not yet behind the clock matter */
    private last = new Map<string, number>()
    private newestMs = -Infinity

    /**
     * `points` with every missing `at` stamped, in order (two in one body get two stamps). Runs
     * synchronously before the write is queued, so concurrent requests never draw the same stamp.
     */
    stamp(feed: number, points: PointInput[], nowMs: number): StampedPoint[] {
        // every point carries its `at` (a device's update, as the firmware writes it): nothing to stamp, no copy
        let given = 0
        while (given < points.length && points[given].atMs !== undefined) ++given
        if (given === points.length) return points as StampedPoint[]
        // every earlier stamp is behind the clock: none can collide, so none needs remembering (this
        // bounds the map by the datastreams stamped within about a millisecond)
        if (nowMs > this.newestMs) this.last.clear()
        else if (this.last.size > PRUNE_STAMPS_ABOVE) for (const [key, at] of this.last) if (at < nowMs) this.last.delete(key)
        return points.map((p) => (p.atMs === undefined ? { stream: p.stream, atMs: this.next(`${feed}/${p.stream}`, nowMs), value: p.value } : (p as StampedPoint)))
    }

    private next(key: string, nowMs: number): number {
        const prev = this.last.get(key)
        const at = prev === undefined || prev < nowMs ? nowMs : prev + 1
        this.last.set(key, at)
        if (at > this.newestMs) this.newestMs = at
        return at
    }
}
