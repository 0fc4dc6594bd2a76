// The Store contract (devs/server/storage/store.ts): what any backend must do for the router. Run here
// against SQLite; a PostgreSQL store passes the same suite by adding its factory to BACKENDS.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, describe, test } from "node:test"
import Database from "better-sqlite3"
import { SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import type { Store } from "../../../../devs/server/storage/store.ts"
import { asApiError } from "../../../../devs/server/errors.ts"

const T0 = Date.UTC(2026, 10, 22, 5)
const dirs: string[] = []
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

interface Backend {
    name: string
    open(): { store: Store; commits: () => number }
}

const BACKENDS: Backend[] = [
    {
        name: "sqlite",
        open() {
            const dir = mkdtempSync(join(tmpdir(), "feedline-store-"))
            dirs.push(dir)
            let commits = 0
            const store = new SqliteStore({ path: join(dir, "db"), synchronous: "NORMAL", now: () => T0, onCommit: () => commits++ })
            return { store, commits: () => commits }
        },
    },
]

for (const backend of BACKENDS) {
    describe(`store contract: ${backend.name}`, () => {
        test("feeds: create with or without an id, conflict, rename, delete with everything under it", async () => {
            const { store } = backend.open()
            const a = await store.createFeed({ title: "a" })
            const b = await store.createFeed({ id: 504, title: "b" })
            assert.equal(b.id, 504)
            await assert.rejects(store.createFeed({ id: 504 }), (e) => asApiError(e).code === "E_CONFLICT")
            await store.updateFeed(a.id, { title: "renamed" })
            assert.equal((await store.getFeed(a.id))!.title, "renamed")
            assert.deepEqual((await store.listFeeds([504])).map((f) => f.id), [504])
            await store.writePoints(504, [{ stream: "t", atMs: T0, value: "1" }])
            assert.deepEqual(await store.deleteFeed(504), { revokedKeys: [], detachedKeys: [] })
            assert.equal(await store.getFeed(504), undefined)
            assert.deepEqual(await store.listDatastreams(504), [])
            assert.deepEqual((await store.replay(504, undefined, 0, 10)).points, [])
            assert.equal(await store.deleteFeed(504), undefined)
            await store.close()
        })

        test("feed ids are never given out twice: not after a delete, not by an explicit id, not one a key was made for", async () => {
            const { store } = backend.open()
            const a = (await store.createFeed({})).id
            const b = (await store.createFeed({})).id
            await store.deleteFeed(b) // the highest: SQLite alone would give it out again
            const c = (await store.createFeed({})).id
            assert.ok(c > b, `${c} after deleting ${b}`)
            await assert.rejects(store.createFeed({ id: b }), (e) => asApiError(e).status === 409 && asApiError(e).code === "E_FEED_ID_RETIRED")
            // a key made for a feed that does not exist yet: a new feed never gets that id by chance
            await store.insertKey({ id: "k", hash: Buffer.alloc(32, 2), hashKind: "sha256", label: "", permissions: ["read"], feeds: [c + 5], master: false, createdMs: T0 })
            assert.ok((await store.createFeed({})).id > c + 5)
            assert.equal((await store.createFeed({ id: c + 5 })).id, c + 5, "the feed the key was made for can be made with its id")
            assert.ok(a < b)
            await store.close()
        })

        test("deleting a feed revokes the keys scoped to it alone and takes it out of the others' lists", async () => {
            const { store } = backend.open()
            const f = (await store.createFeed({})).id
            const g = (await store.createFeed({})).id
            let n = 0
            const key = (id: string, feeds?: number[]) => store.insertKey({ id, hash: Buffer.alloc(32, ++n), hashKind: "sha256", label: id, permissions: ["read"], feeds, master: false, createdMs: T0 })
            await key("only", [f])
            await key("both", [f, g])
            await key("other", [g])
            await key("all")
            const v0 = store.keysVersion()
            assert.deepEqual(await store.deleteFeed(f), { revokedKeys: ["only"], detachedKeys: ["both"] })
            assert.notEqual(store.keysVersion(), v0, "the key ring must reload")
            const keys = new Map((await store.listKeys()).map((k) => [k.id, k]))
            assert.equal(keys.get("only")!.revokedMs, T0)
            assert.deepEqual([keys.get("both")!.feeds, keys.get("both")!.revokedMs], [[g], undefined])
            assert.deepEqual([keys.get("other")!.feeds, keys.get("all")!.feeds], [[g], undefined])
            await store.close()
        })

        test("writes: idempotent on (feed, stream, at), later value wins, identical rewrites are no change", async () => {
            const { store } = backend.open()
            const f = (await store.createFeed({})).id
            const first = await store.writePoints(f, [
                { stream: "t", atMs: T0 + 2, value: "5" },
                { stream: "t", atMs: T0 + 1, value: "7" },
                { stream: "t", atMs: T0 + 1, value: "8" }, // same identity in one request: the last wins
            ])
            assert.deepEqual(first.map((p) => [p.atMs, p.value]), [[T0 + 1, "8"], [T0 + 2, "5"]])
            assert.ok(first[0].seq < first[1].seq)
            assert.deepEqual(await store.writePoints(f, [{ stream: "t", atMs: T0 + 1, value: "8" }]), [])
            const changed = await store.writePoints(f, [{ stream: "t", atMs: T0 + 1, value: "9" }])
            assert.equal(changed.length, 1)
            assert.ok(changed[0].seq > first[1].seq)
            const ds = (await store.getDatastream(f, "t"))!
            // current = newest `at`, not the latest write; min/max over numeric values
            assert.deepEqual([ds.currentValue, ds.atMs, ds.minValue, ds.maxValue], ["5", T0 + 2, 5, 9])
            await store.writePoints(f, [{ stream: "t", atMs: T0 + 3, value: "high" }])
            assert.deepEqual([(await store.getDatastream(f, "t"))!.currentValue, (await store.getDatastream(f, "t"))!.maxValue], ["high", 9])
            await store.close()
        })

        test("writes: batched into one commit per turn; a write to a missing feed fails alone", async () => {
            const { store, commits } = backend.open()
            const f = (await store.createFeed({})).id
            const before = commits()
            const results = await Promise.allSettled([
                ...Array.from({ length: 50 }, (_, i) => store.writePoints(f, [{ stream: "s", atMs: T0 + i, value: String(i) }])),
                store.writePoints(999, [{ stream: "s", atMs: T0, value: "x" }]),
            ])
            assert.equal(commits() - before, 1, "one transaction for the whole turn")
            assert.equal(results.filter((r) => r.status === "fulfilled").length, 50)
            assert.equal(asApiError((results[50] as PromiseRejectedResult).reason).code, "E_NOT_FOUND")
            assert.equal((await store.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 1000 })).length, 50)
            await store.close()
        })

        test("history: inclusive range, newest first or oldest first, one point per interval", async () => {
            const { store } = backend.open()
            const f = (await store.createFeed({})).id
            await store.writePoints(f, Array.from({ length: 10 }, (_, i) => ({ stream: "h", atMs: T0 + i * 1000, value: String(i) })))
            const v = (q: Parameters<Store["history"]>[2]) => store.history(f, "h", q).then((r) => r.map((p) => p.value))
            assert.deepEqual(await v({ startMs: T0 + 1000, endMs: T0 + 3000, limit: 100 }), ["1", "2", "3"])
            assert.deepEqual(await v({ startMs: 0, endMs: T0 * 2, limit: 3 }), ["0", "1", "2"])
            assert.deepEqual(await v({ startMs: 0, endMs: T0 * 2, limit: 3, newest: true }), ["7", "8", "9"])
            assert.deepEqual(await v({ startMs: T0, endMs: T0 * 2, limit: 100, intervalMs: 4000 }), ["0", "4", "8"])
            assert.deepEqual(await v({ startMs: T0, endMs: T0 * 2, limit: 2, intervalMs: 4000, newest: true }), ["4", "8"])
            await store.close()
        })

        test("deleting a range: the current value falls back to the newest point left", async () => {
            const { store } = backend.open()
            const f = (await store.createFeed({})).id
            await store.writePoints(f, [1, 2, 3].map((i) => ({ stream: "d", atMs: T0 + i, value: String(i) })))
            assert.equal(await store.deletePoints(f, "d", T0 + 2, T0 + 3), 2)
            const ds = (await store.getDatastream(f, "d"))!
            assert.deepEqual([ds.currentValue, ds.atMs], ["1", T0 + 1])
            await store.writePoints(f, Array.from({ length: 11_000 }, (_, i) => ({ stream: "d", atMs: T0 + 10 + i, value: "x" })))
            assert.equal(await store.deleteDatastream(f, "d"), true) // in chunks
            assert.equal(await store.getDatastream(f, "d"), undefined)
            await store.close()
        })

        test("replay: after `at`, oldest first, per feed or stream, with the high-water sequence", async () => {
            const { store } = backend.open()
            const f = (await store.createFeed({})).id
            await store.writePoints(f, [
                { stream: "b", atMs: T0 + 1, value: "b1" },
                { stream: "a", atMs: T0 + 2, value: "a2" },
                { stream: "a", atMs: T0 + 1, value: "a1" },
            ])
            const all = await store.replay(f, undefined, T0, 10)
            assert.deepEqual(all.points.map((p) => p.value), ["a1", "b1", "a2"])
            assert.equal(all.highWaterSeq, Math.max(...all.points.map((p) => p.seq)))
            assert.deepEqual((await store.replay(f, "a", T0 + 1, 10)).points.map((p) => p.value), ["a2"])
            const later = await store.writePoints(f, [{ stream: "a", atMs: T0 + 3, value: "a3" }])
            assert.ok(later[0].seq > all.highWaterSeq)
            await store.close()
        })

        test("retention and keys: prune old points, keep current values; keys insert, list, revoke, version", async () => {
            const { store } = backend.open()
            const f = (await store.createFeed({})).id
            await store.writePoints(f, [{ stream: "r", atMs: T0 - 10, value: "old" }, { stream: "r", atMs: T0, value: "new" }])
            assert.equal(await store.prune(T0 - 5), 1)
            // more than one chunk (5000 rows per statement)
            await store.writePoints(f, Array.from({ length: 12_000 }, (_, i) => ({ stream: "p", atMs: T0 - 100_000 + i, value: "x" })))
            assert.equal(await store.prune(T0 - 50_000), 12_000)
            assert.equal((await store.getDatastream(f, "r"))!.currentValue, "new")
            const v0 = store.keysVersion()
            await store.insertKey({ id: "k1", hash: Buffer.alloc(32, 1), hashKind: "sha256", label: "x", permissions: ["read"], feeds: [f], master: false, createdMs: T0 })
            assert.notEqual(store.keysVersion(), v0)
            const [k] = await store.listKeys()
            assert.deepEqual([k.id, k.permissions, k.feeds, k.master, k.hash.equals(Buffer.alloc(32, 1))], ["k1", ["read"], [f], false, true])
            assert.equal(await store.revokeKey("k1", T0 + 1), true)
            assert.equal(await store.revokeKey("k1", T0 + 2), false)
            assert.equal((await store.listKeys())[0].revokedMs, T0 + 1)
            await store.close()
        })
    })
}

