// [P§9] Writes refused "commit-unknown" (503 E_OUTCOME_UNKNOWN): the SQLite writer thread died holding them,
// and so did the new threads they were sent to again (writer-thread.ts lost()). They may have been stored,
// and then nobody was pushed them. The client sends them again with the same `at`s; its resend finds each
// such point stored, "no change" [P§9], and was acknowledged without a push: the subscribers never got the
// point. So the points of such writes are remembered, and a resend's point found stored with the value
// remembered is answered as written, with the seq it was stored with, once: it is pushed then.
import type { PointInput, StoredPoint } from "./store.ts"

/** Points remembered at most (a refusal takes several writer threads lost in a row: rare); past it, all are forgotten. */
const MAX_POINTS = 10_000

export class UnknownOutcomes {
    /** "feed stream at" → the value the refused write carried */
    private readonly points = new Map<string, string>()

    get size(): number {
        return this.points.size
    }

    /** A write of `feed` was refused "commit-unknown". */
    remember(feed: number, points: readonly PointInput[]): void {
        if (this.points.size + points.length > MAX_POINTS) this.points.clear()
        // written points carry their `at`, given or stamped (stamps.ts)
        for (const p of points) if (p.atMs !== undefined) this.points.set(keyOf(feed, p.stream, p.atMs), p.value)
    }

    /**
     * A later write of `feed` was answered: `stored`, the points it changed. Returns them with the points it
     * repeats of a refused write that were found stored (`storedSeq`) added, in seq order. Each remembered
     * point is looked at once: a further resend is no change again.
     */
    resent(feed: number, points: readonly PointInput[], stored: StoredPoint[], storedSeq: (stream: string, atMs: number) => number | undefined): StoredPoint[] {
        let out = stored
        for (const p of points) {
            if (p.atMs === undefined) continue
            const key = keyOf(feed, p.stream, p.atMs)
            const value = this.points.get(key)
            if (value === undefined) continue
            this.points.delete(key)
            if (value !== p.value || stored.some((s) => s.stream === p.stream && s.atMs === p.atMs)) continue
            const seq = storedSeq(p.stream, p.atMs)
            if (seq === undefined) continue
            if (out === stored) out = [...stored]
            out.push({ stream: p.stream, atMs: p.atMs, value: p.value, seq })
        }
        return out === stored ? stored : out.sort((a, b) => a.seq - b.seq)
    }
}

function keyOf(feed: number, stream: string, atMs: number): string {
    return `${feed} ${stream} ${atMs}`
}
