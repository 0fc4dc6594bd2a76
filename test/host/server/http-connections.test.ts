// The app port's HTTP connections have their own budget, in all and per remote address (limits.ts
// MAX_HTTP_CONNECTIONS): idle HTTP connections from one address can no longer hold the process's
// descriptors, which the device port shares. Other addresses are sources on 127.0.0.0/8 (Linux answers on all).
import { test } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import tls from "node:tls"
import WebSocket from "ws"
import { httpConnectionRefusal } from "../../../devs/server/listeners/http-connections.ts"
import { proxyV1 } from "./proxy-headers.ts"
import { startTestServer, TlsClient, type TestServer } from "../harness/server-harness.ts"
import { until } from "../harness/until.ts"

type Scheme = "http" | "https"
type Outcome = "served" | "refused" | "pending"

/**
 * A connection to the app port from `from`. With `request` a whole GET /healthz: `outcome` resolves
 * "served" on its answer, "refused" if it closes unanswered. Without, headers that never end: the
 * connection stays open (the test's header timeout is long), and `outcome` resolves "refused" if it closes.
 */
function connectApp(server: TestServer, scheme: Scheme, from: string, request: boolean, proxyHeader?: Buffer): { socket: net.Socket; outcome: Promise<Outcome> } {
    const socket =
        scheme === "https"
            ? tls.connect({ host: "127.0.0.1", port: server.appPort, localAddress: from, ca: server.ca } as tls.ConnectionOptions)
            : net.connect({ host: "127.0.0.1", port: server.appPort, localAddress: from })
    const outcome = new Promise<Outcome>((resolve) => {
        let answer = ""
        socket.on(scheme === "https" ? "secureConnect" : "connect", () => {
            if (proxyHeader) socket.write(proxyHeader)
            socket.write(request ? "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" : "GET /healthz HTTP/1.1\r\nHost: t\r\n")
            if (!request) resolve("pending")
        })
        socket.on("data", (chunk: Buffer) => {
            answer += chunk.toString("latin1")
            if (/^HTTP\/1\.1 200 /.test(answer) && answer.includes("\r\n\r\n")) resolve("served")
        })
        socket.on("error", () => {}) // refused ones are closed or reset: that is the point
        socket.on("close", () => resolve("refused"))
    })
    return { socket, outcome }
}

const served = async (server: TestServer, scheme: Scheme, from: string, proxyHeader?: Buffer): Promise<Outcome> => {
    const c = connectApp(server, scheme, from, true, proxyHeader)
    const o = await c.outcome
    c.socket.destroy()
    return o
}

const metric = (server: TestServer, name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(server.metrics.render())?.[1] ?? NaN)
const refusedBy = (server: TestServer, bound: string) =>
    Number(new RegExp(`^feedline_http_connections_refused_total\\{bound="${bound}"\\} (\\d+)$`, "m").exec(server.metrics.render())?.[1] ?? 0)

/** A device from `from`: welcomed, and its authenticated write answered 200. */
async function deviceGetsIn(server: TestServer, from: string): Promise<void> {
    const c = await TlsClient.connect(server, { localAddress: from } as tls.ConnectionOptions)
    try {
        await c.welcome()
        const r = await c.request({ method: "get", resource: `/feeds/${server.credentials.feedId}`, headers: { "X-ApiKey": server.credentials.deviceKey } })
        assert.equal(r.status, 200, `the device from ${from} was answered ${JSON.stringify(r)}`)
    } finally {
        c.close()
    }
}

test("HTTP connection refusal: the total bound first, then the address's", () => {
    const l = { total: 5, perAddress: 3 }
    assert.equal(httpConnectionRefusal({ total: 0, fromAddress: 0 }, l), undefined)
    assert.equal(httpConnectionRefusal({ total: 4, fromAddress: 2 }, l), undefined)
    assert.equal(httpConnectionRefusal({ total: 3, fromAddress: 3 }, l), "address")
    assert.equal(httpConnectionRefusal({ total: 5, fromAddress: 0 }, l), "total")
})

