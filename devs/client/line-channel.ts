// One module talks to the socket: a LineChannel dials TLS or WebSocket and hands up whole server lines [P§3].
// Above it, the connection sees the same thing for both: `send(text)`, a line callback, a close callback.

import tls from "node:tls"
import net from "node:net"
import type WebSocket from "ws"
import type { ServerAddress } from "./address.ts"
import { ClientError, connectError, upgradeRefusedError } from "./errors.ts"

/** A server line longer than this is a broken or hostile server; history responses (1000 points) are ~100 KB. */
export const MAX_SERVER_LINE_BYTES = 4 * 1024 * 1024
/** of a refused WebSocket upgrade's body, what is read for its reason (feedline's are under 300) */
const REFUSAL_BODY_CHARS = 4096
/** Dialling, TLS and the WebSocket upgrade together get this long before we call the server unreachable. */
export const CONNECT_TIMEOUT_MS = 5000

export interface LineChannelOptions {
    /** PEM of the CA(s) to trust, besides the system store and NODE_EXTRA_CA_CERTS */
    ca?: string | Buffer
    connectTimeoutMs?: number
    /** the local address to dial from (TLS only): tests put clients on 127.0.0.x to be several remote addresses */
    localAddress?: string
}

export interface LineChannelHandlers {
    /** called once per server line, without its "\n" ("" is a heartbeat) */
    onLine: (line: string) => void
    /** called once, with the reason when it was not our own close() */
    onClose: (err?: Error) => void
}

export interface LineChannel {
    /** writes one envelope or a heartbeat ("\n"); no-op once closed */
    send(text: string): void
    close(): void
    /**
     * Sets (or replaces) the owner's handlers. Lines and the close that arrive before the first call are
     * held and delivered then: a welcome can arrive in the same tick as the connection opens.
     */
    attach(h: LineChannelHandlers): void
}

/** Holds events until the owner attaches, then forwards them. */
class Inbox {
    private h?: LineChannelHandlers
    private held: (string | { closed: Error | undefined })[] = []
    attach(h: LineChannelHandlers): void {
        this.h = h
        // a handler may re-attach while we drain (welcome -> connection): the rest goes to the new one
        while (this.held.length) {
            const e = this.held.shift()!
            if (typeof e === "string") this.h.onLine(e)
            else this.h.onClose(e.closed)
        }
    }
    line(l: string): void {
        if (this.h) this.h.onLine(l)
        else this.held.push(l)
    }
    closed(err: Error | undefined): void {
        if (this.h) this.h.onClose(err)
        else this.held.push({ closed: err })
    }
}

export function openLineChannel(addr: ServerAddress, opts: LineChannelOptions = {}): Promise<LineChannel> {
    return addr.transport === "tls" ? openTls(addr, opts) : openWs(addr, opts)
}

/** Splits a byte stream into lines, bounded. */
export class LineSplitter {
    private pending = ""
    constructor(private readonly maxBytes = MAX_SERVER_LINE_BYTES) {}

    /** Returns the complete lines in `chunk`; throws when a line grows past the bound. */
    push(chunk: string): string[] {
        const text = this.pending + chunk
        const parts = text.split("\n")
        this.pending = parts.pop()!
        if (this.pending.length > this.maxBytes) throw new ClientError("E_CLOSED", `server sent a line longer than ${this.maxBytes} bytes`)
        return parts.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l))
    }
}

