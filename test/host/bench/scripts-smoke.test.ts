// Smoke runs of the quick benchmark scripts (`npm run bench:hotpath`, `npm run bench:idle`, `npm run bench:keepalive`) with tiny sizes,
// so they cannot rot between the times someone needs them. Asserts that figures were printed, never what they are.
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { test } from "node:test"
import { promisify } from "node:util"

const run = promisify(execFile)
const figure = String.raw`\d+(?:\.\d+)?`

async function script(file: string, env: Record<string, string>): Promise<string> {
    const { stdout } = await run(process.execPath, ["--import", "tsx", file], { env: { ...process.env, ...env }, timeout: 90_000 })
    return stdout
}

test("bench:hotpath prints acked updates/s and server CPU per update, closed loop and paced, and the store's commits when paced", { timeout: 120_000 }, async () => {
    const out = await script("devs/bench/hotpath.ts", { FEEDLINE_HOTPATH_ROUNDS: "1", FEEDLINE_HOTPATH_MEASURE_MS: "500", FEEDLINE_HOTPATH_PACED: "200" })
    assert.match(out, new RegExp(`round 1: ${figure} acked/s, server ${figure}% of a core, ${figure} µs CPU per update \\(main thread ${figure}\\)`), out)
    assert.match(out, new RegExp(`paced 200/s round 1: ${figure} acked/s, server ${figure} µs CPU per update.*ack p50 ${figure} ms, p99 ${figure} ms`), out)
    assert.match(out, new RegExp(`paced 200/s round 1: .* ${figure} commits/s, ${figure} updates per commit, off the main thread ${figure} µs CPU per commit`), out)
    assert.match(out, /^range: .* µs server CPU per update/m, out)
})

test("bench:hotpath runs against the Aedes peer (FEEDLINE_HOTPATH_TARGET=aedes): the same figures, without the store's commits", { timeout: 120_000 }, async () => {
    const out = await script("devs/bench/hotpath.ts", { FEEDLINE_HOTPATH_TARGET: "aedes", FEEDLINE_HOTPATH_ROUNDS: "1", FEEDLINE_HOTPATH_MEASURE_MS: "500", FEEDLINE_HOTPATH_PACED: "200" })
    assert.match(out, /^aedes hot path: /m, out)
    assert.match(out, new RegExp(`round 1: ${figure} acked/s, server ${figure}% of a core, ${figure} µs CPU per update \\(main thread ${figure}\\)`), out)
    assert.match(out, new RegExp(`paced 200/s round 1: ${figure} acked/s, server ${figure} µs CPU per update \\(main thread ${figure}\\); ack p50 ${figure} ms, p99 ${figure} ms`), out)
    assert.doesNotMatch(out, /commits\/s/, out)
})

test("bench:hotpath refuses an unknown target with its code", { timeout: 60_000 }, async () => {
    await assert.rejects(script("devs/bench/hotpath.ts", { FEEDLINE_HOTPATH_TARGET: "nosuch" }), (e: { stderr?: string }) => /E_BENCH_TARGET/.test(e.stderr ?? ""))
})

test("bench:idle prints idle CPU and memory per idle TLS connection, both ways of opening them", { timeout: 120_000 }, async () => {
    const out = await script("devs/bench/idle.ts", { FEEDLINE_IDLE_DEVICES: "20", FEEDLINE_IDLE_HOLD: "20", FEEDLINE_IDLE_MEASURE_MS: "500", FEEDLINE_IDLE_SETTLE_MS: "200" })
    assert.match(out, new RegExp(`idle CPU, 20 devices at the default keep-alive: ${figure}% of a core`), out)
    assert.match(out, new RegExp(`memory: idle RSS ${figure} MiB; 20 idle TLS connections .* KiB each; 20 more: .* KiB each`), out)
    assert.match(out, new RegExp(`memory, opened one at a time: 20 idle TLS connections: RSS ${figure} MiB, -?${figure} KiB each`), out)
})

test("bench:keepalive prints a profile's idle CPU and bytes per heartbeat", { timeout: 120_000 }, async () => {
    const out = await script("devs/bench/keepalive.ts", { FEEDLINE_BENCH_KEEPALIVE_ONLY: "seed", FEEDLINE_BENCH_KEEPALIVE_DEVICES: "20", FEEDLINE_BENCH_KEEPALIVE_WINDOW_MS: "1000", FEEDLINE_BENCH_KEEPALIVE_PERIODS: "3" })
    assert.match(out, new RegExp(`^\\| seed \\| 0\\.3 s / 1 s / 3 s \\| ${figure} % \\| ${figure} / ${figure} B \\| ${figure} MB \\| ${figure} MB \\| 1 s / 3 s \\| \\d+ \\|$`, "m"), out)
})
