// Reads of the SQLite store that see the ingest journal (point-writer.ts) without waiting for the writer:
// what the tables answer, with the journal's rows laid over it as its compaction would lay them. Pure:
// the store reads the tables and the journal in one snapshot and hands both here.
import { noteStreamChange, type JournalRow, type StreamChange } from "./point-writer.ts"
import type { StreamRow } from "./rows.ts"
import type { HistoryQuery } from "./store.ts"

/** A datastream's journaled points: value per `at` (the latest journaled wins), from rows in seq order. */
export function journaledValues(rows: { at_ms: number; value: string }[]): Map<number, string> {
    const byAt = new Map<number, string>()
    for (const r of rows) byAt.set(r.at_ms, r.value)
    return byAt
}

/**
 * A history read: `stored` as the table answered the query (the `limit` first or newest points, or
 * buckets of `intervalMs` with their first point, in the query's order), `journal` the datastream's
 * journaled values inside the range. The table's `limit` rows are enough: a stored point among the
 * `limit` first of the merged set is among the `limit` first of the table's. Oldest first.
 */
export function mergeHistory(stored: { at_ms: number; value: string }[], journal: Map<number, string>, q: HistoryQuery): { atMs: number; value: string }[] {
    const points = new Map<number, { atMs: number; value: string }>()
    const interval = q.intervalMs ? Math.trunc(q.intervalMs) : 0
    // SQLite's integer division (at_ms / interval) truncates toward zero
    const keyOf = interval ? (at: number) => Math.trunc(at / interval) : (at: number) => at
    for (const r of stored) points.set(keyOf(r.at_ms), { atMs: r.at_ms, value: journal.get(r.at_ms) ?? r.value })
    for (const [at, value] of journal) {
        const key = keyOf(at)
        const held = points.get(key)
        // a bucket's point is its first; a point of the same `at` is replaced
        if (!held || at <= held.atMs) points.set(key, { atMs: at, value })
    }
    const merged = [...points.values()].sort((a, b) => a.atMs - b.atMs)
    return q.newest ? merged.slice(Math.max(0, merged.length - q.limit)) : merged.slice(0, q.limit)
}

/** A feed's journaled datastream changes, by datastream id, from its journal rows in seq order. */
export function journaledStreams(rows: JournalRow[]): Map<string, StreamChange> {
    const byKey = new Map<string, StreamChange>()
    for (const r of rows) noteStreamChange(byKey, r)
    const byId = new Map<string, StreamChange>()
    for (const s of byKey.values()) byId.set(s.id, s)
    return byId
}

const lower = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b))
const higher = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b))

/** A datastream row with its journaled change laid over it, as the compaction's upsert will (PointWriter). */
export function mergeStreamRow(row: StreamRow | undefined, s: StreamChange | undefined): StreamRow | undefined {
    if (!s) return row
    if (!row) return { feed: s.feed, id: s.id, current_value: s.value, at_ms: s.at, min_value: s.min, max_value: s.max, created_ms: s.now }
    const newer = row.at_ms === null || s.at >= row.at_ms
    return {
        ...row,
        current_value: newer ? s.value : row.current_value,
        at_ms: row.at_ms === null ? s.at : Math.max(row.at_ms, s.at),
        min_value: lower(row.min_value, s.min),
        max_value: higher(row.max_value, s.max),
    }
}

/** A feed's datastream rows (ordered by id) with the journal's changes laid over them, new ones in id order. */
export function mergeStreamRows(rows: StreamRow[], journal: Map<string, StreamChange>): StreamRow[] {
    if (journal.size === 0) return rows
    const merged = rows.map((r) => mergeStreamRow(r, journal.get(r.id))!)
    const known = new Set(rows.map((r) => r.id))
    const added = [...journal.values()].filter((s) => !known.has(s.id)).map((s) => mergeStreamRow(undefined, s)!)
    if (added.length === 0) return merged
    // SQLite's ORDER BY id compares the UTF-8 bytes
    return [...merged, ...added].sort((a, b) => Buffer.compare(Buffer.from(a.id), Buffer.from(b.id)))
}
