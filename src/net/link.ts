// The link: one connection to the server, driven by events (socket open/data/closed) and by tick().
// It never reads the clock or the socket itself: `now`, `random` and the transport are injected, so the
// whole state machine runs in tests with a fake transport and a hand-moved clock.
//
// States (ONE field, changed only by `to()`, every change logged "link: a -> b (reason)" and counted):
//   offline    no network (Wi-Fi has no IP) or not started; polls for the network, no backoff growth
//   connecting TCP/TLS connect under way
//   greeting   socket open, waiting for the welcome line [P§2]
//   up         welcome received, traffic flowing: samples go out, pushes come in
//   degraded   up, but silent longer than `faulty` [P§4]; still sending; back to up on the next byte
//   down       connection lost; waiting a backoff delay before connecting again
import { attemptAfterDrop, backoffDelayMs, resubscribeAfterMs, retryAfterRefusalMs } from "../backoff"
import { KeepaliveContract, KeepaliveBounds, defaultKeepalive, keepaliveFromWelcome, keepaliveStep } from "../keepalive"
import { MAX_VALUE_CHARS, Response, Welcome, decodeServerLine, encodeShortRequest, isDatastreamId, isNotice, valueText } from "../protocol"
import { RequestTable } from "../requests"
import { LinkConfig } from "./config"
import { LineFramer } from "./framer"
import { Outbox, Policy, encodeBatch } from "./outbox"
import { NEVER, PushHandler, Subscriptions } from "./subscriptions"

export { PushHandler } from "./subscriptions"

export type LinkState = "offline" | "connecting" | "greeting" | "up" | "degraded" | "down"

/**
 * The socket as the link sees it. Outcomes of open() arrive later as link.onOpen() / link.onData() /
 * link.onClosed(); events of a connection the link has closed must not be delivered.
 */
export interface Transport {
    /** Starts a connection. Returns "" when under way, else an error code: E_NO_NETWORK (wait for Wi-Fi), E_OPEN. */
    open(): string
    /** Queues bytes; failures surface later as onClosed(). */
    send(text: string): void
    /** Abandons the connection and wakes its reader; no onClosed() follows. */
    close(): void
}

export interface LinkDeps {
    transport: Transport
    /** device clock, ms (ds.millis()) */
    now(): number
    /** uniform in [0, 1) */
    random(): number
    /**
     * Last resort after rebootMin without a successful exchange (time without Wi-Fi does not count);
     * `reboots` is the new counter value. The outbox is saved first (docs/FIRMWARE.md "Reboots").
     */
    reboot(reboots: number): void
    /** the link worked again after reboots: the counter can go back to 0 */
    healthy(): void
    /** setting writes since boot, reported as `_flash_writes` */
    flashWrites(): number
    /** runs `fn` soon, after the current run of the caller (setTimeout 0); tests may run it at once */
    defer(fn: () => void): void
    log(msg: string): void
}

export interface LinkStats {
    state: LinkState
    /** connection attempts after the first */
    reconnects: number
    lastDisconnect: string
    /** round-trip time of the last acknowledged batch */
    rttMs: number
    outbox: number
    outboxBytes: number
    /** samples dropped because the outbox was full */
    drops: number
    /** samples the server refused (4xx other than auth; never retried), and subscriptions it refused or ended */
    rejected: number
    uptimeS: number
    reboots: number
    transitions: number
    badLines: number
    overlongLines: number
    unknownTokens: number
    handlerErrors: number
    /** pushes under a subscription's token naming another resource (not handled) */
    foreignPushes: number
}

/** Tick period the runner uses; heartbeats and deadlines are this precise. */
export const TICK_MS = 100
/**
 * Bounds on a welcome's keep-alive values, all applied by keepaliveFromWelcome: the link ticks every
 * TICK_MS, so shorter thresholds cannot be kept, and a typo on the server (`timeout: 3`) must not make every
 * device reconnect in a loop. `timeout` is also every request's answer deadline: a longer one than 5 min
 * (5x the field profile's 60 s; a typo such as 60000000, or 1e400, which reads as Infinity) would leave a
 * dead link and an unanswered batch unnoticed until the last-resort reboot (REBOOT_MIN, 15 min); the
 * heartbeat is kept to half the timeout, or the server would close the device as silent.
 */
