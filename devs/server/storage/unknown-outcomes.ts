// [P§9] Writes refused "commit-unknown" (503 E_OUTCOME_UNKNOWN), by either engine: SQLite's writer thread died
// holding them, and so did the new threads they were sent to again (writer-thread.ts lost()); PostgreSQL went
// away while confirming their COMMIT and could not say afterwards whether it took effect (postgres.ts attempt()).
// They may have been stored, and then nobody was pushed them. The client sends them again with the same `at`s;
// its resend finds each such point stored, "no change" [P§9], and was acknowledged without a push: the
// subscribers never got the point. So the points of such writes are remembered (in the process that refused
// them), and a resend's point found stored with the value remembered is answered as written, with the seq it
// was stored with, once: it is pushed then. One implementation for both engines; each finds the seqs its own
// way (SQLite on the store's connection at once, PostgreSQL in one query before it answers the batch).
// PostgreSQL can also learn the outcome afterwards (pg_xact_status): it then pushes the points no resend
// claimed first (settled), so that a resend to another process, or none, still leaves no subscriber without them.
import type { PointInput, StoredPoint } from "./store.ts"

/** Points remembered at most (a refusal takes several writer threads lost in a row, or a database lost at a COMMIT: rare); past it, all are forgotten. */
const MAX_POINTS = 10_000

/** A point of a later write that repeats one of a refused write: pushed if it is found stored. */
export interface Resend {
    stream: string
    atMs: number
    value: string
    /**
     * What the refused write's commit stored for it, had it taken effect, when the engine knew (PostgreSQL: its
     * seq, the feed's seq before it and its transaction, so that it goes into the feed's commit order as that
     * commit's change, hub/commit-order.ts). Found stored with another seq, the point was stored again by a
     * commit that was pushed: not pushed again.
     */
    tried?: StoredPoint
}

export class UnknownOutcomes {
    /** "feed stream at" → the value the refused write carried, and what its commit stored when known */
    private readonly points = new Map<string, { value: string; tried?: StoredPoint }>()

    get size(): number {
        return this.points.size
    }

    /**
     * A write of `feed` was refused "commit-unknown"; `tried`: the points its commit stored had it taken
     * effect (each with its seq), when the engine knows them.
     */
    remember(feed: number, points: readonly PointInput[], tried?: readonly StoredPoint[]): void {
        if (this.points.size + points.length > MAX_POINTS) this.points.clear()
        for (const p of points) {
            // a point without `at` (stamped by the server) cannot be sent again as the same point
            if (p.atMs === undefined) continue
            const atMs = p.atMs
            this.points.set(keyOf(feed, p.stream, atMs), { value: p.value, tried: tried?.find((t) => t.stream === p.stream && t.atMs === atMs) })
        }
    }

    /**
     * A later write of `feed` (`points`) was committed: `stored`, the points it changed. Returns the points it
     * repeats of a refused write, with the same value, that it did not change: each is stored (the refused
     * write's commit took effect, or another with the same value did), to be looked up (found). Each
     * remembered point is looked at once: a further resend is no change again.
     */
    resends(feed: number, points: readonly PointInput[], stored: readonly StoredPoint[]): Resend[] {
        let out: Resend[] | undefined
        for (const p of points) {
            if (p.atMs === undefined) continue
            const key = keyOf(feed, p.stream, p.atMs)
            const refused = this.points.get(key)
            if (refused === undefined) continue
            this.points.delete(key)
            if (refused.value !== p.value || stored.some((s) => s.stream === p.stream && s.atMs === p.atMs)) continue
            ;(out ??= []).push({ stream: p.stream, atMs: p.atMs, value: p.value, tried: refused.tried })
        }
        return out ?? NONE
    }

    /**
     * The refused write's commit turned out to have `committed` (or not): its points (`tried`, as that commit stored
     * them) are forgotten, and, committed, those no resend has claimed yet are returned, to be pushed now (each once:
     * a later resend of them is no change). PostgreSQL learns it later (postgres.ts settleUnknown).
     */
    settled(feed: number, tried: readonly StoredPoint[], committed: boolean): StoredPoint[] {
        const out: StoredPoint[] = []
        for (const t of tried) {
            const key = keyOf(feed, t.stream, t.atMs)
            if (this.points.get(key)?.tried?.seq !== t.seq) continue
            this.points.delete(key)
            if (committed) out.push(t)
        }
        return out
    }

    /** resends() and found() in one, for an engine that reads a point's seq at once (SQLite). */
    resent(feed: number, points: readonly PointInput[], stored: StoredPoint[], storedSeq: (stream: string, atMs: number) => number | undefined): StoredPoint[] {
        const again = this.resends(feed, points, stored)
        return again.length === 0 ? stored : found(stored, again, storedSeq)
    }
}

const NONE: Resend[] = []

/**
 * `stored` (a write's changed points) with its `resends` added as written, each with the seq it is stored with
 * (`storedSeq`; undefined: not stored after all), in seq order: what the write's subscribers are pushed.
 */
export function found(stored: StoredPoint[], resends: readonly Resend[], storedSeq: (stream: string, atMs: number) => number | undefined): StoredPoint[] {
    let out = stored
    for (const r of resends) {
        const seq = storedSeq(r.stream, r.atMs)
        if (seq === undefined || (r.tried !== undefined && r.tried.seq !== seq)) continue
        if (out === stored) out = [...stored]
        out.push(r.tried ?? { stream: r.stream, atMs: r.atMs, value: r.value, seq })
    }
    return out === stored ? stored : out.sort((a, b) => a.seq - b.seq)
}

function keyOf(feed: number, stream: string, atMs: number): string {
    return `${feed} ${stream} ${atMs}`
}
