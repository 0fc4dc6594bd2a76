// Admission (issue 12 item 3): who may hold a connection slot, and for how long, before and after TLS.
// The auth deadline, the per-address caps, the bound on pending TLS handshakes (a flood of silent
// sockets), and the per-key request rate. Flood sources use other loopback addresses (127.0.0.x).
import { test } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import type tls from "node:tls"
import { performance } from "node:perf_hooks"
import { encodeRequest } from "../../../src/protocol.ts"
import { KEY_RATE_BURST, KEY_RATE_PER_SECOND, RATE_BURST, RATE_PER_SECOND } from "../../../devs/server/limits.ts"
import { admissionStep, keyAdmissionStep } from "../../../devs/server/listeners/admission.ts"
import { http, startTestServer, TlsClient, WsClient, type TestServer } from "../harness/server-harness.ts"
import { until } from "../harness/until.ts"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)
/** connect from this local address (Linux answers on all of 127.0.0.0/8): another remote address for the server */
const fromAddress = (localAddress: string) => ({ localAddress }) as tls.ConnectionOptions

/** A device: connects from `from`, reads the welcome, sends its key with the first request. */
async function device(server: TestServer, from: string): Promise<TlsClient> {
    const c = await TlsClient.connect(server, fromAddress(from))
    await c.welcome()
    const r = await c.request({ method: "put", resource: `/feeds/${server.credentials.feedId}`, headers: { "X-ApiKey": server.credentials.deviceKey }, body: { datastreams: [{ id: "admitted", current_value: from }] } })
    assert.equal(r.status, 200, `the device from ${from} was answered ${JSON.stringify(r)}`)
    return c
}

/** Raw TCP sockets to `port` from `from` that send nothing (a flood that never starts its TLS handshake). */
async function silentSockets(port: number, from: string, n: number): Promise<net.Socket[]> {
    const out: net.Socket[] = []
    for (let i = 0; i < n; i += 100) {
        const batch = range(Math.min(100, n - i)).map(
            () =>
                new Promise<net.Socket>((resolve) => {
                    const s = net.connect({ port, host: "127.0.0.1", localAddress: from })
                    s.on("error", () => {}) // dropped ones are reset or closed: that is the point
                    s.once("connect", () => resolve(s))
                    s.once("close", () => resolve(s))
                }),
        )
        out.push(...(await Promise.all(batch)))
    }
    return out
}

test("admission step: evicts the oldest unauthenticated connection of a full address, refuses over the connection caps", () => {
    const l = { maxConnections: 10, maxPerAddress: 5, maxUnauthenticatedPerAddress: 2 }
    assert.deepEqual(admissionStep({ total: 0, fromAddress: 0, unauthenticatedFromAddress: 0 }, l), { admit: true })
    assert.deepEqual(admissionStep({ total: 3, fromAddress: 3, unauthenticatedFromAddress: 1 }, l), { admit: true })
    assert.deepEqual(admissionStep({ total: 3, fromAddress: 3, unauthenticatedFromAddress: 2 }, l), { evictOldestUnauthenticated: true })
    assert.equal((admissionStep({ total: 5, fromAddress: 5, unauthenticatedFromAddress: 0 }, l) as any).refuse.code, "E_TOO_MANY_CONNECTIONS")
    assert.equal((admissionStep({ total: 10, fromAddress: 0, unauthenticatedFromAddress: 0 }, l) as any).refuse.code, "E_TOO_MANY_CONNECTIONS")
    assert.equal((admissionStep({ total: 0, fromAddress: 0, unauthenticatedFromAddress: 0 }, { ...l, maxUnauthenticatedPerAddress: 0 }) as any).refuse.code, "E_TOO_MANY_UNAUTHENTICATED")
})

test("key admission step: a key's connections up to its maximum count, the next is refused naming the key", () => {
    assert.equal(keyAdmissionStep(2, "k1", 3), undefined)
    const refused = keyAdmissionStep(3, "k1", 3)!
    assert.equal(refused.code, "E_TOO_MANY_CONNECTIONS_FOR_KEY")
    assert.match(refused.reason, /key k1 holds its maximum of 3 connections/)
})

