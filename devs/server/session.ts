// One session per connection, whatever the transport: TLS and plain TCP sockets feed it bytes (framed by
// ObjectFramer), WebSocket feeds it one envelope per message. It sends the welcome [P§2], keeps the
// connection alive [P§4], rate-limits and routes requests, writes responses and pushes, bounds its
// outgoing queue, and closes with a notice [P§6]. Listeners are thin adapters around it.
import { randomBytes } from "node:crypto"
import { keepaliveStep } from "../../src/keepalive.ts"
import { decodeRequest, encodeResponse, encodeWelcome, type Request } from "../../src/protocol.ts"
import { parseDeviceUpdate } from "./update-parse.ts"
import { ApiError, errorResponse, tooManyRefusals } from "./errors.ts"
import { ObjectFramer, objectsIn, type FramerSink } from "./framer.ts"
import type { Admission, Admitted } from "./listeners/admission.ts"
import { limitKeyOf } from "./limit-key.ts"
import type { Grant } from "./auth/grant.ts"
import { CONGESTED_QUEUE_BYTES, MAX_OBJECT_BYTES, MAX_QUEUE_BYTES, MAX_WAITING_REQUEST_CHARS, RECONNECT_AFTER_MS, SLOW_CONSUMER_MS } from "./limits.ts"
import type { Logger } from "./log.ts"
import type { Metrics } from "./metrics.ts"
import { fullBucket, take, type Bucket, type BucketConfig } from "./ratelimit.ts"
import type { Caller, Connection, TransportKind } from "./context.ts"
import type { Answer, AnswerTarget, Router } from "./router.ts"
import type { Hub } from "./hub/index.ts"
import type { TimerWheel, WheelEntry } from "./timer-wheel.ts"
import type { OpenSessions } from "./open-sessions.ts"

/** The four verbs a transport gives a session. */
export interface Wire {
    readonly transport: Exclude<TransportKind, "http">
    readonly remoteAddress: string
    /** queue lines (without their "\n"; the wire frames them), as few writes as the transport allows */
    send(lines: string[]): void
    /** [P§4] a blank line (WebSocket: an empty message) */
    heartbeat(): void
    /** bytes queued and not yet handed to the operating system */
    bufferedBytes(): number
    /** flush what is queued, then close; force it after a grace period. `notice`: the closing notice's status and code, when one was sent */
    end(notice?: { status: number; code: string }): void
    /** stop reading from the peer (TCP back-pressure: its sends block) until resume(); absent: a wire that cannot */
    pause?(): void
    resume?(): void
}

export interface SessionConfig {
    version: string
    heartbeatMs: number
    faultyMs: number
    timeoutMs: number
    rate: BucketConfig
    /** [P§6] the refusals the session answers by itself (refusalBudgetOf the rate) */
    refusals: BucketConfig
    /** [P§7] a connection must make an authenticated request within this long of its welcome */
    authDeadlineMs: number
    maxQueueBytes: number
    slowConsumerMs: number
}

export interface SessionDeps {
    router: Router
    /** owns the connection's subscriptions: told when the connection closes */
    hub: Pick<Hub, "connectionClosed">
    metrics: Metrics
    log: Logger
    /** the wall clock: the welcome's `time`, when the connection opened */
    now: () => number
    /**
     * [P§4] time gone by (monotonic): silence, the auth deadline, congestion and the request rate are measured
     * with it, never with `now`, whose steps (NTP, a resumed VM) are no silence: a step forward of more than
     * `timeout` closed every connection at once, a step back stopped the heartbeats for as long
     */
    elapsedMs: () => number
    config: SessionConfig
    /** open sessions: a session adds itself on start and removes itself when closed */
    sessions: OpenSessions<Session>
    /** whether a new connection may stay (per address and in all), and how many have not authenticated */
    admission: Admission
    /** [P§4] the one timer of every session's keep-alive checks */
    keepaliveWheel: TimerWheel
}

export type SessionState = "open" | "closing" | "closed"

function sessionId(): string {
    return randomBytes(5).readUIntBE(0, 5).toString(36).padStart(8, "0")
}

const WRITES = new Set(["put", "post", "delete"])

