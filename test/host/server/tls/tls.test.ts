// The device port over real TLS on 127.0.0.1: the documentation's example, stored values, keep-alive,
// bad input, limits, idempotency, history, permissions and revocation.
import assert from "node:assert/strict"
import { before, test } from "node:test"
import net from "node:net"
import tls from "node:tls"
import { REQUEST_VECTORS } from "../../../vectors/envelope.ts"
import { encodeRequest } from "../../../../src/protocol.ts"
import { http, serverForThisFile, startTestServer, TlsClient } from "../../harness/server-harness.ts"

// the seed's keep-alive contract (300 / 1000 / 3000 ms), as in the documentation's welcome; the device
// doors' default profile is keepalive.test.ts's
const s = await serverForThisFile({ keepaliveProfile: "seed" })
const T0 = Date.UTC(2026, 10, 22, 5) // the history tests' clock origin

before(async () => {
    // the documentation's key and feed
    await s.store.createFeed({ id: 504, title: "xively example" })
    await s.keys.create({ secret: "abcdef123456", permissions: ["read", "update"], feeds: [504] })
})

test("tls: the documentation's multi-line example, exactly as printed, is acknowledged exactly as printed", async () => {
    const c = await TlsClient.connect(s)
    const welcome = await c.welcome()
    assert.equal(welcome.welcome!.heartbeat, 300)
    assert.equal(welcome.welcome!.timeout, 3000)
    assert.ok(Math.abs(welcome.welcome!.time - Date.now()) < 60_000)
    c.socket.write(REQUEST_VECTORS[0].input) // pretty-printed, no trailing newline
    const ack = await c.response("0x12345")
    assert.equal(ack.raw, '{"token":"0x12345","status":200,"resource":"/feeds/504"}')

    const got = await c.request({ method: "get", resource: "/feeds/504" }) // key remembered for the connection
    assert.equal(got.status, 200)
    const values = Object.fromEntries(got.body.datastreams.map((d: any) => [d.id, d.current_value]))
    assert.deepEqual(values, { "0": "980", "1": "-261" })
    assert.equal(got.body.id, 504)
    assert.match(got.body.datastreams[0].at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    c.close()
})

test("tls: TLS 1.2 is accepted (ESP32), older versions are not, and the certificate names 127.0.0.1", async () => {
    const c = await TlsClient.connect(s, { maxVersion: "TLSv1.2" })
    assert.equal(c.socket.getProtocol(), "TLSv1.2")
    await c.welcome()
    c.close()
    await assert.rejects(
        new Promise<unknown>((resolve, reject) => {
            // SECLEVEL=0 lets this client offer TLS 1.1; the server must refuse it
            const opts = { host: "127.0.0.1", port: s.devicePort, ca: s.ca, maxVersion: "TLSv1.1", minVersion: "TLSv1", ciphers: "DEFAULT@SECLEVEL=0" } as const
            const sock = tls.connect(opts, () => resolve(sock))
            sock.on("error", reject)
        }),
    )
})

test("tls: a client that renegotiates (TLS 1.2) is closed at its first attempt; others are served (was: 50 renegotiations in a row, each a full handshake for the server)", async () => {
    const c = await TlsClient.open(s, s.credentials.deviceKey)
    const other = await TlsClient.open(s, s.credentials.deviceKey)
    try {
        const r = await TlsClient.connect(s, { maxVersion: "TLSv1.2" })
        await r.welcome()
        let renegotiated = 0
        for (let i = 0; i < 50 && !r.q.closed; ++i) {
            await new Promise<void>((done) => {
                const onClose = () => done()
                r.socket.once("close", onClose)
                r.socket.renegotiate({}, (err) => {
                    r.socket.off("close", onClose)
                    if (!err) renegotiated++
                    done()
                })
            })
        }
        await r.q.untilClosed()
        assert.equal(renegotiated, 0)
        assert.equal((await other.request({ method: "get", resource: "/session" })).status, 200)
    } finally {
        c.close()
        other.close()
    }
})

test("tls: server heartbeats are blank lines, about every 300 ms", async () => {
    const c = await TlsClient.open(s)
    await c.q.next((l) => l.kind === "heartbeat")
    await c.q.next((l) => l.kind === "heartbeat")
    c.close()
})

test("tls: a silent connection is closed after the timeout with notice 408", async () => {
    const quick = await startTestServer({ heartbeatMs: 50, timeoutMs: 200 })
    try {
        const c = await TlsClient.connect(quick, { heartbeat: false })
        assert.equal((await c.welcome()).welcome!.timeout, 200)
        const notice = await c.notice()
        assert.equal(notice.status, 408)
        assert.equal(notice.body.code, "E_IDLE_TIMEOUT")
        await c.q.untilClosed()
    } finally {
        await quick.stop()
    }
})

test("tls: malformed requests get a 4xx with a reason and the connection stays usable", async () => {
    const c = await TlsClient.open(s, "abcdef123456")
    c.sendRaw("hello")
    const junk = await c.response("")
    assert.equal(junk.response!.body.code, "E_BAD_JSON")
    const cases: [string, string, number][] = [
        ['{"resource":"/feeds/504","token":"a"}', "E_NO_METHOD", 400],
        ['{"method":"fetch","resource":"/feeds/504","token":"b"}', "E_BAD_METHOD", 405],
        ['{"method":"get","resource":"/feeds/../etc","token":"c"}', "E_BAD_RESOURCE", 400],
        ['{"method":"get","resource":"/nothing","token":"d"}', "E_NOT_FOUND", 404],
        ['{"method":"put","resource":"/feeds/504","body":[1],"token":"e"}', "E_BAD_BODY", 400],
        ['{"method":"put","resource":"/feeds/504","body":{"datastreams":[{"id":"a b","current_value":"1"}]},"token":"f"}', "E_BAD_ID", 422],
        ['{"method":"put","resource":"/feeds/504","body":{"datastreams":[{"id":"x","current_value":{"a":1}}]},"token":"g"}', "E_BAD_VALUE", 422],
        ['{"method":"put","resource":"/feeds/504","body":{"datastreams":[{"id":"x","current_value":"1","at":5}]},"token":"h"}', "E_BAD_TIME", 422],
        ['{"method":"patch","resource":"/feeds/504","token":"i"}', "E_BAD_METHOD", 405],
        ['{"method":"post","resource":"/feeds/504","token":"j"}', "E_NOT_ALLOWED", 405],
        ['{"method":"get","resource":"/feeds/abc","token":"k"}', "E_BAD_ID", 422],
    ]
    for (const [raw, code, status] of cases) {
        c.sendRaw(raw)
        const token = JSON.parse(raw).token
        const r = (await c.response(token)).response!
        assert.equal(r.body.code, code, raw)
        assert.equal(r.status, status, raw)
        assert.ok(r.body.errors.length > 10, "a reason a person can act on")
    }
    // a sample time more than a day ahead of the server's clock is a clock gone wrong: refused, nothing stored
    const ahead = await c.request({ method: "put", resource: "/feeds/504", body: { datastreams: [{ id: "ahead", datapoints: [{ at: Date.now() + 25 * 3600_000, value: "1" }] }] } })
    assert.deepEqual([ahead.status, ahead.body.code], [422, "E_BAD_TIME"])
    assert.equal((await c.request({ method: "get", resource: "/feeds/504/datastreams/ahead" })).status, 404)
    const dayAhead = await c.request({ method: "put", resource: "/feeds/504", body: { datastreams: [{ id: "ahead", datapoints: [{ at: Date.now() + 23 * 3600_000, value: "1" }] }] } })
    assert.equal(dayAhead.status, 200, "less than a day ahead is a sample")
    // a bad point anywhere refuses the whole write: nothing half-written
    const mixed = await c.request({ method: "put", resource: "/feeds/504", body: { datastreams: [{ id: "ok", current_value: "1" }, { id: "bad", current_value: "x".repeat(33) }] } })
    assert.equal(mixed.status, 422)
    assert.equal((await c.request({ method: "get", resource: "/feeds/504/datastreams/ok" })).status, 404)
    assert.equal((await c.request({ method: "get", resource: "/feeds/504" })).status, 200)
    c.close()
})

test("tls: an object over 16384 bytes gets notice 413 and the connection is closed", async () => {
    const c = await TlsClient.open(s)
    c.socket.write(`{"method":"put","resource":"/feeds/504","body":{"pad":"${"x".repeat(17000)}"}}`)
    const notice = await c.notice()
    assert.equal(notice.status, 413)
    assert.equal(notice.body.code, "E_TOO_LARGE")
    await c.q.untilClosed()
})

test("tls: writes are idempotent on (feed, datastream, at) and the later value wins", async () => {
    const c = await TlsClient.open(s, "abcdef123456")
    const batch = { datastreams: [{ id: "idem", datapoints: [{ at: T0, value: "1" }, { at: T0 + 1000, value: "2" }] }] }
    for (let i = 0; i < 3; ++i) assert.equal((await c.request({ method: "put", resource: "/feeds/504", body: batch })).status, 200)
    await c.request({ method: "put", resource: "/feeds/504/datastreams/idem", body: { current_value: "2b", at: new Date(T0 + 1000).toISOString() } })
    const h = await c.request({ method: "get", resource: "/feeds/504/datastreams/idem/datapoints", params: { start: T0, end: T0 + 5000 } })
    assert.deepEqual(h.body.datapoints, [
        { at: new Date(T0).toISOString(), value: "1" },
        { at: new Date(T0 + 1000).toISOString(), value: "2b" },
    ])
    const ds = await c.request({ method: "get", resource: "/feeds/504/datastreams/idem" })
    assert.equal(ds.body.current_value, "2b")
    // min/max over numeric values only ("2b" is not a number)
    assert.deepEqual([ds.body.min_value, ds.body.max_value], ["1", "2"])
    c.close()
})

test("tls: points written without `at` get their own stamps (strictly increasing per datastream): none replaces another", async () => {
    const c = await TlsClient.open(s, "abcdef123456")
    const startMs = Date.now()
    // pipelined in one send: handled in one turn, so (almost always) in one millisecond
    const values = ["a", "b", "c", "d"]
    const tokens = values.map((v, i) => `st${i}`)
    c.sendRaw(values.map((v, i) => encodeRequest({ method: "put", resource: "/feeds/504/datastreams/stamped", body: { current_value: v }, token: tokens[i] })).join(""))
    for (const t of tokens) assert.equal((await c.push(t)).status, 200)
    // over HTTP at once, and two points without `at` in one body
    const viaHttp = await Promise.all(["e", "f"].map((v) => http(s, "PUT", "/v2/feeds/504/datastreams/stamped", { key: "abcdef123456", body: { current_value: v } })))
    assert.deepEqual(viaHttp.map((r) => r.status), [200, 200])
    const batch = await c.request({ method: "post", resource: "/feeds/504/datastreams/stamped/datapoints", body: { datapoints: [{ value: "g" }, { value: "h" }] } })
    assert.equal(batch.status, 200)
    const h = await c.request({ method: "get", resource: "/feeds/504/datastreams/stamped/datapoints", params: { start: startMs - 1, limit: 100 } })
    const rows: { at: string; value: string }[] = h.body.datapoints
    assert.deepEqual(rows.map((p) => p.value).sort(), ["a", "b", "c", "d", "e", "f", "g", "h"])
    assert.deepEqual(rows.slice(0, 4).map((p) => p.value), ["a", "b", "c", "d"], "one connection's writes keep their order")
    const ats = rows.map((p) => Date.parse(p.at))
    assert.equal(new Set(ats).size, ats.length, "every stamp is its own identity")
    assert.ok(ats[0] >= startMs && ats.at(-1)! <= Date.now() + ats.length, "stamps are the server's time (ahead only by as many as shared a millisecond)")
    c.close()
})

test("tls: history with start/end/duration/interval/limit", async () => {
    const c = await TlsClient.open(s, "abcdef123456")
    // 120 points, one every 10 s, starting at T0
    const datapoints = Array.from({ length: 120 }, (_, i) => ({ at: T0 + i * 10_000, value: String(i) }))
    for (let i = 0; i < 120; i += 60) {
        const r = await c.request({ method: "post", resource: "/feeds/504/datastreams/h/datapoints", body: { datapoints: datapoints.slice(i, i + 60) } })
        assert.equal(r.status, 200)
    }
    const get = async (params: Record<string, string | number>) =>
        (await c.request({ method: "get", resource: "/feeds/504/datastreams/h/datapoints", params })).body.datapoints.map((p: any) => p.value)
    const start = new Date(T0).toISOString()
    assert.deepEqual(await get({ start, duration: "30seconds" }), ["0", "1", "2", "3"]) // both ends inclusive
    assert.deepEqual(await get({ start, duration: "10minutes", interval: 60, limit: 4 }), ["0", "6", "12", "18"])
    assert.deepEqual(await get({ start, end: T0 + 50_000, limit: 2 }), ["0", "1"])
    assert.deepEqual(await get({ end: T0 + 50_000, limit: 2 }), ["4", "5"]) // without start: the newest of the range
    assert.equal((await get({ start, duration: "1hours", limit: 1000 })).length, 120)
    assert.equal((await get({})).length, 100) // default limit
    const over = await c.request({ method: "get", resource: "/feeds/504/datastreams/h/datapoints", params: { limit: 1001 } })
    assert.deepEqual([over.status, over.body.code], [422, "E_LIMIT"])
    // the datastream with history parameters carries its datapoints too
    const ds = await c.request({ method: "get", resource: "/feeds/504/datastreams/h", params: { start, duration: "15seconds" } })
    assert.deepEqual(ds.body.datapoints.map((p: any) => p.value), ["0", "1"])
    // delete a range; the current value falls back to the newest left
    const del = await c.request({ method: "delete", resource: "/feeds/504/datastreams/h/datapoints", params: { start: T0 + 1_000_000, end: T0 + 2_000_000 } })
    assert.equal(del.status, 403) // a device key (read + update) may not delete
    const master = await TlsClient.open(s, s.credentials.masterKey)
    const del2 = await master.request({ method: "delete", resource: "/feeds/504/datastreams/h/datapoints", params: { start: T0 + 1_000_000, end: T0 + 2_000_000 } })
    assert.deepEqual(del2.body, { deleted: 20 })
    assert.equal((await master.request({ method: "get", resource: "/feeds/504/datastreams/h" })).body.current_value, "99")
    c.close()
    master.close()
})

test("tls: permissions: a feed key cannot touch another feed, a read key cannot write, 403 reveals nothing", async () => {
    const other = await s.store.createFeed({ title: "other" })
    const readKey = await s.keys.create({ permissions: ["read"], feeds: [504] })
    const c = await TlsClient.open(s, "abcdef123456")
    for (const feed of [other.id, 999_999]) {
        // existing or not: the same 403, so a key cannot probe which feeds exist
        const r = await c.request({ method: "get", resource: `/feeds/${feed}` })
        assert.equal(r.status, 403)
        assert.equal(r.body.code, "E_FORBIDDEN")
        assert.equal((await c.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "x", current_value: 1 }] } })).status, 403)
    }
    const listed = await c.request({ method: "get", resource: "/feeds" })
    assert.deepEqual(listed.body.results.map((f: any) => f.id), [504])
    const r = await TlsClient.open(s, readKey.secret)
    assert.equal((await r.request({ method: "get", resource: "/feeds/504" })).status, 200)
    const w = await r.request({ method: "put", resource: "/feeds/504", body: { datastreams: [{ id: "x", current_value: 1 }] } })
    assert.deepEqual([w.status, w.body.code], [403, "E_FORBIDDEN"])
    assert.equal((await r.request({ method: "get", resource: "/keys" })).status, 403)
    // no key at all
    const anon = await TlsClient.open(s)
    const a = await anon.request({ method: "get", resource: "/feeds/504" })
    assert.deepEqual([a.status, a.body.code], [401, "E_UNAUTHORIZED"])
    for (const x of [c, r, anon]) x.close()
})

