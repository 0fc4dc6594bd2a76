// The storage interface the router uses. SQLite implements it (storage/sqlite.ts, one process), PostgreSQL
// too (storage/postgres.ts, many processes); the contract suite (test/host/server/storage/store-contract.test.ts)
// runs against both. Times are ms since the epoch. Every datapoint write gets a sequence number, and a
// replay says which committed changes it saw: pushes and `since` replays use it to send nothing twice
// and miss nothing ([P§8]).
import type { Permission } from "../auth/grant.ts"
import type { Settles } from "../later.ts"

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
    | "value-refused" // the database refused this write's data (PostgreSQL: a data exception, a constraint): nothing of it was stored; resending fails again
    | "keys-changed" // keys changed since the key check a write relied on (writePoints' keysAsOf): nothing was stored; check the key again
    | "unavailable" // the database could not be reached or did not answer in time (PostgreSQL): nothing was done
    | "commit-unknown" // the database went away while confirming a commit (PostgreSQL): it may or may not have been stored
    | "partly-deleted" // a deletion done in chunks failed after some were committed (PartlyDeleted.deleted); the rest is still stored, the same deletion again deletes it
    | "no-such-product" // a claim for a product that does not exist
    | "product-revoked" // a claim for a revoked product: it takes no new claims
    | "claim-limit" // the product has as many (unrevoked) devices as its claim limit allows
    | "device-exists" // a new claim for a hardware id the product has a device for already
    | "device-changed" // the device's key changed while a claim was decided (another claim won): try again
    | "no-such-device"
    | "in-use" // another process uses the store in a way this one's use contradicts (Store.claim)

/**
 * A refusal (no cause), or a failure of the engine's own (a full disk, an I/O error, a lost database: its
 * cause is the engine's error, for the log; the client gets the reason). storage/boundary.ts says who makes them.
 */
export class StoreError extends Error {
    constructor(
        readonly failure: StoreFailure,
        /** a reason a person can act on */
        reason: string,
        /** when trying again makes sense: after at least this long */
        readonly retryAfterMs?: number,
        /** the engine's error, when the engine failed */
        cause?: unknown,
    ) {
        super(reason, cause === undefined ? undefined : { cause })
    }
}

/** The engine failed (as opposed to refusing): the failures a client is told to send again after retry_after_ms (503 E_STORE_FAILED, E_PARTLY_DELETED). */
export function isEngineFailure(e: StoreError): boolean {
    return e.failure === "commit-failed" || e.failure === "unavailable" || e.failure === "commit-unknown" || e.failure === "partly-deleted"
}

/**
 * [P§6] A deletion done in chunks (a range of points, a datastream's or a feed's points, the retention), each
 * chunk its own commit so that others are served between them, failed after `deleted` datapoints were
 * committed: the answer says so, where it said that nothing was done. What is left is still stored (the feed
 * or datastream being deleted too); deleting is idempotent, so the same deletion sent again deletes the rest.
 */
export class PartlyDeleted extends StoreError {
    constructor(
        readonly deleted: number,
        /** why the next chunk failed: the engine's failure (its cause is logged), or the store closing */
        failure: StoreError,
    ) {
        const why = failure.failure === "closed" ? "the server began to shut down" : "the server's storage failed"
        super(
            "partly-deleted",
            `${deleted} datapoints were deleted, then ${why} before the rest: what is left of what this deletion covers is still stored (the feed or datastream too, when it was being deleted), and so is its current value as it was. Send the same deletion again${failure.failure === "closed" ? " after reconnecting" : " after retry_after_ms"}: it deletes the rest (what is gone stays gone)`,
            failure.retryAfterMs ?? 1000,
            failure.failure === "closed" ? undefined : (failure.cause ?? failure),
        )
    }
}

/** A deletion's step after its chunks (its last transaction, the current value): a failure once `deleted` datapoints went is a PartlyDeleted. */
export async function afterChunks<T>(deleted: number, failureOf: (e: unknown) => StoreError | undefined, step: () => T | Promise<T>): Promise<T> {
    try {
        return await step()
    } catch (e) {
        const failure = e instanceof StoreError ? e : failureOf(e)
        if (deleted === 0 || failure === undefined) throw e
        throw new PartlyDeleted(deleted, failure)
    }
}

