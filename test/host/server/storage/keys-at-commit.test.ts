// [P§7] A datapoint write's key is checked against the keys as the server knows them, without a read of
// other processes' changes (the hot path), and the SQLite store's commit checks that the keys are still at
// that version (Store.writePoints' keysAsOf, WriteRequest.keysGeneration): a write racing a revocation
// committed by another connection (the `feedline keys` CLI) before the write's commit stores nothing and is
// refused "keys-changed", and the store knows of the change from then on without a read of its own. The
// race is made by order, not by timing: the key is checked, the other connection revokes, then the write.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test } from "node:test"
import { generatedKey } from "../../../../devs/server/auth/keys.ts"
import { SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import { StoreError } from "../../../../devs/server/storage/store.ts"

const T0 = Date.UTC(2026, 11, 6, 19)
const dirs: string[] = []
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

const WHOLE = { startMs: 0, endMs: T0 * 2, limit: 100 }

function scratchPath(): string {
    const dir = mkdtempSync(join(tmpdir(), "feedline-keys-at-commit-"))
    dirs.push(dir)
    return join(dir, "db")
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
