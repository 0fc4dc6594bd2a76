// [P§6] A storage failure (a full disk, an I/O error) in a change the server makes outside the writer's group
// commit (a new feed, key or product, a rename) is 503 E_STORE_FAILED with retry_after_ms, nothing of it
// stored, and the same request works once the storage does: not a 500 E_INTERNAL. A trigger another connection
// adds fails the change's transaction as a full disk does (SQLite rolls it back); found on a full tmpfs, where
// POST /feeds, /keys and /products were 500.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Writable } from "node:stream"
import { test } from "node:test"
import Database from "better-sqlite3"
import { http, serverForThisFile, startTestServer } from "../harness/server-harness.ts"
import { until } from "../harness/until.ts"
import { failChangesOf as failChangesOfStore } from "../harness/sqlite-faults.ts"
import { PRUNE_CHUNK_ROWS } from "../../../devs/server/storage/rows.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey

/** Makes every insert into (or update of) `table` fail until the returned function is called. */
const failChangesOf = (table: string, event: "INSERT" | "UPDATE" = "INSERT") => failChangesOfStore(s.dataDir, table, event)

const cases = [
    { what: "a new feed", table: "feeds", path: "/v2/feeds", body: { title: "on a full disk" }, listed: "/v2/feeds" },
    { what: "a new key", table: "api_keys", path: "/v2/keys", body: { label: "on a full disk", permissions: ["read"] }, listed: "/v2/keys" },
    { what: "a new product", table: "products", path: "/v2/products", body: { title: "on a full disk", datastreams: ["temp"] }, listed: "/v2/products" },
]

for (const c of cases) {
    test(`${c.what} whose commit fails is 503 E_STORE_FAILED with retry_after_ms, nothing stored; the same request works after`, async () => {
        const before = JSON.stringify((await http(s, "GET", c.listed, { key: master })).body)
        const restore = failChangesOf(c.table)
        try {
            const r = await http(s, "POST", c.path, { key: master, body: c.body })
            assert.deepEqual([r.status, r.body.code], [503, "E_STORE_FAILED"], JSON.stringify(r.body))
            assert.ok(r.body.retry_after_ms > 0, JSON.stringify(r.body))
            assert.ok(!r.body.errors.includes("fire"), "the cause is logged, not sent")
        } finally {
            restore()
        }
        assert.equal(JSON.stringify((await http(s, "GET", c.listed, { key: master })).body), before, "nothing of the refused request was stored")
        const again = await http(s, "POST", c.path, { key: master, body: c.body })
        assert.equal(again.status, 201, JSON.stringify(again.body))
    })
}

test("renaming a feed whose commit fails is 503 E_STORE_FAILED, the title unchanged", async () => {
    const feed = (await http(s, "POST", "/v2/feeds", { key: master, body: { title: "old" } })).body.id
    const restore = failChangesOf("feeds", "UPDATE")
    try {
        const r = await http(s, "PUT", `/v2/feeds/${feed}`, { key: master, body: { title: "new" } })
        assert.deepEqual([r.status, r.body.code], [503, "E_STORE_FAILED"], JSON.stringify(r.body))
    } finally {
        restore()
    }
    assert.equal((await http(s, "GET", `/v2/feeds/${feed}`, { key: master })).body.title, "old")
})

