// The device's one socket, over the runtime hooks (_socketOpen/_socketWrite/_socketClose/_socketOnEvent),
// with rules that follow what the ESP32 runtime really does (devicescript-esp32 main/sock.c, devicescript
// runtime/devicescript/impl_socket.c; docs/FIRMWARE.md "Link states"):
//   - connect, TLS handshake and writes run on a worker task fed by a queue; reads and _socketClose() run on
//     the main task, and close frees the TLS state the worker may be using (the handshake has no timeout);
//   - events carry no connection id: a late open/error of an abandoned attempt reaches whatever is current;
//   - _socketOpen returns 0 even when the worker's queue was full: then no event ever comes;
//   - after close or an error event the runtime drops further events until the next _socketOpen.
// Rules (each has a test against the fake runtime in test/firmware/socket.test.ts):
//   R1 one native connection at a time: an open is issued only when the previous one is closed and settled;
//   R2 never close while the worker may use the connection: an attempt abandoned before its open/error event
//      is closed after that event; an open one not within WRITE_GAP_MS of the last write. Save one case: an
//      attempt with no event OPEN_STUCK_MS after its open is closed anyway (below);
//   R3 events are attributed to the one native connection (a generation count) and dropped once the link
//      has abandoned it; events with no connection are counted as stale;
//   R4 at most one write in flight: pending text is coalesced into one write, WRITE_GAP_MS apart;
//   R5 a heartbeat is dropped when other text is pending (that text proves liveness as well);
//   R6 a dropped open (queue full) is noticed at once: _socketWrite answers -100 when the runtime took none;
//   R7 received data waits in a queue bounded by RX_MAX_BYTES; beyond it the connection is dropped.
import * as ds from "@devicescript/core"
import { runAfter } from "./fibers"

/** The runtime's socket hooks (ds._socketOpen/_socketWrite/_socketClose), or a fake in tests. */
export interface SocketRuntime {
    /** 0 when queued (a negative port selects TLS); throws RangeError "network not available" without Wi-Fi */
    open(host: string, port: number): number
    /** 0 queued, -1 worker queue full, -10 not connected, -100 no socket (closed, or the open was dropped) */
    write(text: string): number
    close(): number
}

/** Where the current connection's events go (the link). */
export interface SocketSink {
    onOpen(): void
    onData(chunk: Buffer): void
    onClosed(reason: string): void
}

/** The worker processes a write in a few ms; under TCP backpressure it waits 5 ticks (50 ms at 100 Hz). */
export const WRITE_GAP_MS = 100
/** After a close, late events already queued in the runtime drain (one main-loop pass is 10 ms) before the next open. */
export const SETTLE_MS = 50
/** One write stays well under the 4096 B that make the ESP32's TLS write assert and reboot. */
export const MAX_WRITE_BYTES = 2048
/**
 * An abandoned attempt with no event this long after its open is closed anyway, so the next open can go out.
 * The runtime has no handshake timeout and no TCP keep-alive: a server that accepts and then says nothing
 * holds the worker in a blocking read for ever, and only a close (or a reboot) ends it. A C3 handshake takes
 * 1-2 s, so by now the worker is waiting on the network, not computing with the TLS state the close frees
 * (the risk R2 avoids otherwise). 4x the default CONNECT_S; a close during DNS or the TCP connect (no socket
 * yet) ends nothing, and the next open then waits behind it in the worker's queue.
 */
export const OPEN_STUCK_MS = 60000
/** A full worker queue (-1) is retried for this long, then the connection is given up. */
const SEND_STALL_MAX_MS = 2000
/** Received bytes waiting for the link; a legitimate burst (a replay of 16 pushes) is ~2.4 KB. */
export const RX_MAX_BYTES = 6144
/**
 * What a queued read costs beside its bytes, charged against RX_MAX_BYTES: its Buffer and three queue slots.
 * A server that drips (one byte per TLS record, one read each) otherwise queued 1000 one-byte reads, 1 KB by
 * their bytes, and ran the VM out of memory (measured: the queue array alone, grown by doubling).
 */
export const RX_CHUNK_CHARGE_BYTES = 48
/**
 * Received data is handed to the link at most this much at a time, with a yield between: the link handles
 * a line in up to ~250 VM steps even when it is empty (a heartbeat), and the VM panics (InfiniteLoop) after
 * ~128K steps without yielding. Measured in the simulator: 1024 blank lines in one piece panicked, 512 did not.
 */
const RX_SLICE_BYTES = 256

const IDLE = 0
const OPENING = 1
const OPEN = 2
const SETTLING = 3

