// WebSocket at /ws on the app port: the same envelopes as the device port, one per text message [P§1].
// Heartbeats go out as empty messages plus a WebSocket ping; an empty or one-character message or a
// pong counts as life (browsers answer pings by themselves, even in background tabs).
import { isUtf8 } from "node:buffer"
import type { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import type { WebSocket, WebSocketServer } from "ws"
import { ApiError } from "../errors.ts"
import { CLOSE_GRACE_MS, MAX_OBJECT_BYTES } from "../limits.ts"
import { Session, type SessionDeps, type Wire } from "../session.ts"
import { endAndDestroy, rawErrorResponse } from "./http.ts"

/**
 * [P§3] A message of whitespace only, or of one character besides whitespace, is a heartbeat: Good
 * Uncle's clients send a backtick, and "messages that aren't valid JSON are ignored, though they count
 * towards keeping the connection open". Anything longer that is not a request still gets its 400.
 */
export function isHeartbeatMessage(text: string): boolean {
    const t = text.trim()
    return t.length === 0 || (t.length <= 2 && [...t].length === 1)
}

/**
 * RFC 6455 §7.4 close code of a close (a browser's CloseEvent shows it), with the notice's code as its reason.
 * Was 1000 (Normal Closure) for every close: a client that reconnects on any code but 1000, as many do, stayed
 * away after being told to come back (E_SHUTTING_DOWN, E_SLOW_CONSUMER with retry_after_ms).
 */
export function closeCodeOf(notice: { status: number; code: string } | undefined): number {
    if (notice === undefined) return 1000 // the peer half-closed and was answered: done
    if (notice.code === "E_TOO_LARGE") return 1009 // Message Too Big
    if (notice.code === "E_SHUTTING_DOWN") return 1001 // Going Away
    if (notice.status === 429 || notice.status === 503) return 1013 // Try Again Later (IANA registry)
    if (notice.status >= 500) return 1011 // Internal Error
    return 1008 // Policy Violation: silent too long, no key in time
}

/** A handshake the port cannot take: a coded answer like every other refusal of the port, not ws's text/html one */
function refuseHandshake(req: IncomingMessage, socket: Duplex, why: string): void {
    const status = req.method === "GET" ? 400 : 405
    const reason = `the WebSocket handshake was refused: ${why}; open it with GET /ws, Upgrade: websocket, Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key (16 random bytes in base64), as RFC 6455 and every WebSocket library do`
    endAndDestroy(socket, rawErrorResponse(status, "E_BAD_WEBSOCKET", reason, { "sec-websocket-version": "13" }))
}

export class WsListener {
    /** made with the first upgrade: ws is loaded only when a WebSocket client comes (~4 MiB of RSS otherwise) */
    private wss?: Promise<WebSocketServer>
    private closed = false

    constructor(private readonly deps: SessionDeps) {}

    private server(): Promise<WebSocketServer> {
        // ws closes (1009) above maxPayload by itself; up to twice the limit we answer 413 with a notice first
        // no subprotocol is agreed to: ws would otherwise echo the first one offered, telling an MQTT-over-WebSocket
        // client (`mqtt`) that we speak MQTT; such a client now fails its handshake at once, as RFC 6455 has it
        return (this.wss ??= import("ws").then(({ WebSocketServer }) => {
            const wss = new WebSocketServer({ noServer: true, maxPayload: 2 * MAX_OBJECT_BYTES, perMessageDeflate: false, handleProtocols: () => false })
            // a handshake ws refuses (no or a malformed Sec-WebSocket-Key, a version other than 13, not GET, a
            // malformed extension offer) gets a coded answer like every other refusal of the port, not ws's
            // text/html one with no code; with this listener ws leaves the socket to us
            wss.on("wsClientError", (err: Error, socket: Duplex, req: IncomingMessage) => refuseHandshake(req, socket, err.message))
            return wss
        }))
    }

    /** For the HTTP server's `upgrade` event on /ws. */
    upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
        // [P§3] RFC 6455's version, 13, alone: ws also takes 8 (the hybi-08 draft of 2011, which no browser or library
        // has sent since), and the doc promises 400 E_BAD_WEBSOCKET for any other
        const version = req.headers["sec-websocket-version"]
        if (version !== undefined && version !== "13") return refuseHandshake(req, socket, `Sec-WebSocket-Version ${JSON.stringify(version.slice(0, 16))} is not 13`)
        this.server().then(
            // ws refuses a socket that closed meanwhile; one that arrives while the server shuts down is dropped
            (wss) => (this.closed ? socket.destroy() : wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws, req.socket.remoteAddress ?? "?"))),
            (err: Error) => {
                this.deps.log.error({ err: err.message }, "websocket support did not load")
                socket.destroy()
            },
        )
    }

    private attach(ws: WebSocket, remoteAddress: string): void {
        const wire: Wire = {
            transport: "ws",
            remoteAddress,
            send: (lines) => lines.forEach((line) => ws.send(line)), // one envelope per message [P§3]
            heartbeat: () => {
                ws.send("")
                ws.ping()
            },
            bufferedBytes: () => ws.bufferedAmount,
            pause: () => ws.pause(),
            resume: () => ws.resume(),
            end: (notice) => {
                ws.close(closeCodeOf(notice), notice?.code ?? "")
                setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref()
            },
        }
        const session = new Session(this.deps, wire)
        ws.on("message", (data: Buffer, isBinary: boolean) => {
            if (data.length > MAX_OBJECT_BYTES) {
                return session.closeWith(new ApiError(413, "E_TOO_LARGE", `a request may be at most ${MAX_OBJECT_BYTES} bytes; this one is ${data.length}`))
            }
            const text = data.toString("utf8")
            if (isHeartbeatMessage(text)) session.alive()
            // ws has checked text messages (invalid UTF-8 closes with 1007, RFC 6455); binary ones are ours to check
            else session.receiveObject(text, !isBinary || isUtf8(data))
        })
        ws.on("pong", () => session.alive())
        ws.on("close", () => session.closed())
        ws.on("error", (err) => this.deps.log.debug({ session: session.id, err: err.message }, "websocket error"))
        session.start()
    }

    close(): void {
        this.closed = true
        void this.wss?.then((wss) => wss.close())
    }
}
