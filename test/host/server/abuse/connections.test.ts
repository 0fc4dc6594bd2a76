// Resource abuse on the connection level, against `feedline serve` in a child process: many TLS
// connections at once, the connection limit, and slowloris TLS handshakes. The server must keep
// serving, refuse with a notice, close what overstays, and keep its memory bounded (peak printed).
import { test, before, after } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import { performance } from "node:perf_hooks"
import { TLS_HANDSHAKE_TIMEOUT_MS } from "../../../../devs/server/limits.ts"
import { TlsClient } from "../../harness/server-harness.ts"
import { metricSum, startChildServer, stopAndReport, type ChildServer } from "./child-server.ts"
import { until } from "../../harness/until.ts"

/** Connections the test holds open at once, and the server's limit a little above them. */
const MANY = 250
const MAX_CONNECTIONS = 300
const OVER_LIMIT = 60
const SLOW_HANDSHAKES = 100
/** A generous ceiling: it catches per-connection leaks (hundreds of MiB), not ordinary variation. */
const PEAK_RSS_LIMIT_MIB = 400

let server: ChildServer

before(async () => {
    // slow keep-alive so idle test connections are not closed as silent while the test holds them; every
    // connection uses the device key, and this is the bound in all, not the one per key (a quarter of it)
    server = await startChildServer(["--max-connections", String(MAX_CONNECTIONS), "--max-connections-per-key", String(MAX_CONNECTIONS), "--heartbeat-ms", "20000", "--timeout-ms", "60000"])
})

after(() => stopAndReport(server, "abuse-connections", PEAK_RSS_LIMIT_MIB))

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/**
 * n connections, each authenticated with the device key as a device's would be: a connection that sends no
 * key within the auth deadline, or more than 64 of them from one address, holds no slot (issue 12 item 3).
 */
async function openMany(n: number, batch = 50): Promise<TlsClient[]> {
    const out: TlsClient[] = []
    const open = async () => {
        const c = await TlsClient.connect(server, { heartbeat: false })
        await c.welcome()
        const r = await c.request({ method: "get", resource: "/session", headers: { "X-ApiKey": server.credentials.deviceKey } })
        assert.equal(r.status, 200)
        return c
    }
    for (let i = 0; i < n; i += batch) out.push(...(await Promise.all(range(Math.min(batch, n - i)).map(open))))
    return out
}

test("many TLS connections at once: all welcomed, the server keeps serving; over the limit: 429 notice", { timeout: 60_000 }, async () => {
    const key = server.credentials.deviceKey
    const feed = server.credentials.feedId
    const rssBefore = server.rssMiB()
    const t0 = performance.now()
    const clients = await openMany(MANY)
    const openMs = performance.now() - t0
    const rssMany = server.rssMiB()

    const fresh = await TlsClient.open(server, key)
    const t1 = performance.now()
    const put = await fresh.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "busy", current_value: "1" }] } })
    const putMs = performance.now() - t1
    assert.equal(put.status, 200)

    // MANY + fresh are open; of OVER_LIMIT more, those past MAX_CONNECTIONS are told to come back later
    const extra = await Promise.all(range(OVER_LIMIT).map(() => TlsClient.connect(server, { heartbeat: false }).catch(() => undefined)))
    let welcomed = 0
    let refused = 0
    for (const c of extra) {
        if (!c) {
            refused++
            continue
        }
        const first = await c.q.next((l) => l.kind === "welcome" || (l.kind === "response" && l.response!.token === undefined))
        if (first.kind === "welcome") welcomed++
        else {
            refused++
            assert.equal(first.response!.status, 429)
            assert.equal(first.response!.body.code, "E_TOO_MANY_CONNECTIONS")
            assert.ok(first.response!.body.retry_after_ms > 0, "the notice says when to come back")
            await c.q.untilClosed()
        }
    }
    console.log(
        `# ${MANY} TLS connections opened in ${openMs.toFixed(0)} ms; server RSS ${rssBefore.toFixed(0)} -> ${rssMany.toFixed(0)} MiB ` +
            `(${(((rssMany - rssBefore) * 1024) / MANY).toFixed(1)} KiB each); a PUT meanwhile took ${putMs.toFixed(1)} ms; ` +
            `over the limit of ${MAX_CONNECTIONS}: ${welcomed} welcomed, ${refused} refused`
    )
    assert.ok(welcomed <= MAX_CONNECTIONS - MANY - 1, `${welcomed} welcomed past the limit`)
    assert.ok(refused >= OVER_LIMIT - (MAX_CONNECTIONS - MANY - 1), `${refused} refused`)

    for (const c of [...clients, fresh, ...extra]) c?.close()
    await until("the server to release every connection", async () => metricSum(await server.metrics(), "feedline_connections_open") === 0)
})

