// The fault-injection proxy: a plain TCP proxy (TLS bytes pass untouched) that applies the faults of
// faults.ts to every connection. One Link per accepted connection owns its two sockets; one Pipe per
// direction owns that direction's queue and timer. The pure timing and cutting decisions live in
// pacing.ts, the schedule arithmetic in schedule.ts.

import net from "node:net"
import { EventEmitter } from "node:events"
import { performance } from "node:perf_hooks"
import {
    applyToTable,
    checkCommand,
    describeCommand,
    dirsOf,
    expiryOf,
    FaultProxyError,
    noFaults,
    parseCommand,
    type CutFault,
    type Dir,
    type DirFaults,
    type FaultCommand,
    type FaultTable,
} from "./faults.ts"
import { findCut, freshCursor, freshPace, pieceOf, planChunk, type ChunkPlan } from "./pacing.ts"
import { dueSteps, nextDueMs, type Schedule } from "./schedule.ts"

/** A direction stops reading from its source above this many queued bytes (throttle, latency, blackhole). */
export const MAX_QUEUED_BYTES = 256 * 1024
/** After a cut, the receiving side gets this long to read its partial frame and close before it is destroyed. */
export const CUT_LINGER_MS = 2000
/** Re-listening after `refuse` may meet the old listening socket for a moment; retry this often, this far apart. */
const RELISTEN_TRIES = 50
const RELISTEN_RETRY_MS = 20

export interface FaultProxyOptions {
    target: { host?: string; port: number }
    /** default 127.0.0.1, port 0 (ephemeral) */
    listen?: { host?: string; port?: number }
    /** started at once; see schedule.ts */
    schedule?: Schedule
    /** monotonic milliseconds; default performance.now */
    now?: () => number
    /** [0, 1); default Math.random. Pass a seeded one for reproducible jitter. */
    random?: () => number
}

export interface FaultProxyStats {
    accepted: number
    open: number
    peakOpen: number
    /** connections refused (listener closed: not counted, the kernel refuses them) or reset on accept */
    refused: number
    resets: number
    cuts: number
    bytesUp: number
    bytesDown: number
    targetErrors: number
    /** bytes held in the proxy now (latency, throttle, blackhole), all connections */
    queuedBytes: number
}

export interface LinkInfo {
    id: number
    openedAtMs: number
    bytesUp: number
    bytesDown: number
}

/** A received chunk and the next of its planned pieces to write, or the point where the connection is cut. */
type QueueItem = { buf: Buffer; plan: ChunkPlan; next: number } | { cut: CutFault }

/** One direction of one connection: reads `src`, delays/splits/holds, writes `dst`. */
class Pipe {
    private queue: QueueItem[] = []
    queuedBytes = 0
    private pace = freshPace()
    private cursor = freshCursor()
    private timer: NodeJS.Timeout | undefined
    /** a turn of the event loop between two split pieces that are both due */
    private yielded: NodeJS.Immediate | undefined
    private draining = false
    private srcEnded = false
    private endSent = false
    /** no more forwarding: after a cut, or when the link is torn down */
    stopped = false
    /** blackhole scope=existing: bytes are read and thrown away, nothing is ever closed on their behalf */
    swallowed = false
    bytes = 0

    constructor(
        readonly dir: Dir,
        readonly src: net.Socket,
        readonly dst: net.Socket,
        private readonly link: Link
    ) {
        src.on("data", (chunk: Buffer) => this.ingest(chunk))
        src.on("end", () => {
            this.srcEnded = true
            // a swallowed peer that leaves is answered by us alone: the other side must not learn of it
            if (this.swallowed) src.end()
            else this.pump()
        })
        dst.on("drain", () => {
            this.draining = false
            this.pump()
        })
    }

    private faults(): DirFaults {
        return this.link.proxy.table[this.dir]
    }

    private ingest(chunk: Buffer): void {
        if (this.stopped || this.swallowed) return
        const proxy = this.link.proxy
        const f = this.faults()
        const cutAt = findCut(this.cursor, chunk, f.cut)
        const data = cutAt >= 0 ? chunk.subarray(0, cutAt) : chunk
        const now = proxy.now()
        const planned = planChunk(this.pace, now, data.length, f, f.jitterMs > 0 ? proxy.random() : 0)
        this.pace = planned.state
        if (planned.plan.count > 0) this.queue.push({ buf: data, plan: planned.plan, next: 0 })
        this.queuedBytes += data.length
        if (cutAt >= 0 && f.cut) {
            this.queue.push({ cut: f.cut })
            this.stopped = true
            proxy.cutArmed(f.cut)
        }
        this.pump()
    }