const KEEPALIVE_BOUNDS: KeepaliveBounds = { heartbeatMs: TICK_MS, timeoutMs: 1000, maxTimeoutMs: 300000 }
/**
 * Ceiling on a server's retry hint (`retry_after_ms`): its longest real one is a claim's 5 min; a longer
 * one (1e400 reads as Infinity) would outlast the last-resort reboot (15 min), or with REBOOT_MIN 0 never end.
 */
const MAX_RETRY_AFTER_MS = 600000
/** A welcome's `time` is ms since the epoch between these (2001-09 and 2286-11): not seconds, not µs. */
const MIN_SERVER_TIME_MS = 1e12
const MAX_SERVER_TIME_MS = 1e13
/** While offline, look for the network this often (no backoff: nothing is being hammered). */
const OFFLINE_POLL_MS = 1000
/** After a 401/403 on a batch, wait this long before trying again (someone has to fix the key). */
const AUTH_RETRY_MS = 30000
/** A batch holds at most this many samples (the byte limit usually binds first). */
const MAX_BATCH_SAMPLES = 64
/**
 * A batch line is at most this long, half of DEVICE_MAX_SEND_BYTES: encoding costs ~40 VM opcodes per
 * character and the VM panics (InfiniteLoop) after ~128K opcodes without yielding (platform notes §3).
 */
export const BATCH_MAX_BYTES = 1024
/**
 * A connection is renewed after this long (when nothing is in flight) to take the server's time again:
 * the device clock drifts (~20 ppm: ~0.4 s in 6 h) and sample timestamps are server time + device offset.
 */
const CLOCK_REFRESH_MS = 6 * 3600 * 1000
/** Reboot waits stretch ×2 per earlier reboot, up to ×16 (15 min → 4 h with the default). */
const MAX_REBOOT_STRETCH = 16

/** @devsWhenUsed: a method the image never calls, such as onState() (tests), is not compiled into it (docs/FIRMWARE.md "Program size") */
export class Link {
    state: LinkState = "offline"
    private stateSinceMs: number
    private keepalive: KeepaliveContract = defaultKeepalive()
    private lastRxMs = 0
    private lastTxMs = 0
    private upSinceMs = 0
    /** server time − device time, known after the first welcome */
    private offsetMs: number
    private attempt = 0
    private nextAttemptMs = 0
    /** a retry hint from the server (notice or 429/503), applied to the next wait */
    private retryAfterMs = 0
    /** no batch leaves before this (server asked us to wait) */
    private holdUntilMs = 0
    private lastSuccessMs: number
    private lastTickMs: number
    /** the last open found no Wi-Fi */
    private noNetwork = false
    private nextDiagMs = 0
    /** the `_state` last queued for the server: "up" or "degraded" */
    private reportedState: LinkState = "up"
    private authed = false
    private flushQueued = false
    private batchSeq = 0
    /** the batch in flight (one at a time: acks stay simple and ordered), 0 when none */
    private batchInFlight = 0
    private feedResource: string
    private listeners: ((state: LinkState, reason: string) => void)[] = []
    /** state listeners that threw */
    private listenerErrors = 0
    private subs: Subscriptions
    readonly outbox: Outbox
    private requests = new RequestTable()
    private framer: LineFramer
    private s: LinkStats
    /** [fleet] the claim request (src/net/claim.ts) while the board has no key: sent after every welcome; no batch leaves meanwhile */
    private claimLine: (token: string) => string
    private claimAnswer: (r: Response) => void

