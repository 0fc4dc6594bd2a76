// `feedline serve` started in a terminal, and the terminal closed. The server takes SIGHUP for the certificate
// reload, so it outlives the terminal; its stdout is then a hung-up terminal, where every write fails (EIO).
// Before, the next log line was an uncaught exception, and the exit that followed hung for good in pino's flush
// at exit (the server neither served nor ended). `script` (util-linux) runs the server on a pseudo-terminal; the
// test ends `script`, which hangs the terminal up as closing a terminal window does. The log's descriptor on its
// own: log-destination.test.ts.
import assert from "node:assert/strict"
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { compiledCli } from "../../../devs/server/compiled.ts"
import { scrapeMetrics } from "./abuse/child-server.ts"
import { SERVER_POLL_MS, until } from "../harness/until.ts"

const NO_SCRIPT = spawnSync("script", ["--version"]).error ? "util-linux's `script` is not installed (it gives the server a terminal to lose)" : false
/** bounds on a loaded machine (a start, a signal handled, a graceful stop); not measurements */
const WAIT_MS = 30_000

const quoted = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
/** the process exists and has not ended (a zombie, ended and not yet reaped by whoever adopted it, has) */
const alive = (pid: number) => {
    try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"))
    } catch {
        return false
    }
}

test("feedline serve outlives its terminal: the log lines it can no longer write are dropped and counted, it serves, and SIGTERM still ends it", { skip: NO_SCRIPT }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-terminal-"))
    const readyFile = join(dataDir, "ready.json")
    const serve = [process.execPath, compiledCli(), "serve", "--data-dir", dataDir, "--host", "127.0.0.1", "--device-port", "0", "--app-port", "0", "--ready-file", readyFile]
    // -q: no banner; -f: flush; -e: script's exit status is the command's; /dev/null: no typescript file
    const terminal = spawn("script", ["-qfec", serve.map(quoted).join(" "), "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] })
    let shown = ""
    terminal.stdout!.setEncoding("utf8").on("data", (d: string) => (shown = (shown + d).slice(-20_000)))
    let pid = 0
    try {
        const ready = await until(() => `the server's ready file; the terminal showed:\n${shown}`, () => existsSync(readyFile) && readFileSync(readyFile, "utf8").trim() && JSON.parse(readFileSync(readyFile, "utf8")), WAIT_MS, SERVER_POLL_MS)
        pid = ready.pid
        assert.match(shown, /"msg":"serving TLS certificate"/, "the log went to the terminal while it was open")
        const metrics = () => scrapeMetrics(ready.appPort)

        // the terminal closes: its processes get SIGHUP (the reload, logged), and every write to it fails from now on
        const closed = new Promise((resolve) => terminal.once("exit", resolve))
        terminal.kill("SIGKILL")
        await closed
        // each reload logs a line at info; go on until one was dropped, after the first failed write gave the terminal up
        let reloads = 0
        await until(
            () => `a log line dropped after the terminal closed (server alive: ${alive(pid)}; reloads ${reloads})`,
            async () => {
                const m = await metrics().catch(() => undefined)
                if (!m) return false
                if ((m["feedline_log_lines_dropped_total"] ?? 0) > 0) return true
                if ((m[`feedline_tls_reloads_total{outcome="ok"}`] ?? 0) >= reloads) {
                    reloads++
                    process.kill(pid, "SIGHUP")
                }
                return false
            },
            WAIT_MS,
            SERVER_POLL_MS,
        )
        assert.equal((await fetch(`http://127.0.0.1:${ready.appPort}/healthz`, { signal: AbortSignal.timeout(WAIT_MS) })).status, 200)

        process.kill(pid, "SIGTERM")
        await until(() => `the server to end after SIGTERM (pid ${pid})`, () => !alive(pid), WAIT_MS, SERVER_POLL_MS)
    } finally {
        if (terminal.exitCode === null && terminal.signalCode === null) terminal.kill("SIGKILL")
        if (pid && alive(pid)) process.kill(pid, "SIGKILL")
        rmSync(dataDir, { recursive: true, force: true })
    }
})
