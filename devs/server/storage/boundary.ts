// The store as the server sees it: one explicit boundary around the engine (SQLite, storage/sqlite.ts, or
// PostgreSQL, storage/postgres.ts). Whatever a call fails with leaves it as one of two things:
// - a StoreError: a refusal the engine made (no-such-feed, claim-limit, …), or the engine's own failure (a
//   full disk, an I/O error, a lost database) as the engine classifies it (StoreEngine.failureOf): a stable
//   failure, commit-failed or unavailable (503 E_STORE_FAILED with retry_after_ms). Each such failure is
//   reported once, here (onFailure, with the call's name); nobody downstream logs a StoreError again;
// - anything else: a programming error, which errors.ts (answerTo) answers 500 E_INTERNAL and logs with its cause.
// One method per Store method, written out: the compiler refuses a Store method this class lacks, and
// test/host/server/storage/store-boundary.test.ts calls every one, on both engines, with their storage failing.
// (It replaced a wrapping of SqliteStore's async methods at module load: a method that was not async, and
// every PostgreSQL failure other than a lost database, escaped it.)
import { RECONNECT_AFTER_MS } from "../limits.ts"
import { isEngineFailure, StoreError, type PointInput, type Store, type StoredPoint } from "./store.ts"
import type { Settles } from "../later.ts"

/** An engine: a Store that tells its own failures from programming errors. */
export interface StoreEngine extends Store {
    /** `e`, thrown by the engine's database, as the store's failure (a full disk, an I/O error, a lost database); undefined when it is none (a programming error: a bad statement, a bug) */
    failureOf(e: unknown): StoreError | undefined
}

/** A failure of the engine's own, classified: `call` is the Store method it failed in. */
export type StoreFailureReport = (failure: StoreError, call: string) => void

/** fn's own failure, carried through the engine's provisioning unclassified (it is fn's, not the store's). */
class ProvisioningStepFailed {
    constructor(readonly error: unknown) {}
}

/** [P§6] What a call that met the store closed by the shutdown fails with: 503 E_SHUTTING_DOWN (errors.ts), retry_after_ms. */
function storeClosed(): StoreError {
    return new StoreError("closed", "the server is shutting down and closed its storage before this request was done; send it again after reconnecting (retry_after_ms)", RECONNECT_AFTER_MS)
}

export class StoreBoundary implements Store {
    // ES-private (#): the class's own properties and methods are exactly the Store's (the test iterates over them)
    readonly #engine: StoreEngine
    readonly #onFailure: StoreFailureReport
    /** failures reported already (an engine's StoreError may be met twice: PostgreSQL shares one among a batch's writes) */
    readonly #reported = new WeakSet<StoreError>()
    /**
     * close() was called (the shutdown): a call failing from then on for a reason the engine cannot name met the
     * closed database (better-sqlite3's "The database connection is not open"): a request still in flight, an HTTP
     * one the drain does not wait for. It is told the server is shutting down (503 E_SHUTTING_DOWN with
     * retry_after_ms), not answered 500 and logged as a bug.
     */
    #closing = false
    readonly recordCommitsAs?: Store["recordCommitsAs"]
    readonly lastSeqs?: Store["lastSeqs"]
    readonly changesAfter?: Store["changesAfter"]
    readonly lastCommits?: Store["lastCommits"]
    readonly onLateCommits?: Store["onLateCommits"]

    constructor(engine: StoreEngine, onFailure: StoreFailureReport = () => {}) {
        this.#engine = engine
        this.#onFailure = onFailure
        // [several processes] PostgreSQL's only: present here when the engine has them
        const { recordCommitsAs, lastSeqs, changesAfter, lastCommits, onLateCommits } = engine
        if (recordCommitsAs) this.recordCommitsAs = (process) => this.#now("recordCommitsAs", () => recordCommitsAs.call(engine, process))
        if (lastSeqs) this.lastSeqs = (limit) => this.#later("lastSeqs", () => lastSeqs.call(engine, limit))
        if (changesAfter) this.changesAfter = (after, limit) => this.#later("changesAfter", () => changesAfter.call(engine, after, limit))
        if (lastCommits) this.lastCommits = () => this.#later("lastCommits", () => lastCommits.call(engine))
        // [P§9] a handler, called later: nothing to classify
        if (onLateCommits) this.onLateCommits = (handler) => onLateCommits.call(engine, handler)
    }

    /** What `e`, met in `call`, leaves the boundary as (see the top); a failure of the engine's is reported, once. */
    #classified(call: string, e: unknown): unknown {
        const failure = e instanceof StoreError ? e : (this.#engine.failureOf(e) ?? (this.#closing ? storeClosed() : undefined))
        if (failure === undefined) return e
        // the engine may have classified it itself (PostgreSQL's lost database: its connection handling needs to
        // know); one without its cause was reported where it was met (a group commit's, to its onError)
        if (isEngineFailure(failure) && failure.cause !== undefined && !this.#reported.has(failure)) {
            this.#reported.add(failure)
            this.#onFailure(failure, call)
        }
        return failure
    }