/**
 * The one loop of the engines' chunked deletions: runs `chunk` (deletes at most `chunkRows`, returns how many)
 * until one deletes fewer, `between` after each full one (SQLite lets connections be served). A failure after
 * a chunk was committed is a PartlyDeleted; one before, as it was.
 */
export async function deleteInChunks(o: {
    chunk: () => number | Promise<number>
    chunkRows: number
    closed: () => boolean
    failureOf: (e: unknown) => StoreError | undefined
    between?: () => Promise<void>
}): Promise<number> {
    let n = 0
    for (;;) {
        if (o.closed()) {
            const closed = new StoreError("closed", "the server is shutting down; send it again after reconnecting")
            throw n ? new PartlyDeleted(n, closed) : closed
        }
        // a programming error stays one (500, logged with its cause)
        const deleted = await afterChunks(n, o.failureOf, o.chunk)
        n += deleted
        if (deleted < o.chunkRows) return n
        await o.between?.()
    }
}

/** Keys changed since the key check a write relied on (Store.writePoints' keysAsOf): nothing of it was stored; check the key again. */
export function keysChanged(): StoreError {
    return new StoreError("keys-changed", "keys changed while this write was on its way; nothing was written, send it again", 0)
}

export interface FeedRecord {
    id: number
    title: string
    createdMs: number
    updatedMs: number
}

/**
 * A deletion as committed: the id of its transaction, where the store has one (PostgreSQL). The message
 * that tells the other processes' subscribers carries it, so that one that never arrives is noticed
 * (Store.recordCommitsAs, bus/unheard-commits.ts), as for written datapoints (StoredPoint.txn).
 */
export interface Deletion {
    txn?: number
    /**
     * [P§8] a datastream's deletion where several processes commit (PostgreSQL): the seq it took in its
     * feed's chain (feeds.last_seq moved to it, feeds.deleted_seq too) and the feed's last seq before it,
     * so it is handed on in commit order as datapoints are, and a process that missed it can tell
     * (Store.changesAfter)
     */
    seq?: number
    prevSeq?: number
}

/** [P§8] A feed as Store.changesAfter read it: its last seq, its datastreams' deletions and its datapoints after the seq asked. */
export interface FeedChanges {
    /** the feed's last seq (0: none) */
    lastSeq: number
    /**
     * the seq of the feed's newest datastream deletion the store cannot name (made before PostgreSQL migration 10,
     * or by a process of a version without it; 0: none): one after the seq asked cannot be caught up
     */
    unnamedDeletionSeq: number
    /** its datastreams' deletions with a seq above the one asked (each name's newest), in commit order, at most the limit asked + 1 */
    deletions: RecordedDeletion[]
    /** its datapoints with a seq above the one asked, in commit order, at most the limit asked + 1 */
    points: StoredPoint[]
}

/** [P§8] A datastream's deletion as the store records it (PostgreSQL: each name's newest, and the one before it). */
export interface RecordedDeletion {
    stream: string
    /** the seq it took in its feed's chain (Deletion.seq) */
    seq: number
    /** the seq of the deletion of the same name before it (0: none recorded): one after the seq asked says it was deleted twice since */
    earlierSeq: number
}

/** What deleting a feed did to the keys scoped to it (ids). */
export interface FeedDeletion extends Deletion {
    /** scoped to that feed alone: revoked */
    revokedKeys: string[]
    /** scoped to it and others: it was taken out of their list */
    detachedKeys: string[]
}

/** What PUT /feeds/F changes besides its points (Store.updateFeed). */
export interface FeedUpdate {
    title?: string
    /** datastreams to make (empty), when the feed lacks them */
    datastreams?: string[]
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
    /** undefined: the store stamps it, strictly increasing per datastream over every process [P§9] */
    atMs?: number
    value: string
}

