// The Store contract (devs/server/storage/store.ts): what any backend must do for the router. Run here
// against SQLite; a PostgreSQL store passes the same suite by adding its factory to BACKENDS.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, describe, test } from "node:test"
import Database from "better-sqlite3"
import { SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import type { KeyRecord, ProductRecord, Store } from "../../../../devs/server/storage/store.ts"
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

        test("fleet: products insert, list, revoke; a new device's feed, datastreams, key and record in one transaction, or nothing", async () => {
            const { store } = backend.open()
            const product = (id: string, extra: Partial<ProductRecord> = {}): ProductRecord => ({
                id,
                title: id,
                verifyKey: Buffer.alloc(32, 7),
                datastreams: [{ id: "temp", policy: "i=5s" }, { id: "humidity" }],
                createdMs: T0,
                ...extra,
            })
            await store.insertProduct(product("p1"))
            await store.insertProduct(product("p2", { allowList: ["a"], claimLimit: 1 }))
            assert.deepEqual(await store.getProduct("p2"), product("p2", { allowList: ["a"], claimLimit: 1 }))
            assert.deepEqual((await store.listProducts()).map((p) => p.id), ["p1", "p2"])
            let n = 0
            const key = (): KeyRecord => ({ id: `k${++n}`, hash: Buffer.alloc(32, 100 + n), hashKind: "sha256", label: "", permissions: ["read", "update"], master: false, createdMs: T0 })
            const claim = (deviceId: string, p: string, hw: string) =>
                store.claimNewDevice({ deviceId, product: p, hardwareId: hw, firmware: "1", atMs: T0, feedTitle: `t ${hw}`, datastreams: ["temp", "humidity"], key: key() })
            const v0 = store.keysVersion()
            const d = await claim("d1", "p1", "hw1")
            assert.notEqual(store.keysVersion(), v0, "the key ring must reload")
            assert.deepEqual([d.id, d.product, d.hardwareId, d.keyId, d.firmware, d.claimedMs, d.name], ["d1", "p1", "hw1", "k1", "1", T0, ""])
            assert.equal((await store.getFeed(d.feed))!.title, "t hw1")
            assert.deepEqual((await store.listDatastreams(d.feed)).map((s) => s.id), ["humidity", "temp"])
            assert.deepEqual((await store.listKeys()).find((k) => k.id === "k1")!.feeds, [d.feed])
            assert.deepEqual(await store.findDevice("p1", "hw1"), d)
            const counts = async () => [(await store.listFeeds()).length, (await store.listKeys()).length, (await store.listDevices()).length]
            const before = await counts()
            const refused = async (what: Promise<unknown>, code: string) => assert.rejects(what, (e) => asApiError(e).code === code)
            await refused(claim("d2", "p1", "hw1"), "E_ALREADY_CLAIMED")
            await refused(claim("d2", "nope", "hw2"), "E_NO_SUCH_PRODUCT")
            const d3 = await claim("d3", "p2", "a")
            assert.equal(d3.product, "p2")
            const before2 = await counts()
            await refused(claim("d4", "p2", "b"), "E_CLAIM_LIMIT")
            assert.equal(await store.revokeProduct("p1", T0 + 1), true)
            assert.equal(await store.revokeProduct("p1", T0 + 2), false)
            assert.equal((await store.getProduct("p1"))!.revokedMs, T0 + 1)
            await refused(claim("d5", "p1", "hw9"), "E_PRODUCT_REVOKED")
            assert.deepEqual(await counts(), before2)
            assert.deepEqual(before2, before.map((c) => c + 1))
            // a revoked device frees its place under the limit
            assert.equal((await store.revokeDevice("d3", T0))!.keyId, d3.keyId)
            assert.equal((await store.listKeys()).find((k) => k.id === d3.keyId)!.revokedMs, T0)
            assert.equal(await store.revokeDevice("d3", T0), undefined)
            assert.equal((await claim("d6", "p2", "c")).id, "d6")
            assert.deepEqual((await store.listDevices("p2")).map((d) => d.id), ["d3", "d6"])
            // re-arming the revoked d3 would make two devices under a limit of one
            await refused(store.rearmDevice("d3", T0 + 3), "E_CLAIM_LIMIT")
            assert.equal((await store.getDevice("d3"))!.revokedMs, T0)
            assert.equal((await store.revokeDevice("d6", T0 + 4))!.id, "d6")
            assert.equal(await store.rearmDevice("d3", T0 + 5), true)
            assert.deepEqual([(await store.getDevice("d3"))!.revokedMs, (await store.getDevice("d3"))!.rearmedMs], [undefined, T0 + 5])
            await store.close()
        })

        test("fleet: a device's key reissued only while it is the one decided on; rename, re-arm, first use, last seen", async () => {
            const { store } = backend.open()
            await store.insertProduct({ id: "p1", title: "p", verifyKey: Buffer.alloc(32), datastreams: [{ id: "temp" }], createdMs: T0 })
            let n = 0
            const key = (): KeyRecord => ({ id: `k${++n}`, hash: Buffer.alloc(32, 100 + n), hashKind: "sha256", label: "", permissions: ["read", "update"], master: false, createdMs: T0 })
            const d = await store.claimNewDevice({ deviceId: "d1", product: "p1", hardwareId: "hw", firmware: "1", atMs: T0, feedTitle: "f", datastreams: ["temp"], key: key() })
            const reissue = (expectKeyId: string) => store.reissueDeviceKey({ deviceId: "d1", expectKeyId, firmware: "2", atMs: T0 + 5, feedTitle: "f", datastreams: ["temp"], key: key() })
            await store.markDeviceKeyUsed("d1", "k1", T0 + 1)
            await store.markDeviceKeyUsed("d1", "k1", T0 + 2) // the first use stays
            assert.equal((await store.getDevice("d1"))!.keyUsedMs, T0 + 1)
            assert.equal(await store.rearmDevice("d1", T0 + 3), true)
            assert.equal(await store.rearmDevice("nope", T0 + 3), false)
            const r = await reissue("k1")
            assert.deepEqual([r.keyId, r.feed, r.firmware, r.keyUsedMs, r.rearmedMs, r.claimedMs], ["k2", d.feed, "2", undefined, undefined, T0])
            const keys = new Map((await store.listKeys()).map((k) => [k.id, k]))
            assert.deepEqual([keys.get("k1")!.revokedMs, keys.get("k2")!.revokedMs, keys.get("k2")!.feeds], [T0 + 5, undefined, [d.feed]])
            await assert.rejects(reissue("k1"), (e) => asApiError(e).code === "E_CLAIM_CONFLICT", "another claim won: nothing written")
            assert.equal((await store.listKeys()).length, 2)
            await store.markDeviceKeyUsed("d1", "k1", T0 + 6) // the old key: nothing
            assert.equal((await store.getDevice("d1"))!.keyUsedMs, undefined)
            assert.equal(await store.renameDevice("d1", "north 3", T0 + 7), true)
            assert.deepEqual([(await store.getDevice("d1"))!.name, (await store.getFeed(d.feed))!.title], ["north 3", "north 3"])
            await store.noteDevicesSeen([{ deviceId: "d1", atMs: T0 + 9 }])
            await store.noteDevicesSeen([{ deviceId: "d1", atMs: T0 + 8 }]) // older: kept as it was
            assert.equal((await store.getDevice("d1"))!.lastSeenMs, T0 + 9)
            // its feed deleted: the next reissue makes a new one, with the product's datastreams
            await store.deleteFeed(d.feed)
            const moved = await reissue("k2")
            assert.ok(moved.feed > d.feed)
            assert.deepEqual((await store.listDatastreams(moved.feed)).map((s) => s.id), ["temp"])
            await store.revokeProduct("p1", T0 + 10)
            await assert.rejects(reissue(moved.keyId), (e) => asApiError(e).code === "E_PRODUCT_REVOKED")
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
