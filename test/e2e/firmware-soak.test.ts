// Soak: the firmware link in the simulator through many reconnect cycles (the proxy resets every
// connection a moment after it comes up). Test mode runs the VM with GC stress on its 64 KB heap, so
// a leak per cycle (e.g. a reader fiber left blocked on an abandoned socket: OOM after ~44 cycles in
// the platform notes) fails the run with OutOfMemory. Also checks that no sample is lost on the way
// (beyond those the bounded outbox dropped and counted) and none is stored twice.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { startServer } from "../../devs/server/index.ts"
import { FaultProxy } from "../../devs/faultproxy/proxy.ts"
import { datapoints, deviceSettings, genEntry, runFirmware, until, VM_START_MS } from "./firmware-harness.ts"

const CYCLES = 50
const UP_FOR_MS = 50
/** every BLACKHOLE_EVERY-th cycle the connection goes silent instead of being reset (the link must detect it) */
const BLACKHOLE_EVERY = 10

test(`firmware soak: ${CYCLES} reconnect cycles without running out of memory or losing samples`, { timeout: 240_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-fw-soak-"))
    // a short keep-alive contract, so that silent connections are found quickly
    const server = await startServer({ dataDir, devicePort: 0, appPort: 0, logLevel: "silent", heartbeatMs: 200, faultyMs: 500, timeoutMs: 1000 })
    const proxy = await new FaultProxy({ target: { port: server.devicePort } }).start()
    const { feedId, masterKey } = server.credentials
    const entry = genEntry(
        "soak",
        deviceSettings(proxy.port, server.credentials, { DIAG_S: 1, BACKOFF_MS: 20, BACKOFF_MAX_S: 0.1 }),
        `let seq = 0
setInterval(() => {
    link.report("seq", seq++)
}, 50)`
    )
    const fw = runFirmware(entry, server.caCertPath, 220_000)
    try {
        let from = 0
        const t0 = Date.now()
        let silent = 0
        for (let cycle = 0; cycle < CYCLES; cycle++) {
            const up = await fw.waitFor(/^link: greeting -> up/, cycle === 0 ? VM_START_MS : 20_000, from)
            from = fw.lines.indexOf(up) + 1
            await new Promise((r) => setTimeout(r, UP_FOR_MS))
            if (cycle % BLACKHOLE_EVERY === BLACKHOLE_EVERY - 1) {
                proxy.blackhole({ scope: "existing" })
                await fw.waitFor(/-> down \(E_SILENT|-> down \(E_ACK_TIMEOUT/, 10_000, from)
                proxy.clear()
                silent++
            } else proxy.reset()
        }
        await fw.waitFor(/^link: greeting -> up/, 20_000, from)
        console.log(`# soak: ${CYCLES} reconnect cycles (${silent} through a silent connection) in ${Date.now() - t0} ms`)
        // A loaded machine can keep the link from draining the outbox between resets; then the bounded
        // outbox drops its oldest waiting samples. That is allowed, but no more may be missing than the
        // device counted (its `_drops` diagnostic, sent every DIAG_S). A counted drop can be of a sample
        // the server had already stored: a batch whose acknowledgement a reset lost waits again and may be
        // the oldest when the outbox is full (seen at load 8: 36 counted, none missing). So: missing <=
        // counted. Wait until that holds (the outbox drained, the diagnostic caught up) or the deadline.
        const account = async () => {
            const values = (await datapoints(server.appPort, masterKey, feedId, "seq")).map((p) => Number(p.value))
            const drops = Number((await datapoints(server.appPort, masterKey, feedId, "_drops")).pop()?.value ?? 0)
            return { values, drops, max: Math.max(...values) }
        }
        const { values, drops, max } = await until("the outbox to drain and _drops to catch up", 30_000, async () => {
            const a = await account()
            return a.max + 1 - a.values.length <= a.drops ? a : undefined
        }).catch(account)
        assert.equal(new Set(values).size, values.length, "a sample was stored twice")
        console.log(`# soak: ${values.length} samples stored, ${drops} dropped by the full outbox (counted), ${max + 1 - values.length} missing`)
        const missing = max + 1 - values.length
        assert.ok(missing <= drops, `${missing - drops} of ${max + 1} samples lost without being counted (${missing} missing, ${drops} dropped)\n${fw.output().slice(-3000)}`)
        assert.ok(!/PANIC|OutOfMemory|InfiniteLoop|E_INTERNAL/.test(fw.output()), fw.output().slice(-3000))
    } finally {
        await fw.stop()
        await proxy.close()
        await server.close()
        rmSync(dataDir, { recursive: true, force: true })
    }
})