test("auth deadline: heartbeats alone hold no slot (TLS and WebSocket), 401s do not count, an authenticated connection stays", { timeout: 30_000 }, async () => {
    const DEADLINE_MS = 400
    const server = await startTestServer({ authDeadlineMs: DEADLINE_MS })
    try {
        const t0 = performance.now()
        const idleTls = await TlsClient.connect(server) // heartbeats every 250 ms, never a request
        const idleWs = await WsClient.open(server, { heartbeat: true })
        const badKey = await TlsClient.connect(server)
        const authed = await TlsClient.connect(server)
        await Promise.all([idleTls, idleWs, badKey, authed].map((c) => c.welcome()))
        assert.equal((await authed.request({ method: "get", resource: "/session", headers: { "X-ApiKey": server.credentials.deviceKey } })).status, 200)
        assert.equal((await badKey.request({ method: "get", resource: "/session", headers: { "X-ApiKey": "not-a-key-at-all" } })).status, 401)
        for (const c of [idleTls, idleWs, badKey]) {
            const n = await c.notice(10_000)
            assert.equal(n.status, 408)
            assert.equal(n.body.code, "E_AUTH_TIMEOUT")
            assert.match(n.body.errors, /X-ApiKey/)
            await c.q.untilClosed()
        }
        const closedAfterMs = performance.now() - t0
        assert.ok(closedAfterMs >= DEADLINE_MS, `closed after ${closedAfterMs.toFixed(0)} ms, before the deadline`)
        // another deadline later, the authenticated connection (heartbeats only since) still works
        await new Promise((r) => setTimeout(r, 2 * DEADLINE_MS))
        assert.equal(authed.q.closed, false)
        assert.equal((await authed.request({ method: "get", resource: "/session" })).status, 200)
        console.log(`# auth deadline ${DEADLINE_MS} ms: heartbeat-only TLS and WebSocket connections and one with a bad key closed with 408 E_AUTH_TIMEOUT after ${closedAfterMs.toFixed(0)} ms`)
        authed.close()
    } finally {
        await server.stop()
    }
})

test("per-address caps: one address holding every unauthenticated slot locks no device out, on another address or its own", { timeout: 30_000 }, async () => {
    const MAX_UNAUTHENTICATED = 8
    const server = await startTestServer({ maxUnauthenticatedPerAddress: MAX_UNAUTHENTICATED, authDeadlineMs: 60_000 })
    try {
        const hog: TlsClient[] = []
        // one after another: hog[0] is the oldest
        for (const _ of range(MAX_UNAUTHENTICATED)) {
            hog.push(await TlsClient.connect(server, fromAddress("127.0.0.1")))
            await hog.at(-1)!.welcome()
        }
        // a device elsewhere gets in, and takes nothing from the hog
        const elsewhere = await device(server, "127.0.0.2")
        assert.ok(hog.every((c) => !c.q.closed))
        // a device behind the hog's address gets in too: the hog's oldest connection makes room
        const sameAddress = await device(server, "127.0.0.1")
        const evicted = await hog[0].notice()
        assert.equal(evicted.status, 429)
        assert.equal(evicted.body.code, "E_TOO_MANY_UNAUTHENTICATED")
        assert.ok(evicted.body.retry_after_ms > 0)
        await hog[0].q.untilClosed()
        assert.ok(hog.slice(1).every((c) => !c.q.closed), "only the oldest was closed")
        // the hog fills its slots again, and goes on: again its oldest goes, the devices stay
        const more: TlsClient[] = []
        for (const _ of range(2)) {
            more.push(await TlsClient.connect(server, fromAddress("127.0.0.1")))
            await more.at(-1)!.welcome()
        }
        assert.equal((await hog[1].notice()).body.code, "E_TOO_MANY_UNAUTHENTICATED")
        for (const d of [elsewhere, sameAddress]) assert.equal((await d.request({ method: "get", resource: "/session" })).status, 200)
        for (const c of [...hog, ...more, elsewhere, sameAddress]) c.close()
    } finally {
        await server.stop()
    }
})

