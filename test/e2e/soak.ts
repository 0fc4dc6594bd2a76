// The firmware soak: the link in the simulator (test mode: GC stress on the 64 KB heap, so a leak per
// cycle ends in OutOfMemory) through many reconnect cycles: the proxy resets each connection a moment after
// it comes up, every BLACKHOLE_EVERY-th goes silent instead (the link must detect it), and every
// `burstEvery`-th the device is kept away while BURST_COMMANDS commands are written, so it catches up in
// replays of REPLAY_LIMIT when it is back. Used by test/e2e/firmware-soak.test.ts (the smoke in npm test)
// and devs/tools/soak.ts (`npm run soak`: 1,000 cycles, and the free heap at the end against 100 cycles).
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startServer } from "../../devs/server/index.ts"
import { FaultProxy } from "../../devs/faultproxy/proxy.ts"
import { api, datapoints, deviceSettings, genEntry, runFirmware, VM_START_MS } from "./firmware-harness.ts"
import { SERVER_POLL_MS, until } from "../host/harness/until.ts"

const UP_FOR_MS = 50
/** every BLACKHOLE_EVERY-th cycle the connection goes silent instead of being reset */
const BLACKHOLE_EVERY = 10
/** commands written while the device is away, per burst: more than two replays of 16 */
export const BURST_COMMANDS = 40

export interface SoakOptions {
    cycles: number
    /** a replay burst every this many cycles (0: none) */
    burstEvery: number
    /** at the end, measure the free heap (the VM allocates until it runs out of memory) */
    probeHeap: boolean
    log?: (line: string) => void
}

export interface SoakResult {
    cycles: number
    silent: number
    bursts: number
    durationMs: number
    /** seq samples: produced (the highest stored + 1), stored, counted as dropped by the full outbox */
    produced: number
    stored: number
    duplicates: number
    drops: number
    /** commands written in bursts, and how often the device handled each: all must be 1 */
    commands: number
    handledOnce: number
    handledOther: string[]
    /** free heap at the end (bytes, in 256-byte blocks), when probed */
    freeHeap?: number
    /** the VM's output, for failure messages */
    output: string
    panicked: boolean
}

