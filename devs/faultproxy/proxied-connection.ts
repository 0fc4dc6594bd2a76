// One proxied connection: a ProxiedConnection owns the accepted socket and the socket to the target, and one Pipe
// per direction owns that direction's queue and timer. The pure timing and cutting decisions live in
// pacing.ts; the proxy (proxy.ts) owns the connections and the table of faults they read.

import net from "node:net"
import type { CutFault, Dir, DirFaults, FaultTable } from "./faults.ts"
import { findCut, freshCursor, freshPace, pieceOf, planChunk, type ChunkPlan } from "./pacing.ts"

/** A direction stops reading from its source above this many queued bytes (throttle, latency, blackhole). */
export const MAX_QUEUED_BYTES = 256 * 1024
/** After a cut, the receiving side gets this long to read its partial frame and close before it is destroyed. */
export const CUT_LINGER_MS = 2000

export interface ConnectionInfo {
    id: number
    openedAtMs: number
    bytesUp: number
    bytesDown: number
}

/** What a proxied connection needs from the proxy that owns it. */
export interface ConnectionHost {
    /** the faults now in force, read on every chunk so that a change applies at once */
    readonly table: FaultTable
    readonly target: { host?: string; port: number }
    now(): number
    random(): number
    countBytes(dir: Dir, n: number): void
    /** a cut point was reached (the cut itself happens when the bytes before it have gone out) */
    cutArmed(cut: CutFault): void
    noteCut(conn: ProxiedConnection, dir: Dir): void
    targetFailed(conn: ProxiedConnection, err: NodeJS.ErrnoException): void
    connectionClosed(conn: ProxiedConnection): void
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
    /** no more forwarding: after a cut, or when the connection is torn down */
    stopped = false
    /** blackhole scope=existing: bytes are read and thrown away, nothing is ever closed on their behalf */
    swallowed = false
    bytes = 0

    constructor(
        readonly dir: Dir,
        readonly src: net.Socket,
        readonly dst: net.Socket,
        private readonly conn: ProxiedConnection
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
        return this.conn.host.table[this.dir]
    }

    private ingest(chunk: Buffer): void {
        if (this.stopped || this.swallowed) return
        const host = this.conn.host
        const f = this.faults()
        const cutAt = findCut(this.cursor, chunk, f.cut)
        const data = cutAt >= 0 ? chunk.subarray(0, cutAt) : chunk
        const now = host.now()
        const planned = planChunk(this.pace, now, data.length, f, f.jitterMs > 0 ? host.random() : 0)
        this.pace = planned.state
        if (planned.plan.count > 0) this.queue.push({ buf: data, plan: planned.plan, next: 0 })
        this.queuedBytes += data.length
        if (cutAt >= 0 && f.cut) {
            this.queue.push({ cut: f.cut })
            this.stopped = true
            host.cutArmed(f.cut)
        }
        this.pump()
    }

    /** Writes every piece that is due; sets one timer for the next. Called on every change of state. */
    readonly pump = (): void => {
        this.clearTimers()
        const host = this.conn.host
        let wrote = false
        while (this.queue.length > 0 && !this.faults().blackhole && !this.draining && !this.swallowed && !this.conn.targetPending) {
            const head = this.queue[0]
            if ("cut" in head) {
                this.queue.shift()
                this.conn.cutAfter(this)
                return
            }
            const piece = pieceOf(head.plan, head.next)
            const waitMs = piece.atMs - host.now()
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
            host.countBytes(this.dir, length)
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

/** One accepted connection and its connection to the target: owns both sockets and both pipes. */
export class ProxiedConnection {
    readonly pipes: { up: Pipe; down: Pipe }
    readonly openedAtMs: number
    /** true until the target connect starts: during a blackhole not even the SYN gets through */
    targetPending = true
    private targetConnected = false
    private lingerTimer: NodeJS.Timeout | undefined
    private closedSockets = 0
    private readonly lastError = new Map<net.Socket, string | undefined>()

    constructor(
        readonly host: ConnectionHost,
        readonly id: number,
        readonly client: net.Socket,
        readonly target: net.Socket
    ) {
        this.openedAtMs = host.now()
        this.pipes = { up: new Pipe("up", client, target, this), down: new Pipe("down", target, client, this) }
        target.once("connect", () => (this.targetConnected = true))
        for (const s of [client, target]) {
            s.setNoDelay(true)
            // errors end in "close"; the peer's fate is decided there
            s.on("error", (err: NodeJS.ErrnoException) => {
                this.lastError.set(s, err.code)
                if (s === target && !this.targetConnected) host.targetFailed(this, err)
            })
            s.on("close", (hadError: boolean) => this.onSocketClose(s, hadError))
        }
    }

    connectTarget(): void {
        if (!this.targetPending) return
        this.targetPending = false
        const t = this.host.target
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
        this.host.noteCut(this, pipe.dir)
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
        this.host.connectionClosed(this)
    }

    info(): ConnectionInfo {
        return { id: this.id, openedAtMs: this.openedAtMs, bytesUp: this.pipes.up.bytes, bytesDown: this.pipes.down.bytes }
    }
}