/**
 * One connection's session. It is its own router caller (`connection` is itself) and its own entry on the
 * keep-alive wheel, so that an idle connection holds no more objects than it needs (issue 15: memory per
 * idle connection).
 */
export class Session implements Connection, FramerSink, Caller, WheelEntry, AnswerTarget {
    readonly id = sessionId()
    readonly connectedMs: number
    rememberedKey?: string
    grant?: Grant
    requests = 0
    pushes = 0
    state: SessionState = "open"
    /** shutting down: new requests are not taken (the client resends them after reconnecting) */
    draining = false
    /** requests received and not yet answered (those waiting to be taken included) */
    inflight = 0

    private readonly framer = new ObjectFramer(MAX_OBJECT_BYTES)
    private readonly bucket: Bucket
    /** [P§6] the refusals this session answers by itself (refusalsLeft); made at the first, so an idle connection holds none */
    private refusals?: Bucket
    private lastRxMs: number
    private lastTxMs: number
    private congestedSinceMs?: number
    /** the welcome (or the refusal) has been sent */
    private greeted = false
    private refusal?: ApiError
    private admitted?: Admitted
    /** [P§7] its first key holds its maximum of connections: the refused request's answer goes out, then this notice and the close */
    private keyRefusal?: ApiError
    /** [P§7] a request of this connection was authenticated: the auth deadline no longer applies */
    private authenticatedOnce = false
    /** when the welcome went out; until an authenticated request, the auth deadline runs from here */
    private welcomedMs = 0
    /** [P§4] the slot of the shared keep-alive wheel this session's next check waits in (the wheel's to set) */
    slot?: number
    /** writes taken and not yet answered */
    private writesInFlight = 0
    /**
     * requests not yet taken, in the order they came (takeWaiting); undefined when none wait, so an idle
     * session holds no array. `write`: the request is a write
     */
    private waiting?: { req: Request; write: boolean; chars: number }[]
    /** characters of the requests waiting: over MAX_WAITING_REQUEST_CHARS the wire is paused (waitPaused) */
    private waitingChars = 0
    private waitPaused = false
    /** a read was taken and is not answered yet: the next waits (its answer may be a replay of 1000 pushes) */
    private readInFlight = false
    /** takeWaiting is running (an answer that comes at once must not start another loop inside it) */
    private taking = false
    /** the peer finished sending (a half-close): what it sent is answered, then the connection closes */
    private peerDone = false

    constructor(
        private readonly deps: SessionDeps,
        private readonly wire: Wire,
    ) {
        this.connectedMs = deps.now()
        const now = deps.elapsedMs()
        this.lastRxMs = this.lastTxMs = now
        this.bucket = fullBucket(deps.config.rate, now)
    }

    get transport() {
        return this.wire.transport
    }
    get remoteAddress() {
        return this.wire.remoteAddress
    }
    /** as the router's caller: the connection asking is this one */
    get connection(): Session {
        return this
    }

    /** [P§8] the hub registers subscriptions only while this is true */
    get open(): boolean {
        return this.state === "open"
    }

    /** [P§8] pushes from the hub, queued like any line */
    deliver(lines: string[]): void {
        this.pushes += lines.length
        this.deps.metrics.pushesSent.add(lines.length)
        this.sendLines(lines)
    }

    /**
     * Starts the session: the welcome line, then keep-alive. A connection admission refuses (too many in
     * all or from its address) gets that notice instead and is closed.
     */
    start(): void {
        this.deps.sessions.add(this)
        this.deps.metrics.connectionsTotal.add({ transport: this.transport })
        this.deps.metrics.connectionsOpen.add({ transport: this.transport })
        // evicted while still without a key when its address needs the room (listeners/admission.ts)
        const admitted = this.deps.admission.admit(limitKeyOf(this.remoteAddress), this)
        if (admitted instanceof ApiError) this.refusal = admitted
        else this.admitted = admitted
        // one event-loop turn later: DeviceScript's simulator loses `open` if data arrives in the same turn
        setImmediate(() => this.greet())
    }