/** Which commit a change came from: what Replay.seen looks at. */
export interface CommitRef {
    /** the store's sequence number of the change */
    seq: number
    /** the id of the transaction that committed it, where the store has one (PostgreSQL) */
    txn?: number
}

/** A datapoint as committed. */
export interface StoredPoint extends CommitRef {
    stream: string
    atMs: number
    value: string
    /**
     * Where several processes commit (PostgreSQL): the feed's last seq before this point's commit (0: none),
     * so that another process hands the feed's changes on in commit order (hub/commit-order.ts).
     */
    prevSeq?: number
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
    /**
     * Whether a change was committed before the replay was read (so its datapoint, if it is after `since`,
     * is in the replay's data), rather than after (so it must be pushed live). SQLite commits one batch
     * at a time: its sequence numbers are in commit order. PostgreSQL commits many at once: it looks up
     * the change's transaction in the replay's snapshot.
     */
    seen(change: CommitRef): boolean
}

export interface SeqReplay extends Replay {
    /**
     * A cursor for the feed as the replay's snapshot saw it: every change of the feed with a sequence number
     * up to it is in that snapshot (so in the replay, when after its `afterSeq`), every later one is not
     * (Replay.seen says false: it is pushed live).
     */
    highSeq: number
    /**
     * the highest seq the retention deleted from the feed (or the stream), 0 for none, in the same snapshot: a
     * replay after a seq below it misses what was deleted [P§8] (retention_gap)
     */
    trimmedSeq?: number
    /**
     * the newest `at` the retention deleted from the feed (its datastreams' newest) or the stream, undefined for
     * none, in the same snapshot: a replay after an `at` below it misses what was deleted [P§8] (retention_gap).
     * Recorded with the deletion, as trimmedSeq; a range a client deleted itself is in neither, nor a datastream
     * deleted since (its record goes with it). One an older version recorded without its `at` reads as an upper bound
     * (rows.ts trimAtSql): never below a point deleted.
     */
    trimmedAtMs?: number
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

/** [fleet] What the devices of a product report: a datastream made on each new device's feed, and its sampling policy. */
export interface ProductDatastream {
    id: string
    /** the sampling policy text the device applies (src/foundation/config-text.ts), e.g. "i=5s d=0.2"; absent: its default */
    policy?: string
}

/**
 * [fleet] A product: boards flashed with its id and a per-board activation code claim their own feed and key.
 * The store keeps the public half of the product's signing key only: it can check a code, not make one.
 */
export interface ProductRecord {
    /** public id, e.g. "p3f9a1c2e": never all digits (devices keep it as a text setting) */
    id: string
    title: string
    /** Ed25519 public key (32 bytes raw) that activation codes are checked with (fleet/claim-codes.ts) */
    verifyKey: Buffer
    datastreams: ProductDatastream[]
    /** hardware ids that may claim; undefined: any with a valid code */
    allowList?: string[]
    /** at most this many unrevoked devices; undefined: no limit */
    claimLimit?: number
    createdMs: number
    revokedMs?: number
}

/** [fleet] A board that claimed a feed and key from a product. (product, hardwareId) is unique. */
export interface DeviceRecord {
    /** public id, e.g. "d3f9a1c2e4b5d" */
    id: string
    product: string
    hardwareId: string
    /** what the operator calls it ("" until renamed); the feed's title follows it */
    name: string
    feed: number
    /** the device's key (read + update on `feed`); a new claim replaces it */
    keyId: string
    /** as the board said when it claimed */
    firmware: string
    /** the first claim */
    claimedMs: number
    /** when the current key was first used: until then a repeated claim is taken as a lost answer, not a clone */
    keyUsedMs?: number
    lastSeenMs?: number
    /** the operator re-armed it: the next claim gets a new key (then this is cleared) */
    rearmedMs?: number
    /** the operator revoked it (and its key): its claims are refused until re-armed */
    revokedMs?: number
}

/** [fleet] A claim that makes a new device: its feed, the feed's datastreams, its key and the device, at once. */
export interface NewDeviceClaim {
    deviceId: string
    product: string
    hardwareId: string
    firmware: string
    atMs: number
    feedTitle: string
    datastreams: string[]
    /** the key to insert; its `feeds` are set to the new feed's id */
    key: KeyRecord
}

/** [fleet] A claim that gives an existing device a new key (re-armed, proven, or the first answer was lost). */
export interface DeviceKeyReissue {
    deviceId: string
    /** the key the decision was made on: when the device has another by now, "device-changed" */
    expectKeyId: string
    firmware: string
    atMs: number
    /** used when the device's feed was deleted meanwhile: it gets a new one */
    feedTitle: string
    datastreams: string[]
    /** the new key; its `feeds` are set to the device's feed */
    key: KeyRecord
}

export interface Store {
    listFeeds(onlyIds?: number[]): Promise<FeedRecord[]>
    getFeed(id: number): Promise<FeedRecord | undefined>
    /**
     * whether the feed exists; asked on every write, so a store answers it from memory where it can, and
     * then at once (a boolean, not a promise: the hot path's `PUT /feeds/:id` takes no step to wait for it)
     */
    feedExists(id: number): boolean | Promise<boolean>
    /**
     * A feed with the given id, or a new one above every id ever used by a feed or named by a key: ids are
     * never given out twice [P§10]. E_CONFLICT when the id is taken, E_FEED_ID_RETIRED (409) when a deleted
     * feed had it.
     */
    createFeed(input: { id?: number; title?: string }): Promise<FeedRecord>
    /**
     * Renames the feed and makes the datastreams named (those it lacks), in one transaction: both or neither.
     * Rejects "no-such-feed" when datastreams are named and the feed does not exist.
     */
    updateFeed(id: number, changes: FeedUpdate): Promise<void>
    /**
     * Removes the feed with its datastreams and datapoints, retires its id, and takes it out of the keys
     * scoped to it (one scoped to it alone is revoked). Undefined when there was no such feed.
     */
    deleteFeed(id: number): Promise<FeedDeletion | undefined>

