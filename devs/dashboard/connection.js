// The page's protocol-v1 client over the app port's WebSocket [P§1]: welcome, heartbeats and liveness
// [P§4], requests matched by token [P§6], subscriptions that are renewed with `after` (the `seq` of the
// last push handled; first from the newest `at` shown, with `since`) after every reconnect [P§8], so points a
// device sent late, with an older `at`, are not missed. Envelopes are made and read by the shared codec (src/protocol.ts, served as
// /protocol.js). The credential ("Bearer <jwt>") rides on every request: the server verifies the token
// each time, and a renewed token takes effect at once.
// The decisions are the client core's, the ones the firmware and the CLI use (served compiled from src/):
// the keep-alive (/keepalive.js), the request table (/requests.js), the subscription cursor
// (/subscription-cursor.js: seq, since, repeats, a cut replay followed) and the backoff (/backoff.js).
// Resumed by `since` (before its first replay is handled), a feed is resumed one ms before the last `at` shown,
// dropping what was shown at it (/stamp-overlap.js): the datastreams of one write share one `at`.
import { decodeServerLine, encodeRequest, isNotice, namesAChange, pushIsFor } from "./protocol.js"
import { defaultKeepalive, keepaliveFromWelcome, keepaliveStep } from "./keepalive.js"
import { RequestTable } from "./requests.js"
import { SubscriptionCursor } from "./subscription-cursor.js"
import { StampOverlap } from "./stamp-overlap.js"
import { backoffDelayMs, CLIENT_BACKOFF, resubscribeAfterMs } from "./backoff.js"

/** a request without an answer after this long fails (the link may be dead) */
const REQUEST_TIMEOUT_MS = 10000

export class PageConnection extends EventTarget {
    /** @param {() => string | undefined} credential the X-ApiKey value for each request */
    constructor(url, credential) {
        super()
        this.url = url
        this.credential = credential
        /** connecting | online | degraded | offline */
        this.state = "offline"
        this.welcome = undefined
        /** requests in flight, subscribes included (ref: { resolve, reject } or the subscription) */
        this.requests = new RequestTable("p")
        /**
         * resource -> { token, cursor, overlap, onPush, asked }; a subscription keeps its token, so subscribing again replaces
         * it [P§8] (save after its server's seqs went back: rewound()); `asked` counts its subscribes
         */
        this.subs = new Map()
        /** failed attempts since the last welcome */
        this.attempt = 0
        /** a notice's retry_after_ms: the next reconnect waits at least this long */
        this.retryAfterMs = undefined
        /** pushes under a subscription's token naming another resource (E_FOREIGN_PUSH): not handled; the first logged */
        this.foreignPushes = 0
        this.stopped = true
    }

    start() {
        this.stopped = false
        this.connect()
    }

    stop() {
        this.stopped = true
        clearTimeout(this.retryTimer)
        if (this.ws) this.ws.close()
    }

    connect() {
        this.welcome = undefined
        this.setState("connecting")
        const ws = new WebSocket(this.url)
        this.ws = ws
        // keep-alive and request deadlines on the monotonic clock, as the server and the client library time
        // theirs: a step of the wall clock (a laptop waking, an NTP correction) must not drop the link or time out requests
        this.lastRx = this.lastTx = performance.now()
        this.contract = defaultKeepalive()
        ws.onmessage = (ev) => {
            if (ws !== this.ws) return
            for (const line of String(ev.data).split("\n")) this.onLine(line)
        }
        ws.onclose = () => {
            if (ws !== this.ws) return // a connection we already replaced
            this.ws = undefined
            clearTimeout(this.keepalive)
            clearTimeout(this.deadlineTimer)
            for (const p of this.requests.clear()) if (p.kind !== "subscribe") p.ref.reject(new Error("connection lost"))
            this.setState("offline")
            if (this.stopped) return
            const delayMs = backoffDelayMs(CLIENT_BACKOFF, this.attempt++, Math.random(), this.retryAfterMs || 0)
            this.retryAfterMs = undefined
            this.retryTimer = setTimeout(() => this.connect(), delayMs)
        }
        this.tick()
    }

    /** [P§4] blank line after `heartbeat` quiet; degraded after `faulty` silent; dead after `timeout`. */
    tick() {
        const step = keepaliveStep(performance.now(), this.lastRx, this.lastTx, this.contract)
        if (step.health === "dead") return this.ws && this.ws.close()
        if (this.welcome) {
            this.setState(step.health === "ok" ? "online" : "degraded")
            if (step.sendHeartbeat) this.write("\n")
        }
        this.keepalive = setTimeout(() => this.tick(), step.nextCheckInMs)
    }

