// [P§8] A subscription ends on the server's side only with a final push. Subscribing again with its token
// (a renewal) that is refused left it ended without a word: a renewal naming a feed that does not exist (404)
// dropped the live subscription it named, and one whose replay could not be read (503 E_STORE_FAILED, a full
// disk) did too. Now a 404 renewal leaves the subscription going on, and a failed replay ends it with a final push.
import assert from "node:assert/strict"
import { join } from "node:path"
import { test, type TestContext } from "node:test"
import Database from "better-sqlite3"
import { http, serverForThisFile, WsClient } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey

const write = async (feed: number, value: string) => {
    const r = await http(s, "PUT", `/v2/feeds/${feed}`, { key: master, body: { datastreams: [{ id: "v", current_value: value }] } })
    assert.ok(r.status < 300, JSON.stringify(r.body))
}

/** A new feed and a WebSocket holding a live subscription to it with token "s". */
async function subscribed(t: TestContext, title: string) {
    const feed = (await http(s, "POST", "/v2/feeds", { key: master, body: { title } })).body.id as number
    const ws = await WsClient.open(s)
    t.after(() => ws.close())
    await ws.welcome()
    assert.equal((await ws.request({ method: "subscribe", resource: `/feeds/${feed}`, headers: { "X-ApiKey": master }, token: "s" })).status, 200)
    return { feed, ws }
}

test("a renewal naming a feed that does not exist is refused 404 and the subscription it named goes on", async (t) => {
    const { feed, ws } = await subscribed(t, "renewed")
    const refused = await ws.request({ method: "subscribe", resource: "/feeds/2000000000", token: "s" })
    assert.deepEqual([refused.status, refused.body.code], [404, "E_NOT_FOUND"])
    await write(feed, "after")
    const push = await ws.push("s")
    assert.deepEqual([push.status, push.body.current_value], [200, "after"], JSON.stringify(push))
})

test("a renewal whose replay cannot be read ends the subscription it named with a final push", async (t) => {
    const { feed, ws } = await subscribed(t, "full disk")
    await write(feed, "1")
    assert.equal((await ws.push("s")).body.current_value, "1")
    // a point in the journal, and moving it into the tables (the replay's first step) fails as on a full disk
    await write(feed, "2")
    assert.equal((await ws.push("s")).body.current_value, "2")
    const other = new Database(join(s.dataDir, "feedline.db"))
    other.exec("CREATE TRIGGER fail_feeds_update BEFORE UPDATE ON feeds BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    let lines: { status: number; body?: any }[]
    try {
        ws.sendRaw(JSON.stringify({ method: "subscribe", resource: `/feeds/${feed}`, params: { since: 0 }, token: "s" }))
        // its final push and the refusal, both with the token: either order
        lines = [await ws.push("s"), await ws.push("s")]
    } finally {
        other.exec("DROP TRIGGER fail_feeds_update")
        other.close()
    }
    const final = lines.find((l) => l.body?.title === "Subscription ended")
    assert.ok(final, `no final push: ${JSON.stringify(lines)}`)
    assert.deepEqual([final.status, final.body.code], [503, "E_STORE_FAILED"])
    assert.match(final.body.errors, /subscribe again with after .*, or since/)
    assert.ok(lines.some((l) => l !== final && l.status === 503), JSON.stringify(lines))
})
