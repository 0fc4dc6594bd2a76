// `npm start` on a fresh data folder: the server comes up, the simulated board claims its own feed and key
// from the demo product (no key typed anywhere, docs/FLEET.md), its samples are stored within a bounded
// time, and Ctrl-C stops everything cleanly. A second `npm start` on the same folder: the board uses the
// feed and key it kept in its flash, and claims nothing; SIGHUP reloads the server's certificate, as for
// `feedline serve`, and the demo goes on (it used to end npm start and leave the simulator running).
import { test } from "node:test"
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { compiledEntry } from "../../devs/server/compiled.ts"

const ROOT = join(import.meta.dirname, "..", "..")

/** a bound, not a measurement: the first sample took 25-49 s at load 8-14 (printed below) */
const FIRST_SAMPLE_WITHIN_MS = 120_000

/**
 * One `npm start` on `dataDir` until its first stored temperature (then, with `sighup`, a SIGHUP: the server
 * reloads its certificate and the demo goes on), then Ctrl-C; everything it printed.
 */
async function startUntilStored(dataDir: string, run: number, o: { sighup?: boolean } = {}): Promise<string> {
    const child = spawn(process.execPath, [compiledEntry("devs/start.ts")], {
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
        console.log(`# npm start (run ${run}): first temperature stored ${Date.now() - started} ms after launch`)
        assert.match(out, /^device \| link: greeting -> up/m)
        assert.match(out, /^start  \| dashboard: +http:\/\/127\.0\.0\.1:\d+\//m)
        if (o.sighup) {
            child.kill("SIGHUP")
            await seen(/^start  \| SIGHUP: TLS certificate reloaded \(CN=localhost/m, FIRST_SAMPLE_WITHIN_MS)
        }
        child.kill("SIGINT")
        assert.equal(await exited, 0)
        assert.match(out, /^start  \| stopped$/m)
        return out
    } finally {
        child.kill("SIGKILL")
    }
}

test("npm start: the simulated board claims its feed, its data reaches the server, Ctrl-C stops cleanly; a second run reuses what it kept", { timeout: 2 * FIRST_SAMPLE_WITHIN_MS + 60_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-start-"))
    try {
        const first = await startUntilStored(dataDir, 1)
        const claimed = /^device \| claim: claimed device \S+, feed (\d+) \(new\)$/m.exec(first)
        assert.ok(claimed, `the board did not claim:\n${first.slice(-3000)}`)
        assert.match(first, new RegExp(`^device \\| link: tls://localhost:\\d+ feed ${claimed[1]},`, "m"), "the link runs on the claimed feed")
        assert.match(first, /^start  \| made product p[0-9a-f]{8} /m)
        assert.equal(statSync(join(dataDir, "demo-product.json")).mode & 0o077, 0, "the product secret is readable by its owner only")
        assert.equal(statSync(join(dataDir, "sim-board-1.flash")).mode & 0o077, 0, "the board's flash (its claimed key) is readable by its owner only")
        assert.doesNotMatch(first, /E_NO_API_KEY/, "a board flashed with a product id and code is not told it has no key")

        const second = await startUntilStored(dataDir, 2, { sighup: true })
        assert.doesNotMatch(second, /^device \| claim:/m, "the second run claimed again")
        assert.doesNotMatch(second, /^start  \| made product/m)
        assert.match(second, new RegExp(`^device \\| link: tls://localhost:\\d+ feed ${claimed[1]},`, "m"), "the same feed, from the board's flash")
    } finally {
        rmSync(dataDir, { recursive: true, force: true })
    }
})