/** @devsWhenUsed: a method the image never calls, such as pending() (tests), is not compiled into it (docs/FIRMWARE.md "Program size") */
export class NativeSocket {
    /** IDLE, OPENING (worker connecting/handshaking), OPEN, SETTLING (closed, late events draining) */
    private slot = IDLE
    /** generation of the native connection in the slot */
    private slotGen = 0
    /** generation the link uses now (0: none), and where its events go */
    private live = 0
    private sink: SocketSink = null
    private gens = 0
    /** an open the link asked for while the slot was busy */
    private wantHost: string = null
    private wantPort = 0
    /** the slot's connection is abandoned: close it natively once that is safe (R2) */
    private closeDue = false
    private settleUntilMs = 0
    /** when the slot's open was issued */
    private issuedMs = 0
    private out = ""
    private lastWriteMs = -WRITE_GAP_MS
    private stallSinceMs = -1
    /**
     * received entries for the link, three slots each: generation, kind (0 open, 1 data, 2 closed), data or
     * reason (one array: one push and one insert() an entry; three arrays took three of each, ~40 B more code)
     */
    private rx: any[] = []
    private rxBytes = 0
    private delivering = false
    /** events that belonged to no connection (dropped) */
    stale = 0
    /** closes held back because the worker might have been using the connection */
    deferredCloses = 0
    /** connections dropped because the link did not keep up with received data */
    overflows = 0

    private pumpDue = false

    /** `later(fn, ms)` runs fn after ms (runAfter): a write held back by the gap goes when it ends */
    constructor(private rt: SocketRuntime, private now: () => number, private later?: (fn: () => void, ms: number) => void) {}

    /**
     * Starts a connection for `sink`. "" when under way (issued now, or as soon as the previous native
     * connection is closed and settled), else E_NO_NETWORK (no Wi-Fi), E_OPEN <n> or E_OPEN_QUEUE_FULL.
     */
    connect(host: string, port: number, sink: SocketSink): string {
        if (this.live) this.abandon()
        this.live = ++this.gens
        this.sink = sink
        this.out = ""
        this.stallSinceMs = -1
        this.wantHost = host
        this.wantPort = port
        this.settle()
        if (this.slot !== IDLE) return "" // R1: issued by poll() once the previous connection is gone
        const err = this.issue()
        if (err) this.live = 0
        return err
    }

    /** Bytes waiting to be written. */
    pending(): number {
        return this.out.length
    }

    /** Queues text for the current connection; failures arrive later as onClosed. */
    send(text: string) {
        if (!this.live) return
        if (text === "\n" && this.out.length) return // R5
        this.out += text
        this.pump(true)
    }

    /** The link is done with its connection: no event of it is delivered any more; closed natively when safe. */
    abandon() {
        if (!this.live) return
        if (this.slotGen === this.live && (this.slot === OPENING || this.slot === OPEN)) {
            this.closeDue = true
            if (!this.closeIfSafe()) this.deferredCloses++
        }
        this.live = 0
        this.sink = null
        this.wantHost = null
        this.out = ""
    }

    /** Runs the deferred work: a safe close, the end of settling, a waiting open, a waiting write. Call often. */
    poll() {
        this.closeIfSafe()
        this.settle()
        if (this.slot === IDLE && this.wantHost !== null) {
            const err = this.issue()
            if (err) this.queue(2, err)
        }
        this.pump()
    }

    /** The runtime's event hook (ds._socketOnEvent). */
    onEvent(event: string, arg?: any) {
        const s = this.slot
        const mine = s === OPENING || s === OPEN
        if (!mine) {
            this.stale++
            return
        }
        const live = this.slotGen === this.live
        if (event === "open" || event === "data") {
            if (s === OPENING) {
                // data can come before `open` (the S3 reads on another core): it opens the connection too
                this.slot = OPEN
                if (live) this.queue(0, null)
            }
            if (event === "data" && live && arg) {
                if (this.rxBytes + arg.length + RX_CHUNK_CHARGE_BYTES > RX_MAX_BYTES) {
                    this.overflows++
                    this.fail("E_RX_OVERFLOW")
                } else this.queue(1, arg)
            }
            if (!live) this.closeIfSafe() // abandoned while opening: now it can be closed (R2)
        } else {
            // error or close: the runtime has closed the socket itself
            this.toSettling(this.now())
            if (live) this.queue(2, event === "close" ? "E_CLOSED_BY_SERVER" : "E_SOCKET " + errorText("" + arg))
        }
    }

    /** Hands received entries to the link, in order: one fiber while there are any (started by queue()). */
    private async deliver() {
        while (this.rx.length) {
            const gen: number = this.rx[0]
            const kind: number = this.rx[1]
            const d = this.rx[2]
            this.rx.insert(0, -3)
            if (kind === 1) this.rxBytes -= d.length + RX_CHUNK_CHARGE_BYTES
            if (gen !== this.live) continue
            const sink = this.sink
            if (kind === 0) sink.onOpen()
            else if (kind === 2) {
                this.live = 0
                this.sink = null
                sink.onClosed(d)
            } else {
                // slices with a yield between: the simulator hands over up to 16 KB at once, and the VM
                // panics after ~128K steps without yielding. DeviceScript's slice pads past the end with
                // zeros, hence the clamp.
                for (let off = 0; off < d.length && gen === this.live; off += RX_SLICE_BYTES) {
                    const end = Math.min(d.length, off + RX_SLICE_BYTES)
                    sink.onData(off === 0 && end === d.length ? d : d.slice(off, end))
                    await ds.sleep(0)
                }
            }
        }
        this.delivering = false
    }

