// The PROXY protocol behind trusted proxies (--trusted-proxies; devs/server/listeners/proxy-front.ts) over
// loopback: here 127.0.0.2 is "the proxy" (trusted) and 127.0.0.1 anyone else. A trusted proxy's header
// sets the address that the per-address limits (connections, unauthenticated ones, pending handshakes,
// claims), the logs and /v2/sessions see, on the device port and the app port (HTTPS, HTTP, WebSocket); a
// malformed, missing or slow header closes the connection with its code; a header from anyone else is
// refused and spoofs nothing; HAProxy's v2 LOCAL health checks are served as the proxy's own connections.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Writable } from "node:stream"
import tls from "node:tls"
import { describe, test } from "node:test"
import { WebSocket } from "ws"
import { ConfigError } from "../../../devs/server/errors.ts"
import { AUTH_FAILURES_BURST } from "../../../devs/server/limits.ts"
import { isTrustedProxy, trustedProxiesOf } from "../../../devs/server/listeners/proxy-front.ts"
import { serverForThisFile, startTestServer, TlsClient, WAIT_MS, type TestServer } from "../harness/server-harness.ts"
import { until } from "../harness/until.ts"
import { makeProduct } from "./fleet/fleet-fixture.ts"
import { proxyV1, proxyV2, proxyV2Local } from "./proxy-headers.ts"

const PROXY = "127.0.0.2"
const OTHER = "127.0.0.1"

function logSink() {
    const sink = { text: "", stream: new Writable({ write: (chunk, _enc, done) => ((sink.text += chunk.toString()), done()) }) }
    return sink
}

const logA = logSink()
/** HTTPS app port; small per-address limits, to see whose budget a connection takes */
const a = await serverForThisFile({
    appTls: true,
    trustedProxies: [PROXY, "192.0.2.0/24"],
    proxyHeaderTimeoutMs: 300,
    maxConnectionsPerAddress: 3,
    maxUnauthenticatedPerAddress: 2,
    maxHandshakesPerAddress: 2,
    logLevel: "debug",
    logDestination: logA.stream,
})
const logB = logSink()
/** plain HTTP app port (loopback), one claim per address */
const b = await serverForThisFile({ trustedProxies: [PROXY], claimRatePerAddress: 0.001, claimBurstPerAddress: 1, logLevel: "debug", logDestination: logB.stream })

function connectRaw(port: number, from: string): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
        const socket = net.connect({ host: "127.0.0.1", port, localAddress: from }, () => resolve(socket))
        socket.once("error", reject)
    })
}

function closed(socket: net.Socket): Promise<void> {
    return new Promise((resolve, reject) => {
        if (socket.destroyed) return resolve()
        const timer = setTimeout(() => reject(new Error(`not closed within ${WAIT_MS} ms`)), WAIT_MS)
        socket.once("close", () => (clearTimeout(timer), resolve()))
    })
}

/** a device connection through "the proxy": the header, then TLS, then the welcome */
async function deviceVia(s: TestServer, header: Buffer, welcome = true): Promise<TlsClient> {
    const raw = await connectRaw(s.devicePort, PROXY)
    raw.write(header)
    const c = await TlsClient.connect(s, { socket: raw })
    if (welcome) await c.welcome()
    return c
}

/** the code of the notice a connection was closed with */
async function closedWith(c: TlsClient): Promise<string> {
    const n = await c.notice()
    await c.q.untilClosed()
    return (n.body as { code: string }).code
}

async function addressOf(c: TlsClient, key: string): Promise<string> {
    const r = await c.request({ method: "get", resource: "/session", headers: { "X-ApiKey": key } })
    assert.equal(r.status, 200, JSON.stringify(r))
    return (r.body as { remote_address: string }).remote_address
}