    /** Writes every piece that is due; sets one timer for the next. Called on every change of state. */
    readonly pump = (): void => {
        this.clearTimers()
        const proxy = this.link.proxy
        let wrote = false
        while (this.queue.length > 0 && !this.faults().blackhole && !this.draining && !this.swallowed && !this.link.targetPending) {
            const head = this.queue[0]
            if ("cut" in head) {
                this.queue.shift()
                this.link.cutAfter(this)
                return
            }
            const piece = pieceOf(head.plan, head.next)
            const waitMs = piece.atMs - proxy.now()
            // split pieces go one per timer turn, even when several are due after a stall, so that the
            // receiver reads each on its own instead of the kernel joining them again
            if (waitMs > 0) {
                this.timer = setTimeout(this.pump, Math.ceil(waitMs))
                break
            }
            if (wrote && this.faults().splitBytes > 0) {
                this.yielded = setImmediate(this.pump)
                break
            }
            if (++head.next === head.plan.count) this.queue.shift()
            const length = piece.end - piece.start
            this.queuedBytes -= length
            if (this.dst.destroyed || this.dst.writableEnded) continue
            this.bytes += length
            proxy.countBytes(this.dir, length)
            wrote = true
            if (!this.dst.write(head.buf.subarray(piece.start, piece.end))) this.draining = true
        }
        if (this.queue.length === 0 && this.srcEnded && !this.endSent && !this.swallowed && !this.stopped) {
            this.endSent = true
            if (!this.dst.destroyed) this.dst.end()
        }
        this.flow()
    }

    /** Reads from the source only while forwarding can keep up (bounded memory, TCP backpressure). */
    private flow(): void {
        if (this.src.destroyed) return
        const hold = !this.swallowed && (this.faults().blackhole || this.draining || this.queuedBytes > MAX_QUEUED_BYTES)
        if (hold || (this.stopped && !this.swallowed)) this.src.pause()
        else this.src.resume()
    }

    swallow(): void {
        this.swallowed = true
        this.dropQueue()
        this.flow()
    }

    private clearTimers(): void {
        if (this.timer) clearTimeout(this.timer)
        if (this.yielded) clearImmediate(this.yielded)
        this.timer = undefined
        this.yielded = undefined
    }

    dropQueue(): void {
        this.clearTimers()
        this.queue = []
        this.queuedBytes = 0
    }
}

/** One accepted connection and its connection to the target. */
class Link {
    readonly pipes: { up: Pipe; down: Pipe }
    readonly openedAtMs: number
    /** true until the target connect starts: during a blackhole not even the SYN gets through */
    targetPending = true
    private targetConnected = false
    private lingerTimer: NodeJS.Timeout | undefined
    private closedSockets = 0
    private readonly lastError = new Map<net.Socket, string | undefined>()

    constructor(
        readonly proxy: FaultProxy,
        readonly id: number,
        readonly client: net.Socket,
        readonly target: net.Socket
    ) {
        this.openedAtMs = proxy.now()
        this.pipes = { up: new Pipe("up", client, target, this), down: new Pipe("down", target, client, this) }
        target.once("connect", () => (this.targetConnected = true))
        for (const s of [client, target]) {
            s.setNoDelay(true)
            // errors end in "close"; the peer's fate is decided there
            s.on("error", (err: NodeJS.ErrnoException) => {
                this.lastError.set(s, err.code)
                if (s === target && !this.targetConnected) proxy.targetFailed(this, err)
            })
            s.on("close", (hadError: boolean) => this.onSocketClose(s, hadError))
        }
    }

    connectTarget(): void {
        if (!this.targetPending) return
        this.targetPending = false
        const t = this.proxy.options.target
        this.target.connect({ host: t.host ?? "127.0.0.1", port: t.port })
    }

    private onSocketClose(s: net.Socket, hadError: boolean): void {
        this.closedSockets++
        const peer = s === this.client ? this.target : this.client
        const swallowed = this.pipes.up.swallowed || this.pipes.down.swallowed
        if (hadError && !swallowed && !peer.destroyed) {
            // a reset (or a refused target) stays a reset on the other side; other failures close it
            const code = this.lastError.get(s)
            if (code === "ECONNRESET" || code === "ECONNREFUSED") peer.resetAndDestroy()
            else peer.destroy()
        }
        if (this.closedSockets === 2) this.finish()
    }

