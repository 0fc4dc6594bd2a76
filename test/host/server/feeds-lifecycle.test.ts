// [P§5, §8, §10] A feed's life and death: ids are never given out twice (not after a delete, not through an
// explicit "id" naming a deleted feed: 409 E_FEED_ID_RETIRED), deleting a feed ends its subscriptions with
// a final push on every door, and the keys scoped to it lose it (revoked when it was their only feed), so
// nothing of an old tenant reaches a new one. Stores from before keep the promise after their migration.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import Database from "better-sqlite3"
import { MIGRATIONS, SqliteStore } from "../../../devs/server/storage/sqlite.ts"
import { MAX_FEED_ID } from "../../../devs/server/limits.ts"
import { http, serverForThisFile, startTestServer, TlsClient, WsClient } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey

async function newFeed(title = "tenant"): Promise<number> {
    const r = await http(s, "POST", "/v2/feeds", { key: master, body: { title } })
    assert.equal(r.status, 201, JSON.stringify(r.body))
    return r.body.id
}

const deleteFeed = (id: number) => http(s, "DELETE", `/v2/feeds/${id}`, { key: master })

test("a deleted feed's id is never given out again: a new feed gets a higher one, an explicit id naming it is 409 on every door", async () => {
    const old = await newFeed("old tenant")
    const del = await deleteFeed(old)
    assert.equal(del.status, 200)
    const next = await newFeed("new tenant")
    assert.ok(next > old, `got ${next} after deleting ${old}`)
    assert.deepEqual([del.body.id, del.body.deleted], [old, true])

    const overHttp = await http(s, "POST", "/v2/feeds", { key: master, body: { id: old, title: "squatter" } })
    assert.deepEqual([overHttp.status, overHttp.body.code], [409, "E_FEED_ID_RETIRED"])
    assert.match(overHttp.body.errors, /never given out again/)
    const tls = await TlsClient.open(s, master)
    const ws = await WsClient.open(s)
    for (const [door, c] of [["tls", tls], ["ws", ws]] as const) {
        const r = await c.request({ method: "post", resource: "/feeds", headers: { "X-ApiKey": master }, body: { id: old } })
        assert.deepEqual([r.status, r.body.code], [409, "E_FEED_ID_RETIRED"], door)
    }
    // an id in use is still the plain conflict, and an unused explicit id still works
    const taken = await tls.request({ method: "post", resource: "/feeds", body: { id: next } })
    assert.deepEqual([taken.status, taken.body.code], [422, "E_CONFLICT"])
    assert.equal((await http(s, "GET", `/v2/feeds/${old}`, { key: master })).status, 404)
    tls.close()
    ws.close()
})

test("the keys scoped to a deleted feed lose it: scoped to it alone they are revoked (and their tokens end), otherwise it leaves their list", async () => {
    const feed = await newFeed()
    const other = await newFeed()
    const only = await s.keys.create({ label: "only", permissions: ["read", "update"], feeds: [feed] })
    const both = await s.keys.create({ label: "both", permissions: ["read"], feeds: [feed, other] })
    const token = (await http(s, "POST", "/jwt", { key: only.secret })).body.token
    assert.equal((await http(s, "GET", `/v2/feeds/${feed}`, { key: only.secret })).status, 200)

    const del = await deleteFeed(feed)
    const gone = await http(s, "GET", "/v2/feeds", { key: only.secret })
    assert.deepEqual([gone.status, gone.body.code], [401, "E_UNAUTHORIZED"])
    assert.equal((await http(s, "GET", "/v2/feeds", { headers: { authorization: `Bearer ${token}` } })).status, 401)
    assert.equal((await http(s, "GET", `/v2/feeds/${feed}`, { key: both.secret })).status, 403)
    assert.equal((await http(s, "GET", `/v2/feeds/${other}`, { key: both.secret })).status, 200)
    assert.deepEqual([del.body.revoked_keys, del.body.detached_keys], [[only.record.id], [both.record.id]])
    const keys = new Map<string, any>((await http(s, "GET", "/v2/keys", { key: master })).body.keys.map((k: any) => [k.id, k]))
    assert.ok(keys.get(only.record.id).revoked, "shown as revoked")
    assert.deepEqual(keys.get(both.record.id).feeds, [other])
    // the old tenant's key grants nothing of the feeds made after
    const later = await newFeed()
    assert.notEqual(later, feed)
    assert.equal((await http(s, "GET", `/v2/feeds/${later}`, { key: both.secret })).status, 403)
})

