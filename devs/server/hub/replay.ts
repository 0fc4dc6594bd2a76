// [P§8] The `since` replay of a subscription: what the store holds after `since`, cut so that a device
// can hold it and so that resubscribing with next_since misses nothing and repeats nothing.
import { MAX_REPLAY_POINTS } from "../limits.ts"
import type { CommitRef, SeqReplay, Store, StoredPoint } from "../storage/store.ts"
import { isoOf } from "../time.ts"

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

/**
 * The replay after `sinceMs`, cut to `limit` as cutReplay says; the store read from decides the high-water mark
 * and the feed's cursor (`highSeq`, for a subscribe with `since` and `after: "latest"`).
 * When more than `limit` points share the first `at` (datastreams of a feed written at one time), all of them
 * go, however many: next_since is a time, so a cut inside that `at` would lose the rest for good (it did past
 * MAX_REPLAY_POINTS: 1200 datastreams written at one `at` replayed 1000). Their number is bounded by the
 * feed's datastreams, one point each; one answer of any size goes out whole (session.ts). `throughSeq`: only the
 * points with a seq up to it (Store.replay).
 */
export async function readReplay(
    store: Pick<Store, "replay">,
    feed: number,
    stream: string | undefined,
    sinceMs: number,
    limit: number,
    throughSeq?: number,
): Promise<ReplayRead & { highSeq: number; gap?: RetentionGap }> {
    let read = limit + 1
    for (;;) {
        const r = await store.replay(feed, stream, sinceMs, read, throughSeq)
        const cut = cutReplay(r.points, limit)
        const gap = gapSince(r, sinceMs)
        if (cut) return { ...cut, seen: r.seen, highSeq: r.highSeq, gap }
        // every point read shares the first `at`: all of them, if that was all there is; else read further
        if (r.points.length < read) return { points: r.points, truncated: false, seen: r.seen, highSeq: r.highSeq, gap }
        read = Math.max(read * 2, MAX_REPLAY_POINTS + 1)
    }
}

/**
 * [P§8] The replay after the change with sequence number `afterSeq` (a subscribe's `after`), in commit order:
 * at most `limit` points; seqs are one per point, so a cut splits nothing (next_after = the last one sent).
 * `highSeq`: the subscription's cursor when nothing is replayed (storage/store.ts SeqReplay).
 */
export async function readSeqReplay(
    store: Pick<Store, "replayAfterSeq">,
    feed: number,
    stream: string | undefined,
    afterSeq: number | undefined,
    limit: number,
): Promise<ReplayRead & { highSeq: number; gap?: RetentionGap }> {
    const r = await store.replayAfterSeq(feed, stream, afterSeq, limit + 1)
    const truncated = r.points.length > limit
    const points = truncated ? r.points.slice(0, limit) : r.points
    const gap = afterSeq === undefined ? undefined : gapAfterSeq(r, afterSeq, points.length ? points[0].seq : r.highSeq)
    return { points, truncated, seen: r.seen, highSeq: r.highSeq, gap }
}

/**
 * [P§8] What a subscribe's acknowledgement adds when the retention deleted points its replay was asked for, so that
 * the replay starts later than asked. Both forms go by what the retention deleted (the store's record of each
 * datastream's newest seq and `at` deleted, read in the replay's snapshot: SeqReplay.trimmedSeq, trimmedAtMs), never
 * by the retention configured now: a retention not run yet, turned off since, or longer or shorter than the one that
 * deleted, said a gap that was not there or none for one that was. A range a client deleted itself is not said.
 */
export interface RetentionGap {
    retention_gap: true
    /** `after`: the first seq still held after the cursor (a number); `since`: the `at` from which on nothing was deleted */
    retained_from: number | string
}

/**
 * `after`: the retention deleted a point written after the client's cursor (seqs are in commit order); `retained_from`
 * the first seq the replay brings (the acknowledgement's cursor when it brings none).
 */
function gapAfterSeq(r: SeqReplay, afterSeq: number, firstHeldSeq: number): RetentionGap | undefined {
    return (r.trimmedSeq ?? 0) > afterSeq ? { retention_gap: true, retained_from: firstHeldSeq } : undefined
}

/**
 * `since`: the retention deleted a point with an `at` after it (its newest deleted `at` is); `retained_from` 1 ms
 * after that `at`: every point stored with an `at` from it on is still held (the meaning it had as "the oldest `at`
 * the retention keeps").
 */
function gapSince(r: SeqReplay, sinceMs: number): RetentionGap | undefined {
    return r.trimmedAtMs !== undefined && r.trimmedAtMs > sinceMs ? { retention_gap: true, retained_from: isoOf(r.trimmedAtMs + 1) } : undefined
}