    /** The cut: the receiver of `pipe` gets its partial frame then FIN; the sender gets a reset. */
    cutAfter(pipe: Pipe): void {
        this.proxy.noteCut(this, pipe.dir)
        pipe.stopped = true
        pipe.dropQueue()
        // keep reading the receiver so that its close is seen (unread data would turn our FIN into a RST)
        const reverse = pipe === this.pipes.up ? this.pipes.down : this.pipes.up
        reverse.swallow()
        if (!pipe.dst.destroyed) pipe.dst.end()
        if (!pipe.src.destroyed) pipe.src.resetAndDestroy()
        this.lingerTimer = setTimeout(() => pipe.dst.destroy(), CUT_LINGER_MS)
    }

    reset(): void {
        this.targetPending = false
        for (const s of [this.client, this.target]) if (!s.destroyed) s.resetAndDestroy()
    }

    /** blackhole scope=existing: both directions go silent for good, and nothing is closed on their behalf. */
    swallow(dirs: Dir[]): void {
        for (const d of dirs) this.pipes[d].swallow()
    }

    destroy(): void {
        for (const p of [this.pipes.up, this.pipes.down]) (p.stopped = true), p.dropQueue()
        this.client.destroy()
        this.target.destroy()
        this.finish()
    }

    private finish(): void {
        if (this.lingerTimer) clearTimeout(this.lingerTimer)
        this.lingerTimer = undefined
        for (const p of [this.pipes.up, this.pipes.down]) p.dropQueue()
        this.proxy.linkClosed(this)
    }

    info(): LinkInfo {
        return { id: this.id, openedAtMs: this.openedAtMs, bytesUp: this.pipes.up.bytes, bytesDown: this.pipes.down.bytes }
    }
}

/**
 * The proxy. Events: "connection" (LinkInfo), "close" (LinkInfo), "refused", "cut" ({id, dir}),
 * "reset" (count), "fault" (text of the command), "targetError" ({id, code}), "listenError" (Error).
 */
export class FaultProxy extends EventEmitter {
    table: FaultTable = noFaults()
    readonly now: () => number
    readonly random: () => number
    private readonly links = new Map<number, Link>()
    private readonly expiries = new Map<string, NodeJS.Timeout>()
    private server: net.Server | undefined
    private listening = false
    private closed = false
    private nextId = 1
    private scheduleTimer: NodeJS.Timeout | undefined
    private readonly counters: FaultProxyStats = {
        accepted: 0,
        open: 0,
        peakOpen: 0,
        refused: 0,
        resets: 0,
        cuts: 0,
        bytesUp: 0,
        bytesDown: 0,
        targetErrors: 0,
        queuedBytes: 0,
    }
    private listenHost: string
    /** the listening port (fixed after the first listen, so that `refuse` and `accept` keep it) */
    port: number

    constructor(readonly options: FaultProxyOptions) {
        super()
        if (!options.target || !Number.isInteger(options.target.port) || options.target.port < 1 || options.target.port > 65535) {
            throw new FaultProxyError("E_BAD_OPTIONS", `target.port must be a port number 1-65535, got ${JSON.stringify(options.target?.port)}`)
        }
        this.now = options.now ?? (() => performance.now())
        this.random = options.random ?? Math.random
        this.listenHost = options.listen?.host ?? "127.0.0.1"
        this.port = options.listen?.port ?? 0
    }

    /** Starts listening (and the schedule, if any). Resolves once connections are accepted. */
    async start(): Promise<this> {
        await this.listen()
        if (this.options.schedule) this.runSchedule(this.options.schedule)
        return this
    }

    // ---- commands ----

