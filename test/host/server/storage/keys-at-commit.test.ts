// [P§7] A datapoint write's key is checked against the keys as the server knows them, without a read of
// other processes' changes (the hot path), and the SQLite store's commit checks that the keys are still at
// that version (Store.writePoints' keysAsOf, WriteRequest.keysGeneration): a write racing a revocation
// committed by another connection (the `feedline keys` CLI) before the write's commit stores nothing and is
// refused "keys-changed", and the store knows of the change from then on without a read of its own. The
// race is made by order, not by timing: the key is checked, the other connection revokes, then the write.
// The same on PostgreSQL with another server process revoking: its commit reads the count of key changes
// under a lock every change of keys takes before it commits (postgres.ts LOCK_KEYS).
import assert from "node:assert/strict"
import type { Socket } from "node:net"
import { after, describe, test } from "node:test"
import { generatedKey } from "../../../../devs/server/auth/keys.ts"
import { SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import { StoreError, type Store } from "../../../../devs/server/storage/store.ts"
import { closeStoreBackends, storeBackends, type OpenedStore } from "../../harness/stores.ts"
import { until } from "../../harness/until.ts"
import { tempStorePath } from "../../harness/temp-dirs.ts"

const T0 = Date.UTC(2026, 11, 6, 19)

const WHOLE = { startMs: 0, endMs: T0 * 2, limit: 100 }

function scratchPath(): string {
    return tempStorePath("feedline-keys-at-commit-")
}

const keysChanged = (e: unknown) => e instanceof StoreError && e.failure === "keys-changed"

/** A store with a feed and a key for it, after a look at other writers (`asOf`: the keys' version then); closed after `fn`. */
async function withKeyedFeed(writerThread: boolean, fn: (o: { store: SqliteStore; path: string; f: number; keyId: string; asOf: number }) => Promise<void>): Promise<void> {
    const path = scratchPath()
    const store = new SqliteStore({ path, synchronous: "NORMAL", writerThread, now: () => T0 })
    try {
        const f = (await store.createFeed({})).id
        const key = generatedKey({ permissions: ["update"], feeds: [f] }, T0).record
        await store.insertKey(key)
        await fn({ store, path, f, keyId: key.id, asOf: store.keysVersion() })
    } finally {
        await store.close()
    }
}

/** The `feedline keys revoke` CLI in another process: its own connection, its own commit. */
async function revokeElsewhere(path: string, keyId: string): Promise<void> {
    const cli = new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 })
    assert.equal(await cli.revokeKey(keyId, T0 + 1), true)
    await cli.close()
}

for (const writerThread of [false, true]) {
    const mode = writerThread ? "writer thread" : "in-process"

    test(`keys at commit (${mode}): a write whose key another connection revoked before the commit is refused and stores nothing`, () =>
        withKeyedFeed(writerThread, async ({ store, path, f, keyId, asOf }) => {
            // the server's state before the race: it has looked, and a write checked against it is stored
            assert.equal(store.keysVersionAsKnown(), asOf)
            assert.equal((await store.writePoints(f, [{ stream: "s", atMs: T0, value: "before" }], T0, asOf)).length, 1)
            assert.equal(store.keysVersionAsKnown(), asOf, "the store's own write is no change of keys")
            await revokeElsewhere(path, keyId)
            // the write checked against the keys before the revocation: not stored
            await assert.rejects(store.writePoints(f, [{ stream: "s", atMs: T0 + 2, value: "after" }], T0, asOf), keysChanged)
            assert.deepEqual(await store.history(f, "s", WHOLE), [{ atMs: T0, value: "before" }], "nothing of the refused write is stored")
            // the store learned of the change from its writer, without a look of its own: the next check reloads the keys
            assert.notEqual(store.keysVersionAsKnown(), asOf)
            // a write checked against the keys as they are now is stored
            const now = store.keysVersionAsKnown()
            assert.equal((await store.writePoints(f, [{ stream: "s", atMs: T0 + 3, value: "checked again" }], T0, now)).length, 1)
            // a write without keysAsOf (its key was checked with a look) is not checked at the commit
            assert.equal((await store.writePoints(f, [{ stream: "s", atMs: T0 + 4, value: "looked" }], T0)).length, 1)
            assert.deepEqual((await store.history(f, "s", WHOLE)).map((p) => p.value), ["before", "checked again", "looked"])
        }))

    test(`keys at commit (${mode}): a change of keys through this store refuses a write checked before it, at once`, () =>
        withKeyedFeed(writerThread, async ({ store, f, keyId, asOf }) => {
            await store.revokeKey(keyId, T0 + 1)
            await assert.rejects(store.writePoints(f, [{ stream: "s", atMs: T0, value: "after" }], T0, asOf), keysChanged)
            assert.deepEqual(await store.history(f, "s", WHOLE), [])
        }))

    test(`keys at commit (${mode}): writes queued together before another connection's revocation are all refused; the rest of their commit is stored`, () =>
        withKeyedFeed(writerThread, async ({ store, path, f, keyId, asOf }) => {
            await store.writePoints(f, [{ stream: "s", atMs: T0, value: "0" }], T0, asOf)
            await revokeElsewhere(path, keyId)
            // one turn: one commit holding the checked writes and one whose key was checked with a look
            const outcomes = await Promise.allSettled([
                store.writePoints(f, [{ stream: "s", atMs: T0 + 1, value: "1" }], T0, asOf),
                store.writePoints(f, [{ stream: "t", atMs: T0 + 1, value: "other key" }], T0),
                store.writePoints(f, [{ stream: "s", atMs: T0 + 2, value: "2" }], T0, asOf),
            ])
            assert.deepEqual(outcomes.map((o) => o.status), ["rejected", "fulfilled", "rejected"])
            for (const o of outcomes) if (o.status === "rejected") assert.ok(keysChanged(o.reason), String(o.reason))
            assert.deepEqual(await store.history(f, "s", WHOLE), [{ atMs: T0, value: "0" }])
            assert.deepEqual(await store.history(f, "t", WHOLE), [{ atMs: T0 + 1, value: "other key" }])
        }))
}

