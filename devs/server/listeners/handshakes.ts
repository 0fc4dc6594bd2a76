// Sockets accepted whose TLS handshake has not finished, bounded per remote address and in all, and in time:
// one still pending `deadlineMs` after its accept is dropped (on the app port too, where the first byte is
// waited for before TLS starts). Over a bound the OLDEST pending handshake (of that address, or of all) is
// dropped, never the new one: a flood
// of silent sockets then churns through its own sockets while a device's handshake, the newest, finishes.
// Refusing new sockets instead (or letting them fill the listener's maxConnections) is what let 470
// silent sockets make every device's connect fail with a reset. Limits and reasons: limits.ts.
import type net from "node:net"
import { limitKeyOf } from "../limit-key.ts"

export interface HandshakeLimits {
    perAddress: number
    total: number
    /** from the TCP accept to the end of the handshake */
    deadlineMs: number
}

export type HandshakeDrop = "address" | "total" | "deadline"

/** The listening port a socket came in on. */
export type HandshakeDoor = "device" | "app"

/**
 * A socket's identity while it is pending: its door and remote address and port, which its TLS socket
 * shares. The door rather than `localPort`: reading that makes Node keep a socket-name object on both
 * the TCP and the TLS socket for the connection's life.
 */
function keyOf(door: HandshakeDoor, address: string, s: Pick<net.Socket, "remotePort">): string {
    return `${door}|${address}|${s.remotePort ?? "?"}`
}

export class PendingHandshakes {
    /** insertion order is age: the first entry is the oldest */
    private readonly all = new Map<string, net.Socket>()
    private readonly deadlines = new Map<string, NodeJS.Timeout>()
    /** each pending socket's close listener, taken off once its handshake finished (a session holds the socket from then on) */
    private readonly onCloses = new Map<string, () => void>()
    /** by the limit key of their address (limit-key.ts) */
    private readonly byAddress = new Map<string, Map<string, net.Socket>>()

    constructor(
        private readonly limits: HandshakeLimits,
        /** a pending handshake was dropped to make room (for metrics and logs) */
        private readonly onDrop: (why: HandshakeDrop, address: string) => void,
    ) {}

    get size(): number {
        return this.all.size
    }

    /** A socket was accepted: pending until finished() or its close. Drops the oldest pending handshakes over a bound. */
    accepted(socket: net.Socket, door: HandshakeDoor): void {
        const address = socket.remoteAddress ?? "?"
        const key = keyOf(door, address, socket)
        const limitKey = limitKeyOf(address)
        // told twice (a front that read its first bytes, then the TLS server): pending once
        if (this.all.get(key) === socket) return
        // another socket with the same address and port (announced by a proxy: --trusted-proxies): one pending per key
        if (this.all.has(key)) this.drop(key, "address")
        // oldest first, making room for the new socket: it is never its own victim while older ones wait
        for (let mine = this.byAddress.get(limitKey); mine && mine.size >= this.limits.perAddress; mine = this.byAddress.get(limitKey)) {
            this.drop(mine.keys().next().value!, "address")
        }
        while (this.all.size > 0 && this.all.size >= this.limits.total) this.drop(this.all.keys().next().value!, "total")
        let mine = this.byAddress.get(limitKey)
        if (!mine) this.byAddress.set(limitKey, (mine = new Map()))
        mine.set(key, socket)
        this.all.set(key, socket)
        this.deadlines.set(key, setTimeout(() => this.drop(key, "deadline"), this.limits.deadlineMs).unref())
        const onClose = () => this.forget(key, limitKey)
        this.onCloses.set(key, onClose)
        socket.once("close", onClose)
    }

    /** The handshake of this TLS socket (over a socket given to accepted()) finished: it is a session's now. */
    finished(tlsSocket: Pick<net.Socket, "remoteAddress" | "remotePort">, door: HandshakeDoor): void {
        const address = tlsSocket.remoteAddress ?? "?"
        this.forget(keyOf(door, address, tlsSocket), limitKeyOf(address))
    }

    private drop(key: string, why: HandshakeDrop): void {
        const socket = this.all.get(key)
        if (!socket) return
        const address = socket.remoteAddress ?? "?"
        this.forget(key, limitKeyOf(address))
        this.onDrop(why, address)
        socket.destroy()
    }

    /** `limitKey`: the limit key (limit-key.ts) of the socket's address, which its byAddress entry is under */
    private forget(key: string, limitKey: string): void {
        clearTimeout(this.deadlines.get(key))
        this.deadlines.delete(key)
        const onClose = this.onCloses.get(key)
        if (onClose) this.all.get(key)?.off("close", onClose)
        this.onCloses.delete(key)
        this.all.delete(key)
        const mine = this.byAddress.get(limitKey)
        if (!mine) return
        mine.delete(key)
        if (mine.size === 0) this.byAddress.delete(limitKey)
    }
}
