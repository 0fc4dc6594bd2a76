// One protocol-v1 connection seen from a client: the welcome line [P§2], heartbeats and liveness [P§4],
// requests matched to responses by token [P§5, P§6], pushes routed to their subscription [P§8], and
// auth once per connection [P§7]: the key rides on requests until one succeeds, then is left off.
// The decisions are the client core's, shared with the firmware and the dashboard page: the keep-alive
// (src/keepalive.ts) and the request table (src/requests.ts: tokens, matching, deadlines).
//
// Link states (one field, transitions only here):
//   online   – traffic within `faulty`
//   degraded – silent past `faulty`: reported, the connection is kept
//   closed   – we closed, the server closed, or silent past `timeout` (then closed with E_DEAD_LINK)

import { EventEmitter } from "node:events"
import { defaultKeepalive, keepaliveFromWelcome, keepaliveStep, type KeepaliveContract } from "../../src/keepalive.ts"
import { decodeServerLine, encodeRequest, isNotice, namesAChange, normalizeResource, pushIsFor, type Method, type Request, type Response, type Welcome } from "../../src/protocol.ts"
import { RequestTable } from "../../src/requests.ts"
import { parseAddress, type ServerAddress } from "./address.ts"
import { ClientError, statusError } from "./errors.ts"
import { openLineChannel, type LineChannel, type LineChannelOptions } from "./line-channel.ts"

/** A server that accepted TCP but says nothing is not a feedline server (or is stuck); give up after this. */
export const WELCOME_TIMEOUT_MS = 5000
/** Default wait for a response; history queries of 1000 points answer well within this. */
export const REQUEST_TIMEOUT_MS = 10_000

export type LinkState = "online" | "degraded" | "closed"

export interface ConnectOptions extends LineChannelOptions {
    /** tls://host:7443, ws://host:7080/ws, http://host:7080 … (see address.ts) */
    server: string | ServerAddress
    /** an API key, or "Bearer <jwt>" */
    apiKey?: string
    welcomeTimeoutMs?: number
    requestTimeoutMs?: number
    /**
     * Time gone by, ms (the keep-alive's silence, request deadlines); injected for tests. Default
     * performance.now(): a step of the wall clock (NTP, a resumed laptop) is no silence [P§4].
     */
    now?: () => number
}

export interface RequestOptions {
    params?: Request["params"]
    body?: unknown
    /** use this key for this request instead of the connection's */
    apiKey?: string
    timeoutMs?: number
}

/** what the request table holds for each request in flight */
interface Pending {
    resolve: (r: Response) => void
    reject: (e: Error) => void
    /** "put /feeds/1", for the timeout's message */
    what: string
    timeoutMs: number
}

/** [P§8] one subscription of a connection; `named`: the resource as the server names it (its pushes are matched against it) */
interface Subscription {
    resource: string
    named: string
    onPush: (push: Response) => void
    onAck?: (ack: Response) => void
}

export interface FeedlineConnectionEvents {
    /** a push for a subscription token nobody listens to any more, or a response nobody waits for */
    stray: [Response]
    /**
     * [P§8] a push (or final push) under a subscription's token that names a resource neither the subscribed one,
     * nor under it, nor above it (a server that mixed up its subscriptions): not handed to the subscription
     * (E_FOREIGN_PUSH, as the firmware counts it)
     */
    foreign: [Response]
    state: [LinkState]
    /** the connection is gone; `err` is undefined after our own close() */
    close: [ClientError | undefined]
}

export class FeedlineConnection extends EventEmitter<FeedlineConnectionEvents> {
    readonly address: ServerAddress
    welcome!: Welcome
    state: LinkState = "online"
    private channel!: LineChannel
    private readonly requests = new RequestTable("c")
    /** fires at the request table's next deadline */
    private deadlineTimer?: NodeJS.Timeout
    /** [P§8] subscriptions by their token (a connection may hold several to one resource); `named`: the resource as the server names it */
    private readonly subscriptions = new Map<string, Subscription>()
    private authenticated = false
    private lastRxMs: number
    private lastTxMs: number
    private keepaliveTimer?: NodeJS.Timeout
    private contract: KeepaliveContract = defaultKeepalive()
    private readonly now: () => number
    private closeReason: ClientError | undefined
    private ended = false
    /** [P§6] lines that are no protocol line (E_BAD_LINE: not JSON, `\uFFFE`, no status): ignored, counted as the firmware counts them */
    badLines = 0

    private constructor(private readonly opts: ConnectOptions) {
        super()
        this.address = typeof opts.server === "string" ? parseAddress(opts.server) : opts.server
        this.now = opts.now ?? (() => performance.now())
        this.lastRxMs = this.lastTxMs = this.now()
    }

    /** Dials, waits for the welcome line, and starts the keep-alive. */
    static async connect(opts: ConnectOptions): Promise<FeedlineConnection> {
        const c = new FeedlineConnection(opts)
        await c.open()
        return c
    }

