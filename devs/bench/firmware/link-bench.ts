// Host side of devs/bench/firmware/device/link-bench.ts: link recovery after an outage, black-hole detection,
// and the largest outbox that fits the VM heap. Each recovery run is a fresh simulator, so every
// run starts from the same backoff state (a device after a quiet period), and figures are medians.
import type { TlsFixture } from "../tls-fixture.ts"
import { median } from "../stats.ts"
import { DeviceEndpoint } from "./endpoint.ts"
import { startSimulator, writeGeneratedConfig } from "./sim.ts"

/**
 * How long the server stays away in recovery run i (a restart or a short crash). The lengths differ
 * from run to run because the simulator seeds Math.random the same way at every start: equal outages
 * would draw the same backoff jitter and give five copies of one figure.
 */
export function outageMs(run: number): number {
    return 2000 + 500 * (run % 5)
}
/** the device samples this often during recovery runs */
const SAMPLE_MS = 200
/** generous: compile (~2 s) + connect + TLS in the simulator under load */
const FIRST_ACK_TIMEOUT_MS = 60_000
/** backoff can wait up to its ceiling (500 ms · 2^attempt) and detection needs the 3 s timeout */
const EVENT_TIMEOUT_MS = 30_000
const UP_BEFORE_BLACKHOLE_MS = 1000

export interface RecoveryRun {
    outageMs: number
    /** server back (listening again) → first acknowledged sample, ms */
    recoveryMs: number
    /** black hole starts → the device closes that connection, ms */
    blackholeDetectMs: number
    /** black hole starts → first acknowledged sample on a new connection, ms */
    blackholeRecoveryMs: number
}

export interface LinkBenchResult {
    runs: RecoveryRun[]
    medianRecoveryMs?: number
    medianBlackholeDetectMs?: number
    medianBlackholeRecoveryMs?: number
    outbox?: { samples: number; bytes: number; drops: number; oom: boolean }
    errors: string[]
}

/** Resolves with the time of the next call of the returned `fire`, after `arm()`. */
function eventWaiter() {
    let resolve: ((t: number) => void) | undefined
    return {
        fire(t: number) {
            resolve?.(t)
            resolve = undefined
        },
        next(timeoutMs: number, what: string): Promise<number> {
            return new Promise((res, rej) => {
                const timer = setTimeout(() => rej(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs)
                resolve = (t) => (clearTimeout(timer), res(t))
            })
        },
    }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function recoveryRun(fx: TlsFixture, outage: number, log: (l: string) => void): Promise<RecoveryRun> {
    const acks = eventWaiter()
    const closes = eventWaiter()
    const endpoint = new DeviceEndpoint(fx, { ack: true, onAck: (t) => acks.fire(t), onClose: (t) => closes.fire(t) })
    let sim: ReturnType<typeof startSimulator> | undefined
    try {
        const port = await endpoint.listen()
        writeGeneratedConfig("fw-link-config", "FW_LINK", { host: "127.0.0.1", port, mode: "recovery", sampleMs: SAMPLE_MS, outboxBytes: 12000, printEvery: 0 })
        const firstAck = acks.next(FIRST_ACK_TIMEOUT_MS, "first acknowledged sample")
        sim = startSimulator("devs/bench/firmware/device/link-bench.ts", { timeoutMs: 600_000, caPath: fx.caPath })
        await firstAck
        await sleep(500)
        await endpoint.down()
        await sleep(outage)
        const back = performance.now()
        const recovered = acks.next(EVENT_TIMEOUT_MS, "acknowledged sample after the outage")
        await endpoint.listen()
        const recoveryMs = (await recovered) - back
        await sleep(UP_BEFORE_BLACKHOLE_MS)
        const closed = closes.next(EVENT_TIMEOUT_MS, "close of the black-holed connection")
        const holed = performance.now()
        endpoint.blackhole()
        const blackholeDetectMs = (await closed) - holed
        const blackholeRecoveryMs = (await acks.next(EVENT_TIMEOUT_MS, "acknowledged sample after the black hole")) - holed
        log(`  link run: ${outage} ms outage, recovery ${recoveryMs.toFixed(0)} ms, black hole detected ${blackholeDetectMs.toFixed(0)} ms, acked again ${blackholeRecoveryMs.toFixed(0)} ms`)
        return { outageMs: outage, recoveryMs, blackholeDetectMs, blackholeRecoveryMs }
    } finally {
        if (sim) {
            sim.child.kill("SIGTERM")
            await sim.exited
        }
        await endpoint.close()
    }
}

async function outboxRun(fx: TlsFixture): Promise<LinkBenchResult["outbox"]> {
    const endpoint = new DeviceEndpoint(fx, { ack: false })
    try {
        const port = await endpoint.listen()
        writeGeneratedConfig("fw-link-config", "FW_LINK", { host: "127.0.0.1", port, mode: "outbox", sampleMs: 0, outboxBytes: 100_000_000, printEvery: 8 })
        let last = { queued: 0, bytes: 0, drops: 0 }
        const sim = startSimulator("devs/bench/firmware/device/link-bench.ts", {
            timeoutMs: 300_000,
            caPath: fx.caPath,
            onLine: (l) => {
                if (typeof l.queued === "number") last = l as typeof last
            },
        })
        const run = await sim.exited
        return { samples: last.queued, bytes: last.bytes, drops: last.drops, oom: run.output.includes("OutOfMemory") }
    } finally {
        await endpoint.close()
    }
}

export async function benchLink(fx: TlsFixture, runs: number, outbox: boolean, log: (l: string) => void): Promise<LinkBenchResult> {
    const result: LinkBenchResult = { runs: [], errors: [] }
    for (let i = 0; i < runs; i++) {
        try {
            result.runs.push(await recoveryRun(fx, outageMs(i), log))
        } catch (e) {
            result.errors.push(`link recovery run ${i + 1}: ${(e as Error).message}`)
            log(`  ! link recovery run ${i + 1}: ${(e as Error).message}`)
        }
    }
    if (result.runs.length) {
        result.medianRecoveryMs = median(result.runs.map((r) => r.recoveryMs))
        result.medianBlackholeDetectMs = median(result.runs.map((r) => r.blackholeDetectMs))
        result.medianBlackholeRecoveryMs = median(result.runs.map((r) => r.blackholeRecoveryMs))
    }
    if (!outbox) return result
    try {
        result.outbox = await outboxRun(fx)
        log(`  outbox: ${result.outbox?.samples} samples (${result.outbox?.bytes} B estimated) queued when the heap ran out: ${result.outbox?.oom ? "OutOfMemory" : "no OOM seen"}`)
    } catch (e) {
        result.errors.push(`outbox: ${(e as Error).message}`)
    }
    return result
}
