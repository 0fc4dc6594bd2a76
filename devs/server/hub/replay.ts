// [P§8] The `since` replay of a subscription: what the store holds after `since`, cut so that a device
// can hold it and so that resubscribing with next_since misses nothing and repeats nothing.
import { MAX_REPLAY_POINTS } from "../limits.ts"
import type { CommitRef, Store, StoredPoint } from "../storage/store.ts"

/**
 * What of a replay to send: at most `limit` points (`points` holds one more, to tell whether there are
 * more), cut before the last `at` it reaches, so that resubscribing with since = next_since misses nothing
 * even when several datastreams share that `at`. When the first `at` alone holds more than `limit`
 * points, all of them go (a cut inside it would lose the rest); undefined when `points` does not reach
 * past that `at`: read further.
 */
export function cutReplay(points: StoredPoint[], limit: number): { points: StoredPoint[]; truncated: boolean } | undefined {
    if (points.length <= limit) return { points, truncated: false }
    let end = limit
    const firstLeftOut = points[end].atMs
    while (end > 0 && points[end - 1].atMs === firstLeftOut) end--
    if (end === 0) {
        end = points.findIndex((p) => p.atMs !== firstLeftOut)
        if (end < 0) return undefined
    }
    return { points: points.slice(0, end), truncated: true }
}

export interface ReplayRead {
    points: StoredPoint[]
    truncated: boolean
    /** whether a change was committed before the replay was read (storage/store.ts Replay.seen) */
    seen: (c: CommitRef) => boolean
}

/** The replay after `sinceMs`, cut to `limit` as cutReplay says; the store read from decides the high-water mark. */
export async function readReplay(store: Pick<Store, "replay">, feed: number, stream: string | undefined, sinceMs: number, limit: number): Promise<ReplayRead> {
    const first = await store.replay(feed, stream, sinceMs, limit + 1)
    const cut = cutReplay(first.points, limit)
    if (cut) return { ...cut, seen: first.seen }
    // more than `limit` points share the first `at`: send them all, as far as one full replay reaches
    const wide = await store.replay(feed, stream, sinceMs, MAX_REPLAY_POINTS + 1)
    // (more than MAX_REPLAY_POINTS datastreams written at one `at`: that `at` is cut, the rest is lost)
    const wideCut = cutReplay(wide.points, limit) ?? { points: wide.points.slice(0, MAX_REPLAY_POINTS), truncated: true }
    return { ...wideCut, seen: wide.seen }
}