test("sqlite: a commit that fails refuses every write in it (503 E_STORE_FAILED), stores none, and the next one works", async () => {
    const dir = mkdtempSync(join(tmpdir(), "feedline-store-"))
    dirs.push(dir)
    const errors: unknown[] = []
    const store = new SqliteStore({ path: join(dir, "db"), synchronous: "NORMAL", now: () => T0, onError: (e) => errors.push(e) })
    const f = (await store.createFeed({})).id
    // another connection makes the disk "fail" for one value
    const other = new Database(join(dir, "db"))
    other.exec(`CREATE TRIGGER fail BEFORE INSERT ON datapoints WHEN NEW.value = 'boom' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
    other.close()
    const results = await Promise.allSettled([
        store.writePoints(f, [{ stream: "s", atMs: T0, value: "fine" }]),
        store.writePoints(f, [{ stream: "s", atMs: T0 + 1, value: "boom" }]),
    ])
    for (const r of results) {
        assert.equal(r.status, "rejected")
        const e = asApiError((r as PromiseRejectedResult).reason)
        assert.deepEqual([e.status, e.code], [503, "E_STORE_FAILED"])
        assert.ok(!e.message.includes("fire"), "internal errors are logged, not sent to clients")
    }
    assert.equal(errors.length, 1)
    assert.deepEqual(await store.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 10 }), [])
    assert.equal((await store.writePoints(f, [{ stream: "s", atMs: T0, value: "fine" }])).length, 1)
    await store.close()
})