// The device: the link, a counter sampled every 50 ms, a `cmd` subscription that logs each command
// handled; "probe" stops the counter, waits for the outbox to empty and allocates until out of memory.
const APP = `
let seq = 0
const ticker = setInterval(() => {
    link.report("seq", seq++)
}, 50)
link.subscribe("datastreams/cmd", (body) => {
    const v = body["current_value"]
    if (v !== "probe") {
        console.log("soak: cmd " + v)
        return
    }
    clearInterval(ticker)
    const probe = async () => {
        while (link.stats().outbox > 0) await ds.sleep(100)
        await ds.sleep(500)
        const held: Buffer[] = []
        for (;;) {
            held.push(Buffer.alloc(256))
            console.log("soak: free>=" + held.length * 256)
        }
    }
    probe.start()
})
`

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
    const log = opts.log ?? (() => {})
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-fw-soak-"))
    // a short keep-alive contract, so that silent connections are found quickly
    const server = await startServer({ dataDir, devicePort: 0, appPort: 0, logLevel: "silent", heartbeatMs: 200, faultyMs: 500, timeoutMs: 1000 })
    const proxy = await new FaultProxy({ target: { port: server.devicePort } }).start()
    const { feedId, masterKey } = server.credentials
    const entry = genEntry("soak", deviceSettings(proxy.port, server.credentials, { DIAG_S: 1, BACKOFF_MS: 20, BACKOFF_MAX_S: 0.1 }), APP)
    const runMs = VM_START_MS + 60_000 + opts.cycles * 1_000
    const fw = runFirmware(entry, server.caCertPath, runMs)
    const put = async (v: string) => {
        const r = await api(server.appPort, masterKey, "PUT", `/feeds/${feedId}/datastreams/cmd`, { current_value: v })
        if (r.status >= 300) throw new Error(`PUT cmd ${v}: ${r.status} ${JSON.stringify(r.body)}`)
    }
    try {
        let from = 0
        const t0 = Date.now()
        let silent = 0
        let bursts = 0
        let commands = 0
        for (let cycle = 0; cycle < opts.cycles; cycle++) {
            const up = await fw.waitFor(/^link: greeting -> up/, cycle === 0 ? VM_START_MS : 20_000, from)
            from = fw.lines.indexOf(up) + 1
            await new Promise((r) => setTimeout(r, UP_FOR_MS))
            if (opts.burstEvery && cycle % opts.burstEvery === Math.floor(opts.burstEvery / 2)) {
                // away while commands are written: they come back as a replay in pieces
                proxy.refuse()
                proxy.reset()
                await fw.waitFor(/-> down/, 10_000, from)
                for (let i = 0; i < BURST_COMMANDS; i++) await put(`b${bursts}.${i}`)
                commands += BURST_COMMANDS
                bursts++
                proxy.accept()
            } else if (cycle % BLACKHOLE_EVERY === BLACKHOLE_EVERY - 1) {
                proxy.blackhole({ scope: "existing" })
                await fw.waitFor(/-> down \(E_SILENT|-> down \(E_ACK_TIMEOUT/, 10_000, from)
                proxy.clear()
                silent++
            } else proxy.reset()
            if (cycle % 100 === 99) log(`# soak: ${cycle + 1} cycles, ${Math.round((Date.now() - t0) / 1000)} s`)
        }
        await fw.waitFor(/^link: greeting -> up/, 20_000, from)
        const durationMs = Date.now() - t0
        // every command handled, then the samples: no more missing than the device counted as dropped (a
        // counted drop can be of a sample the server already stored: a batch whose ack a reset lost)
        const handled = () => fw.lines.filter((l) => l.text.startsWith("soak: cmd ")).map((l) => l.text.slice(10))
        await until("every burst command handled", async () => new Set(handled()).size >= commands, 30_000, SERVER_POLL_MS).catch(() => undefined)
        const account = async () => {
            const values = (await datapoints(server.appPort, masterKey, feedId, "seq")).map((p) => Number(p.value))
            const drops = Number((await datapoints(server.appPort, masterKey, feedId, "_drops")).pop()?.value ?? 0)
            return { values, drops, max: Math.max(...values) }
        }
        const a = await until("the outbox to drain and _drops to catch up", async () => {
            const x = await account()
            return x.max + 1 - x.values.length <= x.drops ? x : undefined
        }, 30_000, SERVER_POLL_MS).catch(account)
        const counts = new Map<string, number>()
        for (const v of handled()) counts.set(v, (counts.get(v) ?? 0) + 1)
        const handledOther: string[] = []
        let handledOnce = 0
        for (let b = 0; b < bursts; b++) {
            for (let i = 0; i < BURST_COMMANDS; i++) {
                const n = counts.get(`b${b}.${i}`) ?? 0
                if (n === 1) handledOnce++
                else handledOther.push(`b${b}.${i} x${n}`)
            }
        }
        let freeHeap: number | undefined
        if (opts.probeHeap) {
            const fromProbe = fw.lines.length
            await put("probe")
            await fw.exited
            const probes = fw.lines.slice(fromProbe).map((l) => /^soak: free>=(\d+)/.exec(l.text)).filter((m) => m)
            freeHeap = probes.length ? Number(probes[probes.length - 1]![1]) : undefined
        }
        const output = fw.output()
        const probeAt = output.indexOf("soak: free>=")
        const beforeProbe = probeAt < 0 ? output : output.slice(0, probeAt)
        return {
            cycles: opts.cycles,
            silent,
            bursts,
            durationMs,
            produced: a.max + 1,
            stored: a.values.length,
            duplicates: a.values.length - new Set(a.values).size,
            drops: a.drops,
            commands,
            handledOnce,
            handledOther,
            freeHeap,
            output,
            panicked: /PANIC|OutOfMemory|InfiniteLoop|E_INTERNAL/.test(beforeProbe),
        }
    } finally {
        await fw.stop()
        await proxy.close()
        await server.close()
        rmSync(dataDir, { recursive: true, force: true })
    }
}