test("tls: revoking a key takes effect at once on a connection that remembered it", async () => {
    const key = await s.keys.create({ permissions: ["read", "update"], feeds: [504] })
    const device = await TlsClient.open(s, key.secret)
    assert.equal((await device.request({ method: "get", resource: "/feeds/504" })).status, 200)
    const admin = await TlsClient.open(s, s.credentials.masterKey)
    assert.equal((await admin.request({ method: "delete", resource: `/keys/${key.record.id}` })).status, 200)
    const after = await device.request({ method: "get", resource: "/feeds/504" })
    assert.deepEqual([after.status, after.body.code], [401, "E_UNAUTHORIZED"])
    device.close()
    admin.close()
})

test("tls: a key named in a request is used for that request; the remembered one stays", async () => {
    const c = await TlsClient.open(s, "abcdef123456")
    const asMaster = await c.request({ method: "get", resource: "/keys", headers: { "X-ApiKey": s.credentials.masterKey } })
    assert.equal(asMaster.status, 200)
    assert.ok(!JSON.stringify(asMaster.body).includes("abcdef123456"), "keys are never listed")
    assert.equal((await c.request({ method: "get", resource: "/keys" })).status, 403) // still the device key
    const session = await c.request({ method: "get", resource: "/session" })
    assert.equal(session.body.transport, "tls")
    assert.equal(session.body.remote_address.replace("::ffff:", ""), "127.0.0.1")
    assert.ok(session.body.requests >= 3)
    c.close()
})