for (const scheme of ["http", "https"] as const) {
    test(`${scheme}: idle HTTP connections fill only their address's and the HTTP budget; other addresses, WebSockets and devices still get in; closing frees it`, { timeout: 60_000 }, async () => {
        const PER_ADDRESS = 3
        const TOTAL = 5
        const server = await startTestServer({
            appTls: scheme === "https",
            maxHttpConnections: TOTAL,
            maxHttpConnectionsPerAddress: PER_ADDRESS,
            // held connections stay until the test closes them
            httpHeadersTimeoutMs: 60_000,
            httpRequestTimeoutMs: 120_000,
        })
        const held: net.Socket[] = []
        try {
            const hold = async (from: string) => {
                const c = connectApp(server, scheme, from, false)
                held.push(c.socket)
                assert.equal(await c.outcome, "pending")
            }
            for (let i = 0; i < PER_ADDRESS; i++) await hold("127.0.0.1")
            await until("the held connections counted", () => metric(server, "feedline_http_connections_open") === PER_ADDRESS)

            // the address is full: its next connection is closed unanswered, counted, and nothing else is
            assert.equal(await served(server, scheme, "127.0.0.1"), "refused")
            assert.equal(refusedBy(server, "address"), 1)
            // another address, and the device port from the full one, still get in
            assert.equal(await served(server, scheme, "127.0.0.2"), "served")
            await deviceGetsIn(server, "127.0.0.1")

            // a WebSocket leaves the HTTP budget once upgraded (admission counts it): one after the other (each
            // is an HTTP connection until then), as many as the budget has room for in all, from a second address,
            // then that address still holds its HTTP connections
            const wsOptions = scheme === "https" ? { ca: server.ca, localAddress: "127.0.0.2" } : { localAddress: "127.0.0.2" }
            const sockets: WebSocket[] = []
            for (let i = 0; i < TOTAL; i++) {
                const ws = new WebSocket(`${scheme === "https" ? "wss" : "ws"}://127.0.0.1:${server.appPort}/ws`, wsOptions)
                sockets.push(await new Promise<WebSocket>((resolve, reject) => (ws.once("open", () => resolve(ws)), ws.once("error", reject))))
            }
            await until("the WebSockets left the HTTP budget", () => metric(server, "feedline_http_connections_open") === PER_ADDRESS)
            for (let i = 0; i < TOTAL - PER_ADDRESS; i++) await hold("127.0.0.2")
            await until("all held connections counted", () => metric(server, "feedline_http_connections_open") === TOTAL)

            // the budget in all is full: a third address is refused too, the device port still serves it
            assert.equal(await served(server, scheme, "127.0.0.3"), "refused")
            assert.equal(refusedBy(server, "total"), 1)
            await deviceGetsIn(server, "127.0.0.3")
            for (const ws of sockets) assert.equal(ws.readyState, WebSocket.OPEN, "the WebSockets were not touched")
            for (const ws of sockets) ws.terminate()

            // closing them frees the budget
            for (const s of held.splice(0)) s.destroy()
            await until("the closed connections released", () => metric(server, "feedline_http_connections_open") === 0)
            assert.equal(await served(server, scheme, "127.0.0.1"), "served")
            assert.equal(await served(server, scheme, "127.0.0.3"), "served")
        } finally {
            for (const s of held) s.destroy()
            await server.stop()
        }
    })
}

test("behind a trusted proxy the per-address HTTP bound applies to the address its PROXY header announces (an IPv6 /64 as one)", { timeout: 60_000 }, async () => {
    const PER_ADDRESS = 2
    const server = await startTestServer({ trustedProxies: ["127.0.0.1"], maxHttpConnectionsPerAddress: PER_ADDRESS, httpHeadersTimeoutMs: 60_000, httpRequestTimeoutMs: 120_000 })
    const held: net.Socket[] = []
    try {
        for (let i = 0; i < PER_ADDRESS; i++) {
            const c = connectApp(server, "http", "127.0.0.1", false, proxyV1("10.7.0.1", 4000 + i))
            held.push(c.socket)
            assert.equal(await c.outcome, "pending")
        }
        await until("the held connections counted", () => metric(server, "feedline_http_connections_open") === PER_ADDRESS)
        assert.equal(await served(server, "http", "127.0.0.1", proxyV1("10.7.0.1", 4100)), "refused")
        assert.equal(await served(server, "http", "127.0.0.1", proxyV1("10.7.0.2", 4101)), "served", "another client behind the same proxy")
        assert.equal(refusedBy(server, "address"), 1)
        // an IPv6 /64 is one address (limit-key.ts): two of its addresses fill its bound
        for (let i = 0; i < PER_ADDRESS; i++) {
            const c = connectApp(server, "http", "127.0.0.1", false, proxyV1(`2001:db8:e:1::${i + 1}`, 4200 + i))
            held.push(c.socket)
            assert.equal(await c.outcome, "pending")
        }
        await until("the /64's held connections counted", () => metric(server, "feedline_http_connections_open") === 2 * PER_ADDRESS)
        assert.equal(await served(server, "http", "127.0.0.1", proxyV1("2001:db8:e:1:ffff::3", 4300)), "refused", "another address of the same /64")
        assert.equal(await served(server, "http", "127.0.0.1", proxyV1("2001:db8:e:2::1", 4301)), "served", "another /64")
        assert.equal(refusedBy(server, "address"), 2)
    } finally {
        for (const s of held) s.destroy()
        await server.stop()
    }
})
