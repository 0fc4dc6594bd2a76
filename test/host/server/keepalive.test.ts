// The keep-alive contract a server announces [P§4] (issue 11 item 11): `faulty` derived from the
// heartbeat when not given, on every door; contradictory settings refused at start with a clear message.
// The derivation itself is the shared table test/vectors/keepalive.ts (test/host/protocol/keepalive.test.ts).
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { fileURLToPath } from "node:url"
import { startServer } from "../../../devs/server/index.ts"
import { ConfigError } from "../../../devs/server/errors.ts"
import { startTestServer, TlsClient, WAIT_MS, WsClient } from "../harness/server-harness.ts"
import { compiledCli } from "../../../devs/server/compiled.ts"

const ROOT = fileURLToPath(new URL("../../../", import.meta.url))

test("keep-alive: --heartbeat-ms 25000 --timeout-ms 60000 announces a derived faulty on TLS and WebSocket (was 1000)", async () => {
    const s = await startTestServer({ heartbeatMs: 25000, timeoutMs: 60000 })
    try {
        const tls = await TlsClient.connect(s, { heartbeat: false })
        const ws = await WsClient.open(s)
        for (const c of [tls, ws]) {
            const w = (await c.welcome()).welcome!
            assert.deepEqual([w.heartbeat, w.faulty, w.timeout], [25000, 42500, 60000])
            c.close()
        }
    } finally {
        await s.stop()
    }
})

test("keep-alive: contradictory settings are refused at start, naming the values", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-keepalive-"))
    try {
        const cases: [Record<string, number>, RegExp][] = [
            [{ heartbeatMs: 25000 }, /timeout \(3000 ms, the default\) must be at least twice heartbeat \(25000 ms\)/],
            [{ heartbeatMs: 1000, faultyMs: 800, timeoutMs: 5000 }, /faulty \(800 ms\) must be above heartbeat \(1000 ms\)/],
            [{ faultyMs: 3000 }, /faulty \(3000 ms\) must be below timeout \(3000 ms, the default\)/],
        ]
        for (const [opts, message] of cases) {
            await assert.rejects(startServer({ dataDir, devicePort: 0, appPort: 0, logLevel: "silent", ...opts }), (e: Error) => e instanceof ConfigError && message.test(e.message))
        }
    } finally {
        rmSync(dataDir, { recursive: true, force: true })
    }
})

test("keep-alive: `feedline serve` with contradictory flags exits 2 with the reason", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-keepalive-cli-"))
    try {
        const args = [compiledCli(), "serve", "--data-dir", dataDir, "--host", "127.0.0.1", "--device-port", "0", "--app-port", "0", "--heartbeat-ms", "25000"]
        const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
            execFile(process.execPath, args, { cwd: ROOT, timeout: 30_000 }, (e, _out, stderr) => resolve({ code: e ? ((e as { code?: number }).code ?? null) : 0, stderr })),
        )
        assert.equal(code, 2, stderr)
        assert.match(stderr, /feedline: keep-alive settings .*timeout \(3000 ms, the default\) must be at least twice heartbeat \(25000 ms\)/)
    } finally {
        rmSync(dataDir, { recursive: true, force: true })
    }
})

test("keep-alive profiles (issue 13): device doors announce `field` by default, the app door's WebSocket `seed`; --keepalive seed restores the seed contract on the device door", async () => {
    const announced = async (c: TlsClient | WsClient) => {
        const w = (await c.welcome()).welcome!
        c.close()
        return [w.heartbeat, w.faulty, w.timeout]
    }
    const byDefault = await startTestServer()
    try {
        assert.deepEqual(await announced(await TlsClient.connect(byDefault, { heartbeat: false })), [20000, 30000, 60000])
        assert.deepEqual(await announced(await WsClient.open(byDefault)), [300, 1000, 3000])
    } finally {
        await byDefault.stop()
    }
    const seed = await startTestServer({ keepaliveProfile: "seed" })
    try {
        assert.deepEqual(await announced(await TlsClient.connect(seed, { heartbeat: false })), [300, 1000, 3000])
    } finally {
        await seed.stop()
    }
})

