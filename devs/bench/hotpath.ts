// `npm run bench:hotpath`: the feedline server's put hot path alone, for before/after comparisons of a
// server change in a minute instead of the full `npm run bench`. The same server start (devs/cli.ts
// serve, the bench certificate, --rate raised) and the same load generator as the full run's closed
// loop; prints acked updates/s and server CPU per update (all threads, and the main thread alone) for
// each round, then the ack latency of the full run's paced phase (1000 updates/s over the same
// connections, no subscribers) for each round.
//   FEEDLINE_HOTPATH_ROUNDS=3     rounds (default 3), each warm-up + measure on one fresh server
//   FEEDLINE_HOTPATH_WINDOW=8     updates in flight per connection (default 8; 50 connections)
//   FEEDLINE_HOTPATH_MEASURE_MS=5000  length of each round's measurement (default 5000; the smoke run in npm test uses less)
//   FEEDLINE_HOTPATH_PACED=1000   updates/s of the latency rounds (0: none); each also prints the server's CPU per
//                                 update at that fixed rate (both builds batching alike: the fairer before/after
//                                 comparison, e.g. at 20000, where the closed loop's figure follows its throughput)
//   FEEDLINE_BENCH_CPU_PROFILE=1  also print the server's hottest functions when it stops
//   FEEDLINE_BENCH_CPU_PROFILE_DIR=/tmp/prof  keep the .cpuprofile files there (one per thread)
import { mkdtempSync, rmSync } from "node:fs"
import os, { tmpdir } from "node:os"
import { join } from "node:path"
import { runEntry } from "./entry.ts"
import { LoadGenWorker } from "./loadgen/driver.ts"
import { startFeedline } from "./targets/feedline.ts"
import { isSkipped } from "./targets/target.ts"
import { makeTlsFixture } from "./tls-fixture.ts"

const DEVICES = 50
const WARMUP_MS = 1500
const PACED_WARMUP_MS = 1000

async function main(): Promise<void> {
    const rounds = Number(process.env.FEEDLINE_HOTPATH_ROUNDS ?? 3)
    const window = Number(process.env.FEEDLINE_HOTPATH_WINDOW ?? 8)
    const pacedPerS = Number(process.env.FEEDLINE_HOTPATH_PACED ?? 1000)
    const MEASURE_MS = Number(process.env.FEEDLINE_HOTPATH_MEASURE_MS ?? 5000)
    const scratch = mkdtempSync(join(tmpdir(), "feedline-hotpath-"))
    const log = (l: string) => console.log(l)
    log(`feedline hot path: ${DEVICES} connections × ${window} in flight, ${rounds} rounds of ${MEASURE_MS} ms; load average ${os.loadavg()[0].toFixed(1)}`)
    try {
        const tls = await makeTlsFixture(join(scratch, "tls"))
        const target = await startFeedline({ tls, workDir: scratch, mayInstall: false, meteredKeepAlive: false, log })
        if (isSkipped(target)) throw new Error(target.skipped)
        const perUpdate: number[] = []
        const mainPerUpdate: number[] = []
        const rates: number[] = []
        const ackP99s: number[] = []
        const pacedPerUpdate: number[] = []
        const pacedMainPerUpdate: number[] = []
        try {
            const gen = await LoadGenWorker.start(target.address, target.pid)
            try {
                await gen.openDevices(DEVICES, 64)
                for (let i = 0; i < rounds; i++) {
                    const r = await gen.closedLoop(DEVICES, window, WARMUP_MS, MEASURE_MS)
                    const us = (r.server.cpuMs * 1000) / Math.max(1, r.acked)
                    perUpdate.push(us)
                    rates.push(r.ackedPerS)
                    const mainUs = r.server.mainThreadCpuMs === undefined ? undefined : (r.server.mainThreadCpuMs * 1000) / Math.max(1, r.acked)
                    if (mainUs !== undefined) mainPerUpdate.push(mainUs)
                    const main = mainUs === undefined ? "" : ` (main thread ${mainUs.toFixed(1)})`
                    log(`  round ${i + 1}: ${r.ackedPerS.toFixed(0)} acked/s, server ${(r.server.coreShare * 100).toFixed(0)}% of a core, ${us.toFixed(1)} µs CPU per update${main}; load generator ${(r.clientCoreShare * 100).toFixed(0)}%, machine ${(r.machineBusy * 100).toFixed(0)}% busy${r.refused ? `; ${r.refused} refused (${r.firstRefusal})` : ""}`)
                }
                for (let i = 0; pacedPerS > 0 && i < rounds; i++) {
                    const p = await gen.paced(pacedPerS, PACED_WARMUP_MS, MEASURE_MS)
                    ackP99s.push(p.ack.p99)
                    const pacedUs = (p.server.cpuMs * 1000) / Math.max(1, p.acked)
                    const pacedMainUs = p.server.mainThreadCpuMs === undefined ? undefined : (p.server.mainThreadCpuMs * 1000) / Math.max(1, p.acked)
                    pacedPerUpdate.push(pacedUs)
                    if (pacedMainUs !== undefined) pacedMainPerUpdate.push(pacedMainUs)
                    const cpu = `server ${pacedUs.toFixed(1)} µs CPU per update${pacedMainUs === undefined ? "" : ` (main thread ${pacedMainUs.toFixed(1)})`}`
                    log(`  paced ${pacedPerS}/s round ${i + 1}: ${(p.acked / (p.measureMs / 1000)).toFixed(0)} acked/s, ${cpu}; ack p50 ${p.ack.p50.toFixed(2)} ms, p99 ${p.ack.p99.toFixed(2)} ms, p99.9 ${p.ack.p999.toFixed(2)} ms; device side ${p.deviceBytesPerUpdate.up.toFixed(0)} B up + ${p.deviceBytesPerUpdate.down.toFixed(0)} B down per update (TLS included); load average ${os.loadavg()[0].toFixed(1)}`)
                }
            } finally {
                await gen.stop()
            }
        } finally {
            await target.stop()
        }
        const range = (xs: number[], digits: number) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`
        const pacedMain = pacedMainPerUpdate.length ? ` (main thread ${range(pacedMainPerUpdate, 1)})` : ""
        const latency = ackP99s.length ? `, ack p99 ${range(ackP99s, 2)} ms and ${range(pacedPerUpdate, 1)} µs CPU per update${pacedMain} at ${pacedPerS}/s` : ""
        const main = mainPerUpdate.length ? ` (main thread ${range(mainPerUpdate, 1)})` : ""
        log(`range: ${range(rates, 0)} acked/s, ${range(perUpdate, 1)} µs server CPU per update${main}${latency}; load average ${os.loadavg()[0].toFixed(1)}`)
    } finally {
        rmSync(scratch, { recursive: true, force: true })
    }
}

runEntry(main)