    /** a call that answers at once */
    #now<T>(call: string, run: () => T): T {
        try {
            return run()
        } catch (e) {
            throw this.#classified(call, e)
        }
    }

    /** a call that answers with a promise */
    #later<T>(call: string, run: () => Promise<T>): Promise<T> {
        let answer: Promise<T>
        try {
            answer = run()
        } catch (e) {
            return Promise.reject(this.#classified(call, e))
        }
        return answer.catch((e: unknown) => Promise.reject(this.#classified(call, e)))
    }

    listFeeds(...a: Parameters<Store["listFeeds"]>) {
        return this.#later("listFeeds", () => this.#engine.listFeeds(...a))
    }
    getFeed(...a: Parameters<Store["getFeed"]>) {
        return this.#later("getFeed", () => this.#engine.getFeed(...a))
    }
    createFeed(...a: Parameters<Store["createFeed"]>) {
        return this.#later("createFeed", () => this.#engine.createFeed(...a))
    }
    updateFeed(...a: Parameters<Store["updateFeed"]>) {
        return this.#later("updateFeed", () => this.#engine.updateFeed(...a))
    }
    deleteFeed(...a: Parameters<Store["deleteFeed"]>) {
        return this.#later("deleteFeed", () => this.#engine.deleteFeed(...a))
    }
    listDatastreams(...a: Parameters<Store["listDatastreams"]>) {
        return this.#later("listDatastreams", () => this.#engine.listDatastreams(...a))
    }
    getDatastream(...a: Parameters<Store["getDatastream"]>) {
        return this.#later("getDatastream", () => this.#engine.getDatastream(...a))
    }
    createDatastreams(...a: Parameters<Store["createDatastreams"]>) {
        return this.#later("createDatastreams", () => this.#engine.createDatastreams(...a))
    }
    deleteDatastream(...a: Parameters<Store["deleteDatastream"]>) {
        return this.#later("deleteDatastream", () => this.#engine.deleteDatastream(...a))
    }
    history(...a: Parameters<Store["history"]>) {
        return this.#later("history", () => this.#engine.history(...a))
    }
    deletePoints(...a: Parameters<Store["deletePoints"]>) {
        return this.#later("deletePoints", () => this.#engine.deletePoints(...a))
    }
    replay(...a: Parameters<Store["replay"]>) {
        return this.#later("replay", () => this.#engine.replay(...a))
    }
    replayAfterSeq(...a: Parameters<Store["replayAfterSeq"]>) {
        return this.#later("replayAfterSeq", () => this.#engine.replayAfterSeq(...a))
    }
    prune(...a: Parameters<Store["prune"]>) {
        return this.#later("prune", () => this.#engine.prune(...a))
    }
    listKeys(...a: Parameters<Store["listKeys"]>) {
        return this.#later("listKeys", () => this.#engine.listKeys(...a))
    }
    insertKey(...a: Parameters<Store["insertKey"]>) {
        return this.#later("insertKey", () => this.#engine.insertKey(...a))
    }
    revokeKey(...a: Parameters<Store["revokeKey"]>) {
        return this.#later("revokeKey", () => this.#engine.revokeKey(...a))
    }
    rehashKeys(...a: Parameters<Store["rehashKeys"]>) {
        return this.#later("rehashKeys", () => this.#engine.rehashKeys(...a))
    }
    keyHashSalt(...a: Parameters<Store["keyHashSalt"]>) {
        return this.#later("keyHashSalt", () => this.#engine.keyHashSalt(...a))
    }
    storeId(...a: Parameters<Store["storeId"]>) {
        return this.#later("storeId", () => this.#engine.storeId(...a))
    }
    revokeTokenFamily(...a: Parameters<Store["revokeTokenFamily"]>) {
        return this.#later("revokeTokenFamily", () => this.#engine.revokeTokenFamily(...a))
    }
    revokedTokenFamilies(...a: Parameters<Store["revokedTokenFamilies"]>) {
        return this.#later("revokedTokenFamilies", () => this.#engine.revokedTokenFamilies(...a))
    }
    pruneRevokedTokenFamilies(...a: Parameters<Store["pruneRevokedTokenFamilies"]>) {
        return this.#later("pruneRevokedTokenFamilies", () => this.#engine.pruneRevokedTokenFamilies(...a))
    }
    catchUp(...a: Parameters<Store["catchUp"]>) {
        return this.#later("catchUp", () => this.#engine.catchUp(...a))
    }
    insertProduct(...a: Parameters<Store["insertProduct"]>) {
        return this.#later("insertProduct", () => this.#engine.insertProduct(...a))
    }
    listProducts(...a: Parameters<Store["listProducts"]>) {
        return this.#later("listProducts", () => this.#engine.listProducts(...a))
    }
    getProduct(...a: Parameters<Store["getProduct"]>) {
        return this.#later("getProduct", () => this.#engine.getProduct(...a))
    }
    revokeProduct(...a: Parameters<Store["revokeProduct"]>) {
        return this.#later("revokeProduct", () => this.#engine.revokeProduct(...a))
    }
    listDevices(...a: Parameters<Store["listDevices"]>) {
        return this.#later("listDevices", () => this.#engine.listDevices(...a))
    }
    getDevice(...a: Parameters<Store["getDevice"]>) {
        return this.#later("getDevice", () => this.#engine.getDevice(...a))
    }
    findDevice(...a: Parameters<Store["findDevice"]>) {
        return this.#later("findDevice", () => this.#engine.findDevice(...a))
    }
    claimNewDevice(...a: Parameters<Store["claimNewDevice"]>) {
        return this.#later("claimNewDevice", () => this.#engine.claimNewDevice(...a))
    }
    reissueDeviceKey(...a: Parameters<Store["reissueDeviceKey"]>) {
        return this.#later("reissueDeviceKey", () => this.#engine.reissueDeviceKey(...a))
    }
    renameDevice(...a: Parameters<Store["renameDevice"]>) {
        return this.#later("renameDevice", () => this.#engine.renameDevice(...a))
    }
    rearmDevice(...a: Parameters<Store["rearmDevice"]>) {
        return this.#later("rearmDevice", () => this.#engine.rearmDevice(...a))
    }
    revokeDevice(...a: Parameters<Store["revokeDevice"]>) {
        return this.#later("revokeDevice", () => this.#engine.revokeDevice(...a))
    }
    markDeviceKeyUsed(...a: Parameters<Store["markDeviceKeyUsed"]>) {
        return this.#later("markDeviceKeyUsed", () => this.#engine.markDeviceKeyUsed(...a))
    }
    noteDevicesSeen(...a: Parameters<Store["noteDevicesSeen"]>) {
        return this.#later("noteDevicesSeen", () => this.#engine.noteDevicesSeen(...a))
    }
    claim(...a: Parameters<Store["claim"]>) {
        return this.#later("claim", () => this.#engine.claim(...a))
    }
    close(...a: Parameters<Store["close"]>) {
        this.#closing = true
        return this.#later("close", () => this.#engine.close(...a))
    }

    // the request path asks these three of every write: written out, with no closure per call

    /** From memory on the hot path (a boolean): only a throw is classified there. */
    feedExists(id: number): boolean | Promise<boolean> {
        let exists: boolean | Promise<boolean>
        try {
            exists = this.#engine.feedExists(id)
        } catch (e) {
            throw this.#classified("feedExists", e)
        }
        return typeof exists === "boolean" ? exists : exists.catch((e: unknown) => Promise.reject(this.#classified("feedExists", e)))
    }

    keysVersion(): number {
        try {
            return this.#engine.keysVersion()
        } catch (e) {
            throw this.#classified("keysVersion", e)
        }
    }

    keysVersionAsKnown(): number {
        try {
            return this.#engine.keysVersionAsKnown()
        } catch (e) {
            throw this.#classified("keysVersionAsKnown", e)
        }
    }

    /**
     * The hot path: its refusals come classified, and reported once per failed commit, from the engine's group
     * commit (commitBatch, both engines), so its promise is passed on as it is (no promise step of the
     * boundary's per acknowledged update); only a throw before the write is queued is classified here.
     */
    writePoints(feed: number, points: PointInput[], nowMs?: number, keysAsOf?: number): Promise<StoredPoint[]>
    writePoints(feed: number, points: PointInput[], nowMs: number | undefined, keysAsOf: number | undefined, to: Settles<StoredPoint[]>): Promise<StoredPoint[]> | undefined
    writePoints(feed: number, points: PointInput[], nowMs?: number, keysAsOf?: number, to?: Settles<StoredPoint[]>): Promise<StoredPoint[]> | undefined {
        try {
            return to === undefined ? this.#engine.writePoints(feed, points, nowMs, keysAsOf) : this.#engine.writePoints(feed, points, nowMs, keysAsOf, to)
        } catch (e) {
            return Promise.reject(this.#classified("writePoints", e))
        }
    }

    /** `fn`'s own failures are fn's (the store calls it makes come classified already): passed on as they are. */
    provisioning<T>(fn: () => Promise<T>): Promise<T> {
        const step = () => fn().catch((e: unknown) => Promise.reject(new ProvisioningStepFailed(e)))
        return this.#later("provisioning", () => this.#engine.provisioning(step)).catch((e: unknown) => Promise.reject(e instanceof ProvisioningStepFailed ? e.error : e))
    }
}