    listDatastreams(feed: number): Promise<DatastreamRecord[]>
    getDatastream(feed: number, id: string): Promise<DatastreamRecord | undefined>
    /** creates the ones that do not exist; returns the ids created */
    createDatastreams(feed: number, ids: string[]): Promise<string[]>
    /** removes the datastream with its datapoints and what the retention deleted from it (SeqReplay.trimmedSeq, trimmedAtMs), in one transaction; undefined when there was no such datastream */
    deleteDatastream(feed: number, id: string): Promise<Deletion | undefined>

    /**
     * Writes datapoints idempotently on (feed, stream, at): the later value wins, datastreams are created
     * on first write. Points without `at` are stamped max(nowMs, the datastream's last stamp + 1) [P§9],
     * so two stamped writes never share an identity, even from two processes. Resolves after the write
     * is durably committed (writes are batched: one transaction for all that arrived meanwhile). Returns
     * the points that changed something, sorted by stream then at; a rewrite of an identical value is
     * not a change. Rejects "no-such-feed" when the feed does not exist.
     *
     * `keysAsOf`: the keysVersionAsKnown() that the writer's key was checked against, when that check did
     * not look at other processes' changes (the hot path). Then nothing is stored, and it rejects
     * "keys-changed", if keys changed since: both stores check in the transaction that stores the points,
     * so no point is stored under a key revoked (by any process) before that commit (SQLite: its count of
     * key changes; PostgreSQL: the same count, read under a lock that a change of keys takes before it
     * commits, so a revocation also waits for the writes in the middle of their commits).
     */
    writePoints(feed: number, points: PointInput[], nowMs?: number, keysAsOf?: number): Promise<StoredPoint[]>
    /**
     * The same, with its outcome told to `to` when the store can (the devices' hot path: no promise step
     * between the commit and the acknowledgement, later.ts); it returns undefined then. A store that cannot,
     * or a wrapper that does not pass `to` on, returns its promise as above, and `to` hears nothing.
     */
    writePoints(feed: number, points: PointInput[], nowMs: number | undefined, keysAsOf: number | undefined, to: Settles<StoredPoint[]>): Promise<StoredPoint[]> | undefined
    history(feed: number, stream: string, q: HistoryQuery): Promise<{ atMs: number; value: string }[]>
    /** deletes datapoints with startMs <= at < endMs; the current value falls back to the newest left */
    deletePoints(feed: number, stream: string, startMs: number, endMs: number): Promise<number>
    /**
     * datapoints of the feed (or one stream) with at > afterMs, oldest first, at most `limit`; with the feed's
     * cursor in the same snapshot (a subscribe with both `since` and `after: "latest"` [P§8]). `throughSeq`: only
     * those with seq <= it (the rest of a replay by `at` cut at that cursor: a subscribe with `since` and a
     * numeric `after`, whose later changes come by `after` [P§8])
     */
    replay(feed: number, stream: string | undefined, afterMs: number, limit: number, throughSeq?: number): Promise<SeqReplay>
    /**
     * [P§8] The datapoints of the feed (or one stream) written after the change whose sequence number is
     * `afterSeq` (seq > afterSeq), in commit order (seq), at most `limit`; none when `afterSeq` is undefined
     * (only the cursor). A feed's sequence numbers follow its commits on both stores (SQLite: one writer;
     * PostgreSQL: drawn under the feed's row lock, which every batch writing it holds until it commits), so
     * a backfill (a point given an `at` older than others) is after the last change a client handled.
     */
    replayAfterSeq(feed: number, stream: string | undefined, afterSeq: number | undefined, limit: number): Promise<SeqReplay>
    /**
     * deletes datapoints older than beforeMs (retention); current values stay. Records, in the transaction that
     * deletes them, each datastream's newest seq and `at` deleted, never lowered (SeqReplay.trimmedSeq, trimmedAtMs)
     */
    prune(beforeMs: number): Promise<number>

