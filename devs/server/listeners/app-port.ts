// The app port's transport [P§1]: HTTPS and WSS with the device port's certificate and TLS policy,
// unless it listens on loopback only (nothing crosses a network there: `npm start`, a TLS-terminating
// proxy on the same host) or plain HTTP is asked for explicitly (`--insecure-http`). People sign into
// the dashboard with a master key; by default no key or token crosses a network in clear.
import net from "node:net"
import type tls from "node:tls"
import type https from "node:https"
import { endAndDestroy, rawErrorResponse } from "./http.ts"
import type { Logger } from "../log.ts"
import type { PendingHandshakes } from "./handshakes.ts"
import { onFirstBytes, TLS_HANDSHAKE_RECORD, UNTRUSTED_PROXY_HEADER, untrustedProxyHeader } from "./proxy-front.ts"

export type AppScheme = "https" | "http"

/** Addresses that reach this host only. */
export function isLoopbackHost(host: string): boolean {
    const h = host.toLowerCase().replace(/^\[|\]$/g, "")
    return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h)
}

/**
 * The app port's scheme: `appTls` when given; else HTTPS unless the host is loopback. Plain HTTP on an
 * address other hosts can reach needs `insecureHttp` (which also selects it); asking for it without
 * that flag is an error (the message says what to do).
 */
export function appSchemeOf(host: string, opts: { appTls?: boolean; insecureHttp?: boolean }): { scheme?: AppScheme; error?: string } {
    if (opts.insecureHttp) {
        if (opts.appTls) return { error: "choose HTTPS (appTls) or plain HTTP (--insecure-http) for the app port, not both" }
        return { scheme: "http" }
    }
    if (opts.appTls === true || (opts.appTls === undefined && !isLoopbackHost(host))) return { scheme: "https" }
    if (isLoopbackHost(host)) return { scheme: "http" }
    return { error: `plain HTTP on ${host} would carry keys and tokens across the network in clear; serve HTTPS (the default) or pass --insecure-http` }
}

/**
 * Listens for `secure` (an https.Server that is not listening itself): a connection whose first byte
 * starts a TLS handshake goes to it; anything else (plain HTTP sent to the HTTPS port) gets a plain
 * HTTP 400 that says to use https://, instead of a TLS alert no HTTP client can show.
 */
export function createTlsFront(secure: https.Server, log: Logger, handshakes: PendingHandshakes, onProxyRefused?: (code: string) => void): net.Server {
    // pending from the accept until the TLS handshake is done (shared bounds with the device port)
    secure.on("secureConnection", (tlsSocket: tls.TLSSocket) => {
        handshakes.finished(tlsSocket, "app")
        // [P§1] the device port's policy: no renegotiation (browsers and HTTP clients never do; each is a full
        // handshake's work for the server, three a connection by Node's default). The error it raises closes it
        tlsSocket.disableRenegotiation()
    })
    const front = net.createServer((socket) => {
        // closed at its accept by the HTTP connection budget (http-connections.ts), which listens first
        if (socket.destroyed) return
        // its first byte (a ClientHello, or plain HTTP) and its handshake within the handshake deadline
        handshakes.accepted(socket, "app")
        socket.on("error", () => socket.destroy())
        onFirstBytes(socket, (first) => {
            if (first[0] === TLS_HANDSHAKE_RECORD) return void secure.emit("connection", socket)
            if (untrustedProxyHeader(first, socket, log, "app", onProxyRefused)) {
                return endAndDestroy(socket, rawErrorResponse(400, UNTRUSTED_PROXY_HEADER.code, UNTRUSTED_PROXY_HEADER.reason))
            }
            log.info({ remote: socket.remoteAddress }, "plain HTTP sent to the HTTPS app port: refused")
            endAndDestroy(
                socket,
                rawErrorResponse(
                    400,
                    "E_USE_HTTPS",
                    "this port speaks HTTPS: use https:// (WebSocket: wss://); this request was not served, and anything it carried (a key, a token) crossed the network in clear",
                ),
            )
        })
    })
    // the HTTP server tracks its connections (request and header timeouts) from its `listening` event
    front.on("listening", () => secure.emit("listening"))
    return front
}
