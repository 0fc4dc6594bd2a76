// The PROXY protocol on a port (--trusted-proxies): a front that accepts the TCP connections and, for a
// peer on the trusted list, reads the PROXY header (proxy-header.ts) before anything else, within
// PROXY_HEADER_TIMEOUT_MS, then hands the socket on with the announced address as its remoteAddress and
// remotePort, so that everything after it (the pending TLS handshakes, admission, the rates, claims,
// logs, /v2/sessions) sees the client, not the proxy. A trusted peer's connection without a valid header
// is closed with a logged code; a peer not on the list is handed on at once, as without the option (a
// PROXY header from it is refused where its first bytes are read: untrustedProxyHeader()).
import net from "node:net"
import type tls from "node:tls"
import { ConfigError } from "../errors.ts"
import type { Logger } from "../log.ts"
import { looksLikeProxyHeader, parseProxyHeader, type AnnouncedPeer } from "./proxy-header.ts"

/** The addresses and networks (CIDR) whose connections must start with a PROXY header. */
export function trustedProxiesOf(entries: string[]): net.BlockList {
    const list = new net.BlockList()
    for (const raw of entries) {
        const entry = raw.trim()
        const [address, bits, extra] = entry.split("/")
        const family = net.isIPv4(address) ? "ipv4" : net.isIPv6(address) && !address.includes("%") ? "ipv6" : undefined
        const maxBits = family === "ipv4" ? 32 : 128
        const prefix = bits === undefined ? maxBits : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN
        if (!family || extra !== undefined || !(prefix >= 0 && prefix <= maxBits)) {
            throw new ConfigError(`--trusted-proxies: ${JSON.stringify(entry)} is not an IP address or a network (ADDRESS/BITS, e.g. 10.0.0.0/24 or fd00::/64); give the addresses HAProxy connects from, comma-separated`)
        }
        if (prefix === maxBits) list.addAddress(address, family)
        else list.addSubnet(address, prefix, family)
    }
    return list
}

export function isTrustedProxy(list: net.BlockList, socket: Pick<net.Socket, "remoteAddress">): boolean {
    const address = socket.remoteAddress
    if (!address) return false
    return list.check(address, net.isIPv6(address) ? "ipv6" : "ipv4")
}

/** The client's address and port stand for the socket's from now on (every `socket.remoteAddress` reads them). */
function announce(socket: net.Socket, peer: AnnouncedPeer): void {
    Object.defineProperties(socket, {
        remoteAddress: { value: peer.address, configurable: true },
        remotePort: { value: peer.port, configurable: true },
        remoteFamily: { value: peer.family, configurable: true },
    })
}

/** The reason logged, and the code, when a PROXY header comes from a peer not on the list. */
export const UNTRUSTED_PROXY_HEADER = {
    code: "E_PROXY_UNTRUSTED",
    reason: "a PROXY protocol header from an address not in --trusted-proxies is not honoured: add the proxy's address there, or connect directly",
}

/**
 * Whether `first` (a connection's first bytes) is a PROXY header from a peer not trusted to send one; if
 * so it is logged (the caller refuses the connection). Its address is the peer's own: nothing it
 * announced is used.
 */
export function untrustedProxyHeader(first: Buffer, socket: Pick<net.Socket, "remoteAddress">, log: Logger, door: string, onRefused?: (code: string) => void): boolean {
    if (!looksLikeProxyHeader(first)) return false
    onRefused?.(UNTRUSTED_PROXY_HEADER.code)
    log.warn({ remote: socket.remoteAddress, door, code: UNTRUSTED_PROXY_HEADER.code }, "refused a connection that starts with a PROXY header: its address is not in --trusted-proxies")
    return true
}

/** The first byte of a TLS record carrying a handshake (a ClientHello): what a TLS port's first bytes must start with. */
export const TLS_HANDSHAKE_RECORD = 0x16

/** Calls `fn` with a socket's first bytes, which stay in the socket (paused) for whoever reads it next. */
export function onFirstBytes(socket: net.Socket, fn: (first: Buffer) => void): void {
    socket.once("data", (first: Buffer) => {
        socket.pause()
        socket.unshift(first)
        // a server that wraps the socket (tls.Server) reads what was unshifted; resuming here would lose it
        fn(first)
    })
}

