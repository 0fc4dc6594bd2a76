// A scripted, misbehaving device-port server for the firmware-vs-server tests (firmware-hostile.test.ts):
// TLS on 127.0.0.1:0 with a throwaway CA (the simulator trusts it through NODE_EXTRA_CA_CERTS, as
// runFirmware sets it). Connection n runs step n of a schedule, a function that speaks for the server on
// that connection (welcome or not, answers or not, garbage, resets); connections after the last step get
// `normal`. Everything the device sends and when each connection opened and closed is recorded, so a test
// checks the device from the server's side.
import net from "node:net"
import tls from "node:tls"
import { readFileSync } from "node:fs"
import { decodeRequest, type Request } from "../../src/protocol.ts"
import { makeTlsFixture, type TlsFixture } from "../../devs/bench/tls-fixture.ts"

export interface SeenRequest {
    atMs: number
    request: Request
}

export class HostileConn {
    readonly openedMs = Date.now()
    closedMs: number | undefined
    requests: SeenRequest[] = []
    /** batches (puts) answered 200: stored, as far as the device can know */
    acked: SeenRequest[] = []
    heartbeats = 0
    readonly closed: Promise<number>
    private partial = ""
    private waiters: ((r: SeenRequest | undefined) => void)[] = []
    private taken = 0
    private timers = new Set<NodeJS.Timeout>()

    constructor(readonly n: number, readonly raw: net.Socket, readonly sock: tls.TLSSocket) {
        raw.on("error", () => {})
        sock.on("error", () => {})
        sock.on("data", (d: Buffer) => this.onData(d))
        this.closed = new Promise((resolve) =>
            raw.on("close", () => {
                this.closedMs = Date.now()
                for (const t of this.timers) clearTimeout(t)
                for (const w of this.waiters.splice(0)) w(undefined)
                resolve(this.closedMs)
            }),
        )
    }

    get isOpen(): boolean {
        return this.closedMs === undefined
    }

    write(text: string | Buffer) {
        if (this.isOpen) this.sock.write(text)
    }

    /** The welcome line [P§2]: the server's clock and `keepalive` members as given (any value, any type). */
    welcome(keepalive: Record<string, unknown> = { heartbeat: 1000, faulty: 5000, timeout: 10000 }, time: unknown = Date.now()): string {
        return `${JSON.stringify({ welcome: "hostile/0", session: `h${this.n}`, time, ...keepalive })}\n`
    }

    /** `text` in writes of `bytes`, `gapMs` apart (separate TCP segments and TLS records). */
    async trickle(text: string | Buffer, bytes: number, gapMs: number) {
        const buf = Buffer.isBuffer(text) ? text : Buffer.from(text)
        for (let off = 0; off < buf.length && this.isOpen; off += bytes) {
            this.write(buf.subarray(off, off + bytes))
            await this.sleep(gapMs)
        }
    }

    /** The short-form answer [P§5a] to request `r`. */
    answer(r: SeenRequest, status = 200, body?: unknown) {
        if (status === 200 && r.request.method === "put" && this.isOpen) this.acked.push(r)
        this.write(`${JSON.stringify({ t: r.request.token, s: status === 200 ? undefined : status, b: body })}\n`)
    }

    /** The next request the device sends (heartbeats counted, not returned), or undefined on close or after `timeoutMs`. */
    next(timeoutMs: number): Promise<SeenRequest | undefined> {
        if (this.taken < this.requests.length) return Promise.resolve(this.requests[this.taken++])
        if (!this.isOpen) return Promise.resolve(undefined)
        return new Promise((resolve) => {
            const w = (r: SeenRequest | undefined) => {
                clearTimeout(timer)
                this.timers.delete(timer)
                resolve(r)
            }
            const timer = setTimeout(() => {
                this.waiters.splice(this.waiters.indexOf(w), 1)
                this.timers.delete(timer)
                resolve(undefined)
            }, timeoutMs)
            this.timers.add(timer)
            this.waiters.push(w)
        })
    }

