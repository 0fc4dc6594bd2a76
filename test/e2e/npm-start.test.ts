// `npm start` on a fresh data folder: the server comes up, the simulated device's samples are stored
// within a bounded time, and Ctrl-C stops everything cleanly.
import { test } from "node:test"
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const ROOT = join(import.meta.dirname, "..", "..")

/** a bound, not a measurement: the first sample took 25-49 s at load 8-14 (printed below) */
const FIRST_SAMPLE_WITHIN_MS = 120_000

test("npm start: device data reaches the server, Ctrl-C stops cleanly", { timeout: FIRST_SAMPLE_WITHIN_MS + 30_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-start-"))
    const child = spawn(process.execPath, ["--import", "tsx", "devs/start.ts"], {
        cwd: ROOT,
        env: { ...process.env, FEEDLINE_DATA_DIR: dataDir, FEEDLINE_DEVICE_PORT: "0", FEEDLINE_APP_PORT: "0", NO_COLOR: "1" },
        stdio: ["ignore", "pipe", "pipe"],
    })
    let out = ""
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve))
    const seen = (re: RegExp, ms: number) =>
        new Promise<void>((resolve, reject) => {
            const check = () => re.test(out) && (clearTimeout(t), child.stdout.off("data", check), resolve())
            const t = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms; output:\n${out.slice(-3000)}`)), ms)
            child.stdout.on("data", check)
            check()
        })
    child.stdout.on("data", (c) => (out += c))
    child.stderr.on("data", (c) => (out += c))
    try {
        const started = Date.now()
        await seen(/^server \| stored temp = /m, FIRST_SAMPLE_WITHIN_MS)
        console.log(`# npm start: first temperature stored ${Date.now() - started} ms after launch`)
        assert.match(out, /^device \| link: greeting -> up/m)
        assert.match(out, /^start  \| dashboard: +http:\/\/127\.0\.0\.1:\d+\//m)
        child.kill("SIGINT")
        assert.equal(await exited, 0)
        assert.match(out, /^start  \| stopped$/m)
    } finally {
        child.kill("SIGKILL")
        rmSync(dataDir, { recursive: true, force: true })
    }
})