    write(text) {
        if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false
        this.lastTx = performance.now()
        this.ws.send(text)
        return true
    }

    onLine(line) {
        this.lastRx = performance.now()
        const d = decodeServerLine(line)
        if (d.kind === "welcome") {
            this.welcome = d.welcome
            this.contract = keepaliveFromWelcome(d.welcome)
            this.attempt = 0
            this.setState("online")
            this.dispatchEvent(new CustomEvent("welcome", { detail: d.welcome }))
            for (const [resource, s] of this.subs) {
                s.cursor.anchor(d.welcome.time)
                this.sendSubscribe(resource, s)
            }
            return
        }
        if (d.kind !== "response") return
        const r = d.response
        if (isNotice(r)) {
            // a connection notice [P§6]: the server closes next; honour retry_after_ms
            this.retryAfterMs = (r.body && r.body.retry_after_ms) || undefined
            this.dispatchEvent(new CustomEvent("notice", { detail: r }))
            return
        }
        const sub = [...this.subs].find(([, s]) => s.token === r.token)
        if (!sub) {
            const p = this.requests.take(r.token)
            if (!p) return // late or foreign
            this.armDeadline()
            if (r.status === 401) this.dispatchEvent(new CustomEvent("unauthorized", { detail: r }))
            return p.ref.resolve(r)
        }
        const [resource, s] = sub
        // [P§8] routed by token and resource, as the firmware and the CLI route (pushIsFor): a push naming another feed
        // (a server that mixed up its subscriptions) is not this one's: not shown, no cursor moved, nothing ended
        if (!pushIsFor(resource, r.resource)) {
            if (this.foreignPushes++ === 0) console.warn(`E_FOREIGN_PUSH: ${r.resource} under the subscription to ${resource}; ignored`)
            return
        }
        // a subscription's acknowledgement and its pushes share its token: a datapoint is a push
        const isDatapoint = r.status === 200 && namesAChange(r.body)
        const ack = isDatapoint ? undefined : this.requests.take(r.token)
        if (r.status === 401 || r.status === 403) this.dispatchEvent(new CustomEvent("unauthorized", { detail: r }))
        else if (r.status === 408) this.sendSubscribe(resource, s) // it ended by timeout: renew
        else if (ack && r.status >= 300) {
            // [P§8] refused, so not live: "not now" (429, 5xx) is asked again on this connection when a board would
            // (/backoff.js); it was taken for an acknowledgement, and the page heard nothing until its next reconnect
            const hint = r.body && typeof r.body.retry_after_ms === "number" ? r.body.retry_after_ms : 0
            const waitMs = resubscribeAfterMs(r.status, hint, Math.random())
            const ws = this.ws
            if (waitMs >= 0) setTimeout(() => ws === this.ws && this.welcome && this.subs.get(resource) === s && this.sendSubscribe(resource, s), waitMs)
        } else if (ack) {
            // [P§8] a cut replay is not live: its pushes follow, then the rest is asked for from next_since
            const outcome = s.cursor.acknowledged(r.body)
            this.rewound(resource, s)
            if (outcome === "resubscribe") this.sendSubscribe(resource, s, true)
            else if (outcome === "replaying") this.awaitReplay(resource, s)
        } else {
            const step = s.cursor.push(r.status, r.body)
            if (step.deliver && s.overlap.fresh(r.body)) s.onPush(r)
            if (!step.caughtUp) return
            // a cut replay handled: the rest from next_since; or the push said the server's seqs went back
            this.rewound(resource, s)
            this.sendSubscribe(resource, s, true)
        }
    }

    /**
     * [P§8] The cursor says the server's seqs went back (a reset, restored or moved history), as an answer or a push
     * said: the subscription that said so is ended and the next subscribe goes under another token. Live, its changes
     * came twice; under the same token the server took the next subscribe for that subscription made again, and its
     * pushes still on the wire for the new one's. Told to the page as a "rewound" event.
     */
    rewound(resource, s) {
        const c = s.cursor
        if (c.rewoundFrom === undefined) return
        console.warn(`${resource}: the server's seq ${c.seq} is below ${c.rewoundFrom}, the last shown (its history was reset, restored or moved); asking for what it got since`)
        const detail = { resource, fromSeq: c.rewoundFrom, seq: c.seq, since: c.lastAt }
        c.rewoundFrom = undefined
        this.request("unsubscribe", undefined, { params: { token: s.token } }).catch(() => {})
        s.token = this.requests.nextToken()
        this.dispatchEvent(new CustomEvent("rewound", { detail }))
    }

