// Simulated devices and subscribers speaking protocol v1 over the TLS device port [P§1-§8], built on
// the shared codec (src/protocol.ts) and client core: welcome line, auth once with X-ApiKey, `put
// /feeds/:id` acked by token (src/requests.ts), `subscribe /feeds/:id` for pushes, blank-line heartbeats
// when idle (src/keepalive.ts). The load generator does not judge liveness: a dead server shows in its figures.
import { defaultKeepalive, keepaliveFromWelcome, keepaliveStep, type KeepaliveContract } from "../../../src/keepalive.ts"
import { decodeServerLine, encodeRequest, encodeShortRequest, isNotice, type Response } from "../../../src/protocol.ts"
import { RequestTable } from "../../../src/requests.ts"
import { connectCountedTls, OPEN_TIMEOUT_MS, withTimeout, type CountedTls } from "./wire.ts"
import { deviceOf, updateBody } from "./payload.ts"
import type { AckHandler, ClientAdapter, DeviceConnection, PushHandler, SubscriberConnection, TargetAddress } from "./types.ts"

/** An acknowledgement later than this is no acknowledgement (the figures are far below it). */
const ACK_TIMEOUT_MS = 60_000

/** One protocol v1 connection: line framing in, request writing out, requests matched by token, heartbeat bookkeeping. */
class LineConnection {
    readonly wire: CountedTls
    readonly requests = new RequestTable()
    contract: KeepaliveContract = defaultKeepalive()
    lastSentMs = performance.now()
    lastHeardMs = performance.now()
    private partial = ""
    private welcomed!: Promise<void>
    onResponse: (r: Response) => void = () => {}

    constructor(address: TargetAddress, onClose: (why: string) => void) {
        this.wire = connectCountedTls(address.host, address.port, address.caPath)
        this.wire.tls.setEncoding("latin1")
        let closed = false
        const close = (why: string) => {
            if (!closed) onClose(why)
            closed = true
        }
        this.wire.tls.on("error", (e) => close(`error: ${e.message}`))
        this.wire.tls.on("close", () => close("closed"))
        this.welcomed = new Promise((resolve, reject) => {
            this.wire.tls.once("close", () => reject(new Error("connection closed before the welcome line")))
            this.wire.tls.on("data", (chunk: string) => {
                this.lastHeardMs = performance.now()
                const text = this.partial + chunk
                let start = 0
                for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
                    const line = decodeServerLine(text.slice(start, nl))
                    start = nl + 1
                    if (line.kind === "welcome") {
                        this.contract = keepaliveFromWelcome(line.welcome!)
                        resolve()
                    } else if (line.kind === "response") this.onResponse(line.response!)
                }
                this.partial = text.slice(start)
            })
        })
    }

    welcome(): Promise<void> {
        return withTimeout(this.welcomed, OPEN_TIMEOUT_MS, "the welcome line")
    }

    write(text: string): void {
        this.lastSentMs = performance.now()
        this.wire.tls.write(text)
    }

    /** Sends a request under a fresh token; its response is matched by requests.take(token). */
    request(kind: string, ref: unknown, req: Omit<Parameters<typeof encodeRequest>[0], "token">): void {
        const token = this.requests.nextToken()
        this.requests.add(token, kind, ref, performance.now(), ACK_TIMEOUT_MS)
        this.write((req.short ? encodeShortRequest : encodeRequest)({ ...req, token }) + "\n")
    }

    /** [P§4] a blank line after `heartbeat` ms without sending */
    keepAlive(nowMs: number): void {
        if (keepaliveStep(nowMs, this.lastHeardMs, this.lastSentMs, this.contract).sendHeartbeat) this.write("\n")
    }
}

