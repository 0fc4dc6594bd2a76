// The server as a user runs it (`feedline serve`), in a child process, for the resource-abuse tests:
// a crash is seen as an exit, and the kernel's peak-RSS counter (VmHWM) gives its peak memory.
import assert from "node:assert/strict"
import { spawn, type ChildProcess } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Credentials } from "../../../../devs/server/index.ts"
import { compiledCli } from "../../../../devs/server/compiled.ts"

const REPO = fileURLToPath(new URL("../../../../", import.meta.url))
const READY_WAIT_MS = 30_000
const STOP_WAIT_MS = 10_000

export interface ChildServer {
    devicePort: number
    appPort: number
    ca: Buffer
    credentials: Credentials
    pid: number
    child: ChildProcess
    /** what the server wrote on stderr (for failure messages) */
    stderr(): string
    alive(): boolean
    /** peak resident memory of the server process so far, in MiB (Linux VmHWM) */
    peakRssMiB(): number
    rssMiB(): number
    /** Prometheus text of GET /metrics, parsed into "name{labels}" -> value */
    metrics(): Promise<Record<string, number>>
    /** SIGTERM (graceful), then the data folder is removed; resolves with the exit code */
    stop(): Promise<number | null>
    /** ends the process with `signal` and keeps the data folder (for a restart on it); resolves with the exit code or signal */
    exit(signal: NodeJS.Signals): Promise<number | string | null>
    /** the data folder, for a restart on it */
    dataDir: string
}

/** Where a (re)started server keeps its data and which ports it takes (0: any free one). */
export interface ChildServerPlace {
    dataDir?: string
    devicePort?: number
    appPort?: number
}

function procStatusKiB(pid: number, field: string): number {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m ? Number(m[1]) : NaN
}

export async function startChildServer(args: string[] = [], place: ChildServerPlace = {}): Promise<ChildServer> {
    const dataDir = place.dataDir ?? mkdtempSync(join(tmpdir(), "feedline-abuse-"))
    const readyFile = join(dataDir, "ready.json")
    // a restart on the same folder: the previous process's ready file must not be taken for this one's
    rmSync(readyFile, { force: true })
    const ports = ["--device-port", String(place.devicePort ?? 0), "--app-port", String(place.appPort ?? 0)]
    const child = spawn(
        process.execPath,
        [compiledCli(), "serve", "--data-dir", dataDir, "--host", "127.0.0.1", ...ports, "--ready-file", readyFile, "--log-level", "error", ...args],
        { cwd: REPO, stdio: ["ignore", "ignore", "pipe"] }
    )
    let stderr = ""
    child.stderr!.setEncoding("utf8")
    child.stderr!.on("data", (d: string) => (stderr = (stderr + d).slice(-20_000)))
    const started = Date.now()
    while (!existsSync(readyFile) || readFileSync(readyFile, "utf8").trim() === "") {
        if (child.exitCode !== null) throw new Error(`feedline serve exited with ${child.exitCode}: ${stderr}`)
        if (Date.now() - started > READY_WAIT_MS) {
            child.kill("SIGKILL")
            throw new Error(`feedline serve not ready within ${READY_WAIT_MS} ms: ${stderr}`)
        }
        await new Promise((r) => setTimeout(r, 50))
    }
    const ready = JSON.parse(readFileSync(readyFile, "utf8"))
    const credentials: Credentials = JSON.parse(readFileSync(join(dataDir, "credentials.json"), "utf8"))
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    const exitedOrSignal = new Promise<number | string | null>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)))
    return {
        dataDir,
        devicePort: ready.devicePort,
        appPort: ready.appPort,
        ca: readFileSync(ready.caCertPath),
        credentials,
        pid: ready.pid,
        child,
        stderr: () => stderr,
        alive: () => child.exitCode === null && child.signalCode === null,
        peakRssMiB: () => procStatusKiB(ready.pid, "VmHWM") / 1024,
        rssMiB: () => procStatusKiB(ready.pid, "VmRSS") / 1024,
        metrics: () => scrapeMetrics(ready.appPort),
        stop: async () => {
            if (child.exitCode === null) child.kill("SIGTERM")
            const timer = setTimeout(() => child.kill("SIGKILL"), STOP_WAIT_MS)
            const code = await exited
            clearTimeout(timer)
            rmSync(dataDir, { recursive: true, force: true })
            return code
        },
        exit: async (signal) => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal)
            const timer = setTimeout(() => child.kill("SIGKILL"), STOP_WAIT_MS)
            const how = await exitedOrSignal
            clearTimeout(timer)
            return how
        },
    }
}

/** a scrape unanswered this long fails (a hung server), rather than hold its test for ever; a bound, not a measurement */
const SCRAPE_LIMIT_MS = 10_000

/** Prometheus text of GET /metrics on a loopback app port speaking HTTP, parsed into "name{labels}" -> value */
export async function scrapeMetrics(appPort: number): Promise<Record<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${appPort}/metrics`, { signal: AbortSignal.timeout(SCRAPE_LIMIT_MS) })).text()
    const out: Record<string, number> = {}
    for (const line of text.split("\n")) {
        if (line.startsWith("#") || !line.trim()) continue
        const sp = line.lastIndexOf(" ")
        out[line.slice(0, sp)] = Number(line.slice(sp + 1))
    }
    return out
}

/** Sum of a metric over all its label sets. */
export function metricSum(m: Record<string, number>, name: string): number {
    let sum = 0
    for (const [k, v] of Object.entries(m)) if (k === name || k.startsWith(name + "{")) sum += v
    return sum
}

/** Stops the server gracefully and prints its peak memory; fails if it died during the tests or peaked over the limit. */
export async function stopAndReport(server: ChildServer, label: string, peakLimitMiB: number): Promise<void> {
    // a process gone has no /proc entry to read: the failure is then that it died, with what it logged
    const alive = server.alive()
    const peak = alive ? server.peakRssMiB() : NaN
    const code = await server.stop()
    console.log(`# ${label}: server peak RSS ${peak.toFixed(0)} MiB; graceful stop exit code ${code}`)
    assert.ok(alive, `the server died: ${server.stderr()}`)
    assert.ok(peak < peakLimitMiB, `peak RSS ${peak.toFixed(0)} MiB, over ${peakLimitMiB} MiB`)
}