/** raw HTTP/1.1 (over TLS when `ca` is given) on a socket from `from`, after `header`: the status and the JSON body */
async function httpVia(port: number, header: Buffer, method: string, path: string, opts: { key?: string; body?: unknown; from?: string; ca?: Buffer } = {}): Promise<{ status: number; body: any }> {
    const raw = await connectRaw(port, opts.from ?? PROXY)
    raw.on("error", () => {})
    raw.write(header)
    const socket = opts.ca ? await new Promise<tls.TLSSocket>((resolve, reject) => {
        const t = tls.connect({ socket: raw, ca: opts.ca, servername: "localhost" }, () => resolve(t))
        t.once("error", reject)
    }) : raw
    const body = opts.body === undefined ? "" : JSON.stringify(opts.body)
    const headers = [`${method} ${path} HTTP/1.1`, "Host: feeds", "Connection: close", `Content-Length: ${Buffer.byteLength(body)}`, ...(opts.key ? [`X-ApiKey: ${opts.key}`] : [])]
    socket.write(headers.join("\r\n") + "\r\n\r\n" + body)
    let text = ""
    socket.on("data", (d) => (text += d))
    await closed(raw)
    const m = /^HTTP\/1\.1 (\d+)[^]*?\r\n\r\n([^]*)$/.exec(text)
    assert.ok(m, `an HTTP response: ${JSON.stringify(text.slice(0, 200))}`)
    return { status: Number(m[1]), body: m[2] ? JSON.parse(m[2]) : undefined }
}

/** an HTTPS request to `a` through "the proxy" */
function httpsVia(header: Buffer, path: string, key?: string): Promise<{ status: number; body: any }> {
    return httpVia(a.appPort, header, "GET", path, { key, ca: a.ca })
}

describe("the announced address stands for the connection", () => {
    test("device port (v2) and HTTPS app port (v1): /session and /v2/sessions show the clients, not the proxy", async () => {
        const device = await deviceVia(a, proxyV2("10.1.0.1", 40001))
        try {
            assert.equal(await addressOf(device, a.credentials.deviceKey), "10.1.0.1")
            const mine = await httpsVia(proxyV1("10.2.0.2", 40002), "/v2/session", a.credentials.masterKey)
            assert.equal(mine.body.remote_address, "10.2.0.2")
            const all = await httpsVia(proxyV1("10.2.0.2", 40003), "/v2/sessions", a.credentials.masterKey)
            assert.equal(all.status, 200)
            const addresses = all.body.sessions.map((e: { remote_address: string }) => e.remote_address)
            assert.ok(addresses.includes("10.1.0.1"), JSON.stringify(addresses))
            assert.ok(!addresses.includes(PROXY), JSON.stringify(addresses))
        } finally {
            device.close()
        }
    })

    test("IPv6 clients behind an IPv4 proxy: the address as Node would show it", async () => {
        const device = await deviceVia(a, proxyV2("2001:db8:0:0:0:0:0:7", 1234))
        try {
            assert.equal(await addressOf(device, a.credentials.deviceKey), "2001:db8::7")
        } finally {
            device.close()
        }
    })

    test("HTTP app port (v1) and its WebSocket (v2): the client's address", async () => {
        const r = await httpVia(b.appPort, proxyV1("10.6.0.1", 5000), "GET", "/v2/session", { key: b.credentials.masterKey })
        assert.equal(r.status, 200, JSON.stringify(r.body))
        assert.equal(r.body.remote_address, "10.6.0.1")
        const ws = new WebSocket(`ws://127.0.0.1:${b.appPort}/ws`, {
            createConnection: () => {
                const raw = net.connect({ host: "127.0.0.1", port: b.appPort, localAddress: PROXY })
                raw.write(proxyV2("10.6.0.2", 5001))
                return raw
            },
        })
        try {
            const lines: string[] = []
            ws.on("message", (m) => lines.push(m.toString()))
            await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)))
            ws.send(JSON.stringify({ method: "get", resource: "/session", headers: { "X-ApiKey": b.credentials.masterKey }, token: "s" }))
            const answer = await until("the /session answer", () => lines.map((l) => JSON.parse(l)).find((l) => l.token === "s"))
            assert.equal(answer.body.remote_address, "10.6.0.2")
        } finally {
            ws.terminate()
        }
    })
})

function droppedForAddress(metrics: string): number {
    return Number(/feedline_handshakes_dropped_total\{bound="address"\} (\d+)/.exec(metrics)?.[1] ?? 0)
}

/**
 * A pending handshake from `other`, then three silent ones from `flood` (one address, or addresses of one
 * limit key): over `a`'s two per address the flood's oldest is dropped, and only it; `other` completes.
 */
