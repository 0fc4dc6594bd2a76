// The log's descriptor failing (devs/server/log.ts LogDestination). A server started in a terminal outlives it
// (SIGHUP is the certificate reload), and its next log line then met EIO: pino's SonicBoom emitted the error
// with no listener (pino keeps one for EPIPE alone), an uncaught exception, and the exit that followed hung for
// good, the event loop held in pino's exit flush (SonicBoom's flushSync retries every error but EAGAIN every
// 100 ms): a process that neither served nor ended (seen with pino's default destination on a closed terminal
// and on /dev/full). Here a process
// (log-destination-fixture.ts) logs to a stdout that fails every write: /dev/full (ENOSPC, as a redirect to a
// full disk) and a pipe whose reader is gone (EPIPE). The whole server under a closed terminal (EIO):
// test/e2e/terminal-closed.test.ts.
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { test } from "node:test"

const FIXTURE = fileURLToPath(new URL("./log-destination-fixture.ts", import.meta.url))
/** a bound on the fixture's run (an exit that hung flushing would exceed it), not a measurement */
const RUN_LIMIT_MS = 30_000

interface Run {
    code: number | null
    signal: NodeJS.Signals | null
    report: Record<string, unknown> | undefined
    stderr: string
}

/** Runs the fixture with `stdout` as its fd 1: a descriptor, or "pipe-closed" for a pipe whose reader is gone. */
function runFixture(stdout: number | "pipe-closed"): Promise<Run> {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", FIXTURE], { stdio: ["ignore", stdout === "pipe-closed" ? "pipe" : stdout, "pipe"] })
        if (stdout === "pipe-closed") child.stdout!.destroy()
        let stderr = ""
        child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
        const timer = setTimeout(() => (child.kill("SIGKILL"), reject(new Error(`the fixture ran past ${RUN_LIMIT_MS} ms: ${stderr}`))), RUN_LIMIT_MS)
        child.on("close", (code, signal) => {
            clearTimeout(timer)
            const last = stderr.trim().split("\n").at(-1) ?? ""
            let report
            try {
                report = JSON.parse(last)
            } catch {}
            resolve({ code, signal, report, stderr })
        })
    })
}

const failing = [
    { name: "/dev/full (ENOSPC)", code: "ENOSPC", fd: () => openSync("/dev/full", "w") },
    { name: "a pipe with no reader (EPIPE)", code: "EPIPE", fd: () => "pipe-closed" as const },
]

for (const f of failing) {
    test(`stdout failing every write, ${f.name}: the process lives, drops and counts the lines, tries the descriptor again once a period, and exits 0`, { skip: f.code === "ENOSPC" && !existsSync("/dev/full") }, async () => {
        const fd = f.fd()
        try {
            const r = await runFixture(fd)
            assert.equal(r.code, 0, r.stderr)
            assert.deepEqual(r.report, {
                firstFailures: 1,
                firstCode: f.code,
                droppedWithinPeriod: 100,
                failuresWithinPeriod: 1,
                // the line a period later is written straight to the descriptor: it fails again, at once
                failuresAfterPeriod: 2,
                droppedAfterPeriod: 101,
                writingAfterPeriod: false,
            })
        } finally {
            if (typeof fd === "number") closeSync(fd)
        }
    })
}

test("stdout a file: every line written, nothing dropped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "feedline-log-dest-"))
    const file = join(dir, "out.log")
    const fd = openSync(file, "w")
    try {
        const r = await runFixture(fd)
        assert.equal(r.code, 0, r.stderr)
        assert.deepEqual(r.report, {
            firstFailures: 0,
            droppedWithinPeriod: 0,
            failuresWithinPeriod: 0,
            failuresAfterPeriod: 0,
            droppedAfterPeriod: 0,
            writingAfterPeriod: true,
        })
        const lines = readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).i)
        assert.deepEqual(lines, Array.from({ length: 102 }, (_, i) => i))
    } finally {
        closeSync(fd)
        rmSync(dir, { recursive: true, force: true })
    }
})