test("tls: over the rate limit a request gets 429 with retry_after_ms, and later ones pass again", async () => {
    const limited = await startTestServer({ ratePerSecond: 5, rateBurst: 5 })
    try {
        const c = await TlsClient.open(limited, limited.credentials.deviceKey) // 1 token
        for (let i = 0; i < 8; ++i) c.sendRaw(JSON.stringify({ method: "get", resource: "/feeds/1", token: `r${i}` }))
        const statuses = []
        for (let i = 0; i < 8; ++i) statuses.push((await c.response(`r${i}`)).response!)
        const refused = statuses.filter((r) => r.status === 429)
        assert.ok(refused.length >= 3, `some refused: ${statuses.map((r) => r.status)}`)
        assert.equal(refused[0].body.code, "E_RATE_LIMITED")
        assert.ok(refused[0].body.retry_after_ms > 0)
        await new Promise((r) => setTimeout(r, refused[0].body.retry_after_ms + 50))
        assert.equal((await c.request({ method: "get", resource: "/feeds/1" })).status, 200)
        c.close()
    } finally {
        await limited.stop()
    }
})

test("tls: over the connection limit a client gets notice 429 with a retry hint, then is closed", async () => {
    const small = await startTestServer({ maxConnections: 2 })
    try {
        const a = await TlsClient.open(small)
        const b = await TlsClient.open(small)
        const c = await TlsClient.connect(small)
        const notice = await c.notice()
        assert.deepEqual([notice.status, notice.body.code], [429, "E_TOO_MANY_CONNECTIONS"])
        assert.ok(notice.body.retry_after_ms >= 1000)
        await c.q.untilClosed()
        a.close()
        b.close()
    } finally {
        await small.stop()
    }
})