    constructor(private cfg: LinkConfig, private deps: LinkDeps) {
        const now = deps.now()
        this.stateSinceMs = now
        this.lastSuccessMs = now
        this.lastTickMs = now
        this.nextDiagMs = now + cfg.diagMs
        this.feedResource = "/feeds/" + cfg.feedId
        this.outbox = new Outbox(cfg.outboxBytes)
        const self = this
        // a method read off its object comes bound in DeviceScript: no arrow function needed to keep `this`
        this.framer = new LineFramer(this.onLine)
        this.subs = new Subscriptions(
            deps.log,
            this.sendSubscribe,
            (i, r) => self.subscriptionOver(i, r, "ended")
        )
        // the counters the link keeps here; stats() fills in the rest (state, outbox, drops, uptimeS, …) on every call
        this.s = {
            reconnects: 0,
            lastDisconnect: "",
            rttMs: 0,
            rejected: 0,
            reboots: cfg.reboots,
            transitions: 0,
            badLines: 0,
            unknownTokens: 0,
        } as LinkStats
    }

    // ---- API used by the application (see index.ts) ----

    /**
     * Queues one sample, stamped with the server clock (or as soon as it is known).
     * Returns false, logs and counts it in `rejected` when the stream id or value is not acceptable [P§10].
     */
    report(streamId: string, value: string | number | boolean, policy?: Policy): boolean {
        const ok = this.enqueue(streamId, value, policy)
        if (ok && !this.flushQueued) {
            // send once the caller's run is over, so samples reported together leave in one batch
            this.flushQueued = true
            const self = this
            this.deps.defer(() => {
                self.flushQueued = false
                self.flush()
            })
        }
        return ok
    }

    /**
     * Calls `handler` for every change of `resource` (absolute, or relative to this feed: "datastreams/led").
     * Subscribed again after every reconnect with since = the last `at` seen, so nothing sent while
     * offline is missed and nothing arrives twice.
     */
    subscribe(resource: string, handler: PushHandler, sinceAt?: string) {
        const r = resource.charCodeAt(0) === 47 ? resource : this.feedResource + "/" + resource
        const i = this.subs.add(r, handler, sinceAt)
        if (this.isUp()) this.sendSubscribe(i)
    }

    onState(listener: (state: LinkState, reason: string) => void) {
        this.listeners.push(listener)
    }

    stats(): LinkStats {
        const s = this.s
        s.state = this.state
        s.outbox = this.outbox.depth()
        s.outboxBytes = this.outbox.bytes
        s.drops = this.outbox.drops
        s.overlongLines = this.framer.overlong
        s.handlerErrors = this.listenerErrors + this.subs.handlerErrors
        s.foreignPushes = this.subs.foreignPushes
        s.uptimeS = Math.floor(this.deps.now() / 1000)
        return s
    }

    /**
     * [fleet] A board without a key (src/net/claim.ts): `line(token)` is sent after every welcome until
     * `answer` has called useKey(); batches wait for the key. The answer's deadline is the batches'.
     */
    claim(line: (token: string) => string, answer: (r: Response) => void) {
        this.claimLine = line
        this.claimAnswer = answer
        // startLink() reads the claim's settings after link.start(): the welcome may already be in
        if (this.isUp()) this.sendClaim(this.deps.now())
    }

    private sendClaim(now: number) {
        const token = this.requests.nextToken()
        this.requests.add(token, "claim", 0, now, this.keepalive.timeoutMs)
        this.send(this.claimLine(token))
    }

    /** [fleet] The claimed feed and key: batches go there from now on, authenticated on their first request. */
    useKey(feedId: number, apiKey: string) {
        this.claimLine = undefined
        this.cfg.feedId = feedId
        this.cfg.apiKey = apiKey
        this.feedResource = "/feeds/" + feedId
        this.flush()
    }

    /** Leaves the connection and connects again after the backoff delay, or `afterMs` when longer. */
    reconnect(reason: string, afterMs: number) {
        this.retryAfterMs = capRetry(afterMs)
        this.drop(reason)
    }

    /** Leaves `offline`: the first connection attempt happens on the next tick. */
    start() {
        this.nextAttemptMs = this.deps.now()
    }

    // ---- events from the transport ----

    onOpen() {
        if (this.state !== "connecting") return
        this.lastTxMs = this.deps.now()
        this.framer.reset()
        this.to("greeting", "socket open")
    }