    private async open(): Promise<void> {
        this.channel = await openLineChannel(this.address, this.opts)
        await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => {
                this.channel.close()
                reject(new ClientError("E_NO_WELCOME", `${this.address.url} accepted the connection but sent no feedline welcome line within ${this.opts.welcomeTimeoutMs ?? WELCOME_TIMEOUT_MS} ms; is this the right port?`))
            }, this.opts.welcomeTimeoutMs ?? WELCOME_TIMEOUT_MS)
            const onClose = (err?: Error) => {
                clearTimeout(timer)
                reject(err instanceof ClientError ? err : new ClientError("E_NO_WELCOME", `${this.address.url} closed the connection before its welcome line`))
            }
            const onLine = (line: string) => {
                this.lastRxMs = this.now()
                const d = decodeServerLine(line)
                if (d.kind === "heartbeat") return
                clearTimeout(timer)
                if (d.kind === "welcome") {
                    this.welcome = d.welcome!
                    this.contract = keepaliveFromWelcome(d.welcome!)
                    // from the next line on (maybe in this same chunk) the connection proper handles them
                    this.channel.attach({ onLine: (line) => this.onLine(line), onClose: (err) => this.onChannelClose(err) })
                    resolve()
                } else if (d.kind === "response" && isNotice(d.response!)) {
                    // a notice instead of a welcome: e.g. 429 too many connections, 503 shutting down [P§6]
                    this.channel.close()
                    reject(noticeError(d.response!, this.address.url))
                } else {
                    this.channel.close()
                    reject(new ClientError("E_NO_WELCOME", `${this.address.url} did not start with a feedline welcome line; is this the right port?`))
                }
            }
            this.channel.attach({ onLine, onClose })
        })
        // what came in the same chunk as the welcome may have ended the connection already (a notice: a server
        // in a reconnect storm evicts an unauthenticated connection as soon as it welcomed it): connect fails
        // with why. Returned, it would be a connection whose "close" nobody could hear any more
        if (this.ended) throw this.closeReason ?? new ClientError("E_CLOSED", `${this.address.url} closed the connection right after its welcome line`)
        this.scheduleKeepalive(0)
    }

    /** Sends a request and resolves with the response, whatever its status. Rejects only when no response can come. */
    send(method: Method, resource: string | undefined, o: RequestOptions = {}): Promise<Response> {
        return this.sendWithToken(method, resource, this.requests.nextToken(), o)
    }

    /** Like send(), but an error status rejects with a ClientError and a success resolves with the body. */
    async call(method: Method, resource: string, o: RequestOptions = {}): Promise<any> {
        const r = await this.send(method, resource, o)
        if (r.status >= 400) throw statusError(r.status, r.resource ?? resource, r.body)
        return r.body
    }

    /**
     * [P§8] Subscribes under a fresh token (another subscription, also when one to `resource` exists);
     * `onPush` gets every push (status 200) and the final push that ends it (408 `params.timeout`, 403,
     * 404). Resolves once acknowledged with the token and the acknowledgement (a cut replay says
     * `truncated` and `next_since`); rejects with the server's refusal. `onAck` sees a successful
     * acknowledgement at once, before the pushes that came with it (the promise settles only after them).
     */
    async subscribe(resource: string, params: Request["params"], onPush: (push: Response) => void, onAck?: (ack: Response) => void): Promise<{ token: string; ack: Response }> {
        const token = this.requests.nextToken()
        this.subscriptions.set(token, { resource, named: normalizeResource(resource) ?? resource, onPush, onAck })
        const r = await this.sendWithToken("subscribe", resource, token, { params }).catch((e) => {
            this.subscriptions.delete(token)
            throw e
        })
        if (r.status >= 400) {
            this.subscriptions.delete(token)
            throw statusError(r.status, resource, r.body)
        }
        return { token, ack: r }
    }

    /**
     * [P§8] Ends subscriptions of this connection: the one with `token`, every one to `resource`, or (neither)
     * all. Resolves with how many the server removed.
     */
    async unsubscribe(which: { resource?: string; token?: string } = {}): Promise<number> {
        const params = which.token === undefined ? undefined : { token: which.token }
        const body = await this.call("unsubscribe", which.resource as string, { params })
        for (const [token, sub] of [...this.subscriptions]) {
            if ((which.token === undefined || token === which.token) && (which.resource === undefined || sub.resource === which.resource)) this.subscriptions.delete(token)
        }
        return typeof body?.removed === "number" ? body.removed : 0
    }

    /** [P§4] the connection's `timeout` (ms): silent this long, it is dead; a cut replay's pushes not in by then are not coming [P§8] */
    get timeoutMs(): number {
        return this.contract.timeoutMs
    }

    /** Graceful close: pending requests fail with E_CLOSED. */
    close(): void {
        this.end(undefined)
    }

    private sendWithToken(method: Method, resource: string | undefined, token: string, o: RequestOptions): Promise<Response> {
        if (this.ended) return Promise.reject(this.closeReason ?? new ClientError("E_CLOSED", "the connection is closed"))
        const key = o.apiKey ?? (this.authenticated ? undefined : this.opts.apiKey)
        const req: Request = { method, resource, params: o.params, body: o.body, token }
        if (key !== undefined) req.headers = { "X-ApiKey": key }
        return new Promise<Response>((resolve, reject) => {
            const timeoutMs = o.timeoutMs ?? this.opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS
            const pending: Pending = {
                resolve: (r) => {
                    // [P§7] the first success proves the key; later requests may leave it off
                    if (key !== undefined && o.apiKey === undefined && r.status < 400) this.authenticated = true
                    resolve(r)
                },
                reject,
                what: `${method} ${resource ?? ""}`,
                timeoutMs,
            }
            this.requests.add(token, method, pending, this.now(), timeoutMs)
            this.armDeadline()
            this.write(encodeRequest(req))
        })
    }

    /** One timer, at the request table's next deadline. */
    private armDeadline(): void {
        clearTimeout(this.deadlineTimer)
        const waitMs = this.requests.msToNextDeadline(this.now())
        if (waitMs !== undefined) this.deadlineTimer = setTimeout(() => this.failOverdue(), waitMs)
    }

    private failOverdue(): void {
        for (const late of this.requests.takeOverdue(this.now())) {
            const p = late.ref as Pending
            p.reject(new ClientError("E_TIMEOUT", `no response to ${p.what} within ${p.timeoutMs} ms`))
        }
        this.armDeadline()
    }

    private write(text: string): void {
        this.lastTxMs = this.now()
        this.channel.send(text)
    }

    private onLine(line: string): void {
        this.lastRxMs = this.now()
        if (this.state === "degraded") this.setState("online")
        const d = decodeServerLine(line)
        if (d.kind === "invalid") this.badLines++
        if (d.kind !== "response") return // heartbeats; a second welcome or garbage is ignored
        const r = d.response!
        if (isNotice(r)) return this.end(noticeError(r, this.address.url))
        if (r.token === undefined) return void this.emit("stray", r) // a reply to a request without token: this client sends none
        const sub = this.subscriptions.get(r.token)
        // [P§8] a push (it names what changed) that comes before its subscribe's answer is a push, not the answer,
        // as the firmware tells them apart (src/protocol.ts namesAChange)
        if (sub && r.status === 200 && namesAChange(r.body)) return this.onPush(r.token, sub, r)
        const p = this.requests.take(r.token)
        if (p) {
            this.armDeadline()
            if (r.status < 400) sub?.onAck?.(r)
            return (p.ref as Pending).resolve(r)
        }
        if (sub) return this.onPush(r.token, sub, r)
        this.emit("stray", r)
    }

    private onPush(token: string, sub: Subscription, r: Response): void {
        // [P§8] routed by token and resource, as the firmware routes (src/protocol.ts pushIsFor): a push naming another
        // feed or datastream is not this subscription's; it neither reaches it nor ends it
        if (!pushIsFor(sub.named, r.resource)) return void this.emit("foreign", r)
        if (r.status !== 200) this.subscriptions.delete(token) // [P§8] a final push: nothing follows it
        sub.onPush(r)
    }

    private scheduleKeepalive(delayMs: number): void {
        this.keepaliveTimer = setTimeout(() => {
            // an ended connection stays "closed": the keep-alive must not mark it online again
            if (this.ended) return
            const step = keepaliveStep(this.now(), this.lastRxMs, this.lastTxMs, this.contract)
            if (step.health === "dead") {
                return this.end(new ClientError("E_DEAD_LINK", `no traffic from ${this.address.url} for ${this.contract.timeoutMs} ms; the link is dead`))
            }
            const state: LinkState = step.health === "ok" ? "online" : "degraded"
            if (state !== this.state) this.setState(state)
            if (step.sendHeartbeat) this.write("\n")
            this.scheduleKeepalive(step.nextCheckInMs)
        }, delayMs)
        // the keep-alive alone must not keep a finished CLI process running
        this.keepaliveTimer.unref()
    }

    private onChannelClose(err?: Error): void {
        this.end(err === undefined ? undefined : err instanceof ClientError ? err : new ClientError("E_CLOSED", `connection lost: ${err.message}`, { cause: err }))
    }

    private setState(s: LinkState): void {
        this.state = s
        this.emit("state", s)
    }

    private end(reason: ClientError | undefined): void {
        if (this.ended) return
        this.ended = true
        this.closeReason = reason
        clearTimeout(this.keepaliveTimer)
        clearTimeout(this.deadlineTimer)
        this.channel.close()
        const failure = reason ?? new ClientError("E_CLOSED", "the connection was closed")
        for (const p of this.requests.clear()) (p.ref as Pending).reject(failure)
        this.subscriptions.clear()
        this.setState("closed")
        this.emit("close", reason)
    }
}

function noticeError(r: Response, url: string): ClientError {
    const e = statusError(r.status, undefined, r.body)
    if (e.code !== "E_STATUS") return e
    return new ClientError("E_NOTICE", `the server at ${url} closed the connection: ${e.message}`, { status: r.status, serverCode: e.serverCode, retryAfterMs: e.retryAfterMs })
}
