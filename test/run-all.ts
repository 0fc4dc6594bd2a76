// `npm test`: every test, in two lanes sized for a 2-core machine, then one summary line.
//   first: `npm run compile` (tsc -b, incremental, then outputs whose source is gone deleted): the server, CLI and tools the host tests spawn are
//   the compiled ones in dist/, as shipped; the tests themselves import the sources under tsx
//   lane A: type-check (tsc strict), then the firmware suites in the DeviceScript simulator
//   lane B: the host suites (node:test, test/run-host.ts): every *.test.ts under test/host/ and test/e2e/,
//   the slowest first
// `--only host` runs lane B alone (`npm run test:host`), `--only firmware` the firmware runs alone
// (`npm run test:firmware`): the same files, order, runner and counting as in `npm test`. Files named after
// the options replace lane B's list (one file: `tsx test/run-all.ts --only host test/host/server/hub.test.ts`).
// Each lane's output is streamed with a prefix. The last line is "N passed, N failed, N skipped"; how
// it counts (a broken step and a failing hook are failures, never "0 failed" on a failed run) is in
// test/run-summary.ts and docs/TESTING.md.
import { spawn } from "node:child_process"
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { devsTestCounts, errorLines, failedSuiteHooks, failedTests, fileSeconds, lastLines, noCounts, nodeTestCounts, summarize, type Counts, type StepResult } from "./run-summary.ts"

function run(name: string, cmd: string, args: string[], count: (out: string) => Counts, failures: (out: string) => string[], expectsTests = true): Promise<StepResult> {
    return new Promise((resolve) => {
        const started = Date.now()
        const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: process.env })
        let out = ""
        const relay = (chunk: Buffer) => {
            const text = chunk.toString()
            out += text
            for (const line of text.split("\n")) if (line) process.stdout.write(`[${name}] ${line}\n`)
        }
        child.stdout.on("data", relay)
        child.stderr.on("data", relay)
        child.on("error", (err) => (out += `\n${err.message}\n`)) // e.g. the command is missing: "close" follows with a code
        child.on("close", (code) => {
            const c = count(out)
            for (const hook of failedSuiteHooks(out)) process.stdout.write(`[${name}] a failing hook, counted as failed: ${hook}\n`)
            const secs = ((Date.now() - started) / 1000).toFixed(1)
            process.stdout.write(`[${name}] exit ${code}, ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped, ${secs} s\n`)
            resolve({ name, code: code ?? 1, expectsTests, ...c, failures: failures(out) })
        })
    })
}

/** Every *.test.ts below `dir`, in sorted order; folders starting with "." (generated code) are skipped. */
function testFilesUnder(dir: string): string[] {
    return readdirSync(dir, { recursive: true, encoding: "utf8" })
        .filter((f) => f.endsWith(".test.ts") && !f.split(/[\\/]/).some((part) => part.startsWith(".")))
        .sort()
        .map((f) => `${dir}/${f}`)
}

const bin = (tool: string) => `node_modules/.bin/${tool}`
const { values: options, positionals } = parseArgs({ options: { only: { type: "string" } }, allowPositionals: true })
if (options.only !== undefined && options.only !== "host" && options.only !== "firmware") {
    console.error(`--only ${options.only}: no such lane; use --only host or --only firmware`)
    process.exit(2)
}
const only = options.only as "host" | "firmware" | undefined
const hostFiles = positionals.length ? positionals : undefined

async function laneA(): Promise<StepResult[]> {
    if (only === "host") return []
    const tsc = only === "firmware" ? [] : [await run("typecheck", bin("tsc"), ["-p", "."], noCounts, errorLines, false)]
    // one simulator run per entry test/firmware/main*.ts: one program's functions must stay under
    // 64 KB of bytecode (the runtime's verifier refuses bigger images: error 1051)
    const entries = readdirSync("test/firmware").filter((f) => /^main.*\.ts$/.test(f)).sort()
    const fw: StepResult[] = []
    for (const e of entries) {
        const name = e === "main.ts" ? "firmware" : `firmware:${e.slice(5, -3)}`
        fw.push(await run(name, bin("devs"), ["run", `test/firmware/${e}`, "--test", "--test-self-exit", "-T", "120000"], devsTestCounts, errorLines))
    }
    return [...tsc, ...fw]
}

/**
 * Each host test file's wall time in seconds in an earlier full run on this 2-core machine under load
 * (`RECORD_TEST_SECONDS=1 npm test` rewrites it). Only an order: the lane starts its slowest files
 * first, so that it does not end with one long file running alone after the others are done.
 */
const RECORDED_SECONDS = "test/host-file-seconds.json"
/** A file not recorded yet goes first: it may be long, and a short one costs nothing there. */
const UNRECORDED_SECONDS = Infinity

function slowestFirst(files: string[]): string[] {
    const recorded: Record<string, number> = existsSync(RECORDED_SECONDS) ? JSON.parse(readFileSync(RECORDED_SECONDS, "utf8")) : {}
    const secs = (f: string) => recorded[f] ?? UNRECORDED_SECONDS
    return [...files].sort((a, b) => secs(b) - secs(a) || a.localeCompare(b))
}

/** Each host test file's wall time in this run (empty if the lane died before its end). */
let hostFileSeconds: Record<string, number> = {}

async function laneB(): Promise<StepResult[]> {
    if (only === "firmware") return []
    const files = hostFiles ?? slowestFirst([...testFilesUnder("test/host"), ...testFilesUnder("test/e2e")])
    return [await run("host", process.execPath, ["--import", "tsx", "test/run-host.ts", ...files], (out) => {
        hostFileSeconds = fileSeconds(out)
        return nodeTestCounts(out)
    }, (out) => {
        const named = failedTests(out)
        return named.length ? named : lastLines(out) // the lane died before naming a test
    })]
}

/** The slowest host test files of this run, for whoever keeps the suite inside its budget (docs/TESTING.md, "Timing"). */
function slowestFiles(count = 15): string[] {
    const slowest = Object.entries(hostFileSeconds).sort((a, b) => b[1] - a[1]).slice(0, count)
    return slowest.length ? ["slowest host test files:", ...slowest.map(([file, s]) => `  ${s.toFixed(1).padStart(6)} s  ${file}`)] : []
}

const compiled = await run("compile", process.execPath, ["devs/tools/compile.js"], noCounts, errorLines, false) // `npm run compile`
const results = [compiled, ...(await Promise.all([laneA(), laneB()])).flat()]
const { lines, exitCode } = summarize(results)
if (process.env.RECORD_TEST_SECONDS === "1" && !hostFiles && only !== "firmware" && exitCode === 0) writeFileSync(RECORDED_SECONDS, JSON.stringify(hostFileSeconds, Object.keys(hostFileSeconds).sort(), 1) + "\n")
for (const line of [...slowestFiles(), ...lines]) console.log(line)
process.exit(exitCode)