    onData(chunk: Buffer) {
        // one test a line: DeviceScript keeps every || and && result in a variable (docs/FIRMWARE.md "Program size")
        const st = this.state
        if (st === "offline") return
        if (st === "down") return
        if (st === "connecting") return
        this.lastRxMs = this.deps.now() // any byte proves the peer alive [P§4]
        if (this.state === "degraded") this.to("up", "traffic resumed")
        this.framer.push(chunk)
    }

    onClosed(reason: string) {
        // an open the socket issued later (after the previous connection was gone) can still find no Wi-Fi
        if (this.state === "connecting" && reason === "E_NO_NETWORK") {
            this.noNetwork = true
            this.openFailed(reason, this.deps.now())
        }
        else this.drop(reason || "E_CLOSED")
    }

    // ---- the periodic driver ----

    tick() {
        const now = this.deps.now()
        const st = this.state
        if (st === "offline" || st === "down") {
            if (this.nextAttemptMs > 0 && now >= this.nextAttemptMs) this.connect(now)
        } else if (st === "connecting") {
            if (now - this.stateSinceMs >= this.cfg.connectTimeoutMs) this.drop("E_CONNECT_TIMEOUT")
        } else if (st === "greeting") {
            // [P§2] counted from the open, not from the last byte: a server that sends heartbeats or a line
            // without end, but no welcome, must not hold the device here
            if (now - this.stateSinceMs >= this.keepalive.timeoutMs) this.drop("E_NO_WELCOME")
        } else {
            const next = this.requests.msToNextDeadline(now)
            const late = next === 0
            const owesNothing = next === undefined // no request in flight
            const k = keepaliveStep(now, this.lastRxMs, this.lastTxMs, this.keepalive)
            // silence is the root cause when both are due (a batch sent while degraded went unanswered)
            if (k.health === "dead") this.drop("E_SILENT")
            else if (late) this.drop("E_ACK_TIMEOUT")
            else if (now - this.upSinceMs >= CLOCK_REFRESH_MS && owesNothing) this.drop("E_CLOCK_REFRESH")
            else {
                if (k.health === "degraded" && st === "up") this.to("degraded", "silent " + (now - this.lastRxMs) + " ms")
                // an idle link that hears the server and owes nothing is working: no reason to reboot
                if (k.health === "ok" && owesNothing) this.lastSuccessMs = now
                if (now >= this.nextDiagMs) this.reportDiagnostics(now)
                const renew = this.subs.due(now)
                if (renew >= 0) this.sendSubscribe(renew)
                const txBeforeMs = this.lastTxMs
                this.flush()
                // a batch that just went out is as good as a heartbeat on a metered link
                if (k.sendHeartbeat && this.lastTxMs === txBeforeMs) this.send("")
            }
        }
        // a reboot cannot bring Wi-Fi back (the runtime retries the network by itself): no count while offline
        if (this.noNetwork) this.lastSuccessMs += now - this.lastTickMs
        this.lastTickMs = now
        this.checkLastResort(now)
    }

    // ---- internals ----

    private enqueue(streamId: string, value: string | number | boolean, policy: Policy): boolean {
        const text = valueText(value)
        if (!isDatastreamId(streamId) || text === undefined) {
            this.s.rejected++
            this.deps.log(`link: E_BAD_SAMPLE ${streamId}=${value}: ids are 1-64 of A-Za-z0-9_.-, values at most ${MAX_VALUE_CHARS} characters`)
            return false
        }
        this.outbox.add(streamId, text, policy || "every", this.deps.now(), this.offsetMs)
        return true
    }

    private isUp() {
        return this.state === "up" || this.state === "degraded"
    }

    private to(state: LinkState, reason: string) {
        const old = this.state
        this.state = state
        this.stateSinceMs = this.deps.now()
        this.s.transitions++
        this.deps.log(`link: ${old} -> ${state} (${reason})`)
        if ((state === "up" || state === "degraded") && state !== this.reportedState) this.reportState(state)
        for (let i = 0; i < this.listeners.length; ++i) {
            try {
                this.listeners[i](state, reason)
            } catch (e) {
                this.listenerErrors++
            }
        }
    }