export function feedlineAdapter(address: TargetAddress): ClientAdapter {
    const resourceOf = (feedId = address.feedId) => `/feeds/${feedId}`
    const live = new Set<LineConnection>()

    function track(c: LineConnection): LineConnection {
        live.add(c)
        c.wire.tls.once("close", () => live.delete(c))
        return c
    }

    return {
        async openDevice(device: number, onAck: AckHandler, onClose: (why: string) => void, feedId?: number): Promise<DeviceConnection> {
            const resource = resourceOf(feedId)
            // the device key is scoped to the address's feed; the master key (readKey) writes the quiet one
            const key = feedId === undefined || feedId === address.feedId ? address.deviceKey! : address.readKey!
            const c = track(new LineConnection(address, onClose))
            let first: ((r: Response) => void) | undefined
            c.onResponse = (r) => {
                if (isNotice(r)) return // a connection notice: the close follows
                const p = c.requests.take(r.token)
                if (!p) return // a reply to nothing we sent, or a late one
                const seq = p.ref as number
                if (seq === 0 && first) return first(r)
                const hint = typeof r.body?.retry_after_ms === "number" ? r.body.retry_after_ms : undefined
                onAck(seq, r.status === 200, r.status === 200 ? undefined : `${r.status} ${r.body?.code ?? ""}`, hint)
            }
            const send = (seq: number, atMs: number, withKey: boolean) =>
                // [P§5a] the short form, as a device on a metered link writes
                c.request("put", seq, { short: true, method: "put", resource, headers: withKey ? { "X-ApiKey": key } : undefined, body: updateBody(device, seq, atMs) })
            await c.welcome()
            // [P§7] auth once: the first request carries the key, later ones do not
            const ack = new Promise<Response>((resolve) => (first = resolve))
            send(0, Date.now(), true)
            const r = await withTimeout(ack, OPEN_TIMEOUT_MS, "the first acknowledgement")
            if (r.status !== 200) throw new Error(`first update refused: ${r.status} ${JSON.stringify(r.body)}`)
            first = undefined
            return {
                send: (seq, atMs) => send(seq, atMs, false),
                bytes: () => c.wire.bytes(),
                close: () => c.wire.tls.destroy(),
            }
        },

        async openSubscriber(_index: number, onPush: PushHandler, onClose: (why: string) => void, feedId?: number): Promise<SubscriberConnection> {
            const resource = resourceOf(feedId)
            const c = track(new LineConnection(address, onClose))
            let subscribed: ((r: Response) => void) | undefined
            let token: string | undefined
            c.onResponse = (r) => {
                const p = c.requests.take(r.token)
                if (p) {
                    token = p.token // the acknowledgement: its pushes carry this token
                    return subscribed?.(r)
                }
                if (r.token !== token) return
                const body = r.body
                if (r.status === 200 && body && typeof body.id === "string") onPush(deviceOf(body.id), Number(body.current_value))
            }
            await c.welcome()
            const ack = new Promise<Response>((resolve) => (subscribed = resolve))
            c.request("subscribe", undefined, { method: "subscribe", resource, headers: { "X-ApiKey": address.readKey! } })
            const r = await withTimeout(ack, OPEN_TIMEOUT_MS, "the subscribe acknowledgement")
            if (r.status !== 200) throw new Error(`subscribe refused: ${r.status} ${JSON.stringify(r.body)}`)
            subscribed = undefined
            return { bytes: () => c.wire.bytes(), close: () => c.wire.tls.destroy() }
        },

        /** a feed made for it with the master key (readKey) */
        async quietFeed(): Promise<number> {
            const c = new LineConnection(address, () => {})
            try {
                await c.welcome()
                const created = new Promise<Response>((resolve) => (c.onResponse = (r) => c.requests.take(r.token) && resolve(r)))
                c.request("post", undefined, { method: "post", resource: "/feeds", headers: { "X-ApiKey": address.readKey! }, body: { title: "quiet" } })
                const r = await withTimeout(created, OPEN_TIMEOUT_MS, "the new feed")
                if (r.status !== 201) throw new Error(`creating the quiet feed: ${r.status} ${JSON.stringify(r.body)}`)
                return r.body.id
            } finally {
                c.wire.tls.destroy()
            }
        },

        sweepKeepAlive(nowMs: number): void {
            for (const c of live) c.keepAlive(nowMs)
        },
    }
}
