// The page's protocol-v1 client over the app port's WebSocket [P§1]: welcome, heartbeats and liveness
// [P§4], requests matched by token [P§6], subscriptions that are renewed with `since` after every
// reconnect [P§8]. Envelopes are made and read by the shared codec (src/protocol.ts, served as
// /protocol.js). The credential ("Bearer <jwt>") rides on every request: the server verifies the token
// each time, and a renewed token takes effect at once.
// The keep-alive decision (in the codec) and the reconnect backoff (src/backoff.ts, served as /backoff.js)
// are the ones the firmware, the CLI and the server use.
import { decodeServerLine, defaultKeepalive, encodeRequest, isNotice, keepaliveFromWelcome, keepaliveStep } from "./protocol.js"
import { backoffDelayMs, CLIENT_BACKOFF } from "./backoff.js"

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
        this.pending = new Map()
        /** resource -> { token, since(), onPush } */
        this.subs = new Map()
        this.nextToken = 1
        /** failed attempts since the last welcome */
        this.attempt = 0
        /** a notice's retry_after_ms: the next reconnect waits at least this long */
        this.retryAfterMs = undefined
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
        this.lastRx = this.lastTx = Date.now()
        this.contract = defaultKeepalive()
        ws.onmessage = (ev) => {
            if (ws !== this.ws) return
            for (const line of String(ev.data).split("\n")) this.onLine(line)
        }
        ws.onclose = () => {
            if (ws !== this.ws) return // a connection we already replaced
            this.ws = undefined
            clearTimeout(this.keepalive)
            for (const p of this.pending.values()) p.reject(new Error("connection lost"))
            this.pending.clear()
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
        const step = keepaliveStep(Date.now(), this.lastRx, this.lastTx, this.contract)
        if (step.health === "dead") return this.ws && this.ws.close()
        if (this.welcome) {
            this.setState(step.health === "ok" ? "online" : "degraded")
            if (step.sendHeartbeat) this.write("\n")
        }
        this.keepalive = setTimeout(() => this.tick(), step.nextCheckInMs)
    }

    write(text) {
        if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false
        this.lastTx = Date.now()
        this.ws.send(text)
        return true
    }

    onLine(line) {
        this.lastRx = Date.now()
        const d = decodeServerLine(line)
        if (d.kind === "welcome") {
            this.welcome = d.welcome
            this.contract = keepaliveFromWelcome(d.welcome)
            this.attempt = 0
            this.setState("online")
            this.dispatchEvent(new CustomEvent("welcome", { detail: d.welcome }))
            for (const [resource, s] of this.subs) this.sendSubscribe(resource, s)
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
        const p = this.pending.get(r.token)
        if (p) {
            this.pending.delete(r.token)
            clearTimeout(p.timer)
            if (r.status === 401) this.dispatchEvent(new CustomEvent("unauthorized", { detail: r }))
            return p.resolve(r)
        }
        for (const [resource, s] of this.subs) {
            if (s.token !== r.token) continue
            if (r.status === 401 || r.status === 403) this.dispatchEvent(new CustomEvent("unauthorized", { detail: r }))
            else if (r.status === 408) this.sendSubscribe(resource, s) // it ended by timeout: renew
            else if (r.body && r.body.truncated && typeof r.body.next_since === "string") {
                // [P§8] a cut replay is not live: its pushes follow this ack; go on from next_since
                const next = r.body.next_since
                this.sendSubscribe(resource, { ...s, since: () => next })
            } else s.onPush(r)
            return
        }
    }

    /** Sends a request; resolves with the response (any status), rejects when the link is down. */
    request(method, resource, o = {}) {
        const token = "p" + this.nextToken++
        const req = { method, resource, params: o.params, body: o.body, token }
        const cred = this.credential()
        if (cred) req.headers = { "X-ApiKey": cred }
        return new Promise((resolve, reject) => {
            if (!this.welcome || !this.write(encodeRequest(req))) return reject(new Error("not connected"))
            const timer = setTimeout(() => {
                this.pending.delete(token)
                reject(new Error(`no answer to ${method} ${resource} within ${REQUEST_TIMEOUT_MS / 1000} s`))
            }, REQUEST_TIMEOUT_MS)
            this.pending.set(token, { resolve, reject, timer })
        })
    }

    /**
     * Keeps `resource` subscribed across reconnects. `since()` returns the newest `at` already shown, so a
     * reconnect replays what was missed and nothing twice.
     */
    subscribe(resource, since, onPush) {
        if (this.subs.has(resource)) return // already kept subscribed
        const s = { token: "s" + this.nextToken++, since, onPush }
        this.subs.set(resource, s)
        if (this.welcome && this.ws) this.sendSubscribe(resource, s)
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

    async sendSubscribe(resource, s) {
        const params = {}
        const since = s.since()
        if (since) params.since = since
        const req = { method: "subscribe", resource, params, token: s.token }
        const cred = this.credential()
        if (cred) req.headers = { "X-ApiKey": cred }
        this.write(encodeRequest(req))
    }

    setState(state) {
        if (state === this.state) return
        this.state = state
        this.dispatchEvent(new CustomEvent("state", { detail: state }))
    }
}
