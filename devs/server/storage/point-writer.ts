// Datapoint writes on the connection that owns them: many requests in one transaction (group commit),
// each request acknowledged only after that commit. Used on the server's writer thread
// (writer-thread.ts) and in-process by the CLI and tests (sqlite.ts); the SQL and the grouping are the
// same either way.
import type Database from "better-sqlite3"
import { MAX_KNOWN_FEEDS, numericOf, STORE_RETRY_MS } from "./rows.ts"
import type { StampedPoint } from "./stamps.ts"
import { StoreError } from "./store.ts"

/** PointInput with its `at` (the store has stamped those without) */
type PointInput = StampedPoint

export interface WriteRequest {
    feed: number
    points: PointInput[]
}

/**
 * What one request's write did: the points that changed something, as pairs [index into the request's
 * points, seq, …] in stream then `at` order (flat numbers: cheap to pass between threads). A rewrite of
 * an identical value is no change [P§9].
 */
export type WrittenPairs = number[]

/** A refusal as it crosses threads (StoreError is rebuilt from it). */
export interface StoreRefusal {
    failure: StoreError["failure"]
    reason: string
    retryAfterMs?: number
}

export function refusalOf(e: StoreError): StoreRefusal {
    return { failure: e.failure, reason: e.message, retryAfterMs: e.retryAfterMs }
}

export function storeErrorOf(r: StoreRefusal): StoreError {
    return new StoreError(r.failure, r.reason, r.retryAfterMs)
}

/** The commit failed: nothing of it was stored. */
export function commitFailed(): StoreError {
    return new StoreError("commit-failed", "the server could not store this write; nothing was written, send it again", STORE_RETRY_MS)
}

/**
 * Which feeds exist, as far as one connection knows. Commits by other connections (the writer thread,
 * the `feedline keys` CLI) can delete feeds: `otherWriters()` reads data_version and forgets what it knew
 * when it changed.
 */
export class FeedPresence {
    private readonly known = new Set<number>()
    private dataVersion = -1
    private readonly stmt: { exists: Database.Statement<[number], number>; dataVersion: Database.Statement<[], number> }

    constructor(db: Database.Database) {
        this.stmt = {
            exists: db.prepare<[number], number>("SELECT 1 FROM feeds WHERE id = ?").pluck(),
            dataVersion: db.prepare<[], number>("PRAGMA data_version").pluck(),
        }
    }

    /** True (and the remembered feeds forgotten) when another connection committed since the last look. */
    otherWriters(): boolean {
        const dv = this.stmt.dataVersion.get()!
        if (dv === this.dataVersion) return false
        this.dataVersion = dv
        this.known.clear()
        return true
    }

    /** Whether the feed exists: from memory, else one query. */
    exists(id: number): boolean {
        if (this.known.has(id)) return true
        if (this.stmt.exists.get(id) === undefined) return false
        if (this.known.size >= MAX_KNOWN_FEEDS) this.known.clear()
        this.known.add(id)
        return true
    }

    forget(id: number): void {
        this.known.delete(id)
    }
}

interface StreamChange {
    feed: number
    id: string
    value: string
    at: number
    min: number | null
    max: number | null
}

/** The datapoint SQL of one connection. */
export class PointWriter {
    private readonly feeds: FeedPresence
    private readonly stmt

    constructor(private readonly db: Database.Database) {
        this.feeds = new FeedPresence(db)
        this.stmt = {
            // RETURNING yields a row only when something changed: a resent identical datapoint is no change [P§9]
            upsertPoint: db.prepare<[number, string, number, string, number], { seq: number }>(
                `INSERT INTO datapoints (feed, stream, at_ms, value, seq) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (feed, stream, at_ms) DO UPDATE SET value = excluded.value, seq = excluded.seq
                 WHERE datapoints.value <> excluded.value
                 RETURNING seq`,
            ),
            // once per datastream per commit, with what all of the commit's points of it did
            upsertStream: db.prepare<[StreamChange & { now: number }]>(
                `INSERT INTO datastreams (feed, id, current_value, at_ms, min_value, max_value, created_ms)
                 VALUES (@feed, @id, @value, @at, @min, @max, @now)
                 ON CONFLICT (feed, id) DO UPDATE SET
                   current_value = CASE WHEN datastreams.at_ms IS NULL OR excluded.at_ms >= datastreams.at_ms
                                        THEN excluded.current_value ELSE datastreams.current_value END,
                   at_ms = MAX(COALESCE(datastreams.at_ms, excluded.at_ms), excluded.at_ms),
                   min_value = COALESCE(MIN(datastreams.min_value, excluded.min_value), datastreams.min_value, excluded.min_value),
                   max_value = COALESCE(MAX(datastreams.max_value, excluded.max_value), datastreams.max_value, excluded.max_value)`,
            ),
            touchFeed: db.prepare("UPDATE feeds SET updated_ms = ? WHERE id = ?"),
            // the store's sequence counter lives in the database, so that a reader on another connection
            // reads it in the same snapshot as the datapoints (replay) and two writers never share a number
            seq: db.prepare<[], number>("SELECT value FROM settings WHERE name = 'seq_high_water'").pluck(),
            setSeq: db.prepare("UPDATE settings SET value = ? WHERE name = 'seq_high_water'"),
        }
    }