    /** Applies a command: an object (see faults.ts) or its text form, e.g. "blackhole for=5000". */
    apply(command: FaultCommand | string): void {
        const checked = typeof command === "string" ? parseCommand(command) : checkCommand(command)
        if (checked.fault === "status") return
        const cmd = checked
        if (this.closed) return
        this.cancelExpiries(cmd)
        this.table = applyToTable(this.table, cmd)
        if (cmd.fault === "reset") {
            this.counters.resets += this.links.size
            this.emit("reset", this.links.size)
            for (const link of [...this.links.values()]) link.reset()
        }
        if (cmd.fault === "blackhole" && cmd.scope === "existing") for (const link of this.links.values()) link.swallow(dirsOf(cmd.dir))
        const expiry = expiryOf(cmd)
        if (expiry) {
            const timer = setTimeout(() => {
                for (const key of this.expiryKeys(cmd)) if (this.expiries.get(key) === timer) this.expiries.delete(key)
                this.apply(expiry.command)
            }, expiry.afterMs)
            for (const key of this.expiryKeys(cmd)) this.expiries.set(key, timer)
        }
        this.emit("fault", describeCommand(cmd))
        this.syncListener()
        // any change may release held bytes (blackhole lifted) or change pacing of what comes next
        for (const link of [...this.links.values()]) {
            if (!this.networkDown()) link.connectTarget()
            link.pipes.up.pump()
            link.pipes.down.pump()
        }
    }

    refuse(opts: { forMs?: number; mode?: "refused" | "reset" } = {}): void {
        this.apply({ fault: "refuse", ...opts })
    }
    accept(): void {
        this.apply({ fault: "off", what: "refuse" })
    }
    reset(): void {
        this.apply({ fault: "reset" })
    }
    blackhole(opts: { dir?: Dir | "both"; forMs?: number; scope?: "all" | "existing" } = {}): void {
        this.apply({ fault: "blackhole", ...opts })
    }
    latency(ms: number, opts: { jitterMs?: number; dir?: Dir | "both"; forMs?: number } = {}): void {
        this.apply({ fault: "latency", ms, ...opts })
    }
    throttle(bytesPerSec: number, opts: { dir?: Dir | "both"; forMs?: number } = {}): void {
        this.apply({ fault: "throttle", bytesPerSec, ...opts })
    }
    split(bytes: number, opts: { gapMs?: number; dir?: Dir | "both"; forMs?: number } = {}): void {
        this.apply({ fault: "split", bytes, ...opts })
    }
    cut(afterBytes: number, opts: { frame?: "line" | "tls" | "raw"; dir?: Dir | "both"; repeat?: boolean } = {}): void {
        this.apply({ fault: "cut", afterBytes, ...opts })
    }
    /** Lifts every fault (open connections stay open; swallowed ones stay swallowed). */
    clear(): void {
        this.apply({ fault: "off", what: "all" })
    }

    /** Runs a schedule from now on, replacing the one running. */
    runSchedule(schedule: Schedule): void {
        if (this.scheduleTimer) clearTimeout(this.scheduleTimer)
        const startMs = this.now()
        let doneMs = -1
        const tick = (): void => {
            this.scheduleTimer = undefined
            if (this.closed) return
            const elapsed = this.now() - startMs
            for (const step of dueSteps(schedule, doneMs, elapsed)) this.apply(step.command)
            doneMs = elapsed
            const next = nextDueMs(schedule, elapsed)
            if (next !== undefined) this.scheduleTimer = setTimeout(tick, Math.max(0, Math.ceil(next - elapsed)))
        }
        tick()
    }

    // ---- state ----

    stats(): FaultProxyStats {
        let queuedBytes = 0
        for (const link of this.links.values()) queuedBytes += link.pipes.up.queuedBytes + link.pipes.down.queuedBytes
        return { ...this.counters, open: this.links.size, queuedBytes }
    }

    connections(): LinkInfo[] {
        return [...this.links.values()].map((l) => l.info())
    }

    /** The active faults, as text commands (empty when the link is clean). */
    activeFaults(): string[] {
        const out: string[] = []
        const t = this.table
        if (t.refuse) out.push(`refuse mode=${t.refuse}`)
        const same = JSON.stringify(t.up) === JSON.stringify(t.down)
        for (const d of same ? (["both"] as const) : (["up", "down"] as const)) {
            const f = d === "both" ? t.up : t[d]
            const dir = d === "both" ? "" : ` dir=${d}`
            if (f.blackhole) out.push(`blackhole${dir}`)
            if (f.latencyMs || f.jitterMs) out.push(`latency ${f.latencyMs} jitter=${f.jitterMs}${dir}`)
            if (f.bytesPerSec) out.push(`throttle ${f.bytesPerSec}${dir}`)
            if (f.splitBytes) out.push(`split ${f.splitBytes} gap=${f.splitGapMs}${dir}`)
            if (f.cut) out.push(`cut ${f.cut.afterBytes} frame=${f.cut.frame}${dir}${f.cut.repeat ? " repeat" : ""}`)
        }
        return out
    }

