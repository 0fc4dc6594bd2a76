// `npm run bench`: every benchmark this machine can run, in one run, so ratios hold on a noisy
// machine. Prints one table and writes devs/bench/results/latest.json + latest.md.
//   FEEDLINE_BENCH_SMOKE=1       tiny sizes, every target: about a minute, more under load (what the smoke test runs)
//   FEEDLINE_BENCH_ONLY=a,b      only these parts: feedline, feedline-pg, feedline-pg-2w, mosquitto, aedes, ingest, firmware
//   FEEDLINE_BENCH_OUT=DIR       where to write latest.json/latest.md (smoke runs: a temp dir)
//   FEEDLINE_BENCH_SERVER_ARGS   extra `serve` flags for the feedline server, e.g. "--log-level warn"
//   FEEDLINE_BENCH_CPU_PROFILE=1 run the feedline server under --cpu-prof and print its hottest functions
//   FEEDLINE_BENCH_MOSQUITTO_BIN another mosquitto binary
//   node --import tsx devs/bench/run.ts --render   re-render the table of a saved latest.json
import { execSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import os, { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { runEntry } from "./entry.ts"
import { benchFirmware, type FirmwareResult } from "./firmware/index.ts"
import { FULL, profileFromEnv, SMOKE, type Profile } from "./profile.ts"
import { firmwareTable, ingestRows, machine, markdownTable, serverRows } from "./report.ts"
import { benchTargets, type TargetResult, type TargetStarts } from "./server-bench.ts"
import { benchStoreIngest, type IngestResult } from "./store-ingest.ts"
import { startAedes } from "./targets/aedes.ts"
import { startFeedline, startFeedlinePg, startFeedlinePg2 } from "./targets/feedline.ts"
import { startMosquitto } from "./targets/mosquitto.ts"
import { makeTlsFixture } from "./tls-fixture.ts"

const REPO = fileURLToPath(new URL("../../", import.meta.url))
const STARTS: TargetStarts = [
    ["feedline", startFeedline],
    ["feedline-pg", startFeedlinePg],
    ["feedline-pg-2w", startFeedlinePg2],
    ["mosquitto", startMosquitto],
    ["aedes", startAedes],
]
/** file descriptors besides the connections themselves (stdio, listeners, SQLite, IPC) */
const FD_MARGIN = 200

export interface BenchResults {
    startedAt: string
    profile: string
    machine: ReturnType<typeof machine>
    targets: TargetResult[]
    ingest?: IngestResult
    firmware?: FirmwareResult
    loadAvgAtEnd: number
    table: string
}

function fdLimit(): number {
    try {
        return Number(execSync("ulimit -n", { encoding: "utf8", shell: "/bin/sh" }).trim()) || 1024
    } catch {
        return 1024
    }
}

export async function runBench(env: NodeJS.ProcessEnv = process.env, log: (l: string) => void = console.log): Promise<BenchResults> {
    const profile = profileFromEnv(env)
    const only = env.FEEDLINE_BENCH_ONLY ? env.FEEDLINE_BENCH_ONLY.split(",").map((s) => s.trim()) : undefined
    const wanted = (part: string) => !only || only.includes(part)
    const smoke = profile.name === "smoke"
    const scratch = mkdtempSync(join(tmpdir(), "feedline-bench-"))
    const m = machine()
    log(`feedline bench (${profile.name}) on ${m.nproc} × ${m.cpuModel}, Node ${m.node}, ${m.os}`)

    const limit = fdLimit()
    const steps = profile.connections.steps.filter((s) => s + FD_MARGIN <= limit)
    if (steps.length < profile.connections.steps.length) {
        log(`! open files limit is ${limit}: connection steps above ${limit - FD_MARGIN} are skipped (raise it with ulimit -n)`)
        profile.connections.steps = steps
    }

    const results: BenchResults = { startedAt: new Date().toISOString(), profile: profile.name, machine: m, targets: [], loadAvgAtEnd: NaN, table: "" }
    try {
        const tls = await makeTlsFixture(join(scratch, "tls"))
        const starts = STARTS.filter(([name]) => wanted(name))
        const workDirOf = (name: string) => {
            const dir = join(scratch, name)
            mkdirSync(dir, { recursive: true })
            return dir
        }
        if (starts.length) results.targets = await benchTargets(starts, profile, { tls, workDirOf, mayInstall: !smoke, log })
        if (wanted("ingest")) {
            log("- feedline SQLite store alone")
            results.ingest = await benchStoreIngest(profile.ingest.datapoints, profile.ingest.batchSizes)
        }
        if (wanted("firmware")) {
            log("- firmware (DeviceScript simulator)")
            results.firmware = await benchFirmware({ tls, ...profile.firmware, log })
        }
    } finally {
        rmSync(scratch, { recursive: true, force: true })
    }

    results.loadAvgAtEnd = os.loadavg()[0]
    results.table = renderTable(results, profile)
    log("")
    log(results.table)

    const outDir = env.FEEDLINE_BENCH_OUT ?? (smoke ? undefined : join(REPO, "devs/bench/results"))
    if (outDir) {
        writeResults(outDir, results)
        log(`\nwrote ${join(outDir, "latest.json")} and latest.md`)
    }
    return results
}


/** The printed and written table, from the results (also used by --render on a saved latest.json). */
export function renderTable(results: BenchResults, profile: Profile): string {
    const m = results.machine
    const present = results.targets.map((t) => t.name)
    if (results.ingest && !present.includes("feedline")) present.unshift("feedline")
    const rows = [...(results.targets.length ? serverRows(results.targets, profile) : []), ...(results.ingest ? ingestRows(results.ingest) : [])]
    const load = `load average ${m.loadAvgAtStart.toFixed(1)} at the start, ${results.loadAvgAtEnd.toFixed(1)} at the end`
    const parts = [`Machine: ${m.nproc} × ${m.cpuModel}, ${m.memGiB} GiB, Node ${m.node}, ${m.os}; ${load}; profile ${profile.name}; ${results.startedAt}`]
    if (rows.length) parts.push("", markdownTable(rows, present))
    if (results.firmware) parts.push("", firmwareTable(results.firmware.rows))
    // the feedline targets share most notes (how they were run): each once
    const notes = [
        ...results.targets.flatMap((t) => [...t.notes, ...t.errors.map((e) => `${t.name}: ${e}`), ...(t.unexpectedCloses ? [`${t.name}: ${t.unexpectedCloses} connections closed unexpectedly (first: ${t.firstClose})`] : [])]),
        ...(results.firmware?.notes ?? []),
    ]
    if (notes.length) parts.push("", ...[...new Set(notes)].map((n) => `- ${n}`))
    parts.push("", "Ratios are feedline ÷ peer; **behind** marks figures where feedline does worse. Latency from the load generator's clock: send → ack/push.")
    return parts.join("\n")
}

/** Writes latest.json and latest.md into `outDir`. */
function writeResults(outDir: string, results: BenchResults): void {
    mkdirSync(outDir, { recursive: true })
    writeFileSync(join(outDir, "latest.json"), JSON.stringify(results, null, 2) + "\n")
    writeFileSync(join(outDir, "latest.md"), `# feedline benchmark\n\n${results.table}\n`)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
    if (process.argv.includes("--render")) {
        // re-render the table of devs/bench/results/latest.json (e.g. after a change to the report's wording)
        const dir = process.env.FEEDLINE_BENCH_OUT ?? join(REPO, "devs/bench/results")
        const saved = JSON.parse(readFileSync(join(dir, "latest.json"), "utf8")) as BenchResults
        saved.table = renderTable(saved, saved.profile === "smoke" ? SMOKE : FULL)
        writeResults(dir, saved)
        console.log(saved.table)
        process.exit(0)
    }
    runEntry(() => runBench())
}
