// `npm test`: every test, in two lanes sized for a 2-core machine, then one summary line.
//   first: `npm run compile` (tsc -b, incremental): the server, CLI and tools the host tests spawn are
//   the compiled ones in dist/, as shipped; the tests themselves import the sources under tsx
//   lane A: type-check (tsc strict), then the firmware suites in the DeviceScript simulator
//   lane B: the host suites (node:test): every *.test.ts under test/host/ and test/e2e/
// Each lane's output is streamed with a prefix. The last line is "N passed, N failed, N skipped"; how
// it counts (a broken step and a failing hook are failures, never "0 failed" on a failed run) is in
// test/run-summary.ts and docs/TESTING.md.
import { spawn } from "node:child_process"
import { readdirSync } from "node:fs"
import { devsTestCounts, errorLines, failedSuiteHooks, failedTests, lastLines, noCounts, nodeTestCounts, summarize, type Counts, type StepResult } from "./run-summary.ts"

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
const hostFiles = process.argv.slice(2).length ? process.argv.slice(2) : undefined

async function laneA(): Promise<StepResult[]> {
    const tsc = await run("typecheck", bin("tsc"), ["-p", "."], noCounts, errorLines, false)
    // one simulator run per entry test/firmware/main*.ts: one program's functions must stay under
    // 64 KB of bytecode (the runtime's verifier refuses bigger images: error 1051)
    const entries = readdirSync("test/firmware").filter((f) => /^main.*\.ts$/.test(f)).sort()
    const fw: StepResult[] = []
    for (const e of entries) {
        const name = e === "main.ts" ? "firmware" : `firmware:${e.slice(5, -3)}`
        fw.push(await run(name, bin("devs"), ["run", `test/firmware/${e}`, "--test", "--test-self-exit", "-T", "120000"], devsTestCounts, errorLines))
    }
    return [tsc, ...fw]
}

async function laneB(): Promise<StepResult[]> {
    const files = hostFiles ?? [...testFilesUnder("test/host"), ...testFilesUnder("test/e2e")]
    return [await run("host", process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...files], nodeTestCounts, (out) => {
        const named = failedTests(out)
        return named.length ? named : lastLines(out) // the lane died before naming a test
    })]
}

const compiled = await run("compile", bin("tsc"), ["-b", "tsconfig.build.json"], noCounts, errorLines, false)
const results = [compiled, ...(await Promise.all([laneA(), laneB()])).flat()]
const { lines, exitCode } = summarize(results)
for (const line of lines) console.log(line)
process.exit(exitCode)
