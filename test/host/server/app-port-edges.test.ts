// The app port against clients nobody here wrote: a body that grows past the limit without saying so
// (chunked; was: the socket destroyed, no answer), the same at POST /jwt (was: none, or 400), CONNECT (was:
// dropped unanswered), a WebSocket client asking for a subprotocol (was: told we speak whatever it named
// first, `mqtt` included), and listing pages that are not whole numbers (was: `abc` read as page 1, `1.5` as
// a page starting half-way); POST and DELETE /jwt outside the address's request budget (was: unlimited,
// so a key of any tenant could store sign-outs as fast as it could send them); the 405 of a claim resource
// (was: "it supports " and nothing).
import assert from "node:assert/strict"
import net from "node:net"
import { test } from "node:test"
import WebSocket from "ws"
import { http, serverForThisFile, startTestServer, WAIT_MS } from "../harness/server-harness.ts"
import { MAX_OBJECT_BYTES } from "../../../devs/server/limits.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey

/** Sends raw bytes on one connection and returns each complete HTTP response as it comes (status and body). */
function rawConnection() {
    const socket = net.connect(s.appPort, "127.0.0.1")
    let buffered = Buffer.alloc(0)
    const waiting: (() => void)[] = []
    socket.on("data", (d) => {
        buffered = Buffer.concat([buffered, d])
        waiting.splice(0).forEach((w) => w())
    })
    socket.on("close", () => waiting.splice(0).forEach((w) => w()))
    socket.on("error", () => {})
    const next = async (): Promise<{ status: number; body: any }> => {
        const deadline = Date.now() + WAIT_MS
        for (;;) {
            const text = buffered.toString("latin1")
            const end = text.indexOf("\r\n\r\n")
            const length = end < 0 ? undefined : Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1])
            if (end >= 0 && length !== undefined && buffered.length >= end + 4 + length) {
                const body = buffered.subarray(end + 4, end + 4 + length).toString("utf8")
                buffered = buffered.subarray(end + 4 + length)
                return { status: Number(text.slice(9, 12)), body: JSON.parse(body) }
            }
            if (socket.destroyed || Date.now() > deadline) throw new Error(`no complete response (socket destroyed: ${socket.destroyed}): ${JSON.stringify(text.slice(0, 200))}`)
            await new Promise<void>((r) => {
                waiting.push(r)
                setTimeout(r, 200)
            })
        }
    }
    return { write: (b: string | Buffer) => socket.write(b), next, close: () => socket.destroy() }
}

const chunked = (method: string, path: string, body: Buffer, headers = "") =>
    Buffer.concat([
        Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\ncontent-type: application/json\r\n${headers}\r\n${body.length.toString(16)}\r\n`),
        body,
        Buffer.from("\r\n0\r\n\r\n"),
    ])

test("a chunked body past the limit is answered 413 E_TOO_LARGE, nothing stored, and the connection serves the next request", async () => {
    const value = "x".repeat(20)
    const body = Buffer.from(JSON.stringify({ datastreams: [{ id: "big", current_value: value }], pad: "p".repeat(MAX_OBJECT_BYTES) }))
    const c = rawConnection()
    try {
        c.write(chunked("PUT", "/v2/feeds/1", body, `X-ApiKey: ${master}\r\n`))
        const r = await c.next()
        assert.equal(r.status, 413)
        assert.equal(r.body.code, "E_TOO_LARGE")
        c.write(`GET /v2/feeds/1/datastreams/big HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\n\r\n`)
        assert.equal((await c.next()).status, 404) // nothing of it was stored
        // POST /jwt has its own, smaller limit: the same answer
        c.write(chunked("POST", "/jwt", Buffer.from(JSON.stringify({ ttl: 60, pad: "p".repeat(5000) })), `X-ApiKey: ${master}\r\n`))
        const jwt = await c.next()
        assert.equal(jwt.status, 413)
        assert.equal(jwt.body.code, "E_TOO_LARGE")
    } finally {
        c.close()
    }
})

test("CONNECT gets a coded 405, not a dropped connection", async () => {
    const c = rawConnection()
    try {
        c.write("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        const r = await c.next()
        assert.equal(r.status, 405)
        assert.equal(r.body.code, "E_BAD_METHOD")
    } finally {
        c.close()
    }
})

test("a WebSocket client asking for a subprotocol is not told the server speaks it; one asking for none connects", async () => {
    const open = (protocols?: string[]) =>
        new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(`ws://127.0.0.1:${s.appPort}/ws`, protocols)
            ws.once("open", () => resolve(ws))
            ws.once("error", reject)
        })
    await assert.rejects(open(["mqtt"]), /no subprotocol/)
    const plain = await open()
    assert.equal(plain.protocol, "")
    plain.close()
})

