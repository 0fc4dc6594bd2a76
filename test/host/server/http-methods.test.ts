// The app port against curl-like clients and health checkers: HEAD (curl -I, load balancers' checks) is
// answered as GET without the body (was: 405 on /v2, and `HEAD /healthz` 404 "nothing at /healthz"); a 405
// names the allowed methods in `Allow` (RFC 9110); a plain request to /ws without the WebSocket upgrade gets
// the coded E_BAD_WEBSOCKET (was: 404 "nothing at /ws; … WebSocket at /ws"); an Expect other than
// 100-continue gets a coded 417 (was: Node's, with no body); an Upgrade other than websocket (h2c) is ignored,
// the request answered in HTTP/1.1 (was: 404 "the WebSocket is at /ws", GET /healthz included).
import assert from "node:assert/strict"
import net from "node:net"
import { test } from "node:test"
import { serverForThisFile, WAIT_MS } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey
const feed = s.credentials.feedId

/** One raw HTTP/1.1 exchange on a new connection: the response's head (status, headers) and body text. */
function exchange(request: string, { bodyless = false } = {}): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    return new Promise((resolve, reject) => {
        const socket = net.connect(s.appPort, "127.0.0.1")
        let got = Buffer.alloc(0)
        const timer = setTimeout(() => (socket.destroy(), reject(new Error(`no whole answer within ${WAIT_MS} ms: ${got.toString("latin1").slice(0, 300)}`))), WAIT_MS)
        const tryParse = () => {
            const text = got.toString("latin1")
            const end = text.indexOf("\r\n\r\n")
            if (end < 0) return
            const headers: Record<string, string> = {}
            for (const line of text.slice(0, end).split("\r\n").slice(1)) headers[line.slice(0, line.indexOf(":")).toLowerCase()] = line.slice(line.indexOf(":") + 1).trim()
            const status = Number(text.slice(9, 12))
            const chunked = headers["transfer-encoding"] === "chunked"
            // an interim 1xx has no body; a chunked body ends with its zero chunk (its text is not read here)
            const length = bodyless || status < 200 ? 0 : chunked ? text.indexOf("\r\n0\r\n\r\n", end) - end - 2 : Number(headers["content-length"] ?? NaN)
            if (!(length >= 0 && got.length >= end + 4 + length)) return
            clearTimeout(timer)
            socket.destroy()
            resolve({ status, headers, body: got.subarray(end + 4, end + 4 + length).toString("utf8") })
        }
        socket.on("data", (d) => ((got = Buffer.concat([got, d])), tryParse()))
        socket.on("error", () => {})
        socket.write(request, "latin1") // byte for byte: a test may send bytes that are not text
    })
}

test("HEAD is GET without the body: /healthz, /metrics and a REST resource", async () => {
    for (const path of ["/healthz", "/metrics", `/v2/feeds/${feed}`]) {
        const get = await exchange(`GET ${path} HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\n\r\n`)
        const head = await exchange(`HEAD ${path} HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\n\r\n`, { bodyless: true })
        assert.equal(get.status, 200, path)
        assert.equal(head.status, 200, `${path}: ${head.body}`)
        assert.equal(head.headers["content-type"], get.headers["content-type"], path)
    }
    // refusals too: the status and headers a GET would get
    const missing = await exchange(`HEAD /v2/feeds/${feed}/datastreams/none HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\n\r\n`, { bodyless: true })
    assert.equal(missing.status, 404)
})

test("a method the port does not serve is 405 with Allow", async () => {
    const r = await exchange(`PATCH /v2/feeds/${feed} HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\ncontent-length: 2\r\n\r\n{}`)
    assert.equal(r.status, 405)
    assert.equal(JSON.parse(r.body).code, "E_BAD_METHOD")
    assert.equal(r.headers.allow, "GET, HEAD, PUT, POST, DELETE")
})

test("a plain request to /ws is told it is the WebSocket endpoint, coded", async () => {
    for (const [method, status] of [["GET", 400], ["POST", 405]] as const) {
        const r = await exchange(`${method} /ws HTTP/1.1\r\nHost: x\r\ncontent-length: 0\r\n\r\n`)
        assert.equal(r.status, status, method)
        const body = JSON.parse(r.body)
        assert.equal(body.code, "E_BAD_WEBSOCKET", method)
        assert.match(body.errors, /Upgrade: websocket/, method)
    }
})

test("an Expect other than 100-continue gets a coded 417; 100-continue is met", async () => {
    const body = JSON.stringify({ datastreams: [{ id: "expect", current_value: "1" }] })
    const refused = await exchange(`PUT /v2/feeds/${feed} HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\nExpect: 200-ok\r\ncontent-length: ${body.length}\r\n\r\n${body}`)
    assert.equal(refused.status, 417)
    assert.equal(JSON.parse(refused.body).code, "E_BAD_EXPECT")
    const met = await exchange(`PUT /v2/feeds/${feed} HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\nExpect: 100-continue\r\ncontent-length: ${body.length}\r\n\r\n${body}`)
    assert.equal(met.status, 100) // the interim answer first; the write follows on the same exchange
})

// Node hands every request with an Upgrade header to the upgrade listener; it answered them all 404 "the WebSocket is at /ws"
test("an Upgrade the port does not speak (h2c: curl --http2 http://) is ignored: the request is answered in HTTP/1.1", async () => {
    const h2c = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
    for (const path of ["/healthz", `/v2/feeds/${feed}`]) {
        const r = await exchange(`GET ${path} HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\n${h2c}\r\n`)
        assert.equal(r.status, 200, `${path}: ${r.body}`)
        assert.ok(JSON.parse(r.body), path)
    }
    // a body can no longer be read once Node took the request for an upgrade: refused, coded, nothing written
    const body = JSON.stringify({ datastreams: [{ id: "h2c", current_value: "1" }] })
    const put = await exchange(`PUT /v2/feeds/${feed} HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\n${h2c}content-length: ${body.length}\r\n\r\n${body}`)
    assert.deepEqual([put.status, JSON.parse(put.body).code], [400, "E_BAD_UPGRADE"])
    assert.equal((await exchange(`GET /v2/feeds/${feed}/datastreams/h2c HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\n\r\n`)).status, 404)
})

test("/healthz and /metrics with another method are 405 naming GET, not 404 'nothing at /healthz'", async () => {
    for (const path of ["/healthz", "/metrics"]) {
        const r = await exchange(`POST ${path} HTTP/1.1\r\nHost: x\r\ncontent-length: 0\r\n\r\n`)
        assert.deepEqual([r.status, JSON.parse(r.body).code], [405, "E_BAD_METHOD"], path)
        assert.equal(r.headers.allow, "GET, HEAD", path)
    }
})

test("a REST body starting with a byte order mark is read as JSON, as at the start of a stream (and as POST /jwt did)", async () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ datastreams: [{ id: "bom", current_value: "1" }] }))])
    const r = await exchange(`PUT /v2/feeds/${feed} HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.toString("latin1")}`)
    assert.equal(r.status, 200, r.body)
    const stored = await exchange(`GET /v2/feeds/${feed}/datastreams/bom HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\n\r\n`)
    assert.equal(JSON.parse(stored.body).current_value, "1")
})

test("a resource that does not answer the method is 405 with its own Allow", async () => {
    const r = await exchange(`PUT /v2/feeds HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\ncontent-length: 2\r\n\r\n{}`)
    assert.deepEqual([r.status, JSON.parse(r.body).code], [405, "E_NOT_ALLOWED"])
    assert.equal(r.headers.allow, "GET, HEAD, POST")
})