test("deleting a feed ends its subscriptions with the deletion and a final 404 push, on TLS, WebSocket and JWT WebSocket", async () => {
    const feed = await newFeed()
    const reader = await s.keys.create({ permissions: ["read"], feeds: [feed] })
    const token = (await http(s, "POST", "/jwt", { key: reader.secret })).body.token
    const tls = await TlsClient.open(s, master)
    const ws = await WsClient.open(s)
    const wsJwt = await WsClient.open(s)
    const subs = [
        { door: "tls", c: tls, key: master, resource: `/feeds/${feed}` },
        { door: "ws", c: ws, key: reader.secret, resource: `/feeds/${feed}/datastreams/t` },
        { door: "ws+jwt", c: wsJwt, key: `Bearer ${token}`, resource: `/feeds/${feed}` },
    ]
    for (const { door, c, key, resource } of subs) {
        const ack = await c.request({ method: "subscribe", resource, headers: { "X-ApiKey": key }, token: "f" })
        assert.equal(ack.status, 200, `${door}: ${JSON.stringify(ack)}`)
    }
    assert.equal((await deleteFeed(feed)).status, 200)
    for (const { door, c, resource } of subs) {
        const deleted = await c.push("f")
        assert.deepEqual([deleted.status, deleted.resource, deleted.body], [200, `/feeds/${feed}`, { id: feed, deleted: true }], door)
        const final = await c.push("f")
        assert.deepEqual([final.status, final.resource, final.body.code], [404, resource, "E_FEED_DELETED"], door)
        assert.match(final.body.errors, new RegExp(`feed ${feed} was deleted`), door)
    }
    // the connections stay open; the subscriptions are gone
    const session = await tls.request({ method: "get", resource: "/session" })
    assert.deepEqual(session.body.subscriptions, [])
    assert.equal(s.metrics.subscriptions.get(), 0)
    tls.close()
    ws.close()
    wsJwt.close()
})

test("migration: a store from before never gives out an id above its feeds or one its keys name", async () => {
    const dir = mkdtempSync(join(tmpdir(), "feedline-feed-ids-"))
    try {
        const path = join(dir, "feedline.db")
        // the first schema, as shipped: feed 3 was deleted, so SQLite alone would give 3 out again
        const db = new Database(path)
        db.exec(MIGRATIONS[0])
        db.pragma("user_version = 1")
        for (const id of [1, 2]) db.prepare("INSERT INTO feeds (id, title, created_ms, updated_ms) VALUES (?, '', 0, 0)").run(id)
        db.prepare("INSERT INTO api_keys VALUES ('k3', ?, 'old tenant', '[\"read\"]', '[3]', 0, 0, NULL)").run(Buffer.alloc(32, 3))
        db.prepare("INSERT INTO api_keys VALUES ('k7', ?, 'planned', '[\"read\"]', '[7,2]', 0, 0, NULL)").run(Buffer.alloc(32, 7))
        db.close()
        const store = new SqliteStore({ path, synchronous: "NORMAL" })
        try {
            assert.equal((await store.createFeed({})).id, 8)
            assert.equal((await store.createFeed({ id: 7 })).id, 7, "a feed a key was made for can still be made by its id")
        } finally {
            await store.close()
        }
    } finally {
        rmSync(dir, { recursive: true, force: true })
    }
})

test("a feed id above MAX_FEED_ID, as a new feed's id or a new key's feed, is refused: later feeds still get ids (was: one request naming 2^53 - 1 left none, for any feed or claim, for ever)", async () => {
    // a server of its own: on the old code this request would have used up every id of the file's server
    const own = await startTestServer()
    try {
        const key = own.credentials.masterKey
        for (const id of [MAX_FEED_ID + 1, Number.MAX_SAFE_INTEGER]) {
            const feed = await http(own, "POST", "/v2/feeds", { key, body: { title: "squatter", id } })
            assert.deepEqual([feed.status, feed.body.code], [422, "E_BAD_ID"], JSON.stringify(feed.body))
            const k = await http(own, "POST", "/v2/keys", { key, body: { permissions: ["read"], feeds: [id] } })
            assert.deepEqual([k.status, k.body.code], [422, "E_BAD_VALUE"], JSON.stringify(k.body))
        }
        const highest = await http(own, "POST", "/v2/feeds", { key, body: { title: "at the limit", id: MAX_FEED_ID } })
        assert.equal(highest.status, 201, JSON.stringify(highest.body))
        const next = await http(own, "POST", "/v2/feeds", { key, body: { title: "next" } })
        assert.equal(next.status, 201, JSON.stringify(next.body))
        assert.ok(next.body.id > MAX_FEED_ID)
    } finally {
        await own.stop()
    }
})
