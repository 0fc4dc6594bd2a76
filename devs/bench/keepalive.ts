// `npm run bench:keepalive`: the numbers behind the keep-alive profiles (docs/FIRMWARE.md "Keep-alive profiles"). For
// each candidate contract, `feedline serve` in its own process holds DEVICES idle devices (the load
// generator's: welcome, auth, a subscription, then blank-line heartbeats when quiet, as the firmware does)
// and its CPU is read from /proc over a window; one more connection counts its raw TCP bytes (TLS records
// included) over a number of heartbeat periods. Bytes per device per day are those bytes scaled to a day,
// plus the TCP/IP headers each heartbeat costs on the wire (computed, not captured). A few minutes.
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import tls from "node:tls"
import { LoadGenWorker } from "./loadgen/driver.ts"
import { cpuBetween, sampleProc } from "./proc-stats.ts"
import { startFeedline } from "./targets/feedline.ts"
import { isSkipped } from "./targets/target.ts"
import { makeTlsFixture } from "./tls-fixture.ts"
import { KEEPALIVE_PROFILES } from "../server/limits.ts"

const DEVICES = Number(process.env.FEEDLINE_BENCH_KEEPALIVE_DEVICES ?? 1000)
/** Knobs for a quick run (the suite's smoke run): the profiles to measure (names, comma-separated), the CPU
 * window and the heartbeat periods counted; defaults are the documented figures' settings. */
const ONLY = process.env.FEEDLINE_BENCH_KEEPALIVE_ONLY?.split(",")
const MIN_WINDOW_MS = Number(process.env.FEEDLINE_BENCH_KEEPALIVE_WINDOW_MS ?? 20_000)
const MAX_PERIODS = Number(process.env.FEEDLINE_BENCH_KEEPALIVE_PERIODS ?? 20)
const OPEN_CONCURRENCY = 50
/** IPv4 + TCP headers with the timestamp option, per segment: a heartbeat record, and the ACK it gets */
const TCP_IP_HEADER_BYTES = 52

interface Candidate {
    name: string
    heartbeatMs: number
    faultyMs: number
    timeoutMs: number
}

const CANDIDATES: Candidate[] = [
    { name: "seed", ...KEEPALIVE_PROFILES.seed },
    { name: "5 s", heartbeatMs: 5000, faultyMs: 12000, timeoutMs: 20000 },
    { name: "field", ...KEEPALIVE_PROFILES.field },
    { name: "60 s", heartbeatMs: 60000, faultyMs: 90000, timeoutMs: 180000 },
].filter((c) => !ONLY || ONLY.includes(c.name))
if (CANDIDATES.length === 0) throw new Error(`FEEDLINE_BENCH_KEEPALIVE_ONLY names no profile; the profiles are seed, "5 s", field and "60 s"`)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Raw TCP bytes one idle device moves per heartbeat period, each way (TLS records included). */
async function bytesPerHeartbeat(port: number, caPath: string, deviceKey: string, feedId: number, heartbeatMs: number, periods: number) {
    const raw = net.connect(port, "127.0.0.1")
    const t = tls.connect({ socket: raw, servername: "localhost", ca: readFileSync(caPath) })
    let sentAtMs = Date.now()
    let buf = ""
    let welcomed = false
    t.on("data", (d: Buffer) => {
        buf += d.toString()
        if (!welcomed && buf.includes("\n")) {
            welcomed = true
            // a device authenticates with its first request, as the firmware does
            t.write(JSON.stringify({ method: "subscribe", resource: `/feeds/${feedId}/datastreams/led`, headers: { "X-ApiKey": deviceKey }, token: "s" }) + "\n")
            sentAtMs = Date.now()
        }
    })
    const timer = setInterval(() => {
        if (welcomed && Date.now() - sentAtMs >= heartbeatMs) {
            t.write("\n")
            sentAtMs = Date.now()
        }
    }, Math.min(100, heartbeatMs / 4))
    await sleep(heartbeatMs * 2 + 1000) // past the welcome, the subscription and their acknowledgements
    const up0 = raw.bytesWritten
    const down0 = raw.bytesRead
    await sleep(heartbeatMs * periods)
    const up = (raw.bytesWritten - up0) / periods
    const down = (raw.bytesRead - down0) / periods
    clearInterval(timer)
    t.destroy()
    return { up, down }
}

const dir = mkdtempSync(join(tmpdir(), "feedline-bench-keepalive-"))
const fx = await makeTlsFixture(dir)
const rows: string[] = []
try {
    for (const c of CANDIDATES) {
        process.env.FEEDLINE_BENCH_SERVER_ARGS = `--heartbeat-ms ${c.heartbeatMs} --faulty-ms ${c.faultyMs} --timeout-ms ${c.timeoutMs} --log-level warn`
        const target = await startFeedline({ tls: fx, workDir: dir, mayInstall: false, meteredKeepAlive: false, log: console.log })
        if (isSkipped(target)) throw new Error(target.skipped)
        const gen = await LoadGenWorker.start(target.address, target.pid)
        try {
            const open = await gen.openDevices(DEVICES, OPEN_CONCURRENCY)
            if (open.failed) throw new Error(`${open.failed} of ${DEVICES} devices failed to connect: ${open.firstError}`)
            const windowMs = Math.max(MIN_WINDOW_MS, 3 * c.heartbeatMs)
            await sleep(Math.max(3000, c.heartbeatMs + 1000))
            const a = sampleProc(target.pid)
            await sleep(windowMs)
            const cpu = cpuBetween(a, sampleProc(target.pid))
            const addr = target.address as { port: number; caPath: string; deviceKey: string; feedId: number }
            const periods = Math.max(3, Math.min(MAX_PERIODS, Math.floor(30_000 / c.heartbeatMs)))
            const b = await bytesPerHeartbeat(addr.port, addr.caPath, addr.deviceKey, addr.feedId, c.heartbeatMs, periods)
            const perDay = 86_400_000 / c.heartbeatMs
            const tlsPerDay = (b.up + b.down) * perDay
            const wirePerDay = tlsPerDay + perDay * 4 * TCP_IP_HEADER_BYTES
            const closes = (await gen.counts()).unexpectedCloses
            const row = [
                c.name,
                `${c.heartbeatMs / 1000} s / ${c.faultyMs / 1000} s / ${c.timeoutMs / 1000} s`,
                `${((cpu.coreShare * 100) / (DEVICES / 1000)).toFixed(2)} %`,
                `${b.up.toFixed(0)} / ${b.down.toFixed(0)} B`,
                `${(tlsPerDay / 1e6).toFixed(2)} MB`,
                `${(wirePerDay / 1e6).toFixed(2)} MB`,
                `${c.faultyMs / 1000} s / ${c.timeoutMs / 1000} s`,
                `${closes}`,
            ]
            console.log(row.join(" | "))
            rows.push(`| ${row.join(" | ")} |`)
        } finally {
            await gen.stop()
            await target.stop()
        }
    }
} finally {
    delete process.env.FEEDLINE_BENCH_SERVER_ARGS
    rmSync(dir, { recursive: true, force: true })
}
console.log(`\n${DEVICES} idle devices, ${new Date().toISOString()}, load average ${(await import("node:os")).loadavg()[0].toFixed(1)}`)
console.log("| profile | heartbeat / faulty / timeout | server CPU per 1,000 idle devices (% of a core) | TLS bytes per heartbeat, device → server / back | per device per day, TLS | per device per day, with TCP/IP headers | degraded / dead after | unexpected closes |")
console.log("|---|---|---|---|---|---|---|---|")
for (const r of rows) console.log(r)