test("a listing's page is a whole number from 1: anything else is 422 E_BAD_PARAM on feeds, devices, sessions, keys and products", async () => {
    for (const resource of ["/feeds", "/devices", "/sessions", "/keys", "/products"]) {
        for (const page of ["abc", "1.5", "0", "-1", "1e3"]) {
            const r = await http(s, "GET", `/v2${resource}?page=${page}`, { key: master })
            assert.equal(r.status, 422, `${resource}?page=${page}: ${JSON.stringify(r.body)}`)
            assert.equal(r.body.code, "E_BAD_PARAM")
        }
        const r = await http(s, "GET", `/v2${resource}?page=2`, { key: master })
        assert.equal(r.status, 200)
        assert.equal(r.body.page, 2)
        // found by the fourth audit: 16 digits was "page must be a whole number of at least 1": it is one, too large
        const huge = await http(s, "GET", `/v2${resource}?page=9999999999999999`, { key: master })
        assert.deepEqual([huge.status, huge.body.code], [422, "E_BAD_PARAM"])
        assert.match(huge.body.errors, /^page may be at most 9007199254740991; a page past the end is an empty list$/)
        assert.equal((await http(s, "GET", `/v2${resource}?page=0000000000000002`, { key: master })).body.page, 2, "leading zeros")
    }
})

// found by the fourth audit: /v2 refused a body that is not UTF-8 [P§5], POST /jwt read it with U+FFFD in place
// of the bytes and minted a token
test("POST /jwt: a body that is not UTF-8 is 400 E_BAD_UTF8, as on /v2, and no token is minted", async () => {
    const body = Buffer.concat([Buffer.from('{"ttl":60,"note":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])
    const c = rawConnection()
    try {
        c.write(Buffer.concat([Buffer.from(`POST /jwt HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`), body]))
        const r = await c.next()
        assert.deepEqual([r.status, r.body.code, r.body.token], [400, "E_BAD_UTF8", undefined], JSON.stringify(r.body))
    } finally {
        c.close()
    }
})

test("POST and DELETE /jwt spend the address's request budget like REST: past it 429 E_RATE_LIMITED with retry_after_ms; /healthz is not counted", async () => {
    // a budget that does not refill within the test: exactly its burst is served
    const limited = await startTestServer({ ratePerSecond: 0.001, rateBurst: 4 })
    try {
        const key = limited.credentials.masterKey
        const minted = await http(limited, "POST", "/jwt", { key })
        assert.equal(minted.status, 200)
        const signedOut = await http(limited, "DELETE", "/jwt", { headers: { authorization: `Bearer ${minted.body.token}` } })
        assert.equal(signedOut.status, 200)
        for (let i = 0; i < 3; i++) assert.equal((await http(limited, "GET", "/healthz")).status, 200)
        assert.equal((await http(limited, "GET", "/v2/feeds/1", { key })).status, 200)
        assert.equal((await http(limited, "GET", "/v2/feeds/1", { key })).status, 200)
        const refused = await http(limited, "POST", "/jwt", { key })
        assert.equal(refused.status, 429)
        assert.equal(refused.body.code, "E_RATE_LIMITED")
        assert.ok(refused.body.retry_after_ms > 0)
        assert.equal((await http(limited, "DELETE", "/jwt", { headers: { authorization: `Bearer ${minted.body.token}` } })).status, 429)
        assert.equal((await http(limited, "GET", "/healthz")).status, 200)
    } finally {
        await limited.stop()
    }
})

test("a method a claim resource does not take is 405 naming the one it does", async () => {
    const r = await http(s, "GET", "/v2/products/p12345678/claims", { key: master })
    assert.equal(r.status, 405)
    assert.match(r.body.errors, /does not support get; it supports post$/)
})

test("a WebSocket handshake the server cannot take is a coded 400 E_BAD_WEBSOCKET (405 for a method other than GET), not ws's text/html", async () => {
    const upgrade = (method: string, headers: string) =>
        `${method} /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${headers}\r\n`
    const KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    const cases: [string, string, number][] = [
        ["no key", upgrade("GET", "Sec-WebSocket-Version: 13\r\n"), 400],
        ["a key that is not 16 bytes of base64", upgrade("GET", "Sec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n"), 400],
        ["no version", upgrade("GET", KEY), 400],
        ["version 12", upgrade("GET", KEY + "Sec-WebSocket-Version: 12\r\n"), 400],
        ["POST", upgrade("POST", KEY + "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n"), 405],
    ]
    for (const [what, request, status] of cases) {
        const c = rawConnection()
        try {
            c.write(request)
            const r = await c.next()
            assert.equal(r.status, status, what)
            assert.equal(r.body.code, "E_BAD_WEBSOCKET", what)
            assert.match(r.body.errors, /Sec-WebSocket-Version: 13/, what)
        } finally {
            c.close()
        }
    }
    // a right handshake still opens
    const ws = new WebSocket(`ws://127.0.0.1:${s.appPort}/ws`)
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)))
    ws.close()
})

test("headers over Node's limit are 431 E_HEADERS_TOO_LARGE saying so, not 'not valid HTTP/1.1' with the title 'Error'", async () => {
    const c = rawConnection()
    try {
        c.write(`GET /v2/feeds/1 HTTP/1.1\r\nHost: x\r\nCookie: ${"a".repeat(20_000)}\r\n\r\n`)
        const r = await c.next()
        assert.equal(r.status, 431)
        assert.deepEqual([r.body.code, r.body.title], ["E_HEADERS_TOO_LARGE", "Request Header Fields Too Large"])
        assert.match(r.body.errors, /headers take more than \d+ bytes; send fewer or shorter headers/)
    } finally {
        c.close()
    }
})