    private connect(now: number) {
        if (this.state === "down") this.s.reconnects++
        const err = this.deps.transport.open()
        this.noNetwork = err === "E_NO_NETWORK"
        if (err === "") this.to("connecting", `attempt ${this.attempt + 1} to ${this.cfg.host}:${this.cfg.port}`)
        else this.openFailed(err, now)
    }

    private openFailed(err: string, now: number) {
        if (err === "E_NO_NETWORK") {
            // waiting for Wi-Fi is not a failure of the server: poll, do not grow the backoff
            this.nextAttemptMs = now + OFFLINE_POLL_MS
            if (this.state !== "offline") this.to("offline", err)
        } else this.backOff(err, 0)
    }

    /** Ends the current connection (if any) and schedules the next attempt after a backoff delay. */
    private drop(reason: string) {
        const st = this.state
        if (st === "offline") return
        if (st === "down") return
        const upForMs = st === "up" || st === "degraded" ? this.deps.now() - this.upSinceMs : 0
        this.deps.transport.close()
        this.requests.clear()
        if (this.batchInFlight) this.outbox.release(this.batchInFlight)
        this.batchInFlight = 0
        this.authed = false
        this.backOff(reason, upForMs)
    }

    private backOff(reason: string, upForMs: number) {
        const now = this.deps.now()
        this.attempt = attemptAfterDrop(this.cfg.backoff, this.attempt, upForMs)
        // a batch refusal's wait (429/503 retry_after_ms, 30 s after a 401/403) outlives the connection: a
        // server that closes after refusing (the auth deadline) must not get the request again sooner
        const holdMs = this.holdUntilMs - now
        const delayMs = backoffDelayMs(this.cfg.backoff, this.attempt, this.deps.random(), holdMs > this.retryAfterMs ? holdMs : this.retryAfterMs)
        this.attempt++
        this.retryAfterMs = 0
        this.holdUntilMs = 0
        this.nextAttemptMs = now + delayMs
        this.s.lastDisconnect = reason
        this.to("down", `${reason}; retry in ${delayMs} ms`)
    }

    private onLine(line: string) {
        const d = decodeServerLine(line)
        if (d.kind === "heartbeat") return
        if (d.kind === "welcome") this.onWelcome(d.welcome)
        else if (d.kind === "response") this.onResponse(d.response)
        else this.s.badLines++
    }

    private onWelcome(w: Welcome) {
        // a second welcome on one connection, or a clock that is no ms since the epoch (seconds, 0, 1e400):
        // ignored, and E_NO_WELCOME follows; samples stamped with it would be stored at a wrong time or refused
        if (this.state !== "greeting" || !(w.time > MIN_SERVER_TIME_MS && w.time < MAX_SERVER_TIME_MS)) {
            this.s.badLines++
            return
        }
        const now = this.deps.now()
        this.keepalive = keepaliveFromWelcome(w, KEEPALIVE_BOUNDS)
        this.offsetMs = w.time - now
        this.outbox.stampAll(this.offsetMs)
        this.upSinceMs = now
        this.succeeded(now)
        this.to("up", `welcome, session ${w.session}`)
        if (this.claimLine) this.sendClaim(now)
        for (let i = 0; i < this.subs.count(); ++i) if (this.subs.wanted(i)) this.sendSubscribe(i)
        this.flush()
    }

    private onResponse(r: Response) {
        if (isNotice(r)) return this.onNotice(r)
        if (r.token === undefined) {
            this.s.unknownTokens++ // a reply to a request without token: the link never sends one
            return
        }
        // [P§8] a push (it names what changed) that comes before its subscribe's answer is a push, not the answer
        if (r.status === 200) {
            if (this.subs.deliver(r)) return
        }
        const p = this.requests.take(r.token)
        if (p) {
            const now = this.deps.now()
            if (p.kind === "batch") this.onBatchAck(r, p.ref, now - p.sentMs)
            else if (p.kind === "claim") this.claimAnswer(r)
            else if (r.status >= 300) this.subscriptionOver(p.ref, r, "refused")
            else {
                this.authed = true
                // [P§8] a cut replay: its pushes follow (within `timeout`); once handled, the rest is asked for
                this.subs.acknowledged(p.ref, r.body, now + this.keepalive.timeoutMs)
            }
            return
        }
        if (this.subs.deliver(r)) return
        this.s.unknownTokens++ // late, duplicate or foreign: nothing waits for it
    }

