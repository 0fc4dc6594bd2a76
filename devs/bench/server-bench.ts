// Runs every server-side phase against every target. The load phases are interleaved (window 1 on
// each target, then window 8 on each, …) so that a neighbour's burst on a shared machine spreads over
// all targets instead of landing on one. Each phase is independent: a failure is recorded with its
// message and the next phase still runs, so one broken path never hides the other figures.
import { LoadGenWorker } from "./loadgen/driver.ts"
import type { ClosedLoopResult, NoisyResult, OpenResult, PacedResult, ServerWindow } from "./loadgen/phases.ts"
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
    latencyRuns: PacedResult[]
    latency?: PacedResult
    noisyRuns: NoisyResult[]
    /** push latency on a quiet feed while another is flooded: the least disturbed round */
    noisy?: NoisyResult
    defaultKeepAliveIdle?: IdleResult
    connections: ScaleStep[]
    unexpectedCloses: number
    firstClose?: string
    errors: string[]
}

export type TargetStarts = [TargetName, StartTarget][]
type Ctx = Omit<TargetContext, "meteredKeepAlive" | "workDir"> & { workDirOf(name: TargetName): string }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** a server just started settles (JIT, lazy allocations) before its idle memory is read */
const SETTLE_AFTER_START_MS = 500

async function phase<T>(result: TargetResult, what: string, log: (l: string) => void, run: () => Promise<T>): Promise<T | undefined> {
    try {
        return await run()
    } catch (e) {
        const msg = `${what}: ${(e as Error).message.split("\n")[0]}`
        result.errors.push(msg)
        log(`  ! ${result.name} ${msg}`)
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

interface Live {
    result: TargetResult
    target: RunningTarget
    gen?: LoadGenWorker
}

function pct(x: number): string {
    return `${(x * 100).toFixed(0)}%`
}

/** Run A: every target up at once with its default settings; load phases interleaved across them. */
async function loadPhases(live: Live[], profile: Profile, log: (l: string) => void): Promise<void> {
    const t = profile.throughput
    const l = profile.latency
    for (const x of live) {
        x.result.idleRssBytes = sampleProc(x.target.pid).rssBytes
        x.gen = await phase(x.result, "start load generator", log, () => LoadGenWorker.start(x.target.address, x.target.pid))
        if (!x.gen) continue
        const opened = await phase(x.result, "open devices", log, () => x.gen!.openDevices(t.devices, profile.openConcurrency))
        if (opened?.failed) x.result.errors.push(`open devices: ${opened.failed} of ${t.devices} failed: ${opened.firstError}`)
    }
    const ready = live.filter((x) => x.gen)
    for (let round = 0; round < t.rounds; round++) {
        for (const w of t.windows) {
            for (const x of ready) {
                const r = await phase(x.result, `closed loop window ${w}`, log, () => x.gen!.closedLoop(t.devices, w, t.warmupMs, t.measureMs))
                if (!r) continue
                x.result.throughputRuns.push(r)
                log(`  ${x.result.name.padEnd(9)} closed loop ${r.devices}×${w}: ${r.ackedPerS.toFixed(0)} acked/s; server ${pct(r.server.coreShare)} of a core, load generator ${pct(r.clientCoreShare)}, machine ${pct(r.machineBusy)} busy`)
                if (r.refused) x.result.errors.push(`closed loop window ${w}: ${r.refused} updates refused (${r.firstRefusal})`)
            }
        }
    }
    for (const x of ready) x.result.throughput = [...x.result.throughputRuns].sort((a, b) => b.ackedPerS - a.ackedPerS)[0]
    for (const x of ready) {
        const subs = await phase(x.result, "open subscribers", log, () => x.gen!.openSubscribers(l.subscribers, profile.openConcurrency))
        if (subs?.failed) x.result.errors.push(`open subscribers: ${subs.failed} failed: ${subs.firstError}`)
    }
    for (let round = 0; round < l.rounds; round++) {
        for (const x of ready) {
            const p = await phase(x.result, "paced latency", log, () => x.gen!.paced(l.ratePerS, l.warmupMs, l.measureMs))
            if (!p) continue
            x.result.latencyRuns.push(p)
            log(`  ${x.result.name.padEnd(9)} paced ${p.ratePerS}/s: ack p50 ${p.ack.p50.toFixed(2)} p99 ${p.ack.p99.toFixed(2)} ms; push p50 ${p.push.p50.toFixed(2)} p99 ${p.push.p99.toFixed(2)} ms (${p.pushesReceived}/${p.pushesExpected} pushes)`)
            if (p.refused) x.result.errors.push(`paced: ${p.refused} updates refused (${p.firstRefusal})`)
        }
    }
    for (const x of ready) x.result.latency = [...x.result.latencyRuns].sort((a, b) => a.ack.p99 - b.ack.p99)[0]
    // noisy neighbour: more subscribers on the flooded feed, and a quiet pair on a feed of its own
    const nb = profile.noisy
    const noisyReady: Live[] = []
    for (const x of ready) {
        const subs = await phase(x.result, "open flood subscribers", log, () => x.gen!.openSubscribers(Math.max(l.subscribers, nb.floodSubscribers), profile.openConcurrency))
        if (subs?.failed) x.result.errors.push(`open flood subscribers: ${subs.failed} failed: ${subs.firstError}`)
        if (await phase(x.result, "open the quiet pair", log, () => x.gen!.openQuiet()) !== undefined) noisyReady.push(x)
    }
    for (let round = 0; round < nb.rounds; round++) {
        for (const x of noisyReady) {
            const r = await phase(x.result, "noisy neighbour", log, () => x.gen!.noisy(nb.floodDevices, nb.window, nb.quietRatePerS, nb.warmupMs, nb.measureMs))
            if (!r) continue
            x.result.noisyRuns.push(r)
            log(
                `  ${x.result.name.padEnd(9)} noisy neighbour: flood ${r.floodAckedPerS.toFixed(0)} acked/s (${r.floodRefused} refused), ${(r.floodPushesPerS / 1000).toFixed(0)}k pushes/s to ${r.subscribers} subscribers; ` +
                    `quiet push p50 ${r.quiet.p50.toFixed(2)} p99 ${r.quiet.p99.toFixed(2)} ms (${r.quietReceived}/${r.quietSent})`,
            )
            if (r.quietReceived < r.quietSent) x.result.errors.push(`noisy neighbour: ${r.quietSent - r.quietReceived} of ${r.quietSent} quiet pushes did not arrive`)
        }
    }
    for (const x of noisyReady) x.result.noisy = [...x.result.noisyRuns].sort((a, b) => a.quiet.p99 - b.quiet.p99)[0]
    // idle phases one target at a time: idle CPU is small and a neighbour's traffic would swamp it
    const k = profile.defaultKeepAliveIdle
    for (const x of ready) {
        x.result.defaultKeepAliveIdle = await phase(x.result, "idle at default keep-alive", log, () =>
            idleWindow(x.target, x.gen!, k.connections, k.settleMs, k.measureMs, profile.openConcurrency)
        )
        await collectCloses(x.result, x.gen!)
        await x.gen!.stop()
        x.gen = undefined
    }
}

/** Run B, one target at a time: a fresh process holding more and more idle connections. */
async function scaleConnections(result: TargetResult, start: StartTarget, profile: Profile, ctx: Ctx): Promise<void> {
    const log = ctx.log
    const b = await start({ ...ctx, workDir: ctx.workDirOf(result.name), meteredKeepAlive: true })
    if (isSkipped(b)) {
        result.errors.push(`connection scaling: ${b.skipped}`)
        return
    }
    result.notes.push(...b.notes.filter((n) => !result.notes.includes(n)))
    try {
        await sleep(SETTLE_AFTER_START_MS)
        const base = await phase(result, "connection scaling baseline", log, async () => sampleProc(b.pid).rssBytes)
        if (base === undefined) return
        const gen = await LoadGenWorker.start(b.address, b.pid)
        try {
            const c = profile.connections
            for (const step of c.steps) {
                const r = await phase(result, `hold ${step} connections`, log, () => idleWindow(b, gen, step, c.settleMs, c.measureMs, profile.openConcurrency))
                if (!r) break
                const s: ScaleStep = { step, ...r, rssPerConnectionBytes: (r.server.rssBytes - base) / Math.max(1, r.open.open) }
                result.connections.push(s)
                log(`  ${result.name.padEnd(9)} ${r.open.open}/${step} connections: RSS ${(r.server.rssBytes / 2 ** 20).toFixed(1)} MiB, ${(s.rssPerConnectionBytes / 1024).toFixed(1)} KiB each, idle CPU ${(r.server.coreShare * 100).toFixed(1)}%`)
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
}

export async function benchTargets(starts: TargetStarts, profile: Profile, ctx: Ctx): Promise<TargetResult[]> {
    const log = ctx.log
    const results: TargetResult[] = []
    const live: Live[] = []
    let lastStartMs = performance.now()
    try {
        for (const [name, start] of starts) {
            const result: TargetResult = { name, notes: [], throughputRuns: [], latencyRuns: [], noisyRuns: [], connections: [], unexpectedCloses: 0, errors: [] }
            results.push(result)
            const a = await start({ ...ctx, workDir: ctx.workDirOf(name), meteredKeepAlive: false })
            if (isSkipped(a)) {
                result.skipped = a.skipped
                log(`- ${name}: SKIPPED: ${a.skipped}`)
                continue
            }
            log(`- ${name}: started (pid ${a.pid})`)
            result.notes.push(...a.notes)
            live.push({ result, target: a })
            lastStartMs = performance.now()
        }
        // the last one started is the youngest: once it is old enough, every target is
        await sleep(Math.max(SETTLE_AFTER_START_MS, lastStartMs + profile.idleRssAfterStartMs - performance.now()))
        if (live.length) await loadPhases(live, profile, log)
    } finally {
        for (const x of live) {
            await x.gen?.stop()
            await x.target.stop()
        }
    }
    for (const [name, start] of starts) {
        const result = results.find((r) => r.name === name)!
        if (!result.skipped) await scaleConnections(result, start, profile, ctx)
    }
    return results
}