async function silentFloodDropsOnlyItsOwn(other: string, flood: string[]): Promise<void> {
    const before = a.metrics.render()
    const silent: net.Socket[] = []
    try {
        for (const [i, source] of [other, ...flood].entries()) {
            const s = await connectRaw(a.devicePort, PROXY)
            s.write(proxyV2(source, 10 + i))
            silent.push(s)
        }
        await closed(silent[1])
        assert.equal(droppedForAddress(a.metrics.render()), droppedForAddress(before) + 1)
        assert.ok(!silent[2].destroyed && !silent[3].destroyed)
        const c = await TlsClient.connect(a, { socket: silent[0] })
        await c.welcome()
        c.close()
    } finally {
        silent.forEach((s) => s.destroy())
    }
}

/**
 * Three device connections through "the proxy" with `first` (a header and the address /session must show)
 * fill `a`'s three per address; the fourth (`over`) is refused; `other` still gets in.
 */
async function fourthConnectionRefused(first: (readonly [Buffer, string])[], over: Buffer, other: readonly [Buffer, string]): Promise<void> {
    const open: TlsClient[] = []
    try {
        for (const [header, shown] of first) {
            const c = await deviceVia(a, header)
            open.push(c)
            assert.equal(await addressOf(c, a.credentials.deviceKey), shown)
        }
        const fourth = await deviceVia(a, over, false)
        open.push(fourth)
        assert.equal(await closedWith(fourth), "E_TOO_MANY_CONNECTIONS")
        const another = await deviceVia(a, other[0])
        open.push(another)
        assert.equal(await addressOf(another, a.credentials.deviceKey), other[1])
    } finally {
        open.forEach((c) => c.close())
    }
}

describe("per-address limits count the announced addresses", () => {
    test("one address's flood of connections without a key evicts its own, not another address's behind the same proxy", async () => {
        const device = await deviceVia(a, proxyV2("10.3.0.2", 1))
        const flood: TlsClient[] = []
        try {
            // 10.3.0.1 opens four without a key: over its two, its own oldest are closed
            for (let i = 0; i < 4; i++) flood.push(await deviceVia(a, proxyV2("10.3.0.1", 100 + i)))
            for (const evicted of flood.slice(0, 2)) assert.equal(await closedWith(evicted), "E_TOO_MANY_UNAUTHENTICATED")
            for (const kept of flood.slice(2)) assert.equal(kept.q.closed, false)
            // the device behind the same proxy, still without a key, was not touched
            assert.equal(device.q.closed, false)
            assert.equal(await addressOf(device, a.credentials.deviceKey), "10.3.0.2")
        } finally {
            device.close()
            flood.forEach((c) => c.close())
        }
    })

    test("connections per address: the fourth from one address is refused, another address still gets in", () =>
        fourthConnectionRefused(
            [proxyV1("10.3.1.1", 200), proxyV1("10.3.1.1", 201), proxyV1("10.3.1.1", 202)].map((h) => [h, "10.3.1.1"] as const),
            proxyV1("10.3.1.1", 203),
            [proxyV1("10.3.1.2", 204), "10.3.1.2"],
        ))

    test("pending TLS handshakes per address: a silent flood from one announced address drops only its own", () =>
        silentFloodDropsOnlyItsOwn("10.4.0.2", ["10.4.0.1", "10.4.0.1", "10.4.0.1"]))

    test("claims per address: one address's exhausted budget leaves another's (HTTP app port)", async () => {
        const p = await makeProduct(b)
        const claimFrom = (address: string, hw: string) =>
            httpVia(b.appPort, proxyV1(address, 7000), "POST", `/v2/products/${p.id}/claims`, { body: { hardware_id: hw, code: p.code(hw), firmware: "0.1.0" } })
        assert.equal((await claimFrom("10.5.0.1", "hw-1")).status, 201)
        const again = await claimFrom("10.5.0.1", "hw-2")
        assert.deepEqual([again.status, again.body.code], [429, "E_CLAIM_RATE_LIMITED"])
        assert.equal((await claimFrom("10.5.0.2", "hw-3")).status, 201)
    })
})