    /**
     * [P§2] The first line on every connection: the welcome, or the notice that refuses it. Sent one turn
     * after the connection opens, or at once when the client speaks first, so nothing overtakes it.
     */
    private greet(): void {
        if (this.greeted || this.state !== "open") return
        this.greeted = true
        if (this.refusal) return this.closeWith(this.refusal)
        const { version, heartbeatMs, faultyMs, timeoutMs, authDeadlineMs } = this.deps.config
        this.welcomedMs = this.deps.elapsedMs()
        this.send(encodeWelcome({ welcome: `feedline/${version}`, session: this.id, time: this.deps.now(), heartbeat: heartbeatMs, faulty: faultyMs, timeout: timeoutMs }))
        this.schedule(Math.min(heartbeatMs, authDeadlineMs))
    }

    /**
     * [P§7] The router accepted this connection's key (or token): it is remembered, and the connection is
     * admitted for good, counted against that key (a token's: the key that minted it; a master key is not
     * counted). Throws the 429 when that key holds its maximum of connections: the request is answered
     * with it, and the connection closed (answered()).
     */
    authenticated(credential: string, grant: Grant): void {
        // a request pipelined behind the refused one: refused alike, the connection is closing
        if (this.keyRefusal !== undefined) throw this.keyRefusal
        if (!this.authenticatedOnce) {
            const refused = this.admitted?.authenticated(grant.master ? undefined : grant.keyId)
            if (refused !== undefined) {
                this.keyRefusal = refused
                throw refused
            }
            this.authenticatedOnce = true
        }
        this.rememberedKey ??= credential
        if (this.grant !== grant) {
            this.grant = grant
            // GET /sessions finds a scoped key's connections by their feeds
            this.deps.sessions.regranted(this)
        }
    }

    /** [P§3] bytes from a stream transport */
    receiveBytes(chunk: Buffer): void {
        this.greet()
        if (this.state !== "open") return
        this.lastRxMs = this.deps.elapsedMs()
        this.framer.feedTo(chunk, this)
    }

    /** [FramerSink] one object cut from the stream (receiveBytes greeted and took the time of its chunk) */
    framedObject(text: string, _bytes: number, badUtf8: boolean, shallow: boolean): void {
        if (this.state !== "open" || this.draining) return
        this.request(text, !badUtf8, this.lastRxMs, shallow)
    }

    /** [FramerSink] [P§3] one answer per bad line; token "": no token could be read from it */
    framedGarbage(reason: string): void {
        if (!this.refusalsLeft(this.lastRxMs)) return
        this.send(encodeResponse(errorResponse(new ApiError(400, "E_BAD_JSON", reason), "")))
    }

    /** [FramerSink] an object over the size limit: the stream position is lost, the connection closes */
    framedOversize(bytes: number): void {
        this.closeWith(new ApiError(413, "E_TOO_LARGE", `a request may be at most ${MAX_OBJECT_BYTES} bytes; this one is over ${bytes}`))
    }

    /** The transport reported an error; its close follows (the listener destroys it). */
    transportError(err: Error): void {
        this.deps.log.debug({ session: this.id, err: err.message }, "connection error")
    }

    /** Proof of life without a request (a blank WebSocket message, a pong). */
    alive(): void {
        this.greet()
        this.lastRxMs = this.deps.elapsedMs()
    }

    /**
     * One request object (WebSocket: one message), as text decoded from its bytes. `utf8` false: its bytes
     * were not UTF-8 and `text` holds U+FFFD in their place; it is refused (400 E_BAD_UTF8), with its token
     * when one can be read.
     */
    receiveObject(text: string, utf8 = true): void {
        this.greet()
        if (this.state !== "open" || this.draining) return
        this.lastRxMs = this.deps.elapsedMs()
        this.request(text, utf8, this.lastRxMs, false, true)
    }