    /** Stops everything: timers, listener, every socket. Resolves when the listener is closed. */
    async close(): Promise<void> {
        this.closed = true
        if (this.scheduleTimer) clearTimeout(this.scheduleTimer)
        this.scheduleTimer = undefined
        for (const t of this.expiries.values()) clearTimeout(t)
        this.expiries.clear()
        for (const link of [...this.links.values()]) link.destroy()
        const server = this.server
        this.server = undefined
        this.listening = false
        if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
    }

    // ---- called by Link and Pipe ----

    countBytes(dir: Dir, n: number): void {
        if (dir === "up") this.counters.bytesUp += n
        else this.counters.bytesDown += n
    }

    /** A one-shot cut (in either direction) disarms itself as soon as one connection is cut. */
    cutArmed(cut: CutFault): void {
        if (cut.repeat) return
        for (const d of ["up", "down"] as const) {
            if (this.table[d].cut && !this.table[d].cut!.repeat) this.table = applyToTable(this.table, { fault: "off", what: "cut", dir: d })
        }
    }

    noteCut(link: Link, dir: Dir): void {
        this.counters.cuts++
        this.emit("cut", { id: link.id, dir })
    }

    targetFailed(link: Link, err: NodeJS.ErrnoException): void {
        this.counters.targetErrors++
        this.emit("targetError", { id: link.id, code: err.code ?? String(err) })
    }

    linkClosed(link: Link): void {
        if (!this.links.delete(link.id)) return
        this.emit("close", link.info())
    }

    // ---- internals ----

    /** A blackhole in either direction stops a TCP handshake too. */
    private networkDown(): boolean {
        return this.table.up.blackhole || this.table.down.blackhole
    }

    private expiryKeys(cmd: FaultCommand): string[] {
        const name = cmd.fault === "off" ? cmd.what : cmd.fault
        const names = name === "all" ? ["refuse", "blackhole", "latency", "throttle", "split", "cut"] : [name]
        const dir = "dir" in cmd ? cmd.dir : undefined
        return names.flatMap((n) => (n === "refuse" ? ["refuse"] : dirsOf(dir).map((d) => `${n}:${d}`)))
    }

    /** A newer command for the same fault and direction replaces the older one's expiry. */
    private cancelExpiries(cmd: FaultCommand): void {
        for (const key of this.expiryKeys(cmd)) {
            const t = this.expiries.get(key)
            if (t) clearTimeout(t)
            this.expiries.delete(key)
        }
    }

    private onConnection(client: net.Socket): void {
        if (this.closed) return void client.destroy()
        if (this.table.refuse === "reset") {
            this.counters.refused++
            this.emit("refused")
            client.on("error", () => {})
            client.resetAndDestroy()
            return
        }
        const link = new Link(this, this.nextId++, client, new net.Socket({ allowHalfOpen: true }))
        this.links.set(link.id, link)
        if (!this.networkDown()) link.connectTarget()
        this.counters.accepted++
        this.counters.peakOpen = Math.max(this.counters.peakOpen, this.links.size)
        this.emit("connection", link.info())
    }

    /** Listening while not refusing with mode "refused" (then the kernel answers connects with RST: ECONNREFUSED). */
    private syncListener(): void {
        const want = !this.closed && this.table.refuse !== "refused"
        if (want && !this.listening) {
            this.listen().catch((err) => this.emit("listenError", err))
        } else if (!want && this.listening) {
            this.listening = false
            this.server?.close()
            this.server = undefined
        }
    }

    private async listen(): Promise<void> {
        this.listening = true
        for (let attempt = 1; ; ++attempt) {
            const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (s) => this.onConnection(s))
            try {
                await new Promise<void>((resolve, reject) => {
                    server.once("error", reject)
                    server.listen({ host: this.listenHost, port: this.port }, () => resolve())
                })
            } catch (err) {
                if ((err as NodeJS.ErrnoException).code === "EADDRINUSE" && this.port !== 0 && attempt < RELISTEN_TRIES && this.listening) {
                    await new Promise((r) => setTimeout(r, RELISTEN_RETRY_MS))
                    continue
                }
                this.listening = false
                throw err
            }
            // refused or closed while we were binding
            if (!this.listening || this.closed) return void server.close()
            server.on("error", (err) => this.emit("listenError", err))
            this.port = (server.address() as net.AddressInfo).port
            this.server = server
            return
        }
    }
}

/** Starts a fault-injection proxy in front of `target`; see FaultProxy for the commands. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
    return new FaultProxy(options).start()
}