function openTls(addr: ServerAddress, opts: LineChannelOptions): Promise<LineChannel> {
    return new Promise((resolve, reject) => {
        const socket = tls.connect({
            host: addr.host,
            port: addr.port,
            secureContext: opts.ca ? secureContextTrusting(opts.ca) : undefined,
            servername: net.isIP(addr.host) ? undefined : addr.host,
            timeout: opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
            // passed on to net.connect (Node's types leave it out of tls.ConnectionOptions)
            ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
        })
        socket.setEncoding("utf8")
        socket.setNoDelay(true)
        let opened = false
        let closed = false
        const splitter = new LineSplitter()
        const inbox = new Inbox()
        const t: LineChannel = {
            send: (text) => {
                if (!closed && socket.writable) socket.write(text.endsWith("\n") ? text : text + "\n")
            },
            close: () => {
                if (closed) return
                closed = true
                socket.end()
                // a peer that never answers our FIN must not keep the process alive
                setTimeout(() => socket.destroy(), 1000).unref()
            },
            attach: (h) => inbox.attach(h),
        }
        let failure: Error | undefined
        socket.on("secureConnect", () => {
            opened = true
            socket.setTimeout(0)
            resolve(t)
        })
        socket.on("timeout", () => socket.destroy(Object.assign(new Error("connect timed out"), { code: "ETIMEDOUT" })))
        socket.on("data", (chunk: string) => {
            try {
                for (const line of splitter.push(chunk)) inbox.line(line)
            } catch (e) {
                failure = e as Error
                socket.destroy()
            }
        })
        socket.on("error", (e) => (failure = failure ?? e))
        socket.on("close", () => {
            if (!opened) return reject(connectError(failure ?? new Error("closed during the TLS handshake"), addr.url))
            const wasOurs = closed
            closed = true
            inbox.closed(wasOurs ? undefined : failure ?? new ClientError("E_CLOSED", `the server at ${addr.url} closed the connection`))
        })
    })
}

/** ws is loaded with the first WebSocket channel: the CLI (and `feedline serve`, which shares its modules) does not carry it otherwise */
async function openWs(addr: ServerAddress, opts: LineChannelOptions): Promise<LineChannel> {
    const { default: WebSocket } = await import("ws")
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(addr.url, {
            ca: opts.ca ? withSystemRoots(opts.ca) : undefined,
            handshakeTimeout: opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
            maxPayload: MAX_SERVER_LINE_BYTES,
        })
        let opened = false
        let closed = false
        let failure: Error | undefined
        const inbox = new Inbox()
        const t: LineChannel = {
            send: (text) => {
                if (!closed && ws.readyState === WebSocket.OPEN) ws.send(text)
            },
            close: () => {
                if (closed) return
                closed = true
                ws.close(1000)
                setTimeout(() => ws.terminate(), 1000).unref()
            },
            attach: (h) => inbox.attach(h),
        }
        ws.on("open", () => {
            opened = true
            resolve(t)
        })
        ws.on("message", (data: WebSocket.RawData) => {
            // one envelope per message [P§1]; tolerate a server that also ends it with "\n" or batches lines
            const lines = data.toString().split("\n")
            if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop()
            for (const l of lines) inbox.line(l)
        })
        ws.on("unexpected-response", (_req, res) => {
            // the answer's body says why (feedline's JSON: a wrong scheme is 400 E_USE_HTTPS); a few KB are enough
            let body = ""
            res.setEncoding("utf8")
            res.on("data", (chunk: string) => void (body.length < REFUSAL_BODY_CHARS && (body += chunk)))
            res.once("close", () => {
                failure = upgradeRefusedError(addr.url, res.statusCode ?? 0, body)
                ws.terminate()
            })
        })
        ws.on("error", (e) => (failure = failure ?? e))
        ws.on("close", () => {
            if (!opened) return reject(connectError(failure ?? new Error("closed during the WebSocket upgrade"), addr.url))
            const wasOurs = closed
            closed = true
            inbox.closed(wasOurs ? undefined : failure ?? new ClientError("E_CLOSED", `the server at ${addr.url} closed the connection`))
        })
    })
}

/** `ca` replaces Node's trust store; keep the public roots so a proxy with a real certificate still works. */
function withSystemRoots(ca: string | Buffer): (string | Buffer)[] {
    return [...tls.rootCertificates, ca]
}

/** the secure context of the last `ca` dialled with (one entry: a process talks to one server) */
let lastContext: { pem: string; context: tls.SecureContext } | undefined

/**
 * One secure context per CA, reused by every connection: building one parses the ~140 system roots, about
 * 15-50 ms of CPU, so a process that dials hundreds of connections (a reconnecting fleet, the tests'
 * simulated ones) spent seconds of CPU per round of dials and its own handshakes timed out.
 */
export function secureContextTrusting(ca: string | Buffer): tls.SecureContext {
    const pem = typeof ca === "string" ? ca : ca.toString("utf8")
    if (lastContext?.pem !== pem) lastContext = { pem, context: tls.createSecureContext({ ca: withSystemRoots(ca) }) }
    return lastContext.context
}