    /** Opens the native connection for the live generation; "" or the reason it failed at once. */
    private issue(): string {
        const host = this.wantHost
        this.wantHost = null
        let r: number
        try {
            r = this.rt.open(host, this.wantPort)
        } catch (e) {
            return e instanceof RangeError || ("" + e).indexOf("network") >= 0 ? "E_NO_NETWORK" : "E_OPEN"
        }
        if (r !== 0) return "E_OPEN " + r
        // R6: a runtime that dropped the open holds no socket any more and answers -100; otherwise -10
        // (not connected yet). Should the worker be connected already, this is a heartbeat after the handshake.
        if (this.rt.write("\n") === -100) return "E_OPEN_QUEUE_FULL"
        this.slot = OPENING
        this.slotGen = this.live
        this.closeDue = false
        this.lastWriteMs = -WRITE_GAP_MS
        this.issuedMs = this.now()
        return ""
    }

    /** R2: closes an abandoned connection once the worker is done with it, or stuck (OPEN_STUCK_MS); true when closed. */
    private closeIfSafe(): boolean {
        const now = this.now()
        if (!this.closeDue) return false
        if (this.slot === OPEN ? now - this.lastWriteMs < WRITE_GAP_MS : this.slot !== OPENING || now - this.issuedMs < OPEN_STUCK_MS) return false
        this.rt.close()
        this.toSettling(now)
        return true
    }

    private settle() {
        if (this.slot === SETTLING && this.now() >= this.settleUntilMs) this.slot = IDLE
    }

    /** Writes pending text if the gap since the last write is over (R4); `soon`: at the end of this run at the earliest. */
    private pump(soon?: boolean) {
        if (this.slot !== OPEN) return
        if (this.slotGen !== this.live || !this.out.length) return
        const now = this.now()
        const waitMs = WRITE_GAP_MS - (now - this.lastWriteMs)
        if (this.later && (soon || waitMs > 0)) {
            // lines sent in one run of the caller leave in one write; one held back by the gap goes when
            // the gap is over (the ticker would take up to TICK_MS more)
            if (!this.pumpDue) {
                this.pumpDue = true
                const self = this
                this.later(() => {
                    self.pumpDue = false
                    self.pump()
                }, waitMs > 0 ? waitMs : 0)
            }
            return
        }
        if (waitMs > 0) return
        const chunk = this.out.length > MAX_WRITE_BYTES ? this.out.slice(0, MAX_WRITE_BYTES) : this.out
        const r = this.rt.write(chunk)
        if (r === 0) {
            this.out = this.out.slice(chunk.length)
            this.lastWriteMs = now
            this.stallSinceMs = -1
        } else if (r === -1) {
            if (this.stallSinceMs < 0) this.stallSinceMs = now
            else if (now - this.stallSinceMs >= SEND_STALL_MAX_MS) this.fail("E_SEND -1")
        } else this.fail("E_SEND " + r)
    }

    /** Ends the live connection from this side: the link hears `reason`; the socket closes when safe. */
    private fail(reason: string) {
        this.queue(2, reason)
        this.out = ""
        this.closeDue = true
        if (!this.closeIfSafe()) this.deferredCloses++
    }

    private toSettling(now: number) {
        this.slot = SETTLING
        this.closeDue = false
        this.settleUntilMs = now + SETTLE_MS
    }

    private queue(kind: number, d: any) {
        this.rx.push(this.live, kind, d)
        if (kind === 1) this.rxBytes += d.length + RX_CHUNK_CHARGE_BYTES
        if (!this.delivering) {
            this.delivering = true
            this.deliver.start()
        }
    }
}

/** The runtime's error text without its "tls://host:port: " prefix, so the reason fits a 32-character value. */
export function errorText(msg: string): string {
    const i = msg.indexOf(": ")
    // (no startsWith: its library code would cost code-window bytes; docs/FIRMWARE.md "Program size")
    switch (msg.slice(0, 6)) {
        case "tls://":
        case "tcp://":
            return i < 0 ? msg : msg.slice(i + 2)
    }
    return msg
}

type DsSockets = typeof ds & {
    _socketOpen(host: string, port: number): number
    _socketClose(): number
    _socketWrite(buf: Buffer | string): number
    _socketOnEvent: (event: string, arg?: Buffer | string) => void
}

/**
 * The device's socket over the runtime's hooks. The event hook is set at every open:
 * another user of the one socket (the MQTT client, fetch) sets its own, and would get this one's events.
 */
export function startNativeSocket(): NativeSocket {
    const d = ds as DsSockets
    const sock: NativeSocket = new NativeSocket(
        {
            open: (host: string, port: number) => {
                d._socketOnEvent = sock.onEvent // bound to sock: DeviceScript binds a method read off its object
                return d._socketOpen(host, port)
            },
            write: (text: string) => d._socketWrite(text),
            close: () => d._socketClose(),
        },
        ds.millis,
        (fn: () => void, ms: number) => {
            runAfter.start(fn, ms)
        }
    )
    return sock
}