test("per-address caps: connections from one address past its maximum are refused with 429; other addresses are not", { timeout: 30_000 }, async () => {
    const PER_ADDRESS = 4
    const server = await startTestServer({ maxConnectionsPerAddress: PER_ADDRESS })
    try {
        const mine = await Promise.all(range(PER_ADDRESS).map(() => device(server, "127.0.0.1")))
        const over = await TlsClient.connect(server, fromAddress("127.0.0.1"))
        const first = await over.q.next()
        assert.equal(first.response?.notice, true, `the first line is the notice: ${first.raw}`)
        assert.equal(first.response!.status, 429)
        assert.equal(first.response!.body.code, "E_TOO_MANY_CONNECTIONS")
        assert.match(first.response!.body.errors, /your address/)
        await over.q.untilClosed()
        const other = await device(server, "127.0.0.2")
        // a slot freed is a slot again
        mine[0].close()
        await until("a slot of 127.0.0.1 to be free again", async () => {
            const c = await TlsClient.connect(server, fromAddress("127.0.0.1"))
            const l = await c.q.next()
            c.close()
            return l.kind === "welcome"
        })
        for (const c of [...mine, other]) c.close()
    } finally {
        await server.stop()
    }
})

test("pre-handshake flood: silent sockets from one address never lock devices out, round after round (was: a reset)", { timeout: 60_000 }, async () => {
    // the setup: --max-connections 200; before, 470 silent sockets filled the listener (200 + 256)
    const FLOOD = 600
    const ROUNDS = 3
    const server = await startTestServer({ maxConnections: 200 })
    const sockets: net.Socket[] = []
    try {
        const lines: string[] = []
        for (let round = 1; round <= ROUNDS; ++round) {
            sockets.push(...(await silentSockets(server.devicePort, "127.0.0.1", FLOOD)))
            const t0 = performance.now()
            const elsewhere = await device(server, "127.0.0.2")
            const same = await device(server, "127.0.0.1")
            const ms = performance.now() - t0
            const open = sockets.filter((s) => !s.destroyed && s.readyState === "open").length
            lines.push(`round ${round}: ${round * FLOOD} silent sockets sent, ${open} still open, devices from 127.0.0.2 and 127.0.0.1 served in ${ms.toFixed(0)} ms`)
            elsewhere.close()
            same.close()
        }
        const dropped = server.metrics.handshakesDropped.get({ bound: "address" })
        console.log(`# ${lines.join("; ")}; pending handshakes dropped by the per-address bound: ${dropped}`)
        assert.ok(dropped >= ROUNDS * FLOOD - 128, `${dropped} dropped`)
    } finally {
        for (const s of sockets) s.destroy()
        await server.stop()
    }
})

test("pre-handshake flood from many addresses: the bound in all drops the oldest, and a device still connects", { timeout: 60_000 }, async () => {
    const MAX_PENDING = 64
    const server = await startTestServer({ maxPendingHandshakes: MAX_PENDING })
    const sockets: net.Socket[] = []
    try {
        for (let a = 10; a < 20; ++a) sockets.push(...(await silentSockets(server.devicePort, `127.0.0.${a}`, 20)))
        const d = await device(server, "127.0.0.2")
        const dropped = server.metrics.handshakesDropped.get({ bound: "total" })
        console.log(`# 200 silent sockets from 10 addresses against a bound of ${MAX_PENDING}: ${dropped} dropped, a device from another address served`)
        assert.ok(dropped >= 200 - MAX_PENDING, `${dropped} dropped`)
        d.close()
    } finally {
        for (const s of sockets) s.destroy()
        await server.stop()
    }
})

