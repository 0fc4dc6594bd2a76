// [P§6] The store's one boundary (devs/server/storage/boundary.ts): whatever a call fails with leaves the store
// classified. With the engine's storage failing under it (every SQLite statement of this process failing
// SQLITE_IOERR; every PostgreSQL query failing SQLSTATE 58030, io_error), EVERY method of the store, on both
// engines, either answers from memory or fails with a StoreError that is answered 503 E_STORE_FAILED with
// retry_after_ms, reported once with the call's name: the methods are those the boundary has, iterated, so a
// new one is covered without being named here. Before it, SQLite's async methods were wrapped at module load
// (keysVersion and feedExists, not async, threw SQLite's own error: a 500), and PostgreSQL's failures other
// than a lost database were a 500 E_INTERNAL. A programming error stays one (500, not "send it again").
import assert from "node:assert/strict"
import { after, describe, test } from "node:test"
import Database from "better-sqlite3"
import pg from "pg"
import { asApiError } from "../../../../devs/server/errors.ts"
import { StoreBoundary, type StoreEngine } from "../../../../devs/server/storage/boundary.ts"
import { sqliteFailure } from "../../../../devs/server/storage/sqlite.ts"
import { StoreError, type KeyRecord, type Store } from "../../../../devs/server/storage/store.ts"
import { closeStoreBackends, storeBackends } from "../../harness/stores.ts"

after(closeStoreBackends)

const T0 = Date.UTC(2026, 11, 7)
const key: KeyRecord = { id: "kb1", hash: Buffer.alloc(32, 1), hashKind: "sha256", label: "k", permissions: ["read"], master: false, createdMs: T0 }
const claimed = { deviceId: "dnew", firmware: "1", atMs: T0, feedTitle: "t", datastreams: ["temp"], key }

/**
 * Arguments a method needs to get as far as its storage (an unknown feed, so that feedExists asks it); a
 * method not named here is called without any. A new method that needs some fails below with its name.
 */
const ARGS: Partial<Record<keyof Store, unknown[]>> = {
    listFeeds: [[1]],
    getFeed: [1],
    feedExists: [987_654],
    createFeed: [{ title: "t" }],
    updateFeed: [1, { title: "t" }],
    deleteFeed: [1],
    listDatastreams: [1],
    getDatastream: [1, "temp"],
    createDatastreams: [1, ["temp"]],
    deleteDatastream: [1, "temp"],
    writePoints: [1, [{ stream: "temp", value: "1" }], T0],
    history: [1, "temp", { startMs: 0, endMs: T0, limit: 10 }],
    deletePoints: [1, "temp", 0, T0],
    replay: [1, undefined, 0, 10],
    replayAfterSeq: [1, undefined, 0, 10],
    prune: [T0],
    insertKey: [key],
    revokeKey: ["kb1", T0],
    rehashKeys: [[{ id: "kb1", from: Buffer.alloc(32, 1), to: Buffer.alloc(32, 2) }], "scrypt"],
    revokeTokenFamily: ["family", T0 + 1000],
    insertProduct: [{ id: "pb1", title: "p", verifyKey: Buffer.alloc(32), datastreams: [{ id: "temp" }], createdMs: T0 }],
    getProduct: ["pb1"],
    revokeProduct: ["pb1", T0],
    getDevice: ["d1"],
    findDevice: ["pb1", "hw1"],
    claimNewDevice: [{ ...claimed, product: "pb1", hardwareId: "hw1" }],
    reissueDeviceKey: [{ ...claimed, expectKeyId: "kb0" }],
    renameDevice: ["d1", "n", T0],
    rearmDevice: ["d1", T0],
    revokeDevice: ["d1", T0],
    markDeviceKeyUsed: ["d1", "kb1", T0],
    noteDevicesSeen: [[{ deviceId: "d1", atMs: T0 }]],
    claim: ["alone"],
    provisioning: [async () => "provisioned"],
    recordCommitsAs: ["process-1"],
    lastSeqs: [10],
    changesAfter: [new Map([[1, 0]]), 10],
    onLateCommits: [() => {}],
}

/** Calls answered from memory, which meet no storage to fail: they must answer. */
const FROM_MEMORY: Record<string, string[]> = {
    sqlite: ["keysVersionAsKnown", "provisioning", "close"],
    postgres: ["keysVersion", "keysVersionAsKnown", "recordCommitsAs", "onLateCommits", "catchUp", "close"],
}

/** Every method the boundary has: its own (a Store's, the optional ones where the engine has them) and its prototype's. */
function methodsOf(store: StoreBoundary): string[] {
    const names = [...Object.getOwnPropertyNames(Object.getPrototypeOf(store)), ...Object.getOwnPropertyNames(store)]
    const methods = names.filter((n) => n !== "constructor" && typeof (store as any)[n] === "function")
    // close last: it ends the store
    return [...methods.filter((n) => n !== "close"), "close"]
}

/** Makes every statement of this process's SQLite connections fail as an I/O error would; returns the undo. */
function failSqlite(): () => void {
    const probe = new Database(":memory:")
    const proto = Object.getPrototypeOf(probe.prepare("SELECT 1"))
    probe.close()
    const saved = new Map<string, unknown>()
    for (const name of ["run", "get", "all", "iterate"]) {
        saved.set(name, proto[name])
        proto[name] = function () {
            throw new Database.SqliteError("disk I/O error", "SQLITE_IOERR_WRITE")
        }
    }
    return () => saved.forEach((fn, name) => (proto[name] = fn))
}

