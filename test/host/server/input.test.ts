// Bad input on every door (TLS, WebSocket, HTTP), answered with a clear code and nothing stored
// (issue 11 items 8, 9, 10): invalid UTF-8 and lone surrogates (400 E_BAD_UTF8), nesting too deep
// (400 E_TOO_DEEP, one check on the text before anything recursive; an HTTP body 5000 levels deep
// used to answer 500), paths with `..`, `%2e%2e` or backslashes (400 E_BAD_RESOURCE; HTTP used to
// normalise them into another resource), and every 500 logged with its cause.
import assert from "node:assert/strict"
import httpModule from "node:http"
import net from "node:net"
import { PassThrough } from "node:stream"
import { test } from "node:test"
import { MAX_DEPTH } from "../../../src/protocol.ts"
import { http, serverForThisFile, startTestServer, streamDoors, TlsClient, WsClient } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const feed = s.credentials.feedId
const key = s.credentials.masterKey

/** An HTTP request with exactly these bytes as path and body (fetch would normalise the path and re-encode the body). */
function rawHttp(method: string, path: string, body?: Buffer): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
        const req = httpModule.request({ host: "127.0.0.1", port: s.appPort, method, path, headers: { "X-ApiKey": key, "content-type": "application/json" } }, (res) => {
            const parts: Buffer[] = []
            res.on("data", (c) => parts.push(c))
            res.on("end", () => {
                const text = Buffer.concat(parts).toString()
                resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined })
            })
        })
        req.on("error", reject)
        req.end(body)
    })
}

/** A request line as bytes: the envelope around `bodyBytes` (raw, not re-encoded). */
function envelopeBytes(resource: string, bodyBytes: Buffer, token: string): Buffer {
    return Buffer.concat([Buffer.from(`{"method":"put","resource":"${resource}","headers":{"X-ApiKey":"${key}"},"body":`), bodyBytes, Buffer.from(`,"token":"${token}"}`)])
}

async function stored(stream: string): Promise<number> {
    return (await http(s, "GET", `/v2/feeds/${feed}/datastreams/${stream}`, { key })).status
}

