// `npm run heap`: measures the firmware's heap at its caps in the simulator (test mode: GC stress, the
// 64 KB VM heap), with test/firmware/heap-scenario.ts:
//   - free heap after each stage (the program allocates 256-byte blocks until it runs out of memory);
//   - the largest margin the whole scenario survives holding (bisection in 512-byte steps).
// About 10 simulator runs, 2-3 minutes on a loaded 2-core machine. Prints a table for docs/FIRMWARE.md "Heap budget".
// `npm run heap -- --claim`: the same on a fleet board that claims its key at the first connection (one stage more).
// `npm run heap -- --largest`: the most io settings can configure (nine subscriptions, six sensors; LARGEST_IO_SUBSCRIPTIONS).
import { spawnSync } from "node:child_process"
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const GEN_DIR = "test/e2e/.gen"
const DEVS = join("node_modules", ".bin", "devs")
const CLAIMED = process.argv.includes("--claim")
const LARGEST_IO = process.argv.includes("--largest")
/** by probe number (test/firmware/heap-scenario.ts PROBE_*) */
const STAGES = ["device started, subscriptions acknowledged", "outbox at its cap", "receive burst queued, not handled", "everything handled", "claimed, board io not started"]
const STEP_BYTES = 512
const MAX_MARGIN_BYTES = 16384

interface Run {
    ok: boolean
    free?: number
    output: string
}

function run(marginBytes: number, probe: number): Run {
    mkdirSync(GEN_DIR, { recursive: true })
    const entry = join(GEN_DIR, `heap-budget-${process.pid}.ts`)
    // inside a test, so that --test-self-exit ends the run when the scenario is done (a bare program ran on
    // until -T: five minutes per margin that held)
    writeFileSync(
        entry,
        `import { describe, test } from "@devicescript/test"\nimport { fillEverything } from "../../firmware/heap-scenario"\n` +
            `describe("heap", () => {\n    test("fill", async () => {\n        await fillEverything(${marginBytes}, ${probe}, ${CLAIMED}, ${LARGEST_IO})\n        console.log("HEAP done")\n    })\n})\n`,
    )
    try {
        const r = spawnSync(DEVS, ["run", entry, "--test", "--test-self-exit", "-T", "300000"], { encoding: "utf8", maxBuffer: 64 << 20 })
        const output = `${r.stdout}${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, "")
        const free = [...output.matchAll(/HEAP \d free>=(\d+)/g)].map((m) => Number(m[1])).pop()
        return { ok: output.includes("HEAP done"), free, output }
    } finally {
        rmSync(entry, { force: true })
    }
}

const started = Date.now()
console.log(`free heap at each stage${CLAIMED ? ", on a board that claims its key" : ""}${LARGEST_IO ? ", the largest io settings allow" : ""} (256-byte blocks allocated until out of memory):`)
for (const stage of CLAIMED ? [5, 1, 2, 3, 4] : [1, 2, 3, 4]) {
    const r = run(0, stage)
    console.log(`  ${STAGES[stage - 1].padEnd(44)} ${r.free === undefined ? "no measurement:\n" + r.output.slice(-1500) : r.free + " B"}`)
}
let lo = 0
let hi = MAX_MARGIN_BYTES + STEP_BYTES
if (!run(0, 0).ok) {
    console.log("the scenario fails without any margin")
    process.exit(1)
}
while (hi - lo > STEP_BYTES) {
    const mid = Math.floor((lo + hi) / 2 / STEP_BYTES) * STEP_BYTES
    if (run(mid, 0).ok) lo = mid
    else hi = mid
}
console.log(`largest margin held through the whole scenario: ${lo} B (${hi > MAX_MARGIN_BYTES ? "not bounded above " + MAX_MARGIN_BYTES : hi + " B ran out of memory"})`)
console.log(`(${((Date.now() - started) / 1000).toFixed(0)} s)`)