// [P§6] A new feed with values is made in one commit and its values stored in another (the writer's): when only
// the second fails (the disk fills between them), the answer said "nothing was written, send it again", and a
// client that did so made a second feed. Found by the audit of 2026-12-07.
test("a new feed made whose values then fail to store: the 503 says the feed was made and how to send its values, not to send the POST again", async () => {
    const listed = async () => (await http(s, "GET", "/v2/feeds", { key: master })).body.results.map((f: { id: number }) => f.id) as number[]
    const before = await listed()
    const restore = failChangesOf("ingest_journal") // the writer's commit of points fails; making the feed does not
    let r
    try {
        r = await http(s, "POST", "/v2/feeds", { key: master, body: { title: "with values", datastreams: [{ id: "temp", current_value: "21.5" }] } })
    } finally {
        restore()
    }
    assert.deepEqual([r.status, r.body.code], [503, "E_STORE_FAILED"], JSON.stringify(r.body))
    assert.ok(r.body.retry_after_ms > 0, JSON.stringify(r.body))
    const made = (await listed()).filter((id) => !before.includes(id))
    assert.equal(made.length, 1, "the feed was made")
    assert.match(r.body.errors, new RegExp(`feed ${made[0]} was made`), JSON.stringify(r.body))
    assert.match(r.body.errors, new RegExp(`PUT /feeds/${made[0]}`), JSON.stringify(r.body))
    assert.doesNotMatch(r.body.errors, /nothing was written/, JSON.stringify(r.body))
    // what it says to do stores the values, and makes no other feed
    const put = await http(s, "PUT", `/v2/feeds/${made[0]}`, { key: master, body: { datastreams: [{ id: "temp", current_value: "21.5" }] } })
    assert.equal(put.status, 200, JSON.stringify(put.body))
    assert.equal((await http(s, "GET", `/v2/feeds/${made[0]}/datastreams/temp`, { key: master })).body.current_value, "21.5")
    assert.deepEqual((await listed()).filter((id) => !before.includes(id)), made)
})

// A rename first has the journal's points moved into the tables (Store.visible), a write of its own: on a full
// disk that move fails, and the answer said "could not read its latest writes … nothing was lost, ask again".
test("renaming a feed whose journal cannot be moved into the tables is 503 E_STORE_FAILED saying the write failed, nothing changed", async () => {
    const feed = (await http(s, "POST", "/v2/feeds", { key: master, body: { title: "old" } })).body.id
    const w = await http(s, "POST", `/v2/feeds/${feed}/datastreams/temp/datapoints`, { key: master, body: { datapoints: [{ value: "1" }] } })
    assert.ok(w.status < 300, JSON.stringify(w.body))
    const restore = failChangesOf("feeds", "UPDATE")
    try {
        const r = await http(s, "PUT", `/v2/feeds/${feed}`, { key: master, body: { title: "new" } })
        assert.deepEqual([r.status, r.body.code], [503, "E_STORE_FAILED"], JSON.stringify(r.body))
        assert.ok(r.body.retry_after_ms > 0, JSON.stringify(r.body))
        assert.match(r.body.errors, /could not write/, JSON.stringify(r.body))
        assert.match(r.body.errors, /nothing was changed/, JSON.stringify(r.body))
        assert.doesNotMatch(r.body.errors, /could not read|nothing was lost/, JSON.stringify(r.body))
    } finally {
        restore()
    }
    assert.equal((await http(s, "GET", `/v2/feeds/${feed}`, { key: master })).body.title, "old")
})