    /** The next request of `method` ("put": a batch), skipping others; undefined as next(). */
    async nextOf(method: string, timeoutMs: number): Promise<SeenRequest | undefined> {
        const end = Date.now() + timeoutMs
        for (;;) {
            const r = await this.next(Math.max(1, end - Date.now()))
            if (!r || r.request.method === method) return r
        }
    }

    /** Resolves true when the device closes within `ms`, else false (the connection stays as it is). */
    async closesWithin(ms: number): Promise<boolean> {
        const t = new Promise<false>((resolve) => {
            const timer = setTimeout(() => resolve(false), ms)
            this.timers.add(timer)
        })
        return Promise.race([this.closed.then(() => true as const), t])
    }

    /** Heartbeats ("\n") every `everyMs` until the connection closes. */
    heartbeatEvery(everyMs: number) {
        const beat = () => {
            if (!this.isOpen) return
            this.write("\n")
            const t = setTimeout(beat, everyMs)
            this.timers.add(t)
        }
        beat()
    }

    /** Closes at once; what was written but not yet sent is lost. */
    end() {
        this.raw.destroy()
    }

    /** Closes after what was written (TLS close_notify, then FIN). */
    finish() {
        this.sock.end()
    }

    /** TCP RST: the device sees the connection reset, as after a NAT or server crash. */
    reset() {
        this.raw.resetAndDestroy()
    }

    sleep(ms: number): Promise<void> {
        return new Promise((resolve) => setTimeout(resolve, ms))
    }

    private onData(d: Buffer) {
        this.partial += d.toString("utf8")
        for (let nl; (nl = this.partial.indexOf("\n")) >= 0; ) {
            const line = this.partial.slice(0, nl)
            this.partial = this.partial.slice(nl + 1)
            if (!line.trim()) {
                this.heartbeats++
                continue
            }
            const request = decodeRequest(line).request
            if (!request) continue
            const seen = { atMs: Date.now(), request }
            this.requests.push(seen)
            const w = this.waiters.shift()
            if (w) {
                this.taken++
                w(seen)
            }
        }
    }
}

export type Step = (c: HostileConn) => Promise<void>

/** The well-behaved server: welcome, every request answered 200 (a subscribe: live), heartbeats every second, until the device closes. */
export const normal: Step = async (c) => {
    c.write(c.welcome())
    c.heartbeatEvery(1000)
    for (let r; (r = await c.next(60_000)); ) c.answer(r)
}

export interface HostileServer {
    port: number
    caPath: string
    conns: HostileConn[]
    /** resolves with connection n (1-based) once it is accepted */
    conn(n: number): Promise<HostileConn>
    close(): Promise<void>
}

export async function startHostileServer(dir: string, schedule: Step[], after: Step = normal): Promise<HostileServer> {
    const fx: TlsFixture = await makeTlsFixture(dir)
    const conns: HostileConn[] = []
    const waiting = new Map<number, (c: HostileConn) => void>()
    const secureContext = tls.createSecureContext({ cert: readFileSync(fx.certPath), key: readFileSync(fx.keyPath) })
    // raw TCP under the TLS socket: reset() needs the TCP handle
    const server = net.createServer((raw) => {
        raw.setNoDelay(true)
        const c = new HostileConn(conns.length + 1, raw, new tls.TLSSocket(raw, { isServer: true, secureContext }))
        conns.push(c)
        waiting.get(c.n)?.(c)
        const step = schedule[c.n - 1] ?? after
        // the step starts once TLS is up (a step that returns leaves its connection as it is)
        c.sock.once("secure", () => step(c).catch((e) => console.log(`# hostile server: step ${c.n} failed: ${e}`)))
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    return {
        port: (server.address() as net.AddressInfo).port,
        caPath: fx.caPath,
        conns,
        conn: (n) => (conns[n - 1] ? Promise.resolve(conns[n - 1]) : new Promise((resolve) => waiting.set(n, resolve))),
        close: async () => {
            for (const c of conns) c.end()
            await new Promise<void>((resolve) => server.close(() => resolve()))
        },
    }
}
