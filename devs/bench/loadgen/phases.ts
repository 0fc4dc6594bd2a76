// The workload phases, identical for every target; only the ClientAdapter differs. Each phase
// measures the target server process from outside (/proc) over exactly its measured window.
import { cpuBetween, machineBusyBetween, sampleMachine, sampleProc, type ProcSample } from "../proc-stats.ts"
import { Samples, type Percentiles } from "../stats.ts"
import type { ClientAdapter, DeviceConnection, SubscriberConnection, WireBytes } from "./types.ts"

/** send times per device are remembered in a ring of this size (a power of two): far more than the
 * updates a device has in flight or pushes still due (window 32; 20/s × a 10 s drain) */
const SEND_RING = 1 << 12
/** an update whose ack takes longer than this after the phase ends counts as unacknowledged */
const DRAIN_MS = 10_000
/** how often idle connections are checked for a due keep-alive */
export const KEEPALIVE_SWEEP_MS = 100
/** the paced sender wakes this often and sends whatever the rate owes by now */
const PACER_TICK_MS = 2

export interface OpenResult {
    requested: number
    open: number
    failed: number
    firstError?: string
    ms: number
}

export interface ServerWindow {
    cpuMs: number
    coreShare: number
    rssBytes: number
    /** of cpuMs, the server's main thread (its event loop) alone, when the server is one process */
    mainThreadCpuMs?: number
    /** of cpuMs, the server's other threads (the SQLite writer, GC helpers, libuv pool), when the server is one process */
    otherThreadsCpuMs?: number
}

export interface ClosedLoopResult {
    devices: number
    window: number
    measureMs: number
    acked: number
    ackedPerS: number
    refused: number
    unacked: number
    firstRefusal?: string
    server: ServerWindow
    clientCoreShare: number
    /** the whole machine's busy share (all cores): near 1 means the box, not one process, was the limit */
    machineBusy: number
}

export interface PacedResult {
    ratePerS: number
    devices: number
    subscribers: number
    measureMs: number
    sent: number
    acked: number
    refused: number
    unacked: number
    firstRefusal?: string
    ack: Percentiles
    push: Percentiles
    pushesExpected: number
    pushesReceived: number
    deviceBytesPerUpdate: { up: number; down: number }
    subscriberBytesPerPush: number
    server: ServerWindow
    clientCoreShare: number
}

export interface NoisyResult {
    /** flood: devices each keeping `window` updates in flight on the main feed, `subscribers` receiving every one */
    floodDevices: number
    window: number
    subscribers: number
    measureMs: number
    floodAcked: number
    floodAckedPerS: number
    /** updates the server refused (feedline: 429 E_FANOUT_BUSY, each sent again after its retry_after_ms) */
    floodRefused: number
    firstRefusal?: string
    /** pushes of the flooded feed received per second, all subscribers together */
    floodPushesPerS: number
    /** one device writing a second feed at `quietRatePerS`, one subscriber on it: send → push */
    quietRatePerS: number
    quiet: Percentiles
    quietSent: number
    quietReceived: number
    server: ServerWindow
    clientCoreShare: number
}

/** Device numbers of the quiet pair, far above the flood's (they name datastreams d<n>). */
const QUIET_DEVICE = 1_000_000

function sumBytes(conns: { bytes(): WireBytes }[]): WireBytes {
    let read = 0
    let written = 0
    for (const c of conns) {
        const b = c.bytes()
        read += b.read
        written += b.written
    }
    return { read, written }
}

function serverWindow(a: ProcSample, b: ProcSample): ServerWindow {
    const mainThreadCpuMs = a.mainThreadCpuMs === undefined || b.mainThreadCpuMs === undefined ? undefined : b.mainThreadCpuMs - a.mainThreadCpuMs
    const otherThreadsCpuMs = a.otherThreadsCpuMs === undefined || b.otherThreadsCpuMs === undefined ? undefined : b.otherThreadsCpuMs - a.otherThreadsCpuMs
    return { ...cpuBetween(a, b), rssBytes: b.rssBytes, mainThreadCpuMs, otherThreadsCpuMs }
}