test("keep-alive profiles: an unknown profile, or a profile with explicit values, is refused at start", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-keepalive-profile-"))
    try {
        const base = { dataDir, devicePort: 0, appPort: 0, logLevel: "silent" as const }
        await assert.rejects(startServer({ ...base, keepaliveProfile: "fast" as never }), (e: Error) => e instanceof ConfigError && /no profile "fast"; use seed or field/.test(e.message))
        await assert.rejects(startServer({ ...base, keepaliveProfile: "seed", heartbeatMs: 1000 }), (e: Error) => e instanceof ConfigError && /not both/.test(e.message))
    } finally {
        rmSync(dataDir, { recursive: true, force: true })
    }
})

// [P§4] Silence is time gone by, not a difference of wall-clock readings: the server's clock is stepped by NTP,
// a VM resumed from a pause or an operator setting the time, and a step is not silence. Found by the audit of
// 2026-12-07: the sessions measured it with the wall clock (`now`), so a step forward of more than `timeout`
// closed every connection at its next check (408 E_IDLE_TIMEOUT, the whole fleet reconnecting at once; a
// connection that had not sent its key yet 408 E_AUTH_TIMEOUT), and a step back stopped the server's
// heartbeats for as long as the step (its clients, hearing nothing, dropped their links as dead) and kept a
// dead connection's slot for as long.
test("keep-alive: a step of the server's wall clock closes no connection and stops no heartbeat; the welcome's time follows the wall clock", async () => {
    let stepMs = 0
    const s = await startTestServer({ keepaliveProfile: "seed", now: () => Date.now() + stepMs }) // 300 / 1000 / 3000 ms
    const key = s.credentials.deviceKey
    const clients: (TlsClient | WsClient)[] = []
    let proofs: NodeJS.Timeout | undefined
    try {
        // clients that prove they are alive every second (the timeout is 3 s): each step below comes between two proofs
        const tls = await TlsClient.connect(s, { heartbeat: false })
        await tls.welcome()
        assert.equal((await tls.request({ method: "get", resource: "/session", headers: { "X-ApiKey": key } })).status, 200)
        const ws = await WsClient.open(s)
        await ws.welcome()
        assert.equal((await ws.request({ method: "get", resource: "/session", headers: { "X-ApiKey": key } })).status, 200)
        const keyless = await TlsClient.connect(s, { heartbeat: false }) // welcomed, its key not sent yet (5 s to send it)
        await keyless.welcome()
        clients.push(tls, ws, keyless)
        proofs = setInterval(() => (tls.sendRaw(""), ws.sendRaw(""), keyless.sendRaw("")), 1000)

        stepMs += 10 * 60_000 // ten minutes forward
        await new Promise((r) => setTimeout(r, 500)) // a keep-alive check or two (every heartbeat, 300 ms)
        for (const [name, c] of [["TLS", tls], ["WebSocket", ws], ["TLS without its key yet", keyless]] as const) {
            assert.equal(c.q.closed, false, `${name}: closed after the step forward: ${c.q.lines.at(-1)?.raw}`)
        }
        assert.equal((await keyless.request({ method: "get", resource: "/session", headers: { "X-ApiKey": key } })).status, 200)
        assert.equal((await tls.request({ method: "get", resource: "/session" })).status, 200)
        const late = await TlsClient.connect(s, { heartbeat: false })
        clients.push(late)
        const welcomed = (await late.welcome()).welcome!.time
        assert.ok(Math.abs(welcomed - (Date.now() + stepMs)) < 60_000, "the welcome's time is the wall clock's, stepped")

        stepMs -= 60 * 60_000 // an hour back
        const from = late.q.lines.length
        await new Promise((r) => setTimeout(r, 1200))
        const heartbeats = late.q.lines.slice(from).filter((l) => l.kind === "heartbeat").length
        assert.ok(heartbeats >= 1, `no heartbeat from the server in 1.2 s after the step back (heartbeat 300 ms)`)
        // a silent connection is still closed after `timeout`, not an hour later
        const notice = await late.notice(3000 + WAIT_MS)
        assert.deepEqual([notice.status, notice.body.code], [408, "E_IDLE_TIMEOUT"])
        assert.equal(tls.q.closed, false, "a live connection stays")
    } finally {
        clearInterval(proofs)
        for (const c of clients) c.close()
        await s.stop()
    }
})