// A storage failure is logged once, with the call it failed in: the store reports its own failures (its
// boundary, devs/server/storage/boundary.ts) and nobody logs a StoreError again. Background work logged it
// twice ("store commit failed; the writes were refused (503)", then "retention failed"), and so did a
// request ("store commit failed", then "request failed").
test("a storage failure is logged once: background work's (retention at start) and a request's (POST /feeds)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-failure-log-"))
    try {
        const before = await startTestServer({ dataDir })
        await before.store.writePoints(before.credentials.feedId, [{ stream: "temp", atMs: 1000, value: "from 1970" }])
        await before.close()
        const db = new Database(join(dataDir, "feedline.db"))
        db.exec("CREATE TRIGGER fail_prune BEFORE DELETE ON datapoints BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        db.close()
        const lines: any[] = []
        const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(...chunk.toString().trim().split("\n").map((l: string) => JSON.parse(l))), done()) })
        const errorLines = () => lines.filter((l) => l.level >= 50)
        // the retention's first run, at start, fails
        const server = await startTestServer({ dataDir, retentionDays: 1, logLevel: "warn", logDestination: sink })
        try {
            await until("the retention's failure to be logged", () => errorLines().length > 0)
            // many event-loop turns: a second line (the background caller's) would be in by now
            assert.equal((await http(server, "GET", "/v2/feeds", { key: server.credentials.masterKey })).status, 200)
            assert.deepEqual(
                errorLines().map((l) => [l.call, l.err?.message]),
                [["prune", "disk on fire"]],
                JSON.stringify(errorLines()),
            )
            const restore = ((other: Database.Database) => {
                other.exec("CREATE TRIGGER fail_feeds BEFORE INSERT ON feeds BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
                return () => (other.exec("DROP TRIGGER fail_feeds"), other.close())
            })(new Database(join(dataDir, "feedline.db")))
            let r
            try {
                r = await http(server, "POST", "/v2/feeds", { key: server.credentials.masterKey, body: { title: "on a full disk" } })
            } finally {
                restore()
            }
            assert.deepEqual([r.status, r.body.code], [503, "E_STORE_FAILED"])
            assert.equal((await http(server, "GET", "/v2/feeds", { key: server.credentials.masterKey })).status, 200)
            assert.deepEqual(
                errorLines().map((l) => l.call),
                ["prune", "createFeed"],
                JSON.stringify(errorLines()),
            )
        } finally {
            await server.close()
        }
    } finally {
        rmSync(dataDir, { recursive: true, force: true })
    }
})

// [P§6] A range deleted in chunks whose later chunk fails: the answer said nothing was done although the first
// chunks were deleted. 503 E_PARTLY_DELETED, `deleted` in the body, and the same DELETE again finishes it (both
// stores, and a feed's deletion: test/host/server/storage/chunked-delete.test.ts). Found by the audit of 2026-12-07.
test("a range deletion that fails after its first chunk: 503 E_PARTLY_DELETED with deleted; the same DELETE again deletes the rest", async () => {
    const feed = (await http(s, "POST", "/v2/feeds", { key: master, body: { title: "many points" } })).body.id
    const T0 = Date.UTC(2026, 11, 7)
    const count = PRUNE_CHUNK_ROWS + 500
    for (let from = 0; from < count; from += 400) {
        const datapoints = Array.from({ length: Math.min(400, count - from) }, (_, i) => ({ at: T0 + from + i, value: "1" }))
        const w = await http(s, "POST", `/v2/feeds/${feed}/datastreams/temp/datapoints`, { key: master, body: { datapoints } })
        assert.equal(w.status, 200, JSON.stringify(w.body))
    }
    const restore = failChangesOfStore(s.dataDir, "datapoints", "DELETE", `OLD.at_ms >= ${T0 + PRUNE_CHUNK_ROWS + 10}`) // the second chunk fails
    let r
    try {
        r = await http(s, "DELETE", `/v2/feeds/${feed}/datastreams/temp/datapoints?start=0`, { key: master })
    } finally {
        restore()
    }
    assert.deepEqual([r.status, r.body.code, r.body.deleted], [503, "E_PARTLY_DELETED", PRUNE_CHUNK_ROWS], JSON.stringify(r.body))
    assert.ok(r.body.retry_after_ms > 0, JSON.stringify(r.body))
    assert.match(r.body.errors, /Send the same deletion again/, JSON.stringify(r.body))
    assert.ok(!r.body.errors.includes("fire"), "the cause is logged, not sent")
    const again = await http(s, "DELETE", `/v2/feeds/${feed}/datastreams/temp/datapoints?start=0`, { key: master })
    assert.deepEqual([again.status, again.body], [200, { deleted: 500 }])
    assert.equal((await http(s, "GET", `/v2/feeds/${feed}/datastreams/temp`, { key: master })).body.current_value, undefined)
})
