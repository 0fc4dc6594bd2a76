// What the SQLite and PostgreSQL stores share: their limits, and how a row of their (parallel) tables
// becomes a record of the Store contract (store.ts). The rows differ only in how lists and flags are
// stored (JSON text and 0/1 in SQLite, JSON arrays and booleans in PostgreSQL): each store decodes those,
// the rest is here.
import type { Permission } from "../auth/grant.ts"
import type { DatastreamRecord, DeviceRecord, FeedRecord, KeyHashKind, KeyRecord, ProductDatastream, ProductRecord } from "./store.ts"

/**
 * Bulk deletes (retention, a feed, a datastream) remove at most this many rows per statement, then yield
 * to the event loop: deleting millions of rows must not stall every connection (a few ms per chunk).
 */
export const PRUNE_CHUNK_ROWS = 5000

/**
 * [P§8] SQL for the newest `at` the retention deleted from the datastream of the `trims` row (feed, stream, seq), which a
 * trim recorded before the `at` was kept (before SQLite's schema 13, PostgreSQL's 11) does not hold: an `at` no deleted point is newer
 * than, as little above the deleted ones as what is left tells. Each run of the retention deleted every point then
 * older than its cutoff, and the cutoffs rose: a point left that was written before the newest one deleted
 * (seq <= the trim's) outlived every run that deleted from it, so it is newer than each point deleted: the oldest such,
 * less 1 ms. None left: the oldest point written since, less 1 ms (newer than every deleted one unless it was written
 * older than the retention after its last run: the next run deletes it and records its `at`). None at all: the
 * current value's `at` (the retention keeps it: the newest point it deleted). No datastream either (deleted by its
 * client since): 0. Each a walk of the datastream's points by `at` (the primary key) that stops at the first
 * match. Part of both migrations: never edit it.
 */
export const legacyTrimAtSql = (trims: string): string => `COALESCE(
        (SELECT d.at_ms - 1 FROM datapoints d WHERE d.feed = ${trims}.feed AND d.stream = ${trims}.stream AND d.seq <= ${trims}.seq ORDER BY d.at_ms LIMIT 1),
        (SELECT d.at_ms - 1 FROM datapoints d WHERE d.feed = ${trims}.feed AND d.stream = ${trims}.stream ORDER BY d.at_ms LIMIT 1),
        (SELECT s.at_ms FROM datastreams s WHERE s.feed = ${trims}.feed AND s.id = ${trims}.stream),
        0)`

/**
 * [P§8] SQL for the newest `at` the retention deleted from the datastream of the `trims` row, as a replay reads it:
 * its at_ms, or where that is unknown (0: a trim written by a process of a version that kept no `at`, during a rolling
 * upgrade, or beside a `feedline keys` that upgraded the SQLite file under a running server; the trims tables'
 * triggers set it so) the bound legacyTrimAtSql gives a trim recorded before the `at` was kept. Never below a point
 * deleted: a gap is never left unsaid, at worst told a little early.
 */
export const trimAtSql = (trims: string): string => `CASE WHEN ${trims}.at_ms = 0 THEN ${legacyTrimAtSql(trims)} ELSE ${trims}.at_ms END`

/**
 * [P§8] The ON CONFLICT update of a retention_trims row the retention deleted more from (`greatest`: the engine's
 * MAX/GREATEST). at_written says this write knows its `at` (the triggers set at_ms unknown on a write without it, an
 * older version's), and an unknown at_ms stays unknown: a higher `at` now says nothing of what that write deleted.
 */
export const raiseTrimSql = (greatest: "MAX" | "GREATEST"): string =>
    `seq = ${greatest}(retention_trims.seq, excluded.seq),
     at_ms = CASE WHEN retention_trims.at_ms = 0 THEN 0 ELSE ${greatest}(retention_trims.at_ms, excluded.at_ms) END,
     at_written = TRUE`

