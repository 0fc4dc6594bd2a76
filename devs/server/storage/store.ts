// The storage interface the router uses. SQLite implements it (storage/sqlite.ts); a server for a larger
// fleet can implement it on PostgreSQL without touching the router. Times are ms since the epoch.
// Every datapoint write gets a sequence number from one counter: pushes and `since` replays use it to
// send nothing twice ([P§8]).
import type { Permission } from "../auth/grant.ts"

/**
 * Why the store refused something. Storage speaks of its own domain only: errors.ts (asApiError) is the
 * one place that turns each into a status and code for the client.
 */
export type StoreFailure =
    | "feed-exists" // an explicit feed id that is in use
    | "feed-id-retired" // an explicit feed id that a deleted feed had: never given out again
    | "no-feed-ids-left" // no id above the highest ever given
    | "no-such-feed" // a write or a new datastream for a feed that does not exist
    | "closed" // the store is closing (the server shuts down)
    | "commit-failed" // the transaction failed: nothing of it was stored

export class StoreError extends Error {
    constructor(
        readonly failure: StoreFailure,
        /** a reason a person can act on */
        reason: string,
        /** when trying again makes sense: after at least this long */
        readonly retryAfterMs?: number,
    ) {
        super(reason)
    }
}

export interface FeedRecord {
    id: number
    title: string
    createdMs: number
    updatedMs: number
}

/** What deleting a feed did to the keys scoped to it (ids). */
export interface FeedDeletion {
    /** scoped to that feed alone: revoked */
    revokedKeys: string[]
    /** scoped to it and others: it was taken out of their list */
    detachedKeys: string[]
}

export interface DatastreamRecord {
    feed: number
    id: string
    /** undefined until the first datapoint */
    currentValue?: string
    atMs?: number
    /** numeric minimum / maximum of the values seen (non-numeric values are not counted) */
    minValue?: number
    maxValue?: number
    createdMs: number
}

export interface PointInput {
    stream: string
    atMs: number
    value: string
}

/** A datapoint as committed. */
export interface StoredPoint extends PointInput {
    seq: number
}

export interface HistoryQuery {
    startMs: number
    endMs: number
    /** at most one point (the first) per interval of this many ms, aligned to the epoch */
    intervalMs?: number
    limit: number
    /** true: the `limit` newest points of the range (still returned oldest first) */
    newest?: boolean
}

export interface Replay {
    points: StoredPoint[]
    /** the sequence number of the store when the replay was read: later writes have a greater one */
    highWaterSeq: number
}

/**
 * How a key's hash was made (auth/keys.ts says why): "sha256" = sha-256 of a generated key (192 random
 * bits); "scrypt" = scrypt of the key's sha-256 under the store's salt (imported keys); "sha256-legacy" =
 * sha-256 stored before the distinction was made, upgraded to "scrypt" by the server after its start.
 */
export type KeyHashKind = "sha256" | "scrypt" | "sha256-legacy"

export interface KeyRecord {
    /** public id, e.g. for `keys revoke` */
    id: string
    /** the secret's hash, made as `hashKind` says */
    hash: Buffer
    hashKind: KeyHashKind
    label: string
    permissions: Permission[]
    /** feed ids the key is scoped to; undefined = all feeds */
    feeds?: number[]
    master: boolean
    createdMs: number
    revokedMs?: number
}

export interface Store {
    listFeeds(onlyIds?: number[]): Promise<FeedRecord[]>
    getFeed(id: number): Promise<FeedRecord | undefined>
    /** whether the feed exists; asked on every write, so a store answers it from memory where it can */
    feedExists(id: number): Promise<boolean>
    /**
     * A feed with the given id, or a new one above every id ever used by a feed or named by a key: ids are
     * never given out twice [P§10]. E_CONFLICT when the id is taken, E_FEED_ID_RETIRED (409) when a deleted
     * feed had it.
     */
    createFeed(input: { id?: number; title?: string }): Promise<FeedRecord>
    updateFeed(id: number, changes: { title?: string }): Promise<void>
    /**
     * Removes the feed with its datastreams and datapoints, retires its id, and takes it out of the keys
     * scoped to it (one scoped to it alone is revoked). Undefined when there was no such feed.
     */
    deleteFeed(id: number): Promise<FeedDeletion | undefined>

    listDatastreams(feed: number): Promise<DatastreamRecord[]>
    getDatastream(feed: number, id: string): Promise<DatastreamRecord | undefined>
    /** creates the ones that do not exist; returns the ids created */
    createDatastreams(feed: number, ids: string[]): Promise<string[]>
    deleteDatastream(feed: number, id: string): Promise<boolean>

    /**
     * Writes datapoints idempotently on (feed, stream, at): the later value wins, datastreams are created
     * on first write. Resolves after the write is durably committed (writes are batched into one
     * transaction per tick). Returns the points that changed something, sorted by stream then at; a
     * rewrite of an identical value is not a change. Rejects E_NOT_FOUND when the feed does not exist.
     */
    writePoints(feed: number, points: PointInput[]): Promise<StoredPoint[]>
    history(feed: number, stream: string, q: HistoryQuery): Promise<{ atMs: number; value: string }[]>
    /** deletes datapoints with startMs <= at < endMs; the current value falls back to the newest left */
    deletePoints(feed: number, stream: string, startMs: number, endMs: number): Promise<number>
    /** datapoints of the feed (or one stream) with at > afterMs, oldest first, at most `limit` */
    replay(feed: number, stream: string | undefined, afterMs: number, limit: number): Promise<Replay>
    /** deletes datapoints older than beforeMs (retention); current values stay */
    prune(beforeMs: number): Promise<number>

    listKeys(): Promise<KeyRecord[]>
    insertKey(key: KeyRecord): Promise<void>
    revokeKey(id: string, atMs: number): Promise<boolean>
    /** replaces keys' hashes (upgrading how they are made), each only if it still is `from`; how many it replaced */
    rehashKeys(changes: { id: string; from: Buffer; to: Buffer }[], kind: KeyHashKind): Promise<number>
    /** random bytes made once per store: the salt of "scrypt" key hashes */
    keyHashSalt(): Promise<Buffer>
    /** [P§7] signs a token family out (DELETE /jwt) until `untilMs`, its end; prunes families past their end */
    revokeTokenFamily(family: string, untilMs: number): Promise<void>
    /** the token families signed out and not yet past their end */
    revokedTokenFamilies(): Promise<string[]>
    /** forgets signed-out families past their end (their tokens are expired); how many */
    pruneRevokedTokenFamilies(): Promise<number>
    /** changes whenever keys or token revocations may have been changed, also by another process (the CLI) */
    keysVersion(): number

    close(): Promise<void>
}
