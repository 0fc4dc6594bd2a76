// The server as a user runs it (`feedline serve`) in a child process that a test may kill with
// SIGKILL (a crash, a power cut of the process) or stop with SIGTERM (graceful) and start again on the
// same data folder and the same ports, so a fault proxy in front of it keeps a valid target.
// The child is the package's bin (`devs/bin/feedline serve`: the compiled CLI with the allocator settings
// it ships with), not `npx …`: the bin execs node in its own process, so a signal reaches the server itself.
import { spawn, type ChildProcess } from "node:child_process"
import { existsSync, readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Credentials } from "../../devs/server/index.ts"
import { packageBin } from "../../devs/server/compiled.ts"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
/** a loaded 2-core machine needs seconds to start a server */
const READY_WAIT_MS = 30_000
/** a graceful stop lets requests finish for at most 2 s, then flushes; past this it is a failure */
const STOP_WAIT_MS = 15_000

export interface ServerProcessOptions {
    dataDir: string
    /** 0: any free port (the first start); pass the previous ones to restart in place */
    devicePort?: number
    appPort?: number
    /** more `serve` flags, e.g. ["--timeout-ms", "3000"] */
    args?: string[]
    /** where the server writes its ready file (default <dataDir>/ready.json; processes sharing a data folder need one each) */
    readyFile?: string
}

export interface ServerProcess {
    devicePort: number
    appPort: number
    caCertPath: string
    pid: number
    credentials: Credentials
    /** Date.now() when the ready file appeared */
    readyAtMs: number
    alive(): boolean
    /** sends the signal; resolves with the exit code (null after a signal that killed it) */
    stop(signal: "SIGKILL" | "SIGTERM"): Promise<number | null>
    /** the tail of what the server printed, for failure messages */
    output(): string
}

/** Starts `feedline serve` on `dataDir` and resolves once its ready file is written. */
export async function startServerProcess(opts: ServerProcessOptions): Promise<ServerProcess> {
    const readyFile = opts.readyFile ?? join(opts.dataDir, "ready.json")
    rmSync(readyFile, { force: true })
    const bin = packageBin()
    const child: ChildProcess = spawn(
        bin.command,
        [
            "serve",
            "--data-dir", opts.dataDir,
            "--host", "127.0.0.1",
            "--device-port", String(opts.devicePort ?? 0),
            "--app-port", String(opts.appPort ?? 0),
            "--ready-file", readyFile,
            "--log-level", "warn",
            ...(opts.args ?? []),
        ],
        { cwd: ROOT, env: bin.env, stdio: ["ignore", "pipe", "pipe"] }
    )
    let out = ""
    const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000))
    child.stdout!.on("data", keep)
    child.stderr!.on("data", keep)
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    const started = Date.now()
    while (!existsSync(readyFile) || readFileSync(readyFile, "utf8").trim() === "") {
        if (child.exitCode !== null) throw new Error(`feedline serve exited with ${child.exitCode}:\n${out}`)
        if (Date.now() - started > READY_WAIT_MS) {
            child.kill("SIGKILL")
            throw new Error(`feedline serve not ready within ${READY_WAIT_MS} ms:\n${out}`)
        }
        await new Promise((r) => setTimeout(r, 25))
    }
    const readyAtMs = Date.now()
    const ready = JSON.parse(readFileSync(readyFile, "utf8"))
    if (ready.pid !== child.pid) throw new Error(`the ready file names pid ${ready.pid}, the child is ${child.pid}: a signal would miss the server`)
    return {
        devicePort: ready.devicePort,
        appPort: ready.appPort,
        caCertPath: ready.caCertPath,
        pid: ready.pid,
        credentials: JSON.parse(readFileSync(join(opts.dataDir, "credentials.json"), "utf8")),
        readyAtMs,
        alive: () => child.exitCode === null && child.signalCode === null,
        output: () => out,
        async stop(signal) {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal)
            const timer = setTimeout(() => child.kill("SIGKILL"), STOP_WAIT_MS)
            const code = await exited
            clearTimeout(timer)
            return code
        },
    }
}
