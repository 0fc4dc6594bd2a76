// `npm run bench:hotpath`: the feedline server's put hot path alone, for before/after comparisons of a
// server change in a minute instead of the full `npm run bench`. The same server start (devs/cli.ts
// serve, the bench certificate, --rate raised) and the same load generator as the full run's closed
// loop; prints acked updates/s and server CPU per update (all threads, and the main thread alone) for
// each round, then the ack latency of the full run's paced phase (1000 updates/s over the same
// connections, no subscribers) for each round.
//   FEEDLINE_HOTPATH_ROUNDS=3     rounds (default 3), each warm-up + measure on one fresh server
//   FEEDLINE_HOTPATH_WINDOW=8     updates in flight per connection (default 8; 50 connections)
//   FEEDLINE_HOTPATH_MEASURE_MS=5000  length of each round's measurement (default 5000; the smoke run in npm test uses less)
//   FEEDLINE_HOTPATH_PACED=1000   updates/s of the latency rounds (0: none; a list, e.g. 1000,10000: rounds at each);
//                                 each also prints the server's CPU per update at that fixed rate (both builds
//                                 batching alike: the fairer before/after comparison, e.g. at 20000, where the closed
//                                 loop's figure follows its throughput), the store's commits (from its /metrics) with
//                                 points per commit, and the CPU off the main thread per commit (the SQLite writer
//                                 thread, with V8's GC helpers: what a real fleet's moderate rate pays per commit)
//   FEEDLINE_HOTPATH_TARGET=aedes  the server under test: feedline (default) or aedes (the Node peer, MQTT QoS 1 over
//                                 TLS, the full run's Aedes target: the same figures, no commits); run the two in turn
//                                 (A B A B) to compare at the same steady rates
//   FEEDLINE_WRITER_TRACE=/tmp/t  the server traces each message to its SQLite writer thread into that file
//                                 (devs/server/storage/writer-trace.ts); each paced round then also prints where its
//                                 writes' time in the server went, housekeeping (compaction, checkpoints) apart
//   FEEDLINE_BENCH_CPU_PROFILE=1  also print the server's hottest functions when it stops
//   FEEDLINE_BENCH_CPU_PROFILE_DIR=/tmp/prof  keep the .cpuprofile files there (one per thread)
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { get as httpGet } from "node:http"
import { get as httpsGet } from "node:https"
import os, { tmpdir } from "node:os"
import { join } from "node:path"
import { runEntry } from "./entry.ts"
import { LoadGenWorker } from "./loadgen/driver.ts"
import { startAedes } from "./targets/aedes.ts"
import { startFeedline } from "./targets/feedline.ts"
import { isSkipped, type RunningTarget, type StartTarget } from "./targets/target.ts"
import { makeTlsFixture } from "./tls-fixture.ts"
import { formatTraceSummary, housekeepingSpans, readTrace, summarizeTrace } from "./writer-trace-summary.ts"

const DEVICES = 50
const WARMUP_MS = 1500
const PACED_WARMUP_MS = 1000
const TARGETS: Record<string, StartTarget> = { feedline: startFeedline, aedes: startAedes }

/** The store's commits so far (feedline_store_commit_seconds_count on the server's /metrics); undefined without one. */
async function commitsSoFar(metrics: RunningTarget["metrics"]): Promise<number | undefined> {
    if (!metrics) return undefined
    const text = await new Promise<string>((resolve, reject) => {
        const get = metrics.url.startsWith("https:") ? httpsGet : httpGet
        get(metrics.url, { ca: readFileSync(metrics.caPath) }, (res) => {
            let body = ""
            res.setEncoding("utf8")
            res.on("data", (c: string) => (body += c))
            res.on("end", () => resolve(body))
        }).on("error", reject)
    })
    const m = /^feedline_store_commit_seconds_count (\d+)/m.exec(text)
    return m ? Number(m[1]) : undefined
}