describe("an IPv6 /64 is one address for the limits; an IPv4-mapped address is its IPv4 address (limit-key.ts)", () => {
    test("connections per address: three from one /64 (any addresses in it) fill it; another /64 still gets in; /session shows each full address", () =>
        fourthConnectionRefused(
            [
                [proxyV1("2001:db8:a:1::1", 300), "2001:db8:a:1::1"],
                [proxyV1("2001:DB8:A:1:0:0:0:2", 301), "2001:db8:a:1::2"],
                [proxyV2("2001:db8:a:1:ffff:ffff:ffff:ffff", 302), "2001:db8:a:1:ffff:ffff:ffff:ffff"],
            ],
            proxyV2("2001:db8:a:1:1234::9", 303),
            [proxyV2("2001:db8:a:2::1", 304), "2001:db8:a:2::1"],
        ))

    test("connections per address: an IPv4 client on a dual-stack listener (::ffff:a.b.c.d) shares its IPv4 address's budget, and no other IPv4 address's", () =>
        fourthConnectionRefused(
            [
                [proxyV2("::ffff:a08:1", 400), "::ffff:10.8.0.1"],
                [proxyV1("10.8.0.1", 401), "10.8.0.1"],
                [proxyV2("::ffff:a08:1", 402), "::ffff:10.8.0.1"],
            ],
            proxyV1("10.8.0.1", 403),
            // the mapped addresses are not one /64 (all of IPv4 is in ::ffff:0:0/96)
            [proxyV2("::ffff:a08:2", 404), "::ffff:10.8.0.2"],
        ))

    test("pending TLS handshakes per address: a silent flood from addresses of one /64 drops only its own", () =>
        silentFloodDropsOnlyItsOwn("2001:db8:d:2::1", ["2001:db8:d:1::1", "2001:db8:d:1::2", "2001:db8:d:1:ffff::3"]))

    test("claims per address (HTTP app port): another address of a /64 that claimed is refused, another /64 and another mapped IPv4 address are not", async () => {
        const p = await makeProduct(b)
        const claimFrom = (address: string, hw: string) =>
            httpVia(b.appPort, proxyV1(address, 7100), "POST", `/v2/products/${p.id}/claims`, { body: { hardware_id: hw, code: p.code(hw), firmware: "0.1.0" } })
        const statusOf = async (address: string, hw: string) => {
            const r = await claimFrom(address, hw)
            return r.status === 429 ? r.body.code : r.status
        }
        assert.equal(await statusOf("2001:db8:b:1::1", "hw6-1"), 201)
        assert.equal(await statusOf("2001:DB8:B:1:0:0:0:2", "hw6-2"), "E_CLAIM_RATE_LIMITED")
        assert.equal(await statusOf("2001:db8:b:2::1", "hw6-3"), 201)
        assert.equal(await statusOf("::ffff:10.9.0.1", "hw6-4"), 201)
        assert.equal(await statusOf("::ffff:10.9.0.2", "hw6-5"), 201)
        assert.equal(await statusOf("10.9.0.1", "hw6-6"), "E_CLAIM_RATE_LIMITED")
    })

    test("failed keys: ten from ten addresses of one /64 lock the /64 out (429 E_AUTH_RATE_LIMITED, POST /jwt too), not another /64", async () => {
        const withBadKey = (address: string) => httpVia(b.appPort, proxyV1(address, 7200), "GET", "/v2/feeds", { key: "not-a-key" })
        for (let i = 1; i <= AUTH_FAILURES_BURST; i++) assert.equal((await withBadKey(`2001:db8:c:1::${i.toString(16)}`)).status, 401)
        const locked = await withBadKey("2001:db8:c:1:abcd::1")
        assert.deepEqual([locked.status, locked.body.code], [429, "E_AUTH_RATE_LIMITED"])
        assert.equal((await withBadKey("2001:db8:c:2::1")).status, 401)
        // POST /jwt is behind the same gate: locked for the /64, open to another /64
        const signIn = (address: string) => httpVia(b.appPort, proxyV1(address, 7300), "POST", "/jwt", { key: b.credentials.deviceKey })
        const gated = await signIn("2001:db8:c:1::beef")
        assert.deepEqual([gated.status, gated.body.code], [429, "E_AUTH_RATE_LIMITED"])
        assert.equal((await signIn("2001:db8:c:3::1")).status, 200)
    })
})

