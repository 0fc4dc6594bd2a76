// The device port: TLS over TCP (1.2 or 1.3 [P§1], the policy of tls/policy.ts), and the plain-TCP development port.
import net from "node:net"
import tls from "node:tls"
import { encodeResponse } from "../../../src/protocol.ts"
import { ApiError, errorResponse } from "../errors.ts"
import type { SessionDeps } from "../session.ts"
import { tlsServerOptions } from "../tls/policy.ts"
import type { Logger } from "../log.ts"
import type { PendingHandshakes } from "./handshakes.ts"
import { endAndDestroy } from "./http.ts"
import { onFirstBytes, TLS_HANDSHAKE_RECORD, untrustedProxyHeader } from "./proxy-front.ts"
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
 * [P§1] What a device-port connection that speaks the protocol in clear is told (the Xively Socket Server's TCP port
 * was plain, and its documents say so): a TLS server fails such a connection at its first byte and closes it without
 * a word the client could read.
 */
const USE_TLS = new ApiError(
    400,
    "E_USE_TLS",
    "this port speaks TLS 1.2 or 1.3: connect with TLS (e.g. openssl s_client -connect host:port); nothing of this connection was served, and what it sent (a key, perhaps) crossed the network in clear",
)

/**
 * The device port's listener: each connection pending from its accept (as a TLS handshake), its first bytes looked
 * at, then TLS (`server`). A connection in clear gets the notice USE_TLS in clear; a PROXY header from a peer not
 * in --trusted-proxies is refused with a reason in the log rather than failing as a bad TLS handshake.
 */
export function createDeviceFront(server: tls.Server, handshakes: PendingHandshakes, log: Logger, onProxyRefused?: (code: string) => void): net.Server {
    const front = net.createServer(deviceSocket(server, handshakes, log, onProxyRefused))
    front.maxConnections = server.maxConnections
    return front
}

/** One device-port socket, as createDeviceFront takes it (also a trusted proxy front's, for a peer not on its list). */
export function deviceSocket(server: tls.Server, handshakes: PendingHandshakes, log: Logger, onProxyRefused?: (code: string) => void): (socket: net.Socket) => void {
    return (socket) => {
        handshakes.accepted(socket, "device")
        socket.on("error", () => socket.destroy())
        onFirstBytes(socket, (first) => {
            if (untrustedProxyHeader(first, socket, log, "device", onProxyRefused)) return void socket.destroy()
            if (first[0] === TLS_HANDSHAKE_RECORD) return void server.emit("connection", socket)
            log.info({ remote: socket.remoteAddress }, "a device-port connection in clear, not TLS: refused")
            endAndDestroy(socket, encodeResponse({ notice: true, ...errorResponse(USE_TLS) }) + "\n")
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