/** After a failed commit clients wait this long before resending: storage trouble rarely clears at once. */
export const STORE_RETRY_MS = 1000

/** Feeds known to exist are remembered up to this many (8 bytes each and Set overhead: a few MB at most);
 *  past it the memory starts over, so a fleet of a million feeds costs a query on a miss, not memory. */
export const MAX_KNOWN_FEEDS = 100_000

export interface FeedRow {
    id: number
    title: string
    created_ms: number
    updated_ms: number
}
export interface StreamRow {
    feed: number
    id: string
    current_value: string | null
    at_ms: number | null
    min_value: number | null
    max_value: number | null
    created_ms: number
}
/** An api_keys row with its lists and flag decoded by the store that read it. */
export interface KeyRow {
    id: string
    hash: Buffer
    hash_kind: KeyHashKind
    label: string
    permissions: Permission[]
    feeds: number[] | null
    master: boolean
    created_ms: number
    revoked_ms: number | null
}

export const feedOf = (r: FeedRow): FeedRecord => ({ id: r.id, title: r.title, createdMs: r.created_ms, updatedMs: r.updated_ms })

export function streamOf(r: StreamRow): DatastreamRecord {
    const ds: DatastreamRecord = { feed: r.feed, id: r.id, createdMs: r.created_ms }
    if (r.current_value !== null) ds.currentValue = r.current_value
    if (r.at_ms !== null) ds.atMs = r.at_ms
    if (r.min_value !== null) ds.minValue = r.min_value
    if (r.max_value !== null) ds.maxValue = r.max_value
    return ds
}

export function keyOf(r: KeyRow): KeyRecord {
    const k: KeyRecord = {
        id: r.id,
        hash: r.hash,
        hashKind: r.hash_kind,
        label: r.label,
        permissions: r.permissions,
        master: r.master,
        createdMs: r.created_ms,
    }
    if (r.feeds !== null) k.feeds = r.feeds
    if (r.revoked_ms !== null) k.revokedMs = r.revoked_ms
    return k
}

/** A products row with its lists decoded by the store that read it. */
export interface ProductRow {
    id: string
    title: string
    verify_key: Buffer
    datastreams: ProductDatastream[]
    allow_list: string[] | null
    claim_limit: number | null
    created_ms: number
    revoked_ms: number | null
}
export interface DeviceRow {
    id: string
    product: string
    hardware_id: string
    name: string
    feed: number
    key_id: string
    firmware: string
    claimed_ms: number
    key_used_ms: number | null
    last_seen_ms: number | null
    rearmed_ms: number | null
    revoked_ms: number | null
}

export function productOf(r: ProductRow): ProductRecord {
    const p: ProductRecord = { id: r.id, title: r.title, verifyKey: r.verify_key, datastreams: r.datastreams, createdMs: r.created_ms }
    if (r.allow_list !== null) p.allowList = r.allow_list
    if (r.claim_limit !== null) p.claimLimit = r.claim_limit
    if (r.revoked_ms !== null) p.revokedMs = r.revoked_ms
    return p
}

export function deviceOf(r: DeviceRow): DeviceRecord {
    const d: DeviceRecord = { id: r.id, product: r.product, hardwareId: r.hardware_id, name: r.name, feed: r.feed, keyId: r.key_id, firmware: r.firmware, claimedMs: r.claimed_ms }
    if (r.key_used_ms !== null) d.keyUsedMs = r.key_used_ms
    if (r.last_seen_ms !== null) d.lastSeenMs = r.last_seen_ms
    if (r.rearmed_ms !== null) d.rearmedMs = r.rearmed_ms
    if (r.revoked_ms !== null) d.revokedMs = r.revoked_ms
    return d
}

/** A value counts for min/max when it is a plain decimal number. */
export function numericOf(value: string): number | null {
    if (!/^\s*-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(value)) return null
    const n = Number(value)
    return Number.isFinite(n) ? n : null
}