    /**
     * One request object received at `nowMs`: decoded, rate-limited, routed. `shallow`: the framer measured its nesting
     * (within MAX_DEPTH). `message`: it is a whole WebSocket message, which the framer did not cut.
     */
    private request(text: string, utf8: boolean, nowMs: number, shallow: boolean, message = false): void {
        this.requests++
        // decoded from bytes: a lone surrogate can only come from a \u escape
        const decoded = decodeRequest(text, true, shallow, parseDeviceUpdate(text))
        if (!utf8) {
            if (!this.refusalsLeft(nowMs)) return
            const token = decoded.request?.token ?? decoded.error?.token ?? ""
            this.deps.metrics.requests.add({ method: "invalid", status: "400" })
            const err = new ApiError(400, "E_BAD_UTF8", "the request is not valid UTF-8; send text as UTF-8 (non-ASCII may also be escaped as \\uXXXX); nothing was done")
            const short = decoded.request?.short ?? decoded.error?.short
            this.send(encodeResponse({ ...errorResponse(err, token, decoded.request?.resource), short }))
            return
        }
        if (decoded.error) {
            if (!this.refusalsLeft(nowMs)) return
            const e = decoded.error
            this.deps.metrics.requests.add({ method: "invalid", status: String(e.status) })
            const err = new ApiError(e.status, e.code, message && e.code === "E_BAD_JSON" ? severalObjects(text) ?? e.reason : e.reason)
            // no token: an error about an unreadable request is still a response, so give it an empty token;
            // [P§5a] a short-form request's error in the short form (one that is no JSON object has no form: long)
            this.send(encodeResponse({ ...errorResponse(err, e.token ?? ""), short: e.short }))
            return
        }
        const req = decoded.request!
        const limited = take(this.bucket, this.deps.config.rate, nowMs)
        if (!limited.ok) {
            if (!this.refusalsLeft(nowMs)) return
            const err = new ApiError(429, "E_RATE_LIMITED", `over ${this.deps.config.rate.ratePerSecond} requests per second on one connection; slow down`, limited.retryAfterMs)
            this.deps.metrics.requests.add({ method: req.method, status: "429" })
            this.send(encodeResponse({ ...errorResponse(err, req.token ?? "", req.resource), short: req.short }))
            return
        }
        this.inflight++
        const write = WRITES.has(req.method)
        // the hot path: a device's write, nothing waiting before it
        if (write && this.waiting === undefined) return this.routeWrite(req)
        ;(this.waiting ??= []).push({ req, write, chars: text.length })
        this.waitingChars += text.length
        this.takeWaiting()
        // a client that sends reads faster than it reads their answers: read no more from it until they are taken
        if (this.waitingChars > MAX_WAITING_REQUEST_CHARS && !this.waitPaused) {
            this.waitPaused = true
            this.wire.pause?.()
        }
    }

    /**
     * [P§6] Whether this session may answer one more refusal of its own (a request over the connection's rate, a
     * bad line, an object that is no request) at `nowMs`, within REFUSAL_BURSTS (limits.ts says why); else it has
     * closed the connection (429 E_TOO_MANY_REFUSALS). Only refusals spend it: the requests' path is as it was.
     */
    private refusalsLeft(nowMs: number): boolean {
        const budget = this.deps.config.refusals
        const spent = take((this.refusals ??= fullBucket(budget, nowMs)), budget, nowMs)
        if (spent.ok) return true
        this.closeWith(tooManyRefusals("this connection went on sending", budget, "reconnect after retry_after_ms, wait retry_after_ms after each 429, and send one JSON request object per line", spent.retryAfterMs))
        return false
    }

    private routeWrite(req: Request): void {
        this.writesInFlight++
        this.route(req, 1)
    }

    /**
     * Takes the requests that may go, in the order they came. A read goes once the writes before it are
     * answered [P§5] (it sees them) and the read before it is answered, and only while the outgoing queue is
     * under congestedBytes(): a read's answer can be large (a replay of 1000 pushes, a feed's every datastream),
     * so a client that pipelines reads gets their answers as fast as it reads them, and the queue holds at
     * most one answer above congestedBytes() instead of all of them (which made a client that read as fast
     * as it could a slow consumer). A write goes as soon as the requests before it are taken, so a subscribe
     * sent before a write is registered before that write commits (it was not when it waited for an earlier
     * write, and the write went ahead). Whatever drains the queue calls this again (drained(), the congestion
     * check of tick()).
     */
    private takeWaiting(): void {
        if (this.taking) return
        this.taking = true
        try {
            const waiting = this.waiting
            while (waiting !== undefined && waiting.length && this.state === "open") {
                const next = waiting[0]
                if (!next.write) {
                    if (this.readInFlight || this.writesInFlight > 0) break
                    // shutting down: the reads taken are answered now, however full the queue
                    if (!this.draining && this.wire.bufferedBytes() > this.congestedBytes()) {
                        this.noteCongestion(this.deps.elapsedMs())
                        break
                    }
                }
                waiting.shift()
                this.waitingChars -= next.chars
                if (next.write) this.routeWrite(next.req)
                else {
                    this.readInFlight = true
                    this.route(next.req, 0)
                }
            }
            if (waiting?.length === 0 && this.waiting === waiting) this.waiting = undefined
            if (this.waitPaused && this.waitingChars <= MAX_WAITING_REQUEST_CHARS / 2) {
                this.waitPaused = false
                this.wire.resume?.()
            }
        } finally {
            this.taking = false
        }
    }

