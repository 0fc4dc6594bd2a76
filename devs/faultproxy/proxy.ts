// The fault-injection proxy: a plain TCP proxy (TLS bytes pass untouched) that applies the faults of
// faults.ts to every connection. It owns the listener, the table of faults, their timers and the
// connections (proxied-connection.ts: one per accepted connection); the schedule arithmetic is in schedule.ts.

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
    type FaultCommand,
    type FaultTable,
} from "./faults.ts"
import { ProxiedConnection, type ConnectionHost, type ConnectionInfo } from "./proxied-connection.ts"

export { MAX_QUEUED_BYTES, CUT_LINGER_MS, type ConnectionInfo } from "./proxied-connection.ts"
import { dueSteps, nextDueMs, type Schedule } from "./schedule.ts"

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


/**
 * The proxy. Events: "connection" (ConnectionInfo), "close" (ConnectionInfo), "refused", "cut" ({id, dir}),
 * "reset" (count), "fault" (text of the command), "targetError" ({id, code}), "listenError" (Error).
 */
export class FaultProxy extends EventEmitter implements ConnectionHost {
    table: FaultTable = noFaults()
    readonly now: () => number
    readonly random: () => number
    readonly target: { host?: string; port: number }
    private readonly proxied = new Map<number, ProxiedConnection>()
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
        this.target = options.target
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
            this.counters.resets += this.proxied.size
            this.emit("reset", this.proxied.size)
            for (const conn of [...this.proxied.values()]) conn.reset()
        }
        if (cmd.fault === "blackhole" && cmd.scope === "existing") for (const conn of this.proxied.values()) conn.swallow(dirsOf(cmd.dir))
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
        for (const conn of [...this.proxied.values()]) {
            if (!this.networkDown()) conn.connectTarget()
            conn.pipes.up.pump()
            conn.pipes.down.pump()
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
        for (const conn of this.proxied.values()) queuedBytes += conn.pipes.up.queuedBytes + conn.pipes.down.queuedBytes
        return { ...this.counters, open: this.proxied.size, queuedBytes }
    }

    connections(): ConnectionInfo[] {
        return [...this.proxied.values()].map((l) => l.info())
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
        for (const conn of [...this.proxied.values()]) conn.destroy()
        const server = this.server
        this.server = undefined
        this.listening = false
        if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
    }

    // ---- called by ProxiedConnection and Pipe ----

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

    noteCut(conn: ProxiedConnection, dir: Dir): void {
        this.counters.cuts++
        this.emit("cut", { id: conn.id, dir })
    }

    targetFailed(conn: ProxiedConnection, err: NodeJS.ErrnoException): void {
        this.counters.targetErrors++
        this.emit("targetError", { id: conn.id, code: err.code ?? String(err) })
    }

    connectionClosed(conn: ProxiedConnection): void {
        if (!this.proxied.delete(conn.id)) return
        this.emit("close", conn.info())
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
        const conn = new ProxiedConnection(this, this.nextId++, client, new net.Socket({ allowHalfOpen: true }))
        this.proxied.set(conn.id, conn)
        if (!this.networkDown()) conn.connectTarget()
        this.counters.accepted++
        this.counters.peakOpen = Math.max(this.counters.peakOpen, this.proxied.size)
        this.emit("connection", conn.info())
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