    private onBatchAck(r: Response, batchId: number, rttMs: number) {
        if (batchId !== this.batchInFlight) return
        this.batchInFlight = 0
        const now = this.deps.now()
        const st = r.status
        if (st >= 200 && st < 300) {
            this.outbox.ack(batchId)
            this.s.rttMs = rttMs
            this.authed = true
            this.succeeded(now)
        } else if (st < 400 || st >= 500 || st === 401 || st === 403 || st === 429 || st === 408) {
            // not stored, or a status no server of the protocol sends (0, 1xx, 3xx): keep the samples, try later
            this.outbox.release(batchId)
            // 429/5xx: spread like a refused subscribe, or a fleet refused together would resend together
            const waitMs = st === 401 || st === 403 ? AUTH_RETRY_MS : retryAfterRefusalMs(retryHintMs(r), this.deps.random())
            this.holdUntilMs = now + waitMs
            this.deps.log(`link: batch ${st} ${codeOf(r)}; retry in ${waitMs} ms`)
        } else {
            // 400/404/413/422: resending cannot help, and it would block everything queued behind it
            this.s.rejected += this.outbox.ack(batchId)
            this.deps.log(`link: batch refused ${st} ${codeOf(r)}; samples dropped`)
        }
        this.flush()
    }

    /** [P§6] A connection notice: the server is about to close; honour its retry hint. */
    private onNotice(r: Response) {
        const hint = retryHintMs(r)
        if (hint > 0) this.retryAfterMs = hint
        this.drop("E_NOTICE_" + r.status)
    }

    /**
     * [P§8] Subscription `i` was refused, or ended by the server with a final push. What follows depends on
     * why: 404 (E_FEED_DELETED: a feed's id is never given out again) is for good, not even after a
     * reconnect; 401/403 (E_FORBIDDEN: the key was revoked or no longer covers the feed) is asked for again
     * every AUTH_RETRY_MS, as a refused batch is, from the last `at` handled, so nothing written meanwhile
     * is missed once the key is fixed; 408, 429 and 5xx on this connection when resubscribeAfterMs
     * (src/backoff.ts, shared with the client library) says (waiting for the next connection, the device
     * heard none of its commands for as long as the connection lasted: hours); anything else (a 4xx for the
     * request itself) on the next connection.
     */
    private subscriptionOver(i: number, r: Response, how: string) {
        const st = r.status
        this.s.rejected++
        let next = "on the next connection"
        const waitMs = resubscribeAfterMs(st, retryHintMs(r), this.deps.random())
        if (waitMs === 0) {
            next = "now"
            this.sendSubscribe(i)
        } else if (waitMs > 0) {
            next = "in " + waitMs + " ms"
            this.subs.renewAt(i, this.deps.now() + waitMs)
        } else if (st === 404 || st === 401 || st === 403) {
            next = st === 404 ? "never" : "in 30 s"
            this.subs.renewAt(i, st === 404 ? NEVER : this.deps.now() + AUTH_RETRY_MS)
        }
        this.deps.log(`link: subscription ${this.subs.resource(i)} ${how}: ${st} ${codeOf(r)}; renewed ${next}`)
    }

    /** `stale`: the token of a live subscription of `i` to end first (its history was reset: the new one replays what it missed) */
    private sendSubscribe(i: number, stale?: string) {
        if (stale !== undefined) this.send(encodeShortRequest({ method: "unsubscribe", params: { token: stale }, token: stale }))
        const token = this.requests.nextToken()
        this.requests.add(token, "subscribe", i, this.deps.now(), this.keepalive.timeoutMs)
        this.send(this.subs.request(i, token, this.authHeaders(), Math.round(this.deps.now() + this.offsetMs)))
    }

