// The real server behind the fault-injection proxy: TLS passes untouched even in 1-byte pieces, a
// request cut mid-line writes nothing, an acknowledgement lost to a reset leads to a resend that is
// stored once (idempotent `at`, [P§9]), and a black-holed link is closed by the server after `timeout`.
import { test, before, after } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import { performance } from "node:perf_hooks"
import { decodeServerLine, encodeRequest, type Request } from "../../../src/protocol.ts"
import { startFaultProxy, type FaultProxy } from "../../../devs/faultproxy/proxy.ts"
import { startTestServer, TlsClient, type TestServer } from "../harness/server-harness.ts"
import { until } from "../harness/until.ts"

const TIMEOUT_MS = 1000
let server: TestServer
let tlsProxy: FaultProxy
let tcpProxy: FaultProxy

before(async () => {
    server = await startTestServer({ insecureTcpPort: 0, heartbeatMs: 200, faultyMs: 500, timeoutMs: TIMEOUT_MS })
    tlsProxy = await startFaultProxy({ target: { port: server.devicePort } })
    tcpProxy = await startFaultProxy({ target: { port: server.insecureTcpPort! } })
})

after(async () => {
    await tlsProxy?.close()
    await tcpProxy?.close()
    await server?.stop()
})

/** A device-like client on the plain-TCP development port: lines in, lines out, heartbeats every 100 ms. */
async function tcpClient(port: number) {
    const socket = net.connect({ port, host: "127.0.0.1" })
    const c = { socket, lines: [] as ReturnType<typeof decodeServerLine>[], closed: false }
    let buf = ""
    socket.setEncoding("utf8")
    socket.on("data", (d: string) => {
        buf += d
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
            c.lines.push(decodeServerLine(buf.slice(0, nl)))
            buf = buf.slice(nl + 1)
        }
    })
    const heartbeat = setInterval(() => socket.writable && socket.write("\n"), 100)
    socket.on("error", () => {})
    socket.on("close", () => ((c.closed = true), clearInterval(heartbeat)))
    await until("the welcome", () => c.lines.some((l) => l.kind === "welcome") || c.closed)
    return {
        ...c,
        get closed() {
            return c.closed
        },
        send: (req: Request) => socket.write(encodeRequest(req) + "\n"),
        response: (token: string) => c.lines.find((l) => l.kind === "response" && l.response!.token === token)?.response,
        close: () => (clearInterval(heartbeat), socket.destroy()),
    }
}

const putOne = (at: number, value: string, token: string): Request => ({
    method: "put",
    resource: `/feeds/${server.credentials.feedId}`,
    headers: { "X-ApiKey": server.credentials.deviceKey },
    body: { datastreams: [{ id: "cut", datapoints: [{ at, value }] }] },
    token,
})

test("TLS through the proxy in 1-byte pieces with latency: handshake, welcome and requests work", { timeout: 30_000 }, async () => {
    tlsProxy.split(1, { dir: "up", gapMs: 1 })
    tlsProxy.latency(20, { jitterMs: 10 })
    try {
        const t0 = performance.now()
        const c = await TlsClient.open({ devicePort: tlsProxy.port, ca: server.ca }, server.credentials.deviceKey)
        const r = await c.request({ method: "get", resource: `/feeds/${server.credentials.feedId}` })
        assert.equal(r.status, 200)
        console.log(`# TLS handshake + welcome + 2 requests through 1-byte pieces and 20-30 ms latency: ${(performance.now() - t0).toFixed(0)} ms, ${tlsProxy.stats().bytesUp} bytes up`)
        c.close()
    } finally {
        tlsProxy.clear()
    }
})