    /** The transport handed what was queued to the operating system: held requests may go on. */
    drained(): void {
        this.takeWaiting()
    }

    /** [P§3] The peer will send nothing more (a half-close: TCP FIN, TLS close_notify): the requests it sent are answered, then the connection closes. */
    peerEnded(): void {
        this.peerDone = true
        this.takeWaiting()
        this.closeIfAnswered()
    }

    private closeIfAnswered(): void {
        if (!this.peerDone || this.inflight > 0 || this.state !== "open") return
        this.state = "closing"
        this.release()
        this.wire.end()
    }

    /** Has the router answer one request (`writeId` > 0: a write); the answer comes to answered(). */
    private route(req: Request, writeId: number): void {
        this.deps.router.answer(this, req, this, writeId)
    }

    /** [AnswerTarget] A request's answer: sent, unless the connection closed meanwhile. Never throws. */
    answered(req: Request, { response, after }: Answer, writeId: number): void {
        try {
            // closed meanwhile: the hub already forgot what this request subscribed
            if (this.state !== "open") return
            // [P§5a] a short-form request is answered in the short form
            if (req.short) response.short = true
            this.send(encodeResponse(response))
            after?.()
            if (this.keyRefusal !== undefined) this.closeWith(this.keyRefusal)
        } catch (err) {
            this.deps.log.error({ err, session: this.id }, "request handling failed")
        } finally {
            this.inflight--
            if (writeId > 0) this.writesInFlight--
            else this.readInFlight = false
            this.takeWaiting()
            this.closeIfAnswered()
        }
    }

    /** Queues one line; a connection whose queue passes maxQueueBytes is a slow consumer and is dropped. */
    send(line: string): void {
        this.sendLines([line])
    }

    sendLines(lines: string[]): void {
        if (this.state !== "open") return
        // the queue was over the bound before this output: a slow consumer. Checked before, not after, so that one
        // answer or one write's pushes always goes out (a replay of 1000 pushes with long ids is over 256 KiB,
        // and dropping its subscriber for it made it reconnect and ask again, forever); the queue holds at
        // most maxQueueBytes plus one such output.
        if (this.wire.bufferedBytes() > this.deps.config.maxQueueBytes) return this.dropSlowConsumer("its outgoing queue passed " + this.deps.config.maxQueueBytes + " bytes")
        this.wire.send(lines)
        this.lastTxMs = this.deps.elapsedMs()
        if (this.wire.bufferedBytes() > this.congestedBytes()) this.noteCongestion(this.lastTxMs)
    }

    /**
     * The queue is over congestedBytes(): congested from now, if it was not. Looked at again within
     * congestionCheckMs, not at the next keep-alive check (20 s apart in the device doors' `field` profile), so
     * that the slow-consumer rule holds to within that, and held reads go on once it drains.
     */
    private noteCongestion(nowMs: number): void {
        if (this.congestedSinceMs !== undefined || this.slot === undefined) return
        this.congestedSinceMs = nowMs
        this.schedule(this.congestionCheckMs()) // replaces the check that was due
    }

    private congestedBytes(): number {
        return Math.min(CONGESTED_QUEUE_BYTES, this.deps.config.maxQueueBytes / 4)
    }

    /** How often a congested connection is looked at: the slow-consumer rule holds to within this. */
    private congestionCheckMs(): number {
        const { heartbeatMs, slowConsumerMs } = this.deps.config
        return Math.max(1, Math.min(heartbeatMs, slowConsumerMs / 10))
    }

