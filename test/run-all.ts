// `npm test`: every test, in two lanes sized for a 2-core machine, then one summary line.
//   lane A: type-check (tsc strict), then the firmware suites in the DeviceScript simulator
//   lane B: the host suites (node:test), which include the end-to-end tests
// Each lane's output is streamed with a prefix; the run fails if any step fails or counts no test.
import { spawn } from "node:child_process"

interface StepResult {
    name: string
    code: number
    passed: number
    failed: number
}

function run(name: string, cmd: string, args: string[], count: (out: string) => { passed: number; failed: number }): Promise<StepResult> {
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
        child.on("close", (code) => {
            const c = count(out)
            const secs = ((Date.now() - started) / 1000).toFixed(1)
            process.stdout.write(`[${name}] exit ${code}, ${c.passed} passed, ${c.failed} failed, ${secs} s\n`)
            resolve({ name, code: code ?? 1, ...c })
        })
    })
}

const none = () => ({ passed: 0, failed: 0 })

function nodeTestCounts(out: string) {
    const num = (label: string) => {
        const all = [...out.matchAll(new RegExp(`^# ${label} (\\d+)$`, "gm"))]
        return all.length ? Number(all[all.length - 1][1]) : 0
    }
    return { passed: num("pass"), failed: num("fail") + num("cancelled") }
}

function devsTestCounts(out: string) {
    // "tests: 3, pass: 3, error: 0" (colour codes stripped)
    const plain = out.replace(/\x1b\[[0-9;]*m/g, "")
    const m = [...plain.matchAll(/tests: (\d+), pass: (\d+), error: (\d+)/g)].pop()
    return m ? { passed: Number(m[2]), failed: Number(m[3]) } : { passed: 0, failed: 1 }
}

const bin = (tool: string) => `node_modules/.bin/${tool}`
const hostFiles = process.argv.slice(2).length ? process.argv.slice(2) : undefined

async function laneA(): Promise<StepResult[]> {
    const tsc = await run("typecheck", bin("tsc"), ["-p", "."], none)
    // one simulator run per entry test/firmware/main*.ts: one program's functions must stay under
    // 64 KB of bytecode (the runtime's verifier refuses bigger images: error 1051)
    const { readdirSync } = await import("node:fs")
    const entries = readdirSync("test/firmware").filter((f) => /^main.*\.ts$/.test(f)).sort()
    const fw: StepResult[] = []
    for (const e of entries) {
        const name = e === "main.ts" ? "firmware" : `firmware:${e.slice(5, -3)}`
        fw.push(await run(name, bin("devs"), ["run", `test/firmware/${e}`, "--test", "--test-self-exit", "-T", "120000"], devsTestCounts))
    }
    return [tsc, ...fw]
}

async function laneB(): Promise<StepResult[]> {
    const { readdirSync } = await import("node:fs")
    const files = hostFiles ?? readdirSync("test/host").filter((f) => f.endsWith(".test.ts")).sort().map((f) => `test/host/${f}`)
    return [await run("host", process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...files], nodeTestCounts)]
}

const results = (await Promise.all([laneA(), laneB()])).flat()
const passed = results.reduce((n, r) => n + r.passed, 0)
const failed = results.reduce((n, r) => n + r.failed, 0)
const broken = results.filter((r) => r.code !== 0 || (r.name !== "typecheck" && r.passed === 0))
for (const r of broken) console.log(`FAILED: ${r.name} (exit ${r.code}, ${r.passed} passed, ${r.failed} failed)`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(broken.length || failed ? 1 : 0)
