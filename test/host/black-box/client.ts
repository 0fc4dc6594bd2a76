// A client written from docs/PROTOCOL.md alone, as someone outside the team would write one: plain node:tls,
// node:net and ws, its own line splitting and JSON, nothing of src/protocol.ts or devs/client/ (which would agree
// with the server by construction). Every wait has a deadline; nothing sleeps.
import net from "node:net"
import tls from "node:tls"
import { WebSocket } from "ws"

export const WAIT_MS = 5000

/** One door's connection: every line (TLS, TCP) or message (WebSocket) the server sent, parsed when it is JSON. */
export class Door {
    readonly lines: string[] = []
    closed = false
    /** the WebSocket close code and reason, once closed */
    closeFrame?: { code: number; reason: string }
    private partial = ""
    private wakers: (() => void)[] = []
    private constructor(
        /** [P§3] "lines" on the device port (a request is a line), "messages" on the WebSocket (a request is a message) */
        readonly framing: "lines" | "messages",
        readonly write: (data: string | Buffer) => void,
        readonly destroy: () => void,
    ) {}

    /** The device port over TLS [P§1], trusting `ca`. */
    static tls(server: { devicePort: number; ca: Buffer }, opts: tls.ConnectionOptions = {}): Promise<Door> {
        return new Promise((resolve, reject) => {
            const socket: tls.TLSSocket = tls.connect({ host: "127.0.0.1", port: server.devicePort, ca: server.ca, ...opts }, () => resolve(door))
            const door: Door = new Door("lines", (d) => socket.write(d), () => socket.destroy())
            door.readStream(socket)
            socket.once("error", reject)
        })
    }

    /** The WebSocket `/ws` on the app port (plain `ws://` on loopback, [P§1]). */
    static ws(server: { appPort: number }): Promise<Door> {
        return new Promise((resolve, reject) => {
            const ws = new WebSocket(`ws://127.0.0.1:${server.appPort}/ws`)
            const door: Door = new Door("messages", (d) => ws.send(d), () => ws.terminate())
            ws.on("message", (data) => door.took(data.toString()))
            ws.on("close", (code, reason) => {
                door.closeFrame = { code, reason: reason.toString() }
                door.ended()
            })
            ws.on("error", () => {})
            ws.once("open", () => resolve(door))
            ws.once("error", reject)
        })
    }

    /** Both stream doors, each welcomed. */
    static async both(server: { devicePort: number; appPort: number; ca: Buffer }): Promise<[string, Door][]> {
        const doors: [string, Door][] = [
            ["tls", await Door.tls(server)],
            ["ws", await Door.ws(server)],
        ]
        for (const [, d] of doors) await d.next((o) => "welcome" in o)
        return doors
    }

    private readStream(socket: net.Socket): void {
        socket.on("data", (chunk: Buffer) => {
            this.partial += chunk.toString("latin1") // [P§3] the server writes ASCII only
            let nl: number
            while ((nl = this.partial.indexOf("\n")) >= 0) {
                this.took(this.partial.slice(0, nl))
                this.partial = this.partial.slice(nl + 1)
            }
        })
        socket.on("close", () => this.ended())
        socket.on("error", () => {})
    }

    private took(line: string): void {
        this.lines.push(line)
        this.wake()
    }

    private ended(): void {
        this.closed = true
        this.wake()
    }

    private wake(): void {
        const w = this.wakers
        this.wakers = []
        w.forEach((f) => f())
    }

    /** Sends one request: a line on a stream door, a message on the WebSocket. */
    send(request: object | string): void {
        const text = typeof request === "string" ? request : JSON.stringify(request)
        this.write(this.framing === "lines" ? text + "\n" : text)
    }

    /** The first line not taken yet that is a JSON object matching `pred` (taken); rejects at the deadline or the close. */
    async next(pred: (o: any) => boolean = () => true, ms = WAIT_MS): Promise<any> {
        const deadline = Date.now() + ms
        for (;;) {
            const i = this.lines.findIndex((l) => {
                if (l.trim() === "") return false // [P§4] a heartbeat
                try {
                    const o = JSON.parse(l)
                    return typeof o === "object" && o !== null && pred(o)
                } catch {
                    return false
                }
            })
            if (i >= 0) return JSON.parse(this.lines.splice(i, 1)[0])
            if (this.closed) throw new Error(`closed before a matching line; got ${this.lines.slice(-3).join(" | ")}`)
            const left = deadline - Date.now()
            if (left <= 0) throw new Error(`no matching line within ${ms} ms; got ${this.lines.slice(-3).join(" | ")}`)
            await new Promise<void>((r) => {
                const t = setTimeout(r, left)
                this.wakers.push(() => (clearTimeout(t), r()))
            })
        }
    }

    /** The answer carrying `token` (long form `token`, short form `t`). */
    answer(token: string, ms = WAIT_MS): Promise<any> {
        return this.next((o) => o.token === token || o.t === token, ms)
    }

    /** Sends a request with a token and waits for its answer. */
    async ask(request: Record<string, unknown> & { token: string }, ms = WAIT_MS): Promise<any> {
        this.send(request)
        return this.answer(request.token, ms)
    }

    /** Resolves once the server closed the connection. */
    async untilClosed(ms = WAIT_MS): Promise<void> {
        const deadline = Date.now() + ms
        while (!this.closed) {
            const left = deadline - Date.now()
            if (left <= 0) throw new Error(`not closed within ${ms} ms`)
            await new Promise<void>((r) => {
                const t = setTimeout(r, left)
                this.wakers.push(() => (clearTimeout(t), r()))
            })
        }
    }

    close(): void {
        this.destroy()
    }
}

let nextAddress = 0

/**
 * A loopback address of its own (127.0.0.2 and on) for each call: a request the test means to fail counts against
 * the server's per-address bound of failed keys [P§7], which would answer the next ones 429 E_AUTH_RATE_LIMITED.
 */
export function freshAddress(): string {
    return `127.0.${1 + Math.floor(nextAddress / 250)}.${2 + (nextAddress++ % 250)}`
}

/**
 * A raw HTTP/1.1 exchange on the app port (repeated headers, odd paths: what fetch would tidy up), from loopback
 * address `from`; status and JSON body.
 */
export function rawHttp(server: { appPort: number }, head: string, body = "", from = "127.0.0.1"): Promise<{ status: number; body: any; text: string }> {
    return new Promise((resolve, reject) => {
        const socket = net.connect({ port: server.appPort, host: "127.0.0.1", localAddress: from })
        let text = ""
        socket.setEncoding("latin1")
        socket.on("data", (d: string) => (text += d))
        socket.on("error", reject)
        socket.on("close", () => {
            const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
            const payload = text.slice(text.indexOf("\r\n\r\n") + 4)
            let parsed: any
            try {
                parsed = JSON.parse(payload)
            } catch {
                parsed = undefined
            }
            resolve({ status, body: parsed, text })
        })
        const length = body === "" ? "" : `Content-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\n`
        // not end(): a half-closed request may be dropped before its answer; Connection: close ends the exchange
        socket.write(`${head.trimEnd()}\r\nHost: 127.0.0.1\r\n${length}Connection: close\r\n\r\n${body}`)
    })
}