function clientShare(a: NodeJS.CpuUsage, ms: number): number {
    const d = process.cpuUsage(a)
    return (d.user + d.system) / 1000 / ms
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Routes acks and pushes to whichever phase is running. */
interface PhaseHooks {
    onAck(device: number, seq: number, ok: boolean, detail?: string, retryAfterMs?: number): void
    onPush(device: number, seq: number): void
}
const IDLE: PhaseHooks = { onAck() {}, onPush() {} }

export class LoadGenerator {
    /** open devices; `index` is the device number (datastream d<index>, slot in the per-device arrays) */
    private devices: { index: number; conn: DeviceConnection }[] = []
    private subscribers: SubscriberConnection[] = []
    private nextSeq: number[] = []
    /** device number → position in `devices` */
    private posOf: number[] = []
    private lastAtMs: number[] = []
    private sendTimes: Float64Array[] = []
    private hooks: PhaseHooks = IDLE
    /** per list, the next index to open (failed opens leave gaps, so it can exceed the list's length) */
    private opened = new Map<unknown[], number>()
    private keepAliveTimer: NodeJS.Timeout
    unexpectedCloses = 0
    firstClose?: string
    private closingAll = false

    constructor(private adapter: ClientAdapter, private serverPid: number | number[]) {
        this.keepAliveTimer = setInterval(() => adapter.sweepKeepAlive?.(performance.now()), KEEPALIVE_SWEEP_MS)
    }

    private onClose = (why: string) => {
        if (this.closingAll) return
        this.unexpectedCloses++
        this.firstClose ??= why
    }

    /** Grows the set of device connections to `total`, `concurrency` handshakes at a time. */
    async openDevices(total: number, concurrency: number): Promise<OpenResult> {
        const r = await this.openMany(this.devices, total, concurrency, async (i) => {
            this.nextSeq[i] = 1
            this.lastAtMs[i] = 0
            return { index: i, conn: await this.adapter.openDevice(i, (seq, ok, detail, retryAfterMs) => this.hooks.onAck(i, seq, ok, detail, retryAfterMs), this.onClose) }
        })
        // connections finish their handshakes out of order: keep the list in device order
        this.devices.sort((a, b) => a.index - b.index)
        this.devices.forEach((d, pos) => (this.posOf[d.index] = pos))
        return r
    }

    openSubscribers(total: number, concurrency: number): Promise<OpenResult> {
        return this.openMany(this.subscribers, total, concurrency, (j) => this.adapter.openSubscriber(j, (d, s) => this.hooks.onPush(d, s), this.onClose))
    }

    /** Opens connections into `list` until it holds `total`; failed ones are counted and left out. */
    private async openMany<C>(list: C[], total: number, concurrency: number, open: (index: number) => Promise<C>): Promise<OpenResult> {
        const t0 = performance.now()
        let failed = 0
        let firstError: string | undefined
        let next = this.opened.get(list) ?? list.length
        const worker = async () => {
            while (next < total) {
                const i = next++
                try {
                    list.push(await open(i))
                } catch (e) {
                    failed++
                    firstError ??= (e as Error).message
                }
            }
        }
        await Promise.all(Array.from({ length: concurrency }, worker))
        this.opened.set(list, next)
        return { requested: total, open: list.length, failed, firstError, ms: performance.now() - t0 }
    }

    /** Sends the next update of the device at position `pos` of the open devices. */
    private sendNext(pos: number): void {
        const { index: device, conn } = this.devices[pos]
        const seq = this.nextSeq[device]++
        // [P§9] (feed, datastream, at) identifies a datapoint: keep each device's stamps unique
        const atMs = Math.max(Date.now(), this.lastAtMs[device] + 1)
        this.lastAtMs[device] = atMs
        // allocated on first use: the thousands of idle connections of the scaling phase never send here
        const times = (this.sendTimes[device] ??= new Float64Array(SEND_RING))
        times[seq & (SEND_RING - 1)] = performance.now()
        conn.send(seq, atMs)
    }

    /** Every one of the first `devices` connections keeps `window` updates in flight. */
    async closedLoop(devices: number, window: number, warmupMs: number, measureMs: number): Promise<ClosedLoopResult> {
        const n = Math.min(devices, this.devices.length)
        let running = true
        let measuring = false
        let outstanding = 0
        let acked = 0
        let refused = 0
        let firstRefusal: string | undefined
        this.hooks = {
            onAck: (device, _seq, ok, detail) => {
                outstanding--
                if (measuring) {
                    if (ok) acked++
                    else refused++
                }
                if (!ok) firstRefusal ??= detail
                if (running) {
                    outstanding++
                    this.sendNext(this.posOf[device])
                }
            },
            onPush() {},
        }
        for (let d = 0; d < n; d++) for (let w = 0; w < window; w++, outstanding++) this.sendNext(d)
        await sleep(warmupMs)
        const s0 = sampleProc(this.serverPid)
        const m0 = sampleMachine()
        const c0 = process.cpuUsage()
        measuring = true
        await sleep(measureMs)
        measuring = false
        const s1 = sampleProc(this.serverPid)
        const machineBusy = machineBusyBetween(m0, sampleMachine())
        const elapsed = s1.atMs - s0.atMs
        const clientCoreShare = clientShare(c0, elapsed)
        running = false
        await this.drain(() => outstanding)
        this.hooks = IDLE
        return {
            devices: n,
            window,
            measureMs: elapsed,
            acked,
            ackedPerS: (acked * 1000) / elapsed,
            refused,
            unacked: outstanding,
            firstRefusal,
            server: serverWindow(s0, s1),
            clientCoreShare,
            machineBusy,
        }
    }

    /** Open loop: `ratePerS` updates per second spread round-robin over all devices. */
    async paced(ratePerS: number, warmupMs: number, measureMs: number): Promise<PacedResult> {
        const n = this.devices.length
        const m = this.subscribers.length
        const ack = new Samples()
        const push = new Samples()
        // indexed by device number, which can exceed n when some devices failed to open
        const slots = this.nextSeq.length
        const measureFrom = new Array<number>(slots).fill(Infinity)
        const measureTo = new Array<number>(slots).fill(Infinity)
        let measuring = false
        let outstanding = 0
        let sent = 0
        let acked = 0
        let refused = 0
        let pushesReceived = 0
        let firstRefusal: string | undefined
        const inWindow = (d: number, seq: number) => seq >= measureFrom[d] && seq < measureTo[d]
        this.hooks = {
            onAck: (d, seq, ok, detail) => {
                outstanding--
                if (!ok) firstRefusal ??= detail
                if (!inWindow(d, seq)) return
                if (!ok) return void refused++
                acked++
                ack.add(performance.now() - this.sendTimes[d][seq & (SEND_RING - 1)])
            },
            onPush: (d, seq) => {
                if (d < 0 || d >= slots || !inWindow(d, seq)) return
                pushesReceived++
                push.add(performance.now() - this.sendTimes[d][seq & (SEND_RING - 1)])
            },
        }
        let rr = 0
        const owedFrom = performance.now()
        let sentSinceOwed = 0
        const pacer = setInterval(() => {
            const owed = Math.floor(((performance.now() - owedFrom) * ratePerS) / 1000) - sentSinceOwed
            for (let k = 0; k < owed; k++) {
                outstanding++
                sentSinceOwed++
                if (measuring) sent++
                this.sendNext(rr)
                rr = (rr + 1) % n
            }
        }, PACER_TICK_MS)
        await sleep(warmupMs)
        const b0dev = sumBytes(this.devices.map((d) => d.conn))
        const b0sub = sumBytes(this.subscribers)
        const s0 = sampleProc(this.serverPid)
        const c0 = process.cpuUsage()
        for (const { index } of this.devices) measureFrom[index] = this.nextSeq[index]
        measuring = true
        await sleep(measureMs)
        measuring = false
        for (const { index } of this.devices) measureTo[index] = this.nextSeq[index]
        const s1 = sampleProc(this.serverPid)
        const elapsed = s1.atMs - s0.atMs
        const clientCoreShare = clientShare(c0, elapsed)
        const b1dev = sumBytes(this.devices.map((d) => d.conn))
        const b1sub = sumBytes(this.subscribers)
        clearInterval(pacer)
        await this.drain(() => outstanding)
        // pushes of the last updates may trail their acks a little
        const pushesExpected = sent * m
        for (let t = 0; t < 20 && pushesReceived < pushesExpected; t++) await sleep(100)
        this.hooks = IDLE
        return {
            ratePerS,
            devices: n,
            subscribers: m,
            measureMs: elapsed,
            sent,
            acked,
            refused,
            unacked: outstanding,
            firstRefusal,
            ack: ack.percentiles(),
            push: push.percentiles(),
            pushesExpected,
            pushesReceived,
            deviceBytesPerUpdate: { up: (b1dev.written - b0dev.written) / sent, down: (b1dev.read - b0dev.read) / sent },
            subscriberBytesPerPush: m ? (b1sub.read + b1sub.written - b0sub.read - b0sub.written) / (sent * m) : NaN,
            server: serverWindow(s0, s1),
            clientCoreShare,
        }
    }

    private quiet?: { feed: number; device: DeviceConnection; subscriber: SubscriberConnection; onAck: (seq: number) => void; onPush: (seq: number) => void }

    /** Opens the noisy-neighbour phase's quiet pair: a device writing a second feed and a subscriber on it. */
    async openQuiet(): Promise<number> {
        if (this.quiet) return this.quiet.feed
        const feed = await this.adapter.quietFeed()
        const pair = { feed, onAck: (_seq: number) => {}, onPush: (_seq: number) => {} } as NonNullable<LoadGenerator["quiet"]>
        pair.subscriber = await this.adapter.openSubscriber(QUIET_DEVICE, (d, seq) => d === QUIET_DEVICE && pair.onPush(seq), this.onClose, feed)
        pair.device = await this.adapter.openDevice(QUIET_DEVICE, (seq) => pair.onAck(seq), this.onClose, feed)
        this.quiet = pair
        return feed
    }

    /**
     * Noisy neighbour: the first `floodDevices` devices flood the main feed (closed loop, `window` updates in
     * flight each; a refused update is sent again after the server's retry hint, as a device does) while
     * every open subscriber receives them; meanwhile the quiet device writes its own feed at
     * `quietRatePerS` and the quiet subscriber's push latency is measured.
     */
    async noisy(floodDevices: number, window: number, quietRatePerS: number, warmupMs: number, measureMs: number): Promise<NoisyResult> {
        const quiet = this.quiet
        if (!quiet) throw new Error("openQuiet first")
        const n = Math.min(floodDevices, this.devices.length)
        let running = true
        let measuring = false
        let outstanding = 0
        let acked = 0
        let refused = 0
        let floodPushes = 0
        let firstRefusal: string | undefined
        const retries = new Set<NodeJS.Timeout>()
        this.hooks = {
            onAck: (device, _seq, ok, detail, retryAfterMs) => {
                outstanding--
                if (measuring) {
                    if (ok) acked++
                    else refused++
                }
                if (!ok) firstRefusal ??= detail
                if (!running) return
                outstanding++
                const pos = this.posOf[device]
                if (ok || !retryAfterMs) return this.sendNext(pos)
                const t = setTimeout(() => {
                    retries.delete(t)
                    if (running) this.sendNext(pos)
                    else outstanding--
                }, retryAfterMs)
                retries.add(t)
            },
            onPush: () => {
                if (measuring) floodPushes++
            },
        }
        const sentAt = new Map<number, number>()
        const latency = new Samples()
        let quietSeq = 1
        let quietSent = 0
        let quietReceived = 0
        quiet.onAck = () => {}
        quiet.onPush = (seq) => {
            const t = sentAt.get(seq)
            if (t === undefined) return
            sentAt.delete(seq)
            quietReceived++
            latency.add(performance.now() - t)
        }
        const quietTimer = setInterval(() => {
            const seq = quietSeq++
            if (measuring) {
                sentAt.set(seq, performance.now())
                quietSent++
            }
            quiet.device.send(seq, Date.now())
        }, 1000 / quietRatePerS)
        for (let d = 0; d < n; d++) for (let w = 0; w < window; w++, outstanding++) this.sendNext(d)
        await sleep(warmupMs)
        const s0 = sampleProc(this.serverPid)
        const c0 = process.cpuUsage()
        measuring = true
        await sleep(measureMs)
        measuring = false
        const s1 = sampleProc(this.serverPid)
        const elapsed = s1.atMs - s0.atMs
        const clientCoreShare = clientShare(c0, elapsed)
        clearInterval(quietTimer)
        running = false
        for (const t of retries) clearTimeout(t)
        outstanding -= retries.size
        retries.clear()
        await this.drain(() => outstanding)
        // the quiet feed's last pushes may trail the flood's backlog
        for (let t = 0; t < 50 && quietReceived < quietSent; t++) await sleep(100)
        this.hooks = IDLE
        return {
            floodDevices: n,
            window,
            subscribers: this.subscribers.length,
            measureMs: elapsed,
            floodAcked: acked,
            floodAckedPerS: (acked * 1000) / elapsed,
            floodRefused: refused,
            firstRefusal,
            floodPushesPerS: (floodPushes * 1000) / elapsed,
            quietRatePerS,
            quiet: latency.percentiles(),
            quietSent,
            quietReceived,
            server: serverWindow(s0, s1),
            clientCoreShare,
        }
    }

    private async drain(outstanding: () => number): Promise<void> {
        const until = performance.now() + DRAIN_MS
        while (outstanding() > 0 && performance.now() < until) await sleep(20)
    }

    closeAll(): void {
        this.closingAll = true
        for (const c of [...this.devices.map((d) => d.conn), ...this.subscribers, ...(this.quiet ? [this.quiet.device, this.quiet.subscriber] : [])]) c.close()
        this.quiet = undefined
        this.devices = []
        this.subscribers = []
        clearInterval(this.keepAliveTimer)
    }

    counts(): { devices: number; subscribers: number; unexpectedCloses: number; firstClose?: string } {
        return { devices: this.devices.length, subscribers: this.subscribers.length, unexpectedCloses: this.unexpectedCloses, firstClose: this.firstClose }
    }
}