/** Makes every PostgreSQL query of this process fail with SQLSTATE 58030 (io_error); returns the undo. */
function failPostgres(): () => void {
    const saved = pg.Client.prototype.query
    ;(pg.Client.prototype as any).query = function (...args: unknown[]) {
        const err = Object.assign(new pg.DatabaseError("could not write to file \"base/1/2\": No space left on device", 0, "error"), { code: "58030" })
        const callback = args.find((a) => typeof a === "function") as ((e: Error) => void) | undefined
        if (callback) return void process.nextTick(callback, err)
        return Promise.reject(err)
    }
    return () => void (pg.Client.prototype.query = saved)
}

for (const backend of storeBackends().filter((b) => b.name !== "sqlite-thread")) {
    // sqlite-thread: its group commits fail on the writer thread the same way (commitBatch, store-contract.test.ts)
    const engineName = backend.name === "postgres" ? "postgres" : "sqlite"
    describe(`${backend.name}: every method through the boundary, storage failing`, { skip: backend.skip }, () => {
        test("answers from memory or fails 503 E_STORE_FAILED with retry_after_ms, each failure reported once with its call", async () => {
            const { store: engine, errors: commitErrors } = await backend.open({ now: () => T0 })
            const reports: string[] = []
            const store = new StoreBoundary(engine as StoreEngine, (failure, call) => {
                assert.ok(failure.cause, `${call}: reported with its cause`)
                reports.push(call)
            })
            const methods = methodsOf(store)
            assert.ok(methods.length >= 40, `the boundary has the Store's methods: ${methods}`)
            const answered: string[] = []
            const failed: string[] = []
            /** failures the engine reported itself (its onError: a group commit, a move of SQLite's journal) */
            let reportedByEngine = 0
            const restore = engineName === "postgres" ? failPostgres() : failSqlite()
            try {
                for (const name of methods) {
                    if (name === "close") reportedByEngine = commitErrors.length
                    const outcome = await Promise.resolve()
                        .then(() => (store as any)[name](...(ARGS[name as keyof Store] ?? [])))
                        .then(
                            () => undefined,
                            (e: unknown) => e,
                        )
                    if (outcome === undefined) {
                        answered.push(name)
                        continue
                    }
                    assert.ok(outcome instanceof StoreError, `${name} failed with ${(outcome as Error)?.stack ?? outcome}, not a StoreError`)
                    const answer = asApiError(outcome)
                    assert.deepEqual([name, answer.status, answer.code], [name, 503, "E_STORE_FAILED"], `${name}: ${outcome.message}`)
                    assert.ok(answer.retryAfterMs! > 0, name)
                    assert.doesNotMatch(answer.message, /No space left|base\/1/, `${name}: the cause is logged, not sent`)
                    failed.push(name)
                }
            } finally {
                restore()
                await engine.close()
            }
            assert.deepEqual(answered.sort(), FROM_MEMORY[engineName].sort(), "only these answer without storage")
            // once: by the boundary, with the call's name, or where the engine met it (a group commit's, once
            // for all its writes; a move of SQLite's journal that a call needed first) to its onError
            assert.equal(new Set(reports).size, reports.length, `reported twice: ${reports}`)
            assert.ok(reports.every((n) => failed.includes(n)), `${reports} ⊆ ${failed}`)
            assert.equal(reports.length + reportedByEngine, failed.length, `each failure reported once: ${reports.length} by the boundary, ${reportedByEngine} by the engine, of ${failed.length}`)
        })
    })
}

describe("what is not the storage's failure stays a programming error (500 E_INTERNAL), unreported", () => {
    test("SQLite: a bad statement or a bad call is not 'send it again'", () => {
        for (const code of ["SQLITE_ERROR", "SQLITE_MISUSE", "SQLITE_RANGE", "SQLITE_MISMATCH"]) assert.equal(sqliteFailure(new Database.SqliteError("x", code)), undefined, code)
        for (const code of ["SQLITE_FULL", "SQLITE_IOERR_WRITE", "SQLITE_READONLY", "SQLITE_BUSY", "SQLITE_CORRUPT", "SQLITE_CONSTRAINT_TRIGGER"]) {
            assert.equal(sqliteFailure(new Database.SqliteError("x", code))?.failure, "commit-failed", code)
        }
    })

    test("the boundary passes a bug's error on as it is, and a refusal without a report", async () => {
        const bug = new TypeError("Cannot read properties of undefined (reading 'id')")
        const refusal = new StoreError("no-such-feed", "feed 9 does not exist")
        const engine = {
            failureOf: sqliteFailure,
            listFeeds: () => Promise.reject(bug),
            getFeed: () => Promise.reject(refusal),
            keysVersion: () => {
                throw bug
            },
        } as unknown as StoreEngine
        const reports: string[] = []
        const store = new StoreBoundary(engine, (_f, call) => reports.push(call))
        await assert.rejects(store.listFeeds(), (e) => e === bug)
        await assert.rejects(store.getFeed(9), (e) => e === refusal)
        assert.throws(() => store.keysVersion(), (e) => e === bug)
        assert.equal(asApiError(bug).status, 500)
        assert.deepEqual(reports, [])
    })
})