const INVALID_UTF8 = Buffer.concat([Buffer.from('{"current_value":"a'), Buffer.from([0xff]), Buffer.from('"}')])
/** a UTF-16 surrogate written as UTF-8 bytes (CESU-8): not UTF-8 */
const ENCODED_SURROGATE = Buffer.concat([Buffer.from('{"current_value":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])
const LONE_SURROGATE = Buffer.from('{"current_value":"x\\ud800"}')
const LONE_LOW_SURROGATE_KEY = Buffer.from('{"current_value":"1","\\udc00":1}')

test("UTF-8: invalid bytes and lone surrogates are refused with 400 E_BAD_UTF8 on the TLS door, with the token, nothing stored", async () => {
    const c = await TlsClient.open(s)
    try {
        for (const [i, body] of [INVALID_UTF8, ENCODED_SURROGATE, LONE_SURROGATE, LONE_LOW_SURROGATE_KEY].entries()) {
            const stream = `tls${i}`
            c.socket.write(Buffer.concat([envelopeBytes(`/feeds/${feed}/datastreams/${stream}`, body, `u${i}`), Buffer.from("\n")]))
            const r = (await c.response(`u${i}`)).response!
            assert.deepEqual([r.status, r.body.code], [400, "E_BAD_UTF8"], `case ${i}: ${JSON.stringify(r)}`)
            assert.equal(await stored(stream), 404, `case ${i}: nothing stored`)
        }
        // the connection goes on
        assert.equal((await c.request({ method: "get", resource: "/session", headers: { "X-ApiKey": key } })).status, 200)
    } finally {
        c.close()
    }
})

test("UTF-8: WebSocket binary frames that are not UTF-8, and lone surrogates in any frame, get 400 E_BAD_UTF8, nothing stored", async () => {
    const c = await WsClient.open(s)
    try {
        await c.welcome()
        const cases: [Buffer, boolean][] = [
            [INVALID_UTF8, true],
            [ENCODED_SURROGATE, true],
            [LONE_SURROGATE, false],
            [LONE_SURROGATE, true],
        ]
        for (const [i, [body, binary]] of cases.entries()) {
            const stream = `ws${i}`
            c.ws.send(envelopeBytes(`/feeds/${feed}/datastreams/${stream}`, body, `w${i}`), { binary })
            const r = (await c.response(`w${i}`)).response!
            assert.deepEqual([r.status, r.body.code], [400, "E_BAD_UTF8"], `case ${i}: ${JSON.stringify(r)}`)
            assert.equal(await stored(stream), 404, `case ${i}: nothing stored`)
        }
        // a valid binary frame is a request like any other
        c.ws.send(Buffer.from(JSON.stringify({ method: "put", resource: `/feeds/${feed}/datastreams/wsok`, headers: { "X-ApiKey": key }, body: { current_value: "é" }, token: "ok" })), { binary: true })
        assert.equal((await c.response("ok")).response!.status, 200)
        assert.equal((await http(s, "GET", `/v2/feeds/${feed}/datastreams/wsok`, { key })).body.current_value, "é")
    } finally {
        c.close()
    }
})

test("UTF-8: a WebSocket text frame that is not UTF-8 closes the connection with 1007 (RFC 6455), nothing stored", async () => {
    const c = await WsClient.open(s)
    await c.welcome()
    const closed = new Promise<number>((resolve) => c.ws.once("close", (code) => resolve(code)))
    c.ws.send(envelopeBytes(`/feeds/${feed}/datastreams/wstext`, INVALID_UTF8, "t"), { binary: false })
    assert.equal(await closed, 1007)
    assert.equal(await stored("wstext"), 404)
})

test("UTF-8: HTTP bodies and query parameters that are not UTF-8, and lone surrogates, get 400 E_BAD_UTF8, nothing stored", async () => {
    for (const [i, body] of [INVALID_UTF8, ENCODED_SURROGATE, LONE_SURROGATE, LONE_LOW_SURROGATE_KEY].entries()) {
        const r = await rawHttp("PUT", `/v2/feeds/${feed}/datastreams/http${i}`, body)
        assert.deepEqual([r.status, r.body.code], [400, "E_BAD_UTF8"], `case ${i}: ${JSON.stringify(r.body)}`)
        assert.ok(r.body.errors.length > 20, "a reason")
        assert.equal(await stored(`http${i}`), 404, `case ${i}: nothing stored`)
    }
    const q = await rawHttp("GET", `/v2/feeds/${feed}/datastreams/x/datapoints?duration=%ff`)
    assert.deepEqual([q.status, q.body.code], [400, "E_BAD_UTF8"])
})

/** `{"current_value":[[[…1…]]]}` nested `levels` deep in all */
function nestedBody(levels: number): string {
    return `{"current_value":${"[".repeat(levels - 1)}1${"]".repeat(levels - 1)}}`
}

test("depth: a body 5000 levels deep is 400 E_TOO_DEEP on every door (HTTP answered 500), nothing stored", async () => {
    const deep = nestedBody(5000)
    const h = await rawHttp("PUT", `/v2/feeds/${feed}/datastreams/deep`, Buffer.from(deep))
    assert.deepEqual([h.status, h.body.code], [400, "E_TOO_DEEP"], JSON.stringify(h.body))
    const { doors, close } = await streamDoors(s)
    try {
        for (const [door, c] of doors) {
            c.sendRaw(envelopeBytes(`/feeds/${feed}/datastreams/deep`, Buffer.from(deep), `d-${door}`).toString())
            const r = (await c.response(`d-${door}`)).response!
            assert.deepEqual([r.status, r.body.code], [400, "E_TOO_DEEP"], door)
        }
    } finally {
        close()
    }
    assert.equal(await stored("deep"), 404)
})

test("depth: the same limit on every door: a body MAX_DEPTH - 1 deep is read, one level more is refused", async () => {
    // the body sits one level inside the envelope, so the envelope is MAX_DEPTH deep at most
    const ok = nestedBody(MAX_DEPTH - 1)
    const over = nestedBody(MAX_DEPTH)
    const h = await rawHttp("PUT", `/v2/feeds/${feed}/datastreams/d7`, Buffer.from(ok))
    assert.equal(h.body.code, "E_BAD_VALUE", "read, then refused for its shape") // an array is no value
    assert.equal((await rawHttp("PUT", `/v2/feeds/${feed}/datastreams/d8`, Buffer.from(over))).body.code, "E_TOO_DEEP")
    const c = await TlsClient.open(s)
    try {
        c.sendRaw(envelopeBytes(`/feeds/${feed}/datastreams/d7`, Buffer.from(ok), "ok").toString())
        assert.equal((await c.response("ok")).response!.body.code, "E_BAD_VALUE")
        c.sendRaw(envelopeBytes(`/feeds/${feed}/datastreams/d8`, Buffer.from(over), "over").toString())
        assert.equal((await c.response("over")).response!.body.code, "E_TOO_DEEP")
    } finally {
        c.close()
    }
})

test("a 500 is logged with its cause", async () => {
    const logs = new PassThrough()
    let logged = ""
    logs.on("data", (d) => (logged += d))
    const t = await startTestServer({
        logLevel: "error",
        logDestination: logs,
        httpHandlers: [
            (req) => {
                if (req.url === "/explode") throw new Error("the cause, for the log")
                return false
            },
        ],
    })
    try {
        const r = await http(t, "GET", "/explode")
        assert.deepEqual([r.status, r.body.code], [500, "E_INTERNAL"])
        assert.ok(!JSON.stringify(r.body).includes("the cause"), "the answer reveals nothing internal")
        const line = logged.split("\n").find((l) => l.includes("the cause, for the log"))
        assert.ok(line, `logged: ${logged}`)
        assert.equal(JSON.parse(line).level, 50)
        assert.match(line, /"path":"\/explode"/)
    } finally {
        await t.stop()
    }
})

const TRICKY_PATHS = ["/feeds/1/../2", "/feeds/%2e%2e/keys", "/feeds/%2E%2E", "/feeds/1/datastreams/.%2e", "/feeds\\1", "/feeds/1\\..\\..\\keys", "/feeds/./1"]

test("paths: .., %2e%2e and backslashes are 400 E_BAD_RESOURCE on the TLS and WebSocket doors", async () => {
    const { doors, close } = await streamDoors(s)
    try {
        for (const [door, c] of doors) {
            for (const resource of TRICKY_PATHS) {
                const r = await c.request({ method: "get", resource, headers: { "X-ApiKey": key } })
                assert.deepEqual([r.status, r.body.code], [400, "E_BAD_RESOURCE"], `${door} ${resource}`)
            }
        }
    } finally {
        close()
    }
})

test("paths: .., %2e%2e and backslashes are 400 E_BAD_RESOURCE over HTTP, never normalised into another resource", async () => {
    const paths = [...TRICKY_PATHS.map((p) => `/v2${p}`), "/v2/..", "/v2/../keys", "/%2e%2e/v2/feeds/1", "/v2/%2e%2e/v2/keys", "/x/../v2/keys", "/v2/feeds/1/./datastreams", "/v2//keys"]
    for (const path of paths) {
        const r = await rawHttp("GET", path)
        assert.deepEqual([r.status, r.body?.code], [400, "E_BAD_RESOURCE"], path)
        assert.ok(r.body.errors.length > 20, "a reason")
    }
    // and outside /v2 too (the dashboard's files, /healthz)
    for (const path of ["/../healthz", "/%2e%2e/index.html", "/static\\..\\..\\etc\\passwd"]) {
        assert.deepEqual((await rawHttp("GET", path)).status, 400, path)
    }
    // a WebSocket upgrade is judged the same way
    for (const path of ["/ws/../ws", "/%2e%2e/ws", "/x/..\\ws"]) {
        const answer = await new Promise<string>((resolve, reject) => {
            const sock = net.connect(s.appPort, "127.0.0.1", () =>
                sock.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`),
            )
            let text = ""
            sock.on("data", (d) => (text += d))
            sock.on("close", () => resolve(text))
            sock.on("error", reject)
        })
        assert.match(answer, /^HTTP\/1\.1 400 .*"code":"E_BAD_RESOURCE"/s, path)
    }
    // the same paths without tricks still work
    assert.equal((await rawHttp("GET", `/v2/feeds/${feed}`)).status, 200)
    assert.equal((await rawHttp("GET", `/v2/feeds/${feed}/`)).status, 200)
    assert.equal((await rawHttp("GET", "/healthz")).status, 200)
})