    /**
     * [P§8] A cut replay's pushes follow its answer at once: those not in within `timeout` are not coming (lines the
     * page could not read, such as `\uFFFE`): skipped, and the rest asked for past them (SubscriptionCursor.overdue),
     * not the same unreadable point again and again.
     */
    awaitReplay(resource, s) {
        const ws = this.ws
        const asked = s.asked
        setTimeout(() => {
            if (ws !== this.ws || s.asked !== asked || this.subs.get(resource) !== s) return
            const skipped = s.cursor.overdue()
            if (skipped > 0) console.warn(`${resource}: ${skipped} points of a cut replay could not be read; going on past them`)
            this.sendSubscribe(resource, s, true)
        }, this.contract.timeoutMs)
    }

    /** One timer, at the request table's next deadline: a request overdue fails (an unanswered subscribe is sent again on the next welcome). */
    armDeadline() {
        clearTimeout(this.deadlineTimer)
        const waitMs = this.requests.msToNextDeadline(performance.now())
        if (waitMs === undefined) return
        this.deadlineTimer = setTimeout(() => {
            for (const late of this.requests.takeOverdue(performance.now())) if (late.kind !== "subscribe") late.ref.reject(new Error(`no answer to ${late.ref.what} within ${REQUEST_TIMEOUT_MS / 1000} s`))
            this.armDeadline()
        }, waitMs)
    }

    /** Sends a request; resolves with the response (any status), rejects when the link is down. */
    request(method, resource, o = {}) {
        const token = this.requests.nextToken()
        const req = { method, resource, params: o.params, body: o.body, token }
        const cred = this.credential()
        if (cred) req.headers = { "X-ApiKey": cred }
        return new Promise((resolve, reject) => {
            if (!this.welcome || !this.write(encodeRequest(req))) return reject(new Error("not connected"))
            this.requests.add(token, method, { resolve, reject, what: `${method} ${resource}` }, performance.now(), REQUEST_TIMEOUT_MS)
            this.armDeadline()
        })
    }

    /**
     * Keeps `resource` subscribed across reconnects, replaying after `sinceAt` (the newest `at` already shown)
     * at first; then its cursor follows the pushes' `seq`, so a reconnect replays what was missed and nothing twice.
     */
    subscribe(resource, sinceAt, onPush) {
        if (this.subs.has(resource)) return // already kept subscribed
        const s = { token: this.requests.nextToken(), cursor: new SubscriptionCursor(sinceAt, undefined, undefined, true), overlap: new StampOverlap(), onPush, asked: 0 }
        this.subs.set(resource, s)
        if (this.welcome && this.ws) {
            s.cursor.anchor(this.welcome.time)
            this.sendSubscribe(resource, s)
        }
    }

    /**
     * Subscribes everything again under the current credential. The server checks each push against the
     * grant the subscription was made with, so after a token renewal the subscriptions must move to the
     * new token before the old one expires. Replacing a subscription with `since` loses and repeats nothing.
     */
    resubscribeAll() {
        if (!this.welcome || !this.ws) return
        for (const [resource, s] of this.subs) this.sendSubscribe(resource, s)
    }

    /** @param {boolean} [followingCut] the rest of a cut replay is asked for (from next_since exactly) */
    sendSubscribe(resource, s, followingCut = false) {
        s.asked++ // a cut replay's timer is for its own subscribe only
        const req = { method: "subscribe", resource, params: s.overlap.resume(s.cursor.subscribeParams(), followingCut), token: s.token }
        const cred = this.credential()
        if (cred) req.headers = { "X-ApiKey": cred }
        this.requests.take(s.token) // an earlier subscribe of it that was not answered: this one replaces it
        this.requests.add(s.token, "subscribe", resource, performance.now(), REQUEST_TIMEOUT_MS)
        this.write(encodeRequest(req))
    }

    setState(state) {
        if (state === this.state) return
        this.state = state
        this.dispatchEvent(new CustomEvent("state", { detail: state }))
    }
}