test("tls: repeated bad keys from one address are limited (429 E_AUTH_RATE_LIMITED); a key proven from that address still gets in", async () => {
    await s.keys.create({ secret: "unseen-good-key-0001", permissions: ["read"], feeds: [504] })
    const device = await TlsClient.open(s, "abcdef123456")
    const c = await TlsClient.open(s)
    const codes = []
    for (let i = 0; i < 12; ++i) codes.push((await c.request({ method: "get", resource: "/feeds/504", headers: { "X-ApiKey": `wrong-key-${i}-xxxx` } })).body.code)
    assert.equal(codes[0], "E_UNAUTHORIZED")
    assert.equal(codes.at(-1), "E_AUTH_RATE_LIMITED")
    // a new connection from the same address cannot try a wrong key, nor a good key never proven from this address ...
    const fresh = await TlsClient.open(s)
    for (const key of ["wrong-key-12-xxxx", "unseen-good-key-0001"]) {
        const refused = await fresh.request({ method: "get", resource: "/feeds/504", headers: { "X-ApiKey": key } })
        assert.deepEqual([refused.status, refused.body.code], [429, "E_AUTH_RATE_LIMITED"], key)
    }
    // ... but a connection whose key was accepted before goes on working
    assert.equal((await device.request({ method: "get", resource: "/feeds/504" })).status, 200)
    // ... and so does that key on a new connection (the device reconnecting, or its neighbour behind the same NAT)
    device.close()
    await device.q.untilClosed()
    const reconnected = await TlsClient.open(s)
    assert.equal((await reconnected.request({ method: "get", resource: "/feeds/504", headers: { "X-ApiKey": "abcdef123456" } })).status, 200)
    // the lockout still holds for the others
    const wrongAgain = await fresh.request({ method: "get", resource: "/feeds/504", headers: { "X-ApiKey": "wrong-key-13-xxxx" } })
    assert.equal(wrongAgain.body.code, "E_AUTH_RATE_LIMITED")
    c.close()
    fresh.close()
    reconnected.close()
})