    listKeys(): Promise<KeyRecord[]>
    insertKey(key: KeyRecord): Promise<void>
    revokeKey(id: string, atMs: number): Promise<boolean>
    /** replaces keys' hashes (upgrading how they are made), each only if it still is `from`; how many it replaced */
    rehashKeys(changes: { id: string; from: Buffer; to: Buffer }[], kind: KeyHashKind): Promise<number>
    /** random bytes made once per store: the salt of "scrypt" key hashes */
    keyHashSalt(): Promise<Buffer>
    /** a random name made once per store: the processes serving it find each other on a bus by it, and keep apart from another store's on the same Redis */
    storeId(): Promise<string>
    /** [P§7] signs a token family out (DELETE /jwt) until `untilMs`, its end; prunes families past their end */
    revokeTokenFamily(family: string, untilMs: number): Promise<void>
    /** the token families signed out and not yet past their end */
    revokedTokenFamilies(): Promise<string[]>
    /** forgets signed-out families past their end (their tokens are expired); how many */
    pruneRevokedTokenFamilies(): Promise<number>
    /**
     * changes whenever keys or token revocations may have been changed, also by another process (the CLI,
     * another server): SQLite looks at other connections' commits for it (at most once per event-loop turn)
     */
    keysVersion(): number
    /**
     * keysVersion() as this process knows it now, without looking at other processes' commits (no read):
     * changes through this store, and those it has heard of. A key check made against it is only as good
     * as writePoints' `keysAsOf` check that must follow.
     */
    keysVersionAsKnown(): number
    /**
     * Notices now what other processes committed before this call (keysVersion moves if keys changed),
     * instead of when their announcement arrives: a key made on one server and presented a moment later
     * to another is known there.
     */
    catchUp(): Promise<void>

