// Test harness for the server suites: a server on 127.0.0.1 with ephemeral ports in a temporary data
// folder, and line-oriented clients over TLS and WebSocket. Every wait has a deadline; nothing sleeps.
import { execFile } from "node:child_process"
import { request } from "node:http"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import tls from "node:tls"
import { after } from "node:test"
import { promisify } from "node:util"
import { WebSocket } from "ws"
import { decodeServerLine, encodeRequest, isNotice, type Request, type Response } from "../../../src/protocol.ts"
import { startServer, type RunningServer, type ServerOptions } from "../../../devs/server/index.ts"
import type { Session, Wire } from "../../../devs/server/session.ts"
import { mountDashboard, type DashboardOptions } from "../../../devs/dashboard/mount.ts"
import { compiledCli } from "../../../devs/server/compiled.ts"

const execFileAsync = promisify(execFile)

export const WAIT_MS = 5000

/**
 * How long a test waits for what the server does by itself, on its own timers, with nobody asking: a revoked key's
 * idle subscriptions ending (the server's look for other processes' key changes), a token's subscriptions
 * ending at its expiry. A bound for a server that never does it (one that waits for the next write waits
 * for ever in an idle test), never a measurement: a loaded machine can stall a process for seconds. How
 * soon is promised ("within a second", docs/PROTOCOL.md §8) is held without a clock: the look's interval
 * (server/background.test.ts), and the look ending them at once (InProcessClient, auth/revocation.test.ts).
 */
export const SERVER_OWN_EVENT_WAIT_MS = 30_000

/** Runs the `feedline` CLI in another process (as an operator would, next to the running server); its stdout. */
export async function feedlineCli(args: string[]): Promise<string> {
    const { stdout } = await execFileAsync(process.execPath, [compiledCli(), ...args])
    return stdout
}

export interface TestServer extends RunningServer {
    dataDir: string
    ca: Buffer
    /** the PostgreSQL database it serves from (--database-url), if any */
    databaseUrl?: string
    /** close the server and delete its data folder */
    stop(): Promise<void>
}

/** A server as `feedline serve` runs it: with the dashboard and POST /jwt mounted (`tokenMaxAgeMs` is theirs). */
export async function startTestServer({ tokenMaxAgeMs, tokenMintRatePerSecond, tokenMintBurst, ...opts }: Partial<ServerOptions> & DashboardOptions = {}): Promise<TestServer> {
    const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "feedline-test-"))
    // tests pipeline many requests: no rate limit unless a test asks for one
    const unlimited = { ratePerSecond: 1e6, rateBurst: 1e6, keyRatePerSecond: 1e6, keyRateBurst: 1e6, structureRatePerSecond: 1e6, structureRateBurst: 1e6 }
    const server = await startServer({ devicePort: 0, appPort: 0, logLevel: "silent", synchronous: "NORMAL", ...unlimited, extensions: [mountDashboard({ tokenMaxAgeMs, tokenMintRatePerSecond: tokenMintRatePerSecond ?? 1e6, tokenMintBurst: tokenMintBurst ?? 1e6 })], ...opts, dataDir })
    return {
        ...server,
        dataDir,
        databaseUrl: opts.databaseUrl,
        ca: readFileSync(server.caCertPath),
        stop: async () => {
            await server.close()
            rmSync(dataDir, { recursive: true, force: true })
        },
    }
}

/**
 * The server the tests of one file share: started as the file loads (`const s = await serverForThisFile()`, a
 * top-level await), stopped and its data folder deleted after the file's last test.
 */
export async function serverForThisFile(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
    const server = await startTestServer(options)
    after(() => server.stop())
    return server
}

/** The SHA-256 fingerprint of the certificate a new TLS handshake on `port` gets (device port, or an HTTPS app port). */
export function tlsFingerprint(port: number, ca: Buffer | string): Promise<string> {
    return new Promise((resolve, reject) => {
        const c = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
            resolve(c.getPeerCertificate().fingerprint256)
            c.destroy()
        })
        c.on("error", reject)
    })
}

/** One server line as the client saw it. */
export type Line = { raw: string } & ReturnType<typeof decodeServerLine>

/** Collects lines and lets a test wait for the next one that matches. */
class LineQueue {
    readonly lines: Line[] = []
    private waiters: { pred: (l: Line) => boolean; resolve: (l: Line) => void }[] = []
    private readonly taken = new Set<Line>()
    closed = false
    private closeWaiters: (() => void)[] = []

    push(raw: string): void {
        const line: Line = { raw, ...decodeServerLine(raw) }
        this.lines.push(line)
        this.waiters = this.waiters.filter((w) => {
            if (!w.pred(line)) return true
            w.resolve(line) // takes it: later waiters do not see it
            return false
        })
    }

