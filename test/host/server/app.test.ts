// The app port: HTTP REST (/v2) and WebSocket (/ws) reach the same data through the same router and
// keys as the device port; /healthz, /metrics, and the hooks the dashboard plugs into.
import assert from "node:assert/strict"
import { test } from "node:test"
import { MAX_OBJECT_BYTES } from "../../../src/protocol.ts"
import { http, serverForThisFile, TlsClient, WsClient } from "../harness/server-harness.ts"

const s = await serverForThisFile({
    // the dashboard's hooks: a bearer-token verifier and an extra route
    verifyBearer: async (token) => (token === "good-jwt" ? { keyId: "jwt:test", permissions: ["read"], feeds: [1], master: false } : undefined),
    httpHandlers: [
        (req, res) => {
            if (req.url !== "/hello") return false
            res.end("hi")
            return true
        },
    ],
})

test("app: write over TLS, read over HTTP, subscribe over WebSocket and receive the push", async () => {
    const key = s.credentials.deviceKey
    const ws = await WsClient.open(s)
    const welcome = await ws.welcome()
    assert.equal(welcome.welcome!.heartbeat, 300)
    const ack = await ws.request({ method: "subscribe", resource: "/feeds/1/datastreams/temp", headers: { "X-ApiKey": key }, token: "w" })
    assert.equal(ack.status, 200)

    const device = await TlsClient.open(s, key)
    const put = await device.request({ method: "put", resource: "/feeds/1", body: { version: "1.0.0", datastreams: [{ id: "temp", current_value: "21.5" }] } })
    assert.equal(put.status, 200)

    const push = await ws.push("w")
    assert.equal(push.body.current_value, "21.5")
    assert.equal(push.resource, "/feeds/1/datastreams/temp")

    for (const path of ["/v2/feeds/1", "/v2/feeds/1.json"]) {
        const got = await http(s, "GET", path, { key })
        assert.equal(got.status, 200)
        assert.equal(got.body.datastreams.find((d: any) => d.id === "temp").current_value, "21.5")
        assert.equal(got.body.datastreams.find((d: any) => d.id === "temp").at, push.body.at)
    }
    // and the other way round: written over HTTP, read over TLS
    const hput = await http(s, "PUT", "/v2/feeds/1/datastreams/hum", { key, body: { current_value: 40 } })
    assert.equal(hput.status, 200)
    assert.equal((await device.request({ method: "get", resource: "/feeds/1/datastreams/hum" })).body.current_value, "40")
    ws.close()
    device.close()
})

test("app: HTTP maps errors to statuses with the same codes as the device port", async () => {
    const key = s.credentials.deviceKey
    const noKey = await http(s, "GET", "/v2/feeds/1")
    assert.deepEqual([noKey.status, noKey.body.code], [401, "E_UNAUTHORIZED"])
    assert.equal((await http(s, "GET", `/v2/feeds/1?key=${key}`)).status, 200)
    const badJson = await http(s, "PUT", "/v2/feeds/1", { key, body: "{nope" })
    assert.deepEqual([badJson.status, badJson.body.code], [400, "E_BAD_JSON"])
    const big = await http(s, "PUT", "/v2/feeds/1", { key, body: { pad: "x".repeat(MAX_OBJECT_BYTES) } })
    assert.deepEqual([big.status, big.body.code], [413, "E_TOO_LARGE"])
    const other = await http(s, "GET", "/v2/feeds/2", { key })
    assert.deepEqual([other.status, other.body.code], [403, "E_FORBIDDEN"])
    const method = await http(s, "PATCH", "/v2/feeds/1", { key })
    assert.deepEqual([method.status, method.body.code], [405, "E_BAD_METHOD"])
    const traversal = await http(s, "GET", "/v2/feeds/1%00/datastreams", { key })
    assert.deepEqual([traversal.status, traversal.body.code], [400, "E_BAD_RESOURCE"])
    const sub = await http(s, "GET", "/v2/session", { key })
    assert.equal(sub.body.transport, "http")
    assert.equal((await http(s, "GET", "/nowhere")).status, 404)
    const badLimit = await http(s, "GET", "/v2/feeds/1/datastreams/temp/datapoints?limit=5000", { key })
    assert.deepEqual([badLimit.status, badLimit.body.code], [422, "E_LIMIT"])
})