    /** Sends the next batch when none is in flight. */
    private flush() {
        if (!this.isUp()) return
        if (this.batchInFlight !== 0) return
        if (this.claimLine) return
        const now = this.deps.now()
        if (now < this.holdUntilMs) return
        let max = MAX_BATCH_SAMPLES
        for (;;) {
            const id = ++this.batchSeq
            const samples = this.outbox.takeBatch(id, max, BATCH_MAX_BYTES)
            if (samples.length === 0) return
            const token = this.requests.nextToken()
            const line = encodeBatch(this.feedResource, samples, token, this.authHeaders())
            if (line.length + 1 > BATCH_MAX_BYTES && samples.length > 1) {
                // the size estimate missed (heavy escaping): never send it, split it
                this.outbox.release(id)
                max = samples.length >> 1
                continue
            }
            this.batchInFlight = id
            this.requests.add(token, "batch", id, now, this.keepalive.timeoutMs)
            this.send(line)
            return
        }
    }

    /** [P§7] auth once per connection: requests carry the key until one has been acknowledged */
    private authHeaders(): any {
        return this.authed ? undefined : { "X-ApiKey": this.cfg.apiKey }
    }

    private send(text: string) {
        this.lastTxMs = this.deps.now()
        this.deps.transport.send(text + "\n")
    }

    private succeeded(now: number) {
        this.lastSuccessMs = now
        if (this.s.reboots > 0) {
            this.s.reboots = 0
            this.deps.healthy()
        }
    }

    private checkLastResort(now: number) {
        const stretch = Math.min(Math.pow(2, this.s.reboots), MAX_REBOOT_STRETCH)
        const limitMs = this.cfg.rebootMin * 60000 * stretch
        if (limitMs > 0 && now - this.lastSuccessMs >= limitMs) {
            this.deps.log(`link: no successful exchange for ${Math.round((now - this.lastSuccessMs) / 1000)} s; rebooting`)
            this.lastSuccessMs = now // in case reboot() returns (tests, simulator)
            this.deps.reboot(this.s.reboots + 1)
        }
    }

    private reportDiagnostics(now: number) {
        this.nextDiagMs = now + this.cfg.diagMs
        const s = this.stats()
        this.enqueue("_reconnects", s.reconnects, "latest")
        this.enqueue("_disconnect", s.lastDisconnect.slice(0, MAX_VALUE_CHARS) || "none", "latest")
        this.enqueue("_rtt_ms", s.rttMs, "latest")
        this.enqueue("_outbox", s.outbox, "latest")
        this.enqueue("_drops", s.drops, "latest")
        this.enqueue("_uptime_s", s.uptimeS, "latest")
        this.enqueue("_reboots", s.reboots, "latest")
        this.enqueue("_boots", this.cfg.boots, "latest")
        this.enqueue("_flash_writes", this.deps.flashWrites(), "latest")
        this.reportState(this.state)
    }

    /**
     * The `_state` diagnostic, so the dashboard can tell a degraded link: on a change of what the server
     * was last told (a healthy reconnect sends nothing) and with the periodic diagnostics (after a boot).
     * One "latest" sample: it rides with the next batch, and a flapping link replaces its waiting sample.
     */
    private reportState(state: LinkState) {
        this.reportedState = state
        this.enqueue("_state", state, "latest")
    }
}

/** [P§6] A response's `retry_after_ms` (0 when none), at most MAX_RETRY_AFTER_MS. */
function retryHintMs(r: Response): number {
    return r.body && typeof r.body["retry_after_ms"] === "number" ? capRetry(r.body["retry_after_ms"]) : 0
}

function capRetry(ms: number): number {
    return ms < MAX_RETRY_AFTER_MS ? ms : MAX_RETRY_AFTER_MS
}

function codeOf(r: Response): string {
    return r.body && typeof r.body["code"] === "string" ? r.body["code"] : ""
}
