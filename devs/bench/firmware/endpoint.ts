// A protocol v1 device endpoint for the firmware benchmarks, on TLS, that the benchmark can take
// down, bring back on the same port, or black-hole, and that reports when it acknowledged a sample.
// It answers as the feedline server does [P§2, §4, §6]: welcome line, a 200 ack per request (in the
// request's form [P§5a]; the answers to one read in one write), heartbeats after 300 ms without sending. Raw TCP bytes (TLS records included) are counted per connection.
import net from "node:net"
import tls from "node:tls"
import { readFileSync } from "node:fs"
import { DEFAULT_HEARTBEAT_MS } from "../../../src/keepalive.ts"
import { decodeRequest, encodeResponse, encodeWelcome } from "../../../src/protocol.ts"
import type { TlsFixture } from "../tls-fixture.ts"

export interface ConnBytes {
    up: number
    down: number
}

export interface EndpointOptions {
    /** false: never acknowledge (samples pile up in the device's outbox) */
    ack: boolean
    onAck?(atMs: number): void
    onClose?(atMs: number, bytes: ConnBytes): void
    onConnect?(atMs: number): void
}

interface Conn {
    raw: net.Socket
    tls: tls.TLSSocket
    lastSentMs: number
    silent: boolean
}

const HEARTBEAT_SWEEP_MS = 50

export class DeviceEndpoint {
    private server?: net.Server
    private conns = new Set<Conn>()
    private context: tls.SecureContext
    private timer: NodeJS.Timeout
    port = 0

    constructor(fx: TlsFixture, private opts: EndpointOptions) {
        this.context = tls.createSecureContext({ cert: readFileSync(fx.certPath), key: readFileSync(fx.keyPath) })
        this.timer = setInterval(() => {
            const now = performance.now()
            for (const c of this.conns) if (!c.silent && now - c.lastSentMs >= DEFAULT_HEARTBEAT_MS) this.write(c, "\n")
        }, HEARTBEAT_SWEEP_MS)
    }

    /** Listens (again) on the same port as before, or a fresh one the first time. */
    listen(): Promise<number> {
        const srv = net.createServer((raw) => this.accept(raw))
        this.server = srv
        return new Promise((resolve, reject) => {
            srv.once("error", reject)
            srv.listen(this.port, "127.0.0.1", () => resolve((this.port = (srv.address() as net.AddressInfo).port)))
        })
    }

    /** The server goes away: no more listening, every connection reset. */
    async down(): Promise<void> {
        const srv = this.server
        this.server = undefined
        for (const c of this.conns) c.raw.resetAndDestroy()
        this.conns.clear()
        if (srv) await new Promise((r) => srv.close(r))
    }

    /** Open connections stay open but nothing more is sent or answered (a Wi-Fi drop, a dead NAT). */
    blackhole(): void {
        for (const c of this.conns) c.silent = true
    }

    async close(): Promise<void> {
        clearInterval(this.timer)
        await this.down()
    }

    private write(c: Conn, text: string) {
        c.lastSentMs = performance.now()
        c.tls.write(text)
    }

    private accept(raw: net.Socket) {
        raw.setNoDelay(true)
        const t = new tls.TLSSocket(raw, { isServer: true, secureContext: this.context })
        const c: Conn = { raw, tls: t, lastSentMs: performance.now(), silent: false }
        this.conns.add(c)
        this.opts.onConnect?.(performance.now())
        t.on("error", () => {})
        raw.on("error", () => {})
        raw.on("close", () => {
            this.conns.delete(c)
            this.opts.onClose?.(performance.now(), { up: raw.bytesRead, down: raw.bytesWritten })
        })
        t.once("secure", () => {
            if (!c.silent) this.write(c, encodeWelcome({ welcome: "feedline/0.1.0", session: "bench", time: Date.now(), heartbeat: 300, faulty: 1000, timeout: 3000 }) + "\n")
        })
        let partial = ""
        t.setEncoding("latin1")
        t.on("data", (chunk: string) => {
            if (c.silent) return
            const lines = (partial + chunk).split("\n")
            partial = lines.pop()!
            // the answers to what arrived together leave together, in one TLS record, as the server sends
            // what a connection gets in one turn
            let answers = ""
            for (const line of lines) {
                if (!line.trim() || !this.opts.ack) continue
                const r = decodeRequest(line).request
                answers += encodeResponse({ token: r?.token, status: 200, resource: r?.resource, short: r?.short }) + "\n"
                if (r?.method === "put") this.opts.onAck?.(performance.now())
            }
            if (answers) this.write(c, answers)
        })
    }
}