    markClosed(): void {
        this.closed = true
        this.closeWaiters.forEach((f) => f())
    }

    /** The first line not yet taken by next() that matches (and takes it). */
    next(pred: (l: Line) => boolean = () => true, ms = WAIT_MS): Promise<Line> {
        const found = this.lines.find((l) => !this.taken.has(l) && pred(l))
        if (found) {
            this.taken.add(found)
            return Promise.resolve(found)
        }
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no matching line within ${ms} ms; got ${this.lines.map((l) => l.raw).slice(-5).join(" | ")}`)), ms)
            this.waiters.push({
                pred: (l) => !this.taken.has(l) && pred(l),
                resolve: (l) => {
                    clearTimeout(timer)
                    this.taken.add(l)
                    resolve(l)
                },
            })
        })
    }

    untilClosed(ms = WAIT_MS): Promise<void> {
        if (this.closed) return Promise.resolve()
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`not closed within ${ms} ms`)), ms)
            this.closeWaiters.push(() => (clearTimeout(timer), resolve()))
        })
    }
}

let tokenCounter = 0

abstract class Client {
    readonly q = new LineQueue()
    abstract sendRaw(text: string): void
    abstract close(): void

    welcome(): Promise<Line> {
        return this.q.next((l) => l.kind === "welcome")
    }

    /** Sends a request (a token is added when missing) and waits for its response. */
    async request(req: Omit<Request, "method"> & { method: string }, ms = WAIT_MS): Promise<Response> {
        const token = req.token ?? `t${++tokenCounter}`
        this.sendRaw(encodeRequest({ ...req, token } as Request))
        return (await this.response(token, ms)).response!
    }

    response(token: string, ms = WAIT_MS): Promise<Line> {
        return this.q.next((l) => l.kind === "response" && l.response!.token === token, ms)
    }

    /** The next push or response carrying `token`. */
    push(token: string, ms = WAIT_MS): Promise<Response> {
        return this.response(token, ms).then((l) => l.response!)
    }

    /** The next connection notice [P§6] (`"notice":true`). */
    notice(ms = WAIT_MS): Promise<Response> {
        return this.q.next((l) => l.kind === "response" && isNotice(l.response!), ms).then((l) => l.response!)
    }
}

export class TlsClient extends Client {
    private buffered = ""
    readonly socket: tls.TLSSocket
    private heartbeat?: NodeJS.Timeout
    private constructor(socket: tls.TLSSocket, heartbeat: boolean) {
        super()
        this.socket = socket
        // [P§4] a well-behaved client: a blank line every 250 ms (the server's timeout is 3000 ms)
        if (heartbeat) this.heartbeat = setInterval(() => socket.write("\n"), 250)
        socket.setEncoding("utf8")
        socket.on("data", (chunk: string) => {
            this.buffered += chunk
            let nl: number
            while ((nl = this.buffered.indexOf("\n")) >= 0) {
                this.q.push(this.buffered.slice(0, nl))
                this.buffered = this.buffered.slice(nl + 1)
            }
        })
        socket.on("close", () => {
            clearInterval(this.heartbeat)
            this.q.markClosed()
        })
        socket.on("error", () => {})
    }

    static connect(server: { devicePort: number; ca: Buffer }, opts: tls.ConnectionOptions & { heartbeat?: boolean } = {}): Promise<TlsClient> {
        return new Promise((resolve, reject) => {
            const socket = tls.connect({ host: "127.0.0.1", port: server.devicePort, ca: server.ca, ...opts }, () =>
                resolve(new TlsClient(socket, opts.heartbeat ?? true)),
            )
            socket.once("error", reject)
        })
    }

    /** Connects and reads the welcome line. */
    static async open(server: { devicePort: number; ca: Buffer }, key?: string): Promise<TlsClient> {
        const c = await TlsClient.connect(server)
        await c.welcome()
        if (key) {
            const r = await c.request({ method: "get", resource: "/session", headers: { "X-ApiKey": key } })
            if (r.status !== 200) throw new Error(`auth failed: ${JSON.stringify(r)}`)
        }
        return c
    }

    sendRaw(text: string): void {
        this.socket.write(text + "\n")
    }

    close(): void {
        clearInterval(this.heartbeat)
        this.socket.destroy()
    }
}

export class WsClient extends Client {
    private heartbeat?: NodeJS.Timeout
    private constructor(readonly ws: WebSocket, heartbeat: boolean) {
        super()
        // [P§3, §4] an empty message is a heartbeat: a client that stays idle for longer than the timeout sends them
        if (heartbeat) this.heartbeat = setInterval(() => ws.send(""), 250)
        ws.on("message", (data) => this.q.push(data.toString()))
        ws.on("close", () => {
            clearInterval(this.heartbeat)
            this.q.markClosed()
        })
        ws.on("error", () => {})
    }

    /** Over WebSocket, or with `ca` over WSS (an HTTPS app port) trusting it. */
    static open(server: { appPort: number }, opts: { heartbeat?: boolean; ca?: Buffer } = {}): Promise<WsClient> {
        return new Promise((resolve, reject) => {
            const ws = opts.ca ? new WebSocket(`wss://127.0.0.1:${server.appPort}/ws`, { ca: opts.ca }) : new WebSocket(`ws://127.0.0.1:${server.appPort}/ws`)
            ws.once("open", () => resolve(new WsClient(ws, opts.heartbeat ?? false)))
            ws.once("error", reject)
        })
    }

    sendRaw(text: string): void {
        this.ws.send(text)
    }

    close(): void {
        clearInterval(this.heartbeat)
        this.ws.terminate()
    }
}