async function main(): Promise<void> {
    const rounds = Number(process.env.FEEDLINE_HOTPATH_ROUNDS ?? 3)
    const window = Number(process.env.FEEDLINE_HOTPATH_WINDOW ?? 8)
    const pacedRates = (process.env.FEEDLINE_HOTPATH_PACED ?? "1000").split(",").map(Number).filter((r) => r > 0)
    const MEASURE_MS = Number(process.env.FEEDLINE_HOTPATH_MEASURE_MS ?? 5000)
    const targetName = process.env.FEEDLINE_HOTPATH_TARGET || "feedline"
    const start = TARGETS[targetName]
    if (!start) throw new Error(`E_BENCH_TARGET: FEEDLINE_HOTPATH_TARGET=${targetName} is not one of ${Object.keys(TARGETS).join(", ")}`)
    const scratch = mkdtempSync(join(tmpdir(), "feedline-hotpath-"))
    const log = (l: string) => console.log(l)
    log(`${targetName} hot path: ${DEVICES} connections × ${window} in flight, ${rounds} rounds of ${MEASURE_MS} ms; load average ${os.loadavg()[0].toFixed(1)}`)
    try {
        const tls = await makeTlsFixture(join(scratch, "tls"))
        const target = await start({ tls, workDir: scratch, mayInstall: false, meteredKeepAlive: false, log })
        if (isSkipped(target)) throw new Error(target.skipped)
        const perUpdate: number[] = []
        const mainPerUpdate: number[] = []
        const rates: number[] = []
        /** per paced rate: each round's ack p99, CPU per update (all threads, main thread) and off-main CPU per commit */
        const paced = new Map(pacedRates.map((r) => [r, { ackP99: [] as number[], perUpdate: [] as number[], mainPerUpdate: [] as number[], offMainPerCommit: [] as number[] }]))
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
                for (const [pacedPerS, fig] of paced) {
                    for (let i = 0; i < rounds; i++) {
                        // the commit count is read around the whole phase (warm-up included): the store's count
                        // over the measured window alone is not exposed; the warm-up runs at the same rate
                        const commitsBefore = await commitsSoFar(target.metrics)
                        const pacedFrom = Date.now() + PACED_WARMUP_MS
                        const p = await gen.paced(pacedPerS, PACED_WARMUP_MS, MEASURE_MS)
                        const pacedTo = Date.now()
                        const commitsAfter = await commitsSoFar(target.metrics)
                        fig.ackP99.push(p.ack.p99)
                        const pacedUs = (p.server.cpuMs * 1000) / Math.max(1, p.acked)
                        const pacedMainUs = p.server.mainThreadCpuMs === undefined ? undefined : (p.server.mainThreadCpuMs * 1000) / Math.max(1, p.acked)
                        fig.perUpdate.push(pacedUs)
                        if (pacedMainUs !== undefined) fig.mainPerUpdate.push(pacedMainUs)
                        const cpu = `server ${pacedUs.toFixed(1)} µs CPU per update${pacedMainUs === undefined ? "" : ` (main thread ${pacedMainUs.toFixed(1)})`}`
                        let commits = ""
                        if (commitsBefore !== undefined && commitsAfter !== undefined && p.server.otherThreadsCpuMs !== undefined) {
                            // the measured window's share of the phase's commits, at its steady rate
                            const inWindow = ((commitsAfter - commitsBefore) * p.measureMs) / (p.measureMs + PACED_WARMUP_MS)
                            const offMainUs = (p.server.otherThreadsCpuMs * 1000) / Math.max(1, inWindow)
                            fig.offMainPerCommit.push(offMainUs)
                            commits = `; ${(inWindow / (p.measureMs / 1000)).toFixed(0)} commits/s, ${(p.acked / Math.max(1, inWindow)).toFixed(1)} updates per commit, off the main thread ${offMainUs.toFixed(0)} µs CPU per commit`
                        }
                        log(`  paced ${pacedPerS}/s round ${i + 1}: ${(p.acked / (p.measureMs / 1000)).toFixed(0)} acked/s, ${cpu}; ack p50 ${p.ack.p50.toFixed(2)} ms, p99 ${p.ack.p99.toFixed(2)} ms, p99.9 ${p.ack.p999.toFixed(2)} ms${commits}; device side ${p.deviceBytesPerUpdate.up.toFixed(0)} B up + ${p.deviceBytesPerUpdate.down.toFixed(0)} B down per update (TLS included); load average ${os.loadavg()[0].toFixed(1)}`)
                        const tracePath = process.env.FEEDLINE_WRITER_TRACE
                        if (tracePath && targetName === "feedline") log(`    ${formatTraceSummary(summarizeTrace(readTrace(tracePath, pacedFrom, pacedTo)))}; spans: ${housekeepingSpans(tracePath, pacedFrom, pacedTo)} (window ${pacedFrom}–${pacedTo})`)
                    }
                }
            } finally {
                await gen.stop()
            }
        } finally {
            await target.stop()
        }
        const range = (xs: number[], digits: number) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`
        let latency = ""
        for (const [pacedPerS, fig] of paced) {
            const pacedMain = fig.mainPerUpdate.length ? ` (main thread ${range(fig.mainPerUpdate, 1)})` : ""
            const perCommit = fig.offMainPerCommit.length ? `, off the main thread ${range(fig.offMainPerCommit, 0)} µs per commit` : ""
            if (fig.ackP99.length) latency += `, ack p99 ${range(fig.ackP99, 2)} ms and ${range(fig.perUpdate, 1)} µs CPU per update${pacedMain}${perCommit} at ${pacedPerS}/s`
        }
        const main = mainPerUpdate.length ? ` (main thread ${range(mainPerUpdate, 1)})` : ""
        log(`range: ${range(rates, 0)} acked/s, ${range(perUpdate, 1)} µs server CPU per update${main}${latency}; load average ${os.loadavg()[0].toFixed(1)}`)
    } finally {
        rmSync(scratch, { recursive: true, force: true })
    }
}

runEntry(main)