test("tls: a handshake that stalls (silent or dripping) is closed by the handshake timeout", async () => {
    const quick = await startTestServer({ handshakeTimeoutMs: 200 })
    try {
        const closed = (sock: net.Socket) => new Promise<void>((resolve) => sock.on("close", () => resolve()).on("error", () => {}))
        const silent = net.connect(quick.devicePort, "127.0.0.1")
        const dripping = net.connect(quick.devicePort, "127.0.0.1")
        // a ClientHello header, one byte at a time: never a whole record
        const hello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])
        let i = 0
        const drip = setInterval(() => i < hello.length && dripping.write(hello.subarray(i, ++i)), 20)
        await Promise.all([closed(silent), closed(dripping)])
        clearInterval(drip)
        // and the port still serves
        const c = await TlsClient.open(quick)
        c.close()
    } finally {
        await quick.stop()
    }
})

test("tls: a client that speaks before the welcome still reads the welcome first", async () => {
    for (let i = 0; i < 3; ++i) {
        const c = await TlsClient.connect(s, { heartbeat: false })
        c.sendRaw('{"method":"get","resource":"/session","headers":{"X-ApiKey":"abcdef123456"},"token":"early"}')
        c.sendRaw("junk") // even an immediate error response comes after it
        await c.response("early")
        assert.equal(c.q.lines[0].kind, "welcome")
        c.close()
    }
})