/**
 * A connection inside the server's process (RunningServer.attachWire), no socket between: every line the
 * server sends it is in `q.lines` the moment the server sends it. For what must have been sent by a given
 * point (a revocation's final push, once the call that revoked or looked for the change returned), which a
 * socket could only show with a clock.
 */
export class InProcessClient extends Client {
    readonly session: Session
    constructor(server: Pick<RunningServer, "attachWire">) {
        super()
        const wire: Wire = {
            transport: "tcp",
            remoteAddress: "in-process",
            send: (lines) => lines.forEach((l) => this.q.push(l)),
            heartbeat: () => {},
            bufferedBytes: () => 0,
            end: () => this.q.markClosed(),
        }
        this.session = server.attachWire(wire)
    }

    /** Attaches, reads the welcome, and authenticates with `key` (as TlsClient.open). */
    static async open(server: Pick<RunningServer, "attachWire">, key?: string): Promise<InProcessClient> {
        const c = new InProcessClient(server)
        await c.welcome()
        if (key) {
            const r = await c.request({ method: "get", resource: "/session", headers: { "X-ApiKey": key } })
            if (r.status !== 200) throw new Error(`auth failed: ${JSON.stringify(r)}`)
        }
        return c
    }

    /** Lines sent so far carrying `token` (pushes and responses). */
    sent(token: string): Response[] {
        return this.q.lines.filter((l) => l.kind === "response" && l.response!.token === token).map((l) => l.response!)
    }

    sendRaw(text: string): void {
        this.session.receiveObject(text)
    }

    close(): void {
        this.session.closed()
    }
}

/** Both stream doors (TLS and WebSocket), welcomed, for a test that must hold on each; close() closes both. */
export async function streamDoors(server: { devicePort: number; appPort: number; ca: Buffer }): Promise<{ doors: (readonly ["tls" | "ws", TlsClient | WsClient])[]; close(): void }> {
    const tls = await TlsClient.connect(server)
    const ws = await WsClient.open(server)
    await Promise.all([tls.welcome(), ws.welcome()])
    return {
        doors: [
            ["tls", tls],
            ["ws", ws],
        ],
        close: () => {
            tls.close()
            ws.close()
        },
    }
}

/** HTTP request against the app port; returns status, parsed body and headers. */
export async function http(server: { appPort: number }, method: string, path: string, opts: { key?: string; body?: unknown; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...opts.headers }
    if (opts.key) headers["X-ApiKey"] = opts.key
    if (opts.body !== undefined) headers["content-type"] = "application/json"
    const res = await fetch(`http://127.0.0.1:${server.appPort}${path}`, {
        method,
        headers,
        body: opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body),
    })
    const text = await res.text()
    let body: any
    try {
        body = text ? JSON.parse(text) : undefined
    } catch {
        body = text
    }
    return { status: res.status, body, headers: res.headers }
}

/**
 * HTTP request against the app port from loopback address `from` (127.0.0.x: each its own address to the
 * server's per-address limits, which `http` cannot show: fetch does not bind a local address).
 */
export function httpFrom(server: { appPort: number }, from: string, method: string, path: string, opts: { headers?: Record<string, string>; body?: unknown } = {}) {
    const text = opts.body === undefined ? "" : JSON.stringify(opts.body)
    const headers: Record<string, string> = { ...opts.headers, "content-length": String(Buffer.byteLength(text)) }
    if (opts.body !== undefined) headers["content-type"] = "application/json"
    return new Promise<{ status: number; body: any; headers: Record<string, string | string[] | undefined> }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port: server.appPort, localAddress: from, method, path, headers }, (res) => {
            let answer = ""
            res.setEncoding("utf8")
            res.on("data", (c: string) => (answer += c))
            res.on("end", () => resolve({ status: res.statusCode!, body: answer ? JSON.parse(answer) : undefined, headers: res.headers }))
        })
        req.on("error", reject)
        req.end(text)
    })
}