const postgres = storeBackends().find((b) => b.name === "postgres")!
describe("keys at commit (PostgreSQL, another server process revoking)", { skip: postgres.skip }, () => {
    after(closeStoreBackends)

    /**
     * Holds back what the store's LISTEN connection hears (its socket paused): another process's
     * announcement of a key change waits, so a write made now comes before it, by order.
     */
    function deafened(store: Store): () => void {
        const socket = (store as unknown as { listener: { connection: { stream: Socket } } }).listener.connection.stream
        socket.pause()
        return () => socket.resume()
    }

    async function withKeyedFeed(
        fn: (o: { store: Store; revokeElsewhere: () => Promise<void>; f: number; asOf: number; gateWritesOf: NonNullable<OpenedStore["gateWritesOf"]> }) => Promise<void>,
    ): Promise<void> {
        const { store, another, gateWritesOf } = await postgres.open({ now: () => T0 })
        // another server process on the same database
        const other = await another()
        try {
            const f = (await store.createFeed({})).id
            const key = generatedKey({ permissions: ["update"], feeds: [f] }, T0).record
            await store.insertKey(key)
            const revokeElsewhere = async () => assert.equal(await other.revokeKey(key.id, T0 + 1), true)
            await fn({ store, revokeElsewhere, f, asOf: store.keysVersionAsKnown(), gateWritesOf: gateWritesOf! })
        } finally {
            await other.close()
            await store.close()
        }
    }

    test("a write whose key another process revoked before the commit, not yet heard of, is refused and stores nothing; the store knows of the change from then on", () =>
        withKeyedFeed(async ({ store, revokeElsewhere, f, asOf }) => {
            assert.equal((await store.writePoints(f, [{ stream: "s", atMs: T0, value: "before" }], T0, asOf)).length, 1)
            const hear = deafened(store)
            try {
                await revokeElsewhere()
                assert.equal(store.keysVersionAsKnown(), asOf, "the announcement is held back")
                await assert.rejects(store.writePoints(f, [{ stream: "s", atMs: T0 + 2, value: "after" }], T0, asOf), keysChanged)
                assert.deepEqual(await store.history(f, "s", WHOLE), [{ atMs: T0, value: "before" }], "nothing of the refused write is stored")
                assert.notEqual(store.keysVersionAsKnown(), asOf, "learned from the commit, before the announcement")
                const now = store.keysVersionAsKnown()
                assert.equal((await store.writePoints(f, [{ stream: "s", atMs: T0 + 3, value: "checked again" }], T0, now)).length, 1)
                assert.equal((await store.writePoints(f, [{ stream: "s", atMs: T0 + 4, value: "looked" }], T0)).length, 1)
                assert.deepEqual((await store.history(f, "s", WHOLE)).map((p) => p.value), ["before", "checked again", "looked"])
            } finally {
                hear()
            }
        }))

    test("writes queued together before another process's revocation are all refused; the rest of their commit is stored", () =>
        withKeyedFeed(async ({ store, revokeElsewhere, f, asOf }) => {
            await store.writePoints(f, [{ stream: "s", atMs: T0, value: "0" }], T0, asOf)
            const hear = deafened(store)
            try {
                await revokeElsewhere()
                const outcomes = await Promise.allSettled([
                    store.writePoints(f, [{ stream: "s", atMs: T0 + 1, value: "1" }], T0, asOf),
                    store.writePoints(f, [{ stream: "t", value: "other key" }], T0),
                    store.writePoints(f, [{ stream: "s", value: "2" }], T0, asOf),
                ])
                assert.deepEqual(outcomes.map((o) => o.status), ["rejected", "fulfilled", "rejected"])
                for (const o of outcomes) if (o.status === "rejected") assert.ok(keysChanged(o.reason), String(o.reason))
                assert.deepEqual(await store.history(f, "s", WHOLE), [{ atMs: T0, value: "0" }])
                assert.deepEqual((await store.history(f, "t", WHOLE)).map((p) => p.value), ["other key"])
            } finally {
                hear()
            }
        }))

    test("a revocation by another process while a write checked against the keys before it is in the middle of its commit waits for that commit: the write is stored, committed before the revocation, never after it", () =>
        withKeyedFeed(async ({ store, revokeElsewhere, f, asOf, gateWritesOf }) => {
            const gate = await gateWritesOf("held")
            try {
                // the write's transaction has read the count of key changes and is held at its insert
                const write = store.writePoints(f, [{ stream: "s", atMs: T0, value: "held" }], T0, asOf)
                await until("the write to be held in its commit", () => gate.waiting("INSERT INTO datapoints"))
                let revoked = false
                const revoking = revokeElsewhere().then(() => (revoked = true))
                // the other process's revocation waits for the write's commit (LOCK_KEYS), not the other way round
                await until("the revocation to wait for the write's commit", () => gate.waiting("SELECT pg_advisory_xact_lock("))
                assert.equal(revoked, false)
                await gate.open()
                assert.equal((await write).length, 1, "stored: it committed before the revocation")
                await revoking
                assert.deepEqual((await store.history(f, "s", WHOLE)).map((p) => p.value), ["held"])
            } finally {
                await gate.open()
            }
        }))
})