    // [fleet] products and the devices that claimed from them (devs/server/fleet/)
    insertProduct(p: ProductRecord): Promise<void>
    listProducts(): Promise<ProductRecord[]>
    getProduct(id: string): Promise<ProductRecord | undefined>
    /** false when there is no unrevoked product with that id */
    revokeProduct(id: string, atMs: number): Promise<boolean>
    /** every device, or a product's, in claim order */
    listDevices(product?: string): Promise<DeviceRecord[]>
    getDevice(id: string): Promise<DeviceRecord | undefined>
    findDevice(product: string, hardwareId: string): Promise<DeviceRecord | undefined>
    /**
     * One transaction: a new feed (id as createFeed gives them) with the datastreams, the key scoped to it,
     * the device. Refuses with nothing written: no-such-product, product-revoked, device-exists, claim-limit.
     */
    claimNewDevice(c: NewDeviceClaim): Promise<DeviceRecord>
    /**
     * One transaction: the device's old key revoked, the new one inserted (on a new feed when its feed was
     * deleted), re-arm and revocation cleared, key unused. Refuses with nothing written: no-such-device,
     * device-changed (its key is no longer `expectKeyId`), product-revoked.
     */
    reissueDeviceKey(c: DeviceKeyReissue): Promise<DeviceRecord>
    /** names the device and gives its feed that title; false when there is no such device */
    renameDevice(id: string, name: string, atMs: number): Promise<boolean>
    /**
     * The next claim of the device gets a new key; also lifts a revocation (refused with claim-limit when that
     * would put the product over its limit). False when there is no such device.
     */
    rearmDevice(id: string, atMs: number): Promise<boolean>
    /** revokes the device and its key; undefined when there is no unrevoked device with that id */
    revokeDevice(id: string, atMs: number): Promise<DeviceRecord | undefined>
    /** the device's key `keyId` was used for the first time (only while it is still its key and unused) */
    markDeviceKeyUsed(deviceId: string, keyId: string, atMs: number): Promise<void>
    /** last-seen times, each kept only when later than the stored one */
    noteDevicesSeen(seen: { deviceId: string; atMs: number }[]): Promise<void>
    /**
     * This process serves from the store "alone" (nothing carries pushes, sessions and rate limits to
     * other processes, so no other server may use the store) or "shared" (with other servers on one bus).
     * Rejects "in-use" when another process's claim contradicts it. Held until close().
     */
    claim(use: "alone" | "shared"): Promise<void>
    /**
     * [several processes; PostgreSQL only] From now on every commit that changes datapoints, or deletes a
     * datastream or a feed, also records that `process` (Bus.processId) committed it, with its transaction
     * id (StoredPoint.txn, Deletion.txn), so that the others can check its changes reached them
     * (lastCommits, bus/unheard-commits.ts).
     */
    recordCommitsAs?(process: string): void
    /**
     * [P§9; PostgreSQL] `handler` is given the points of a write refused "commit-unknown" (503 E_OUTCOME_UNKNOWN) whose
     * COMMIT this store later learnt took effect, as that commit stored them (seq, prevSeq, txn), those no resend
     * claimed first (unknown-outcomes.ts): the hub pushes them then, here and on the other processes.
     */
    onLateCommits?(handler: (feed: number, points: StoredPoint[]) => void): void
    /**
     * [P§8] Several processes: the `limit` feeds written last and each one's last seq; `complete` when that is
     * every feed with a seq (the others have none). Seqs are per feed: nothing is known of an unlisted feed's
     * when it is not complete. hub/commit-order.ts.
     */
    lastSeqs?(limit: number): Promise<{ seqs: Map<number, number>; complete: boolean }>
    /**
     * [P§8] Several processes: for each feed of `after` (feed -> the last seq this process handed on), in one
     * snapshot, what hub/catch-up.ts needs to push the changes it missed: the feed's last seq, its datastreams'
     * deletions and its datapoints after that seq (at most `limit` + 1 of each, so that one more says there are
     * more), and whether a deletion it cannot name came after it. A feed missing from the answer does not exist (deleted).
     */
    changesAfter?(after: Map<number, number>, limit: number): Promise<Map<number, FeedChanges>>
    /** [several processes] Each recording process's last commit (a transaction id); rows older than a day are dropped. */
    lastCommits?(): Promise<Map<string, number>>
    /**
     * Runs `fn` while no other process runs a provisioning step on this store (the first start's master
     * key, feed 1 and device key: two processes starting at once must not both make them).
     */
    provisioning<T>(fn: () => Promise<T>): Promise<T>

    close(): Promise<void>
}
