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
import { startTestServer, TlsClient, WsClient } from "../harness/server-harness.ts"
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