export interface ProxyFrontOptions {
    /** for the logs: "device" or "app" */
    door: string
    /** the server behind the front (told when the front listens: an HTTP server tracks its connections from then) */
    behind: net.Server
    trusted: net.BlockList
    headerTimeoutMs: number
    log: Logger
    /** a connection closed for its header (for the metrics) */
    onRefused(code: string): void
    /**
     * Where a socket goes next: a trusted proxy's with its header consumed (paused, the bytes after the
     * header unshifted), anyone else's as it came.
     */
    handOver(socket: net.Socket): void
    /** the TLS server `handOver` leads to, whose TLS sockets then show the announced address too */
    tlsServer?: tls.Server
    /** anyone else's socket, when not simply handed over (default: handOver) */
    untrusted?(socket: net.Socket): void
    /** the front's own bound on open sockets (net.Server.maxConnections), when the server behind it had one */
    maxConnections?: number
}

/** A listening front for a port behind a proxy that sends the PROXY protocol. Listen on it instead of the server behind it. */
export function createProxyFront(o: ProxyFrontOptions): net.Server {
    // a trusted proxy's sockets by their real endpoint (the proxy's address and port), until they close,
    // so that their TLS sockets (which read the real endpoint) take the announced address too
    const announced = new Map<string, net.Socket>()
    const endpointOf = (s: Pick<net.Socket, "remoteAddress" | "remotePort">) => `${s.remoteAddress}|${s.remotePort}`
    const announceOnTls = (tlsSocket: tls.TLSSocket) => {
        const raw = announced.get(endpointOf(tlsSocket))
        if (raw) announce(tlsSocket, { address: raw.remoteAddress!, port: raw.remotePort!, family: raw.remoteFamily as AnnouncedPeer["family"] })
    }
    // before anyone else reads the TLS socket's address: its session, the pending handshakes, a failed handshake's log
    o.tlsServer?.prependListener("secureConnection", announceOnTls)
    o.tlsServer?.prependListener("tlsClientError", (_err: Error, tlsSocket: tls.TLSSocket) => announceOnTls(tlsSocket))

    const refuse = (socket: net.Socket, code: string, reason: string, real: string) => {
        o.log.warn({ remote: real, door: o.door, code, reason }, "closed a connection from a trusted proxy: its PROXY header was not accepted")
        o.onRefused(code)
        socket.destroy()
    }

    const readHeader = (socket: net.Socket) => {
        const real = endpointOf(socket)
        let buf: Buffer = Buffer.alloc(0)
        const timer = setTimeout(
            () => refuse(socket, "E_PROXY_HEADER_TIMEOUT", `no complete PROXY header within ${o.headerTimeoutMs} ms of the connection`, real),
            o.headerTimeoutMs,
        ).unref()
        const onClose = () => clearTimeout(timer)
        const onData = (chunk: Buffer) => {
            // bounded: parseProxyHeader is never incomplete past MAX_PROXY_HEADER_BYTES, so buf holds at most that plus one chunk
            buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
            const step = parseProxyHeader(buf)
            if ("incomplete" in step) return
            socket.off("data", onData)
            socket.off("close", onClose)
            clearTimeout(timer)
            if ("error" in step) return refuse(socket, step.error.code, step.error.reason, real)
            socket.pause()
            if (buf.length > step.length) socket.unshift(buf.subarray(step.length))
            if (step.peer) {
                announced.set(real, socket)
                socket.once("close", () => announced.get(real) === socket && announced.delete(real))
                announce(socket, step.peer)
            } else o.log.debug({ remote: real, door: o.door, header: step.why }, "PROXY header without a client address: the proxy's own stands")
            o.handOver(socket)
        }
        socket.on("data", onData)
        socket.once("close", onClose)
    }

    const front = net.createServer((socket) => {
        socket.on("error", () => socket.destroy())
        if (isTrustedProxy(o.trusted, socket)) return readHeader(socket)
        ;(o.untrusted ?? o.handOver)(socket)
    })
    if (o.maxConnections !== undefined) front.maxConnections = o.maxConnections
    front.on("listening", () => o.behind.emit("listening"))
    return front
}