test("app: the master key creates feeds and keys over HTTP; revoked keys stop working", async () => {
    const master = s.credentials.masterKey
    const feed = await http(s, "POST", "/v2/feeds", { key: master, body: { title: "field 7" } })
    assert.equal(feed.status, 201)
    assert.equal(feed.headers.get("location"), `/v2/feeds/${feed.body.id}`)
    const created = await http(s, "POST", "/v2/keys", { key: master, body: { label: "field 7", permissions: ["read", "update"], feeds: [feed.body.id] } })
    assert.equal(created.status, 201)
    const key = created.body.key
    assert.equal((await http(s, "PUT", `/v2/feeds/${feed.body.id}`, { key, body: { datastreams: [{ id: "a", current_value: 1 }] } })).status, 200)
    assert.equal((await http(s, "GET", "/v2/feeds/1", { key })).status, 403)
    const list = await http(s, "GET", "/v2/keys", { key: master })
    assert.ok(list.body.keys.some((k: any) => k.id === created.body.id && k.label === "field 7"))
    assert.ok(!JSON.stringify(list.body).includes(key), "keys are never listed")
    assert.equal((await http(s, "GET", "/v2/keys", { key })).status, 403)
    assert.equal((await http(s, "DELETE", `/v2/keys/${created.body.id}`, { key: master })).status, 200)
    assert.equal((await http(s, "GET", `/v2/feeds/${feed.body.id}`, { key })).status, 401)
})

test("app: bearer tokens go through the verifier hook; extra HTTP handlers plug in", async () => {
    assert.equal((await http(s, "GET", "/v2/feeds/1", { headers: { authorization: "Bearer good-jwt" } })).status, 200)
    assert.equal((await http(s, "GET", "/v2/feeds/1", { key: "Bearer good-jwt" })).status, 200)
    assert.equal((await http(s, "PUT", "/v2/feeds/1", { key: "Bearer good-jwt", body: { title: "x" } })).status, 403)
    assert.equal((await http(s, "GET", "/v2/feeds/1", { key: "Bearer forged" })).status, 401)
    const res = await fetch(`http://127.0.0.1:${s.appPort}/hello`)
    assert.equal(await res.text(), "hi")
})

test("app: WebSocket heartbeats are empty messages; an over-size message gets notice 413 and a close", async () => {
    const ws = await WsClient.open(s)
    await ws.welcome()
    await ws.q.next((l) => l.kind === "heartbeat")
    ws.sendRaw(`{"method":"get","resource":"/feeds/1","body":"${"x".repeat(MAX_OBJECT_BYTES)}"}`)
    const notice = await ws.notice()
    assert.deepEqual([notice.status, notice.body.code], [413, "E_TOO_LARGE"])
    await ws.q.untilClosed()
})

test("app: /healthz and /metrics", async () => {
    const health = await http(s, "GET", "/healthz")
    assert.equal(health.status, 200)
    assert.equal(health.body.status, "ok")
    const metrics = await http(s, "GET", "/metrics")
    assert.equal(metrics.status, 200)
    assert.match(metrics.headers.get("content-type")!, /^text\/plain/)
    for (const name of [
        /feedline_connections_total\{transport="tls"\} \d+/,
        /feedline_connections_open\{transport="ws"\} \d+/,
        /feedline_requests_total\{method="put",status="200"\} \d+/,
        /feedline_pushes_total [1-9]\d*/,
        /feedline_queue_drops_total \d+/,
        /feedline_store_commit_seconds_count [1-9]\d*/,
        /feedline_store_commit_seconds_bucket\{le="\+Inf"\} \d+/,
    ]) {
        assert.match(metrics.body, name)
    }
    assert.ok(!metrics.body.includes(s.credentials.deviceKey))
})