    private dropSlowConsumer(why: string): void {
        this.deps.metrics.queueDrops.add()
        this.deps.log.warn({ session: this.id, remote: this.remoteAddress, queued: this.wire.bufferedBytes() }, "dropping a slow consumer")
        this.closeWith(new ApiError(503, "E_SLOW_CONSUMER", `this connection did not read fast enough (${why}); reconnect and subscribe with after (the seq of the last push handled), or since`, RECONNECT_AFTER_MS))
    }

    private schedule(ms: number): void {
        this.deps.keepaliveWheel.schedule(this, Math.max(1, ms))
    }

    /** the keep-alive wheel: this session's check is due */
    onWheel(): void {
        this.tick()
    }

    /** [P§4] keep-alive, auth-deadline and slow-consumer checks; sleeps until the next is due. */
    private tick(): void {
        if (this.state !== "open") return
        const now = this.deps.elapsedMs()
        const { heartbeatMs, timeoutMs, slowConsumerMs, authDeadlineMs } = this.deps.config
        // [P§7] heartbeats alone hold no slot: a key (or token) must be accepted within the deadline
        const authDueInMs = this.authenticatedOnce ? Infinity : this.welcomedMs + authDeadlineMs - now
        if (authDueInMs <= 0) {
            return this.closeWith(
                new ApiError(408, "E_AUTH_TIMEOUT", `no request with a valid key within ${authDeadlineMs} ms of the welcome; send "headers":{"X-ApiKey":"<key>"} with the first request`),
            )
        }
        const queued = this.wire.bufferedBytes()
        const congestedBytes = this.congestedBytes()
        if (queued > congestedBytes) {
            this.congestedSinceMs ??= now
            if (now - this.congestedSinceMs >= slowConsumerMs) return this.dropSlowConsumer(`more than ${congestedBytes} bytes queued for ${slowConsumerMs} ms`)
        } else {
            this.congestedSinceMs = undefined
            this.takeWaiting()
            // a read answered at once may have closed a half-closed connection
            if (this.state !== "open") return
        }
        // the server reports no "degraded": faulty = timeout
        const k = keepaliveStep(now, this.lastRxMs, this.lastTxMs, { heartbeatMs, faultyMs: timeoutMs, timeoutMs })
        if (k.health === "dead") {
            return this.closeWith(new ApiError(408, "E_IDLE_TIMEOUT", `nothing received for ${timeoutMs} ms; send a blank line every ${heartbeatMs} ms`))
        }
        if (k.sendHeartbeat) {
            // a connection with bytes still queued is not idle: the peer will hear from us
            if (queued === 0) this.wire.heartbeat()
            this.lastTxMs = now
        }
        this.schedule(Math.min(authDueInMs, this.congestedSinceMs === undefined ? k.nextCheckInMs : Math.min(k.nextCheckInMs, this.congestionCheckMs())))
    }

    /** [P§6] Sends a connection notice (`"notice":true`, no token), then closes. */
    closeWith(err: ApiError): void {
        if (this.state !== "open") return
        this.wire.send([encodeResponse({ notice: true, ...errorResponse(err) })])
        this.deps.metrics.notices.add({ status: String(err.status), code: err.code })
        this.deps.log.info({ session: this.id, remote: this.remoteAddress, status: err.status, code: err.code }, "closing connection")
        this.state = "closing"
        this.release()
        this.wire.end({ status: err.status, code: err.code })
    }

    /** The transport closed (by either side). */
    closed(): void {
        if (this.state === "closed") return
        this.state = "closed"
        this.release()
    }

    private release(): void {
        this.deps.keepaliveWheel.cancel(this)
        this.admitted?.closed()
        this.deps.hub.connectionClosed(this)
        this.deps.router.connectionClosed(this)
        if (this.deps.sessions.delete(this)) this.deps.metrics.connectionsOpen.add({ transport: this.transport }, -1)
    }
}

/** [P§3] The reason for a WebSocket message that holds several requests (one per message), if it does. */
function severalObjects(text: string): string | undefined {
    const n = objectsIn(text)
    return n > 1 ? `a WebSocket message holds one request, this one holds ${n} JSON objects: send each in a message of its own (none of them was done)` : undefined
}
