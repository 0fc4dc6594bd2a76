// [P§5] On one connection a read sees the writes sent before it: it waits until they are answered, and
// only for those (a write sent after it does not hold it up). Requests go out in one socket write, so
// the server has them all at once and only the session's ordering can keep the reads behind the writes.
import assert from "node:assert/strict"
import { test } from "node:test"
import { encodeRequest } from "../../../src/protocol.ts"
import { serverForThisFile, TlsClient } from "../harness/server-harness.ts"

test("read after write: a get sent right behind puts on the same connection sees them", async () => {
    const s = await serverForThisFile()
    const c = await TlsClient.open(s, s.credentials.deviceKey)
    try {
        const feed = s.credentials.feedId
        const at = Date.now()
        const put = (n: number) => encodeRequest({ method: "put", resource: `/feeds/${feed}`, token: `p${n}`, body: { datastreams: [{ id: "raw", datapoints: [{ at: at + n, value: String(n) }] }] } })
        const get = (n: number) => encodeRequest({ method: "get", resource: `/feeds/${feed}/datastreams/raw`, token: `g${n}` })
        // p1 g1 p2 p3 g2 in one chunk: g1 follows p1, g2 follows all three
        c.socket.write([put(1), get(1), put(2), put(3), get(2)].join("\n") + "\n")
        const g1 = (await c.response("g1")).response!
        const g2 = (await c.response("g2")).response!
        assert.equal(g1.status, 200, JSON.stringify(g1))
        assert.ok(["1", "2", "3"].includes(g1.body.current_value), `g1 saw ${JSON.stringify(g1.body)}`)
        assert.equal(g2.status, 200, JSON.stringify(g2))
        assert.equal(g2.body.current_value, "3")
        // the answers: each get after the puts it followed
        const order = c.q.lines.filter((l) => l.kind === "response").map((l) => l.response!.token)
        assert.ok(order.indexOf("g1") > order.indexOf("p1"), order.join(" "))
        for (const p of ["p1", "p2", "p3"]) assert.ok(order.indexOf("g2") > order.indexOf(p), order.join(" "))
    } finally {
        c.close()
    }
})

test("requests are taken in the order sent: a subscribe sent before a write gets that write's push, also behind a read that waits (was: missed, 20 of 20)", async () => {
    const s = await serverForThisFile()
    const c = await TlsClient.open(s, s.credentials.deviceKey)
    try {
        const feed = s.credentials.feedId
        const resource = `/feeds/${feed}/datastreams/order`
        const put = (token: string, v: string) => encodeRequest({ method: "put", resource, token, body: { current_value: v } })
        // the get waits for A; the subscribe for the get; B must not overtake the subscribe
        c.socket.write([put("A", "a"), encodeRequest({ method: "get", resource, token: "G" }), encodeRequest({ method: "subscribe", resource, token: "S" }), put("B", "b")].join("\n") + "\n")
        assert.equal((await c.response("B")).response!.status, 200)
        assert.equal((await c.response("S")).response!.status, 200)
        const push = (await c.response("S")).response!
        assert.equal(push.body.current_value, "b", JSON.stringify(push))
    } finally {
        c.close()
    }
})
