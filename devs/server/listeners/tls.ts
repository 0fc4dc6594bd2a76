// The device port: TLS over TCP (1.2 or 1.3 [P§1], the policy of tls/policy.ts), and the plain-TCP development port.
import net from "node:net"
import tls from "node:tls"
import type { SessionDeps } from "../session.ts"
import { tlsServerOptions } from "../tls/policy.ts"
import type { Logger } from "../log.ts"
import type { PendingHandshakes } from "./handshakes.ts"
import { onFirstBytes, untrustedProxyHeader } from "./proxy-front.ts"
import { attachStream } from "./stream.ts"

export interface TlsListenerOptions {
    cert: string | Buffer
    key: string | Buffer
    handshakeTimeoutMs: number
    maxConnections: number
    /** sockets whose handshake has not finished, bounded per address and in all (shared with the app port) */
    handshakes: PendingHandshakes
    /** the most handshakes `handshakes` lets wait at once */
    maxPendingHandshakes: number
}

/** TCP connections a process accepts beyond its sessions and pending handshakes, so that refusals can still be told why. */
const REFUSAL_HEADROOM = 256

export function createTlsListener(deps: SessionDeps, opts: TlsListenerOptions): tls.Server {
    const server = tls.createServer(
        // ESP32 mbedTLS speaks TLS 1.2 only; nothing older is safe; 1.2 with ECDHE and AEAD only (tls/policy.ts)
        { ...tlsServerOptions(opts.cert, opts.key), handshakeTimeout: opts.handshakeTimeoutMs },
        (socket) => {
            opts.handshakes.finished(socket, "device")
            // no device renegotiates (ESP32 mbedTLS does not); each renegotiation is a full handshake's work for
            // the server on a connection admission already let in. Node then reports an error (stream.ts closes it)
            socket.disableRenegotiation()
            socket.setNoDelay(true)
            attachStream(deps, socket, "tls", socket.remoteAddress ?? "?")
        },
    )
    // after tls.Server's own listener has wrapped the socket: pending until its handshake finishes
    server.on("connection", (socket: net.Socket) => opts.handshakes.accepted(socket, "device"))
    // a last bound on descriptors (Node resets sockets past it): sessions are bounded by admission and
    // handshakes by `handshakes`, which drops old ones rather than let new ones be reset
    server.maxConnections = opts.maxConnections + opts.maxPendingHandshakes + REFUSAL_HEADROOM
    server.on("tlsClientError", (err, socket) => {
        deps.log.debug({ remote: socket.remoteAddress, err: err.message }, "TLS handshake failed")
        // Node reports a handshake timeout here but leaves the socket open: stalled handshakes would
        // pile up until maxConnections. Close it.
        socket.destroy()
    })
    return server
}

/**
 * With --trusted-proxies, a device-port connection from a peer not on the list: pending from its accept
 * as always, its first bytes looked at so that a PROXY header it sends is refused with a reason in the
 * log rather than failing as a bad TLS handshake, then TLS.
 */
export function untrustedDeviceSocket(server: tls.Server, handshakes: PendingHandshakes, log: Logger, onRefused: (code: string) => void): (socket: net.Socket) => void {
    return (socket) => {
        handshakes.accepted(socket, "device")
        onFirstBytes(socket, (first) => {
            if (untrustedProxyHeader(first, socket, log, "device", onRefused)) socket.destroy()
            else server.emit("connection", socket)
        })
    }
}

/** Development only (`--insecure-tcp-port`): the same protocol without TLS. */
export function createTcpListener(deps: SessionDeps, maxConnections: number): net.Server {
    const server = net.createServer((socket) => {
        socket.setNoDelay(true)
        attachStream(deps, socket, "tcp", socket.remoteAddress ?? "?")
    })
    server.maxConnections = maxConnections + REFUSAL_HEADROOM
    return server
}
