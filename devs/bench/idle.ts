// `npm run bench:idle`: the feedline server's idle cost alone, for before/after comparisons of a
// keep-alive or per-connection change in a minute instead of the full `npm run bench`. The same server
// start and load generator as the full run's idle phases:
//   - CPU with FEEDLINE_IDLE_DEVICES (default 1000) devices (opened as the full run opens them) at the
//     default keep-alive (the `field` profile since issue 13; FEEDLINE_BENCH_SERVER_ARGS="--heartbeat-ms 300
//     --timeout-ms 3000" for the 300 ms contract [P§4]), measured over 5 s after 2 s to settle;
//   - memory per idle TLS connection: a fresh server at the metered-link keep-alive holding
//     FEEDLINE_IDLE_HOLD (default 2000) connections, RSS above the server's own idle RSS; then as many
//     again, and the slope between the two counts (what one more connection costs, without the slack a
//     process holds at rest, which the first figure divides in);
//   - the same memory figure with the connections opened one at a time, as a fleet arrives (the handshakes
//     then do not overlap, and what each frees is what the next connection's buffers are carved from).
import { mkdtempSync, rmSync } from "node:fs"
import os, { tmpdir } from "node:os"
import { join } from "node:path"
import { runEntry } from "./entry.ts"
import { LoadGenWorker } from "./loadgen/driver.ts"
import { cpuBetween, sampleProc } from "./proc-stats.ts"
import { startFeedline } from "./targets/feedline.ts"
import { isSkipped, type RunningTarget } from "./targets/target.ts"
import { makeTlsFixture, type TlsFixture } from "./tls-fixture.ts"

/**
 * FEEDLINE_IDLE_SETTLE_MS: the wait before each sample, for the server to settle after connections
 * opened (default 2000; six of them); FEEDLINE_IDLE_MEASURE_MS: the idle-CPU window (default 5000).
 * The smoke run in npm test sets both small: it checks that figures are printed, not what they are.
 */
const SETTLE_MS = Number(process.env.FEEDLINE_IDLE_SETTLE_MS ?? 2000)
const MEASURE_MS = Number(process.env.FEEDLINE_IDLE_MEASURE_MS ?? 5000)
const OPEN_CONCURRENCY = 64
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const load = () => os.loadavg()[0].toFixed(1)

async function withTarget<T>(tls: TlsFixture, workDir: string, meteredKeepAlive: boolean, run: (t: RunningTarget, gen: LoadGenWorker) => Promise<T>): Promise<T> {
    const target = await startFeedline({ tls, workDir, mayInstall: false, meteredKeepAlive, log: (l) => console.log(l) })
    if (isSkipped(target)) throw new Error(target.skipped)
    try {
        const gen = await LoadGenWorker.start(target.address, target.pid)
        try {
            return await run(target, gen)
        } finally {
            await gen.stop()
        }
    } finally {
        await target.stop()
    }
}

async function main(): Promise<void> {
    const devices = Number(process.env.FEEDLINE_IDLE_DEVICES ?? 1000)
    const hold = Number(process.env.FEEDLINE_IDLE_HOLD ?? 2000)
    const scratch = mkdtempSync(join(tmpdir(), "feedline-idle-"))
    try {
        const tls = await makeTlsFixture(join(scratch, "tls"))
        await withTarget(tls, scratch, false, async (t, gen) => {
            const open = await gen.openDevices(devices, OPEN_CONCURRENCY)
            await sleep(SETTLE_MS)
            const a = sampleProc(t.pid)
            await sleep(MEASURE_MS)
            const b = sampleProc(t.pid)
            console.log(`idle CPU, ${open.open} devices at the default keep-alive: ${(cpuBetween(a, b).coreShare * 100).toFixed(1)}% of a core; load average ${load()}`)
        })
        await withTarget(tls, scratch, true, async (t, gen) => {
            await sleep(SETTLE_MS)
            const base = sampleProc(t.pid).rssBytes
            const open = await gen.openDevices(hold, OPEN_CONCURRENCY)
            await sleep(SETTLE_MS)
            const b = sampleProc(t.pid)
            const all = await gen.openDevices(2 * hold, OPEN_CONCURRENCY) // grows the set to 2 × hold
            await sleep(SETTLE_MS)
            const c = sampleProc(t.pid)
            const kib = (bytes: number, n: number) => (bytes / Math.max(1, n) / 1024).toFixed(1)
            console.log(
                `memory: idle RSS ${(base / 2 ** 20).toFixed(1)} MiB; ${open.open} idle TLS connections (metered keep-alive): RSS ${(b.rssBytes / 2 ** 20).toFixed(1)} MiB, ${kib(b.rssBytes - base, open.open)} KiB each; ` +
                    `${all.open - open.open} more: RSS ${(c.rssBytes / 2 ** 20).toFixed(1)} MiB, ${kib(c.rssBytes - b.rssBytes, all.open - open.open)} KiB each; load average ${load()}`,
            )
        })
        await withTarget(tls, scratch, true, async (t, gen) => {
            await sleep(SETTLE_MS)
            const base = sampleProc(t.pid).rssBytes
            const open = await gen.openDevices(hold, 1)
            await sleep(SETTLE_MS)
            const b = sampleProc(t.pid)
            console.log(
                `memory, opened one at a time: ${open.open} idle TLS connections: RSS ${(b.rssBytes / 2 ** 20).toFixed(1)} MiB, ${((b.rssBytes - base) / Math.max(1, open.open) / 1024).toFixed(1)} KiB each; load average ${load()}`,
            )
        })
    } finally {
        rmSync(scratch, { recursive: true, force: true })
    }
}

runEntry(main)
