// The app port's HTTP connections (HTTPS or HTTP requests, not yet or never a WebSocket): their own budget,
// in all and per remote address (limits.ts MAX_HTTP_CONNECTIONS). Admission counts device and WebSocket
// connections only; without this an address opening idle HTTP connections faster than Node closes them
// held any number of the process's descriptors, which the device port shares. A connection is counted from
// its accept (after a trusted proxy's PROXY header: its announced address) until it closes or becomes a
// WebSocket (admission counts it from there). Over a bound it is closed at once: no TLS handshake, no
// bytes. The counts live here; the decision is the pure httpConnectionRefusal().
import type net from "node:net"
import type { Duplex } from "node:stream"
import { limitKeyOf } from "../limit-key.ts"

export interface HttpConnectionLimits {
    total: number
    perAddress: number
}

export type HttpConnectionBound = "total" | "address"

/** Which bound a new connection would pass, or undefined when it fits. */
export function httpConnectionRefusal(c: { total: number; fromAddress: number }, l: HttpConnectionLimits): HttpConnectionBound | undefined {
    if (c.total >= l.total) return "total"
    if (c.fromAddress >= l.perAddress) return "address"
    return undefined
}

/** One counted connection; released once, on close or when it became a WebSocket. */
interface Counted {
    /** its address's limit key (limit-key.ts) */
    address: string
    released: boolean
}

export class HttpConnections {
    private total = 0
    private readonly byAddress = new Map<string, number>()
    private readonly counted = new WeakMap<Duplex, Counted>()

    constructor(
        readonly limits: HttpConnectionLimits,
        private readonly onRefused: (bound: HttpConnectionBound, address: string) => void,
    ) {}

    /** Counts every connection `server` accepts (or is handed), ahead of its own listeners; over a bound: destroyed, and they see it destroyed. */
    guard(server: net.Server): void {
        server.prependListener("connection", (socket: net.Socket) => {
            if (!this.admit(socket)) socket.destroy()
        })
    }

    /** true: counted until it closes; false: over a bound (the caller closes it). */
    admit(socket: net.Socket): boolean {
        const address = limitKeyOf(socket.remoteAddress ?? "?")
        const fromAddress = this.byAddress.get(address) ?? 0
        const bound = httpConnectionRefusal({ total: this.total, fromAddress }, this.limits)
        if (bound) {
            this.onRefused(bound, socket.remoteAddress ?? "?")
            return false
        }
        const entry: Counted = { address, released: false }
        this.counted.set(socket, entry)
        this.byAddress.set(address, fromAddress + 1)
        this.total++
        socket.once("close", () => this.release(entry))
        return true
    }

    /** `socket` (the HTTP server's: over TLS, the TLS socket on the counted one) became a WebSocket: admission counts it from here. */
    becameWebSocket(socket: Duplex): void {
        // a TLS socket's transport is its _parent (Node's name for it since TLSSocket wraps net sockets)
        const entry = this.counted.get(socket) ?? this.counted.get((socket as { _parent?: Duplex })._parent as Duplex)
        if (entry) this.release(entry)
    }

    private release(entry: Counted): void {
        if (entry.released) return
        entry.released = true
        this.total--
        const n = (this.byAddress.get(entry.address) ?? 1) - 1
        if (n === 0) this.byAddress.delete(entry.address)
        else this.byAddress.set(entry.address, n)
    }

    /** HTTP connections open now (counted ones) */
    get open(): number {
        return this.total
    }
}