test("the TLS handshake deadline counts from the accept, on the device port and the HTTPS app port alike (was: 10 s to the first byte there, then the deadline)", { timeout: 30_000 }, async () => {
    const DEADLINE_MS = 500
    const server = await startTestServer({ appTls: true, handshakeTimeoutMs: DEADLINE_MS })
    const sockets: net.Socket[] = []
    try {
        const closedAfter = async (port: number, send?: Buffer) => {
            const [s] = await silentSockets(port, "127.0.0.1", 1)
            sockets.push(s)
            const t0 = performance.now()
            if (send) s.write(send)
            await new Promise((r) => (s.destroyed ? r(undefined) : s.once("close", r)))
            return performance.now() - t0
        }
        const recordHeader = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]) // a ClientHello announced, never sent
        const [deviceSilent, appSilent, appStalled] = await Promise.all([
            closedAfter(server.devicePort),
            closedAfter(server.appPort),
            closedAfter(server.appPort, recordHeader),
        ])
        console.log(`# handshake deadline ${DEADLINE_MS} ms: silent sockets closed after ${deviceSilent.toFixed(0)} ms (device port), ${appSilent.toFixed(0)} ms (app port); a stalled ClientHello on the app port after ${appStalled.toFixed(0)} ms`)
        for (const ms of [deviceSilent, appSilent, appStalled]) assert.ok(ms >= DEADLINE_MS - 50 && ms < DEADLINE_MS + 4000, `closed after ${ms.toFixed(0)} ms`)
        assert.ok(server.metrics.handshakesDropped.get({ bound: "deadline" }) >= 2)
        // a real client is not held to anything it cannot meet
        assert.equal((await device(server, "127.0.0.2")).q.closed, false)
    } finally {
        for (const s of sockets) s.destroy()
        await server.stop()
    }
})

test("per-key rate: 20 connections with one key share one budget (was: 2,000 of 2,000 writes in 129 ms); other keys are not held up", { timeout: 30_000 }, async () => {
    const CONNECTIONS = 20
    const EACH = RATE_BURST - 1 // with the request that authenticated it, one connection's whole burst
    // the defaults, not the harness's unlimited test rates; the clock stands still until the test moves it,
    // so the buckets refill only when it does (the key's on `now`, each connection's on `elapsedMs`)
    let clockMs = Date.now()
    const server = await startTestServer({ ratePerSecond: RATE_PER_SECOND, rateBurst: RATE_BURST, keyRatePerSecond: KEY_RATE_PER_SECOND, keyRateBurst: KEY_RATE_BURST, now: () => clockMs, elapsedMs: () => clockMs })
    try {
        const { feedId, deviceKey, masterKey } = server.credentials
        const clients = await Promise.all(range(CONNECTIONS).map(() => TlsClient.open(server, deviceKey))) // one request each
        const t0 = performance.now()
        const tokens = clients.map((c, i) => {
            const ts = range(EACH).map((j) => `k${i}-${j}`)
            c.sendRaw(ts.map((token, j) => encodeRequest({ method: "put", resource: `/feeds/${feedId}`, body: { datastreams: [{ id: `c${i}`, current_value: j }] }, token })).join(""))
            return ts
        })
        const responses = await Promise.all(clients.flatMap((c, i) => tokens[i].map((t) => c.push(t, 20_000))))
        const elapsedMs = performance.now() - t0
        const ok = responses.filter((r) => r.status === 200).length
        const limited = responses.filter((r) => r.status === 429)
        assert.equal(ok + limited.length, CONNECTIONS * EACH, "every request answered 200 or 429")
        assert.ok(limited.every((r) => r.body.code === "E_KEY_RATE_LIMITED" && r.body.retry_after_ms > 0), "429s name the key's limit and say when to retry")
        // the key's bucket: its burst, less the 20 requests that authenticated the connections
        assert.equal(ok, KEY_RATE_BURST - CONNECTIONS)
        // the same key over HTTP is over its budget too; the master key is not
        const viaHttp = await http(server, "put", `/v2/feeds/${feedId}`, { key: deviceKey, body: { datastreams: [{ id: "h", current_value: 1 }] } })
        assert.equal(viaHttp.status, 429)
        assert.equal(viaHttp.body.code, "E_KEY_RATE_LIMITED")
        assert.equal((await http(server, "get", `/v2/feeds/${feedId}`, { key: masterKey })).status, 200)
        // a second later the key has KEY_RATE_PER_SECOND requests again
        clockMs += 1000
        const again = await Promise.all(range(KEY_RATE_PER_SECOND + 1).map((j) => clients[j % CONNECTIONS].request({ method: "get", resource: "/session", token: `again${j}` })))
        assert.equal(again.filter((r) => r.status === 200).length, KEY_RATE_PER_SECOND)
        console.log(`# per-key rate: ${CONNECTIONS} connections x ${EACH} writes with one key: ${ok} acknowledged, ${limited.length} got 429 E_KEY_RATE_LIMITED in ${elapsedMs.toFixed(0)} ms`)
        for (const c of clients) c.close()
    } finally {
        await server.stop()
    }
})
