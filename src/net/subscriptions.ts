// The app's subscriptions [P§8]: which resources it follows, the token each subscription currently
// has (pushes carry it) and the last `at` it has seen, so that after a reconnect the link subscribes
// again with since = that `at`: what was written meanwhile arrives, and nothing arrives twice.
import { Response, encodeRequest } from "../protocol"

/** A push handler: the datapoint (or `{id, deleted:true}`) and the resource it belongs to. */
export type PushHandler = (body: any, resource: string) => void

interface Subscription {
    resource: string
    handler: PushHandler
    /** token of the current subscription; undefined until subscribed on this link */
    token: string
    /** the newest `at` handled: the replay point after a reconnect */
    lastAt: string
    /** at|id|value of the last push handled: the same push twice in a row is handled once */
    lastKey: string
    /** server time (ms) when it was first subscribed: the replay point until a push has been seen */
    sinceMs: number
}

export class Subscriptions {
    private subs: Subscription[] = []
    /** handlers that threw; counted, never fatal */
    handlerErrors = 0

    constructor(private log: (msg: string) => void) {}

    /** Adds a subscription; returns its index. */
    add(resource: string, handler: PushHandler): number {
        this.subs.push({ resource: resource, handler: handler, token: undefined, lastAt: undefined, lastKey: undefined, sinceMs: undefined })
        return this.subs.length - 1
    }

    count(): number {
        return this.subs.length
    }

    resource(i: number): string {
        return this.subs[i].resource
    }

    /**
     * The subscribe request for subscription `i` under a fresh `token` (which its pushes will carry).
     * `serverNowMs` is the server's time as the device knows it. Replay starts after the last `at`
     * seen, or, before any push, after the time the subscription was first made: a command written
     * while the first subscribe was on its way, or while the link was down before any push came,
     * still arrives. (What was written before the device first subscribed after boot is not replayed.)
     */
    request(i: number, token: string, headers: any, serverNowMs: number): string {
        const sub = this.subs[i]
        sub.token = token
        if (sub.sinceMs === undefined) sub.sinceMs = serverNowMs
        const params: any = { since: sub.lastAt === undefined ? sub.sinceMs : sub.lastAt }
        return encodeRequest({ method: "subscribe", resource: sub.resource, params: params, headers: headers, token: token })
    }

    /** Hands a push to its handler. False when the token belongs to no subscription. */
    deliver(r: Response): boolean {
        for (let i = 0; i < this.subs.length; ++i) {
            const sub = this.subs[i]
            if (sub.token === r.token) {
                this.push(sub, r)
                return true
            }
        }
        return false
    }

    private push(sub: Subscription, r: Response) {
        if (r.status >= 300) return // e.g. 408 "subscription ended": subscribed again on the next connection
        const body = r.body
        const at = body && typeof body["at"] === "string" ? (body["at"] as string) : undefined
        if (at !== undefined) {
            // Only an identical repeat is dropped: a datapoint written again comes with the same `at` and
            // a new value (the later write wins [P§9]), and pushes of different datastreams under one
            // resource need not come in `at` order.
            const key = at + "|" + body["id"] + "|" + body["current_value"]
            if (key === sub.lastKey) return
            sub.lastKey = key
            if (sub.lastAt === undefined || textAfter(at, sub.lastAt)) sub.lastAt = at
        }
        try {
            sub.handler(body, r.resource || sub.resource)
        } catch (e) {
            this.handlerErrors++
            this.log(`link: handler for ${sub.resource} threw: ${e}`)
        }
    }
}

/**
 * a > b for text, by char codes. DeviceScript's `<`/`>` on runtime strings do not compare text
 * (measured: "…02.000Z" <= "…01.000Z" was true). ISO-8601 `at`s of one format sort as text.
 */
export function textAfter(a: string, b: string): boolean {
    const n = a.length < b.length ? a.length : b.length
    for (let i = 0; i < n; ++i) {
        const d = a.charCodeAt(i) - b.charCodeAt(i)
        if (d !== 0) return d > 0
    }
    return a.length > b.length
}
