// Soak smoke (npm test): the firmware link in the simulator through 50 reconnect cycles and two replay
// bursts (test/e2e/soak.ts; `npm run soak` runs 1,000 cycles and compares the free heap with 100). Test
// mode runs the VM with GC stress on its 64 KB heap, so a leak per cycle (e.g. a reader fiber left blocked
// on an abandoned socket: OOM after ~44 cycles in the platform notes) fails the run with OutOfMemory.
// Also: no sample lost on the way beyond those the bounded outbox dropped and counted, none stored twice,
// every command of the bursts handled exactly once.
import assert from "node:assert/strict"
import { test } from "node:test"
import { runSoak } from "./soak.ts"

const CYCLES = 50

test(`firmware soak: ${CYCLES} reconnect cycles and 2 replay bursts without running out of memory or losing anything`, { timeout: 300_000 }, async () => {
    const r = await runSoak({ cycles: CYCLES, burstEvery: 25, probeHeap: false })
    const tail = r.output.slice(-3000)
    console.log(`# soak: ${r.cycles} reconnect cycles (${r.silent} through a silent connection, ${r.bursts} replay bursts) in ${r.durationMs} ms`)
    console.log(`# soak: ${r.stored} samples stored, ${r.drops} dropped by the full outbox (counted), ${r.produced - r.stored} missing; ${r.handledOnce} of ${r.commands} commands handled once`)
    assert.ok(!r.panicked, tail)
    assert.equal(r.duplicates, 0, "a sample was stored twice")
    // A loaded machine can keep the link from draining the outbox between resets; then the bounded outbox
    // drops its oldest waiting samples. That is allowed, but no more may be missing than the device counted
    // (a counted drop can be of a sample the server had already stored: a batch whose acknowledgement a
    // reset lost waits again and may be the oldest when the outbox is full).
    const missing = r.produced - r.stored
    assert.ok(missing <= r.drops, `${missing - r.drops} of ${r.produced} samples lost without being counted (${missing} missing, ${r.drops} dropped)\n${tail}`)
    assert.equal(r.bursts, 2)
    assert.deepEqual(r.handledOther, [], "every burst command handled exactly once")
    assert.equal(r.handledOnce, r.commands)
})
