// `npm run soak`: the firmware soak (test/e2e/soak.ts) at length: 1,000 reconnect cycles with a replay
// burst per hundred, then the free heap at the end, against the same after 100 cycles: a leak shows as
// less free heap after 1,000 (or as OutOfMemory on the way; test mode collects garbage at every
// allocation). Minutes. Exit 1 when anything was lost, doubled, handled twice, or the heap shrank.
import { runSoak, type SoakResult } from "../../test/e2e/soak.ts"

/** Free-heap difference still called "no growth": the probe counts 256-byte blocks, and a heap of fibers and timers is never in exactly the same state. */
const GROWTH_TOLERANCE_BYTES = 1024

function summary(r: SoakResult): string {
    return `${r.cycles} cycles (${r.silent} silent, ${r.bursts} bursts of replays) in ${Math.round(r.durationMs / 1000)} s; samples: ${r.produced} produced, ${r.stored} stored, ${r.drops} dropped (counted), ${r.duplicates} doubled; commands: ${r.handledOnce} of ${r.commands} handled once${r.handledOther.length ? " (" + r.handledOther.slice(0, 5).join(", ") + ")" : ""}; free heap at the end ${r.freeHeap ?? "?"} B${r.panicked ? "; PANIC" : ""}`
}

function problems(r: SoakResult): string[] {
    const p: string[] = []
    if (r.panicked) p.push("the VM panicked:\n" + r.output.slice(-3000))
    if (r.duplicates) p.push(`${r.duplicates} samples stored twice`)
    if (r.produced - r.stored > r.drops) p.push(`${r.produced - r.stored - r.drops} samples lost uncounted`)
    if (r.handledOnce !== r.commands) p.push(`${r.commands - r.handledOnce} commands not handled exactly once`)
    if (r.freeHeap === undefined) p.push("no heap measurement")
    return p
}

const log = (l: string) => console.log(l)
const cycles = Number(process.env.FEEDLINE_SOAK_CYCLES ?? 1000)
const base = await runSoak({ cycles: 100, burstEvery: 100, probeHeap: true, log })
console.log(`baseline: ${summary(base)}`)
const long = await runSoak({ cycles, burstEvery: 100, probeHeap: true, log })
console.log(`soak:     ${summary(long)}`)
const bad = [...problems(base), ...problems(long)]
if (base.freeHeap !== undefined && long.freeHeap !== undefined) {
    const growth = base.freeHeap - long.freeHeap
    console.log(`heap growth from 100 to ${cycles} cycles: ${growth} B (tolerance ${GROWTH_TOLERANCE_BYTES} B)`)
    if (growth > GROWTH_TOLERANCE_BYTES) bad.push(`the heap grew by ${growth} B`)
}
for (const b of bad) console.log(`FAILED: ${b}`)
process.exit(bad.length ? 1 : 0)