describe("a trusted proxy's connection without a valid header is closed with its code", () => {
    for (const [code, what, bytes] of [
        ["E_PROXY_HEADER_BAD", "a malformed v1 line", Buffer.from("PROXY TCP4 10.0.0.01 1.2.3.4 1 2\r\n")],
        ["E_PROXY_HEADER_BAD", "a v2 header with command 3", Buffer.concat([proxyV2("10.0.0.1", 1).subarray(0, 12), Buffer.from([0x23]), proxyV2("10.0.0.1", 1).subarray(13)])],
        ["E_PROXY_HEADER_MISSING", "no header: TLS at once", Buffer.from([0x16, 0x03, 0x01, 0x00, 0x10])],
        ["E_PROXY_HEADER_TIMEOUT", "half a header, then nothing", proxyV2("10.0.0.1", 1).subarray(0, 20)],
        ["E_PROXY_HEADER_TIMEOUT", "nothing at all", Buffer.alloc(0)],
    ] as const) {
        for (const door of ["device", "app"] as const) {
            test(`${what} (${door} port): ${code}`, async () => {
                const before = (logA.text.match(new RegExp(code, "g")) ?? []).length
                const s = await connectRaw(door === "device" ? a.devicePort : a.appPort, PROXY)
                s.on("error", () => {})
                s.write(bytes)
                await closed(s)
                await until(`${code} logged`, () => (logA.text.match(new RegExp(code, "g")) ?? []).length > before)
                assert.match(a.metrics.render(), new RegExp(`feedline_proxy_headers_refused_total\\{code="${code}"\\} \\d+`))
            })
        }
    }

    test("a v2 LOCAL (HAProxy's health check): served as the proxy's own connection, on both ports", async () => {
        const health = await httpsVia(proxyV2Local(), "/healthz")
        assert.deepEqual([health.status, health.body.status], [200, "ok"])
        const device = await deviceVia(a, proxyV2Local())
        try {
            assert.equal(await addressOf(device, a.credentials.deviceKey), PROXY)
        } finally {
            device.close()
        }
    })
})

test("--trusted-proxies takes addresses and networks, IPv4 and IPv6; anything else stops the start with the reason", async () => {
    const list = trustedProxiesOf(["10.0.0.2", " 10.0.1.0/24", "fd00::/64", "::1"])
    for (const [address, trusted] of [["10.0.0.2", true], ["10.0.0.3", false], ["10.0.1.200", true], ["::ffff:10.0.1.7", true], ["fd00::9", true], ["fd01::9", false], ["::1", true]] as const) {
        assert.equal(isTrustedProxy(list, { remoteAddress: address }), trusted, address)
    }
    for (const bad of ["haproxy.local", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/8/8", "fe80::1%eth0", "::/129", ""]) {
        assert.throws(() => trustedProxiesOf([bad]), (e: Error) => e instanceof ConfigError && /--trusted-proxies: .* is not an IP address or a network/.test(e.message), bad)
    }
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-test-"))
    try {
        await assert.rejects(startTestServer({ dataDir, trustedProxies: ["10.0.0.0/40"] }), ConfigError)
    } finally {
        rmSync(dataDir, { recursive: true, force: true })
    }
})

describe("anyone else cannot spoof an address", () => {
    test("device port: a PROXY header from an untrusted address is refused and logged; its plain TLS connections are served as its own", async () => {
        const s = await connectRaw(a.devicePort, OTHER)
        s.on("error", () => {})
        s.write(proxyV2("10.9.9.9", 1))
        await closed(s)
        await until("E_PROXY_UNTRUSTED logged", () => /"door":"device","code":"E_PROXY_UNTRUSTED"/.test(logA.text))
        const direct = await TlsClient.connect(a, { socket: await connectRaw(a.devicePort, OTHER) })
        try {
            await direct.welcome()
            assert.equal(await addressOf(direct, a.credentials.deviceKey), OTHER)
        } finally {
            direct.close()
        }
    })

    test("app port, HTTPS and HTTP: a PROXY header from an untrusted address gets 400 E_PROXY_UNTRUSTED", async () => {
        for (const s of [a, b]) {
            const r = await httpVia(s.appPort, proxyV1("10.9.9.9", 1), "GET", "/v2/session", { key: s.credentials.masterKey, from: OTHER })
            assert.deepEqual([r.status, r.body.code], [400, "E_PROXY_UNTRUSTED"])
        }
        const direct = await httpVia(b.appPort, Buffer.alloc(0), "GET", "/v2/session", { key: b.credentials.masterKey, from: OTHER })
        assert.equal(direct.body.remote_address, OTHER)
    })
})