test("a request cut mid-line writes nothing; the resent one is stored once", async () => {
    const at = Date.now() - 60_000
    tcpProxy.cut(40, { dir: "up" })
    const a = await tcpClient(tcpProxy.port)
    a.send(putOne(at, "1", "p1"))
    await until("the cut to close the connection", () => a.closed)
    assert.equal(a.response("p1"), undefined, "no answer for a request that never arrived whole")
    assert.equal(tcpProxy.stats().cuts, 1)
    assert.equal(await server.store.getDatastream(server.credentials.feedId, "cut"), undefined, "the partial line wrote nothing")

    const b = await tcpClient(tcpProxy.port) // the cut was one-shot
    b.send(putOne(at, "1", "p2"))
    await until("the resent request's answer", () => b.response("p2") !== undefined)
    assert.equal(b.response("p2")!.status, 200)
    const points = await server.store.history(server.credentials.feedId, "cut", { startMs: 0, endMs: Date.now() + 1, limit: 1000 })
    assert.deepEqual(points, [{ atMs: at, value: "1" }])
    b.close()
})

test("a TLS record cut in the middle: the server drops the connection, writes nothing, serves the reconnect", async () => {
    const at = Date.now() - 45_000
    const c = await TlsClient.open({ devicePort: tlsProxy.port, ca: server.ca }, server.credentials.deviceKey)
    tlsProxy.cut(10, { frame: "tls", dir: "up" }) // 10 bytes into the next record the client sends: the PUT
    c.sendRaw(JSON.stringify(putOne(at, "3", "r1")))
    await c.q.untilClosed()
    assert.equal(tlsProxy.stats().cuts, 1)
    assert.equal(c.q.lines.some((l) => l.kind === "response" && l.response!.token === "r1"), false)
    const points = await server.store.history(server.credentials.feedId, "cut", { startMs: at, endMs: at + 1, limit: 10 })
    assert.deepEqual(points, [], "half a record is no request")
    const again = await TlsClient.open({ devicePort: tlsProxy.port, ca: server.ca }, server.credentials.deviceKey)
    assert.equal((await again.request(putOne(at, "3", "r2"))).status, 200)
    again.close()
})

test("an acknowledgement lost to a reset: the resend is stored once", async () => {
    const at = Date.now() - 30_000
    const a = await tcpClient(tcpProxy.port)
    tcpProxy.blackhole({ dir: "down" }) // the server's answers are held ...
    a.send(putOne(at, "2", "q1"))
    await until("the write to commit", async () => (await server.store.getDatastream(server.credentials.feedId, "cut"))?.atMs === at)
    tcpProxy.reset() // ... and lost with the connection
    tcpProxy.apply("off blackhole")
    await until("the reset", () => a.closed)
    assert.equal(a.response("q1"), undefined, "the client never saw the acknowledgement")

    const b = await tcpClient(tcpProxy.port)
    b.send(putOne(at, "2", "q2"))
    await until("the resend's answer", () => b.response("q2") !== undefined)
    assert.equal(b.response("q2")!.status, 200)
    const points = await server.store.history(server.credentials.feedId, "cut", { startMs: at, endMs: at + 1, limit: 1000 })
    assert.deepEqual(points, [{ atMs: at, value: "2" }], "one point for one `at`, however often it is sent")
    b.close()
})

test("a black-holed link is closed by the server after `timeout`, not before", { timeout: 30_000 }, async () => {
    const open = () => {
        const m = /^feedline_connections_open\{transport="tls"\} (\d+)/m.exec(server.metrics.render())
        return m ? Number(m[1]) : 0
    }
    const before = open()
    const c = await TlsClient.open({ devicePort: tlsProxy.port, ca: server.ca }, server.credentials.deviceKey)
    await until("the server to count the connection", () => open() === before + 1)
    const t0 = performance.now()
    tlsProxy.blackhole({ scope: "existing" })
    await until("the server to drop the silent link", () => open() === before, TIMEOUT_MS * 10)
    const detectedMs = performance.now() - t0
    console.log(`# black-holed link: the server closed it after ${detectedMs.toFixed(0)} ms (timeout ${TIMEOUT_MS} ms)`)
    assert.ok(detectedMs >= TIMEOUT_MS * 0.9, `closed after ${detectedMs.toFixed(0)} ms, before the timeout`)
    assert.equal(c.q.closed, false, "the client was told nothing: the link is half-open")
    c.close()
})