    /**
     * Commits the requests in one transaction (BEGIN IMMEDIATE: the write lock is taken up front, so a
     * commit by another connection meanwhile cannot make it fail). Throws when the transaction fails;
     * nothing of it is stored then.
     */
    commit(batch: WriteRequest[], nowMs: number): (WrittenPairs | StoreError)[] {
        return this.db
            .transaction(() => {
                // inside the transaction, so the feeds known to exist are those of the snapshot it writes to
                this.feeds.otherWriters()
                let seq = this.stmt.seq.get()!
                const streams = new Map<string, StreamChange>()
                const touched = new Set<number>()
                const outcomes = batch.map((w): WrittenPairs | StoreError => {
                    if (!this.feeds.exists(w.feed)) return new StoreError("no-such-feed", `feed ${w.feed} does not exist`)
                    const written: WrittenPairs = []
                    for (const i of order(w.points)) {
                        const p = w.points[i]
                        if (!this.stmt.upsertPoint.get(w.feed, p.stream, p.atMs, p.value, seq + 1)) continue
                        written.push(i, ++seq)
                        noteStreamChange(streams, w.feed, p)
                    }
                    if (written.length) touched.add(w.feed)
                    return written
                })
                for (const s of streams.values()) this.stmt.upsertStream.run({ ...s, now: nowMs })
                for (const feed of touched) this.stmt.touchFeed.run(nowMs, feed)
                this.stmt.setSeq.run(seq)
                return outcomes
            })
            .immediate()
    }

    /** This connection deleted the feed. */
    forgetFeed(id: number): void {
        this.feeds.forget(id)
    }
}

/**
 * Indexes of the points in stream then time order, each (stream, at) once: within one request the last
 * of equal (stream, at) wins.
 */
function order(points: PointInput[]): number[] {
    if (points.length === 1) return [0]
    const idx = points.map((_, i) => i)
    idx.sort((a, b) => {
        const p = points[a]
        const q = points[b]
        return p.stream < q.stream ? -1 : p.stream > q.stream ? 1 : p.atMs - q.atMs || a - b
    })
    return idx.filter((i, k) => {
        const next = idx[k + 1]
        return next === undefined || points[next].stream !== points[i].stream || points[next].atMs !== points[i].atMs
    })
}

/** Folds one stored point into its datastream's change: the newest `at` (the later one of equal `at`s) and the numeric range. */
function noteStreamChange(streams: Map<string, StreamChange>, feed: number, p: PointInput): void {
    const key = `${feed}/${p.stream}`
    const num = numericOf(p.value)
    const s = streams.get(key)
    if (!s) {
        streams.set(key, { feed, id: p.stream, value: p.value, at: p.atMs, min: num, max: num })
        return
    }
    if (p.atMs >= s.at) {
        s.at = p.atMs
        s.value = p.value
    }
    if (num !== null) {
        s.min = s.min === null || num < s.min ? num : s.min
        s.max = s.max === null || num > s.max ? num : s.max
    }
}

export interface GroupCommitHooks {
    /** observes how long each commit took and how many requests it held (metrics) */
    onCommit?: (ms: number, requests: number) => void
    /** a commit failed (disk full, I/O error): for the log; the requests are refused "commit-failed" */
    onError?: (err: unknown) => void
}

interface Pending extends WriteRequest {
    resolve: (written: WrittenPairs) => void
    reject: (e: StoreError) => void
}

/**
 * Commits `batch` in one transaction and says what became of each request: its written pairs, or why it
 * was refused (a failed commit refuses all of them). What the grouping on either side of the thread shares.
 */
export function commitBatch(writer: PointWriter, batch: WriteRequest[], nowMs: number, hooks: GroupCommitHooks): (WrittenPairs | StoreError)[] {
    const started = performance.now()
    try {
        const outcomes = writer.commit(batch, nowMs)
        hooks.onCommit?.(performance.now() - started, batch.length)
        return outcomes
    } catch (e) {
        hooks.onError?.(e)
        const err = commitFailed()
        return batch.map(() => err)
    }
}

/** Gathers the writes of one event-loop turn and commits them together. */
export class GroupCommit {
    private pending: Pending[] = []
    private scheduled = false
    private readonly flushSoon = () => this.flush()

    constructor(
        private readonly writer: PointWriter,
        private readonly now: () => number,
        private readonly hooks: GroupCommitHooks,
    ) {}

    write(feed: number, points: PointInput[]): Promise<WrittenPairs> {
        return new Promise((resolve, reject) => {
            this.pending.push({ feed, points, resolve, reject })
            if (!this.scheduled) {
                this.scheduled = true
                setImmediate(this.flushSoon)
            }
        })
    }

    /** Commits every pending write in one transaction, then settles their promises. */
    flush(): void {
        this.scheduled = false
        const batch = this.pending
        this.pending = []
        if (batch.length === 0) return
        const outcomes = commitBatch(this.writer, batch, this.now(), this.hooks)
        batch.forEach((w, i) => {
            const o = outcomes[i]
            if (o instanceof StoreError) w.reject(o)
            else w.resolve(o)
        })
    }
}
