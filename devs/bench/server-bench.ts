// Runs every server-side phase against one target. Each phase is independent: a failure is recorded
// with its message and the next phase still runs, so one broken path never hides the other figures.
import { LoadGenWorker } from "./loadgen/driver.ts"
import type { ClosedLoopResult, OpenResult, PacedResult, ServerWindow } from "./loadgen/phases.ts"
import { cpuBetween, sampleProc } from "./proc-stats.ts"
import type { Profile } from "./profile.ts"
import { isSkipped, type RunningTarget, type StartTarget, type TargetContext, type TargetName } from "./targets/target.ts"

export interface IdleResult {
    open: OpenResult
    server: ServerWindow
}

export interface ScaleStep extends IdleResult {
    step: number
    /** (RSS with the connections − RSS before any) / connections open */
    rssPerConnectionBytes: number
}

export interface TargetResult {
    name: TargetName
    skipped?: string
    notes: string[]
    idleRssBytes?: number
    throughputRuns: ClosedLoopResult[]
    throughput?: ClosedLoopResult
    latency?: PacedResult
    defaultKeepAliveIdle?: IdleResult
    connections: ScaleStep[]
    unexpectedCloses: number
    firstClose?: string
    errors: string[]
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function phase<T>(result: TargetResult, what: string, log: (l: string) => void, run: () => Promise<T>): Promise<T | undefined> {
    try {
        return await run()
    } catch (e) {
        const msg = `${what}: ${(e as Error).message.split("\n")[0]}`
        result.errors.push(msg)
        log(`  ! ${msg}`)
        return undefined
    }
}

async function idleWindow(target: RunningTarget, gen: LoadGenWorker, connections: number, settleMs: number, measureMs: number, concurrency: number): Promise<IdleResult> {
    const open = await gen.openDevices(connections, concurrency)
    await sleep(settleMs)
    const a = sampleProc(target.pid)
    await sleep(measureMs)
    const b = sampleProc(target.pid)
    return { open, server: { ...cpuBetween(a, b), rssBytes: b.rssBytes } }
}

async function collectCloses(result: TargetResult, gen: LoadGenWorker): Promise<void> {
    const c = await gen.counts().catch(() => undefined)
    if (!c) return
    result.unexpectedCloses += c.unexpectedCloses
    result.firstClose ??= c.firstClose
}

export async function benchTarget(start: StartTarget, name: TargetName, profile: Profile, ctx: Omit<TargetContext, "meteredKeepAlive">): Promise<TargetResult> {
    const log = ctx.log
    const result: TargetResult = { name, notes: [], throughputRuns: [], connections: [], unexpectedCloses: 0, errors: [] }

    // Run A: the target as configured by default; load phases
    const a = await start({ ...ctx, meteredKeepAlive: false })
    if (isSkipped(a)) {
        result.skipped = a.skipped
        log(`- ${name}: SKIPPED: ${a.skipped}`)
        return result
    }
    result.notes.push(...a.notes)
    try {
        await sleep(500)
        result.idleRssBytes = sampleProc(a.pid).rssBytes
        const gen = await LoadGenWorker.start(a.address, a.pid)
        try {
            const t = profile.throughput
            const opened = await phase(result, "open devices", log, () => gen.openDevices(t.devices, profile.openConcurrency))
            if (opened?.failed) result.errors.push(`open devices: ${opened.failed} of ${t.devices} failed: ${opened.firstError}`)
            for (const w of t.windows) {
                const r = await phase(result, `closed loop window ${w}`, log, () => gen.closedLoop(t.devices, w, t.warmupMs, t.measureMs))
                if (!r) continue
                result.throughputRuns.push(r)
                log(`  ${name} closed loop ${r.devices}x${w}: ${r.ackedPerS.toFixed(0)} acked/s, server ${(r.server.coreShare * 100).toFixed(0)}% core, client ${(r.clientCoreShare * 100).toFixed(0)}%`)
                if (r.refused) result.errors.push(`closed loop window ${w}: ${r.refused} updates refused (${r.firstRefusal})`)
            }
            result.throughput = [...result.throughputRuns].sort((x, y) => y.ackedPerS - x.ackedPerS)[0]

            const l = profile.latency
            const subs = await phase(result, "open subscribers", log, () => gen.openSubscribers(l.subscribers, profile.openConcurrency))
            if (subs?.failed) result.errors.push(`open subscribers: ${subs.failed} failed: ${subs.firstError}`)
            result.latency = await phase(result, "paced latency", log, () => gen.paced(l.ratePerS, l.warmupMs, l.measureMs))
            if (result.latency) {
                const p = result.latency
                log(`  ${name} paced ${p.ratePerS}/s: ack p50 ${p.ack.p50.toFixed(2)} p99 ${p.ack.p99.toFixed(2)} ms; push p50 ${p.push.p50.toFixed(2)} p99 ${p.push.p99.toFixed(2)} ms (${p.pushesReceived}/${p.pushesExpected})`)
            }

            const k = profile.defaultKeepAliveIdle
            result.defaultKeepAliveIdle = await phase(result, "idle at default keep-alive", log, () =>
                idleWindow(a, gen, k.connections, k.settleMs, k.measureMs, profile.openConcurrency)
            )
            await collectCloses(result, gen)
        } finally {
            await gen.stop()
        }
    } finally {
        await a.stop()
    }

    // Run B: a fresh process holding many idle connections (metered keep-alive for feedline)
    const b = await start({ ...ctx, meteredKeepAlive: true })
    if (isSkipped(b)) {
        result.errors.push(`connection scaling: ${b.skipped}`)
        return result
    }
    result.notes.push(...b.notes.filter((n) => !result.notes.includes(n)))
    try {
        await sleep(500)
        const base = await phase(result, "connection scaling baseline", log, async () => sampleProc(b.pid).rssBytes)
        if (base === undefined) return result
        const gen = await LoadGenWorker.start(b.address, b.pid)
        try {
            for (const step of profile.connections.steps) {
                const c = profile.connections
                const r = await phase(result, `hold ${step} connections`, log, () => idleWindow(b, gen, step, c.settleMs, c.measureMs, profile.openConcurrency))
                if (!r) break
                const s: ScaleStep = { step, ...r, rssPerConnectionBytes: (r.server.rssBytes - base) / Math.max(1, r.open.open) }
                result.connections.push(s)
                log(`  ${name} ${r.open.open}/${step} connections: RSS ${(r.server.rssBytes / 2 ** 20).toFixed(1)} MiB, ${(s.rssPerConnectionBytes / 1024).toFixed(1)} KiB each, idle CPU ${(r.server.coreShare * 100).toFixed(1)}%`)
                if (r.open.failed) {
                    result.errors.push(`hold ${step} connections: ${r.open.failed} failed to open (${r.open.firstError}); stopped scaling here`)
                    break
                }
            }
            await collectCloses(result, gen)
        } finally {
            await gen.stop()
        }
    } finally {
        await b.stop()
    }
    return result
}