/** Set by the slowloris test: how the stalled handshakes ended (checked by the next test). */
let stalled: { silent: number; dripping: number; closedSilent: number; closedDripping: number; firstCloseMs: number; waitedMs: number } | undefined

test("slowloris TLS handshakes: a real client is served meanwhile, memory stays bounded", { timeout: TLS_HANDSHAKE_TIMEOUT_MS + 30_000 }, async () => {
    const t0 = performance.now()
    /** Half the connections send nothing after a record header; the other half drip one byte a second. */
    const open = (drip: boolean) => {
        const s = net.connect({ port: server.devicePort, host: "127.0.0.1" })
        const rec = { s, closedAtMs: undefined as number | undefined, drip: undefined as NodeJS.Timeout | undefined }
        s.on("error", () => {})
        s.on("close", () => {
            rec.closedAtMs = performance.now() - t0
            clearInterval(rec.drip)
        })
        // a TLS record header promising a 512-byte ClientHello, which never comes
        s.on("connect", () => {
            s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]))
            if (drip) rec.drip = setInterval(() => s.write(Buffer.from([0x01])), 1000)
        })
        return rec
    }
    const silent = range(SLOW_HANDSHAKES / 2).map(() => open(false))
    const dripping = range(SLOW_HANDSHAKES / 2).map(() => open(true))
    const all = [...silent, ...dripping]
    try {
        await until("the slow connections to connect", () => all.every((r) => !r.s.connecting))
        const t1 = performance.now()
        const c = await TlsClient.open(server, server.credentials.deviceKey)
        const r = await c.request({ method: "get", resource: "/session" })
        const servedMs = performance.now() - t1
        assert.equal(r.status, 200)
        c.close()

        // give the server its handshake timeout and some slack to close them (checked by the next test)
        const deadlineMs = TLS_HANDSHAKE_TIMEOUT_MS + 5000
        await until("the deadline", () => performance.now() - t0 > deadlineMs || all.every((r) => r.closedAtMs !== undefined), deadlineMs + 1000)
        const closes = all.map((r) => r.closedAtMs).filter((t): t is number => t !== undefined)
        stalled = {
            silent: silent.length,
            dripping: dripping.length,
            closedSilent: silent.filter((r) => r.closedAtMs !== undefined).length,
            closedDripping: dripping.filter((r) => r.closedAtMs !== undefined).length,
            firstCloseMs: closes.length ? Math.min(...closes) : NaN,
            waitedMs: performance.now() - t0,
        }
        console.log(
            `# slowloris: a real client connected and was answered in ${servedMs.toFixed(0)} ms among ${SLOW_HANDSHAKES} stalled handshakes; ` +
                `after ${(stalled.waitedMs / 1000).toFixed(1)} s (handshake timeout ${TLS_HANDSHAKE_TIMEOUT_MS / 1000} s) the server had closed ` +
                `${stalled.closedSilent}/${stalled.silent} silent and ${stalled.closedDripping}/${stalled.dripping} dripping ones; server peak RSS ${server.peakRssMiB().toFixed(0)} MiB`
        )
        assert.ok(server.peakRssMiB() < PEAK_RSS_LIMIT_MIB, `peak RSS ${server.peakRssMiB().toFixed(0)} MiB`)
    } finally {
        for (const r of all) clearInterval(r.drip), r.s.destroy()
    }
})

// Node's tls.Server only emits "tlsClientError" when `handshakeTimeout` passes; it does not close the
// socket (nodejs/node-v0.x-archive#4383, fastify/fastify#3251): the listener must, or stalled
// handshakes stay open for ever and fill maxConnections.
test("stalled TLS handshakes, silent or dripping, are closed by the handshake timeout", () => {
    assert.ok(stalled, "the slowloris test ran")
    assert.equal(stalled.closedSilent, stalled.silent, "silent handshakes still open")
    assert.equal(stalled.closedDripping, stalled.dripping, "dripping handshakes still open")
    assert.ok(stalled.firstCloseMs >= TLS_HANDSHAKE_TIMEOUT_MS / 2, "closed by the timeout, not at once")
})
