// The app's subscriptions [P§8]: which resources it follows, the token each subscription currently
// has (pushes carry it) and the last `at` it has seen, so that after a reconnect the link subscribes
// again with since = that `at`: what was written meanwhile arrives, and nothing arrives twice.
// A backlog comes in replays of at most REPLAY_LIMIT pushes: after a cut one has been handled, the
// subscription is made again from where it ended, until the server says it is live.
import { Response, encodeRequest } from "../protocol"

/**
 * [P§8] `limit` of every replay: a backlog arrives in pieces the 64 KB heap can hold. A push is ~150 B
 * on the wire, and its queued chunk, line and parsed object cost a few times that until it is handled;
 * 16 (~2.4 KB on the wire) leaves the heap to the outbox (16 KB) and the app. Measured in the simulator:
 * 150 pushes in one burst were handled, 400 (~60 KB) ran it out of memory; in replays of 16, 400 were
 * handled in 0.86 s (25 round trips on loopback).
 */
export const REPLAY_LIMIT = 16

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
    /** pushes still to come from a cut replay; when they are handled, subscribe again from `nextSince` */
    replayOwed: number
    nextSince: string
    /** when to subscribe again after the server ended or refused it (Link decides); 0: nothing owed, NEVER: not at all */
    renewAtMs: number
}

/** renewAt() value of a subscription that is not asked for again, not even after a reconnect */
export const NEVER = -1

export class Subscriptions {
    private subs: Subscription[] = []
    /** handlers that threw; counted, never fatal */
    handlerErrors = 0

    /**
     * `resubscribe(i)`: a cut replay of subscription `i` has been handled; send request(i) again.
     * `ended(i, r)`: the server ended subscription `i` with the final push `r` (status >= 300) [P§8].
     */
    constructor(private log: (msg: string) => void, private resubscribe: (i: number) => void, private ended: (i: number, r: Response) => void) {}

    /** Adds a subscription, replaying from `sinceAt` (the last `at` handled before a reboot) if given; returns its index. */
    add(resource: string, handler: PushHandler, sinceAt?: string): number {
        this.subs.push({ resource: resource, handler: handler, token: undefined, lastAt: sinceAt, lastKey: undefined, sinceMs: undefined, replayOwed: 0, nextSince: undefined, renewAtMs: 0 })
        return this.subs.length - 1
    }

    count(): number {
        return this.subs.length
    }

    resource(i: number): string {
        return this.subs[i].resource
    }

    /** Subscription `i` is to be asked for again at `atMs` (NEVER: not at all). */
    renewAt(i: number, atMs: number) {
        const sub = this.subs[i]
        if (sub.renewAtMs !== NEVER) sub.renewAtMs = atMs
    }

    /** False once a subscription is not to be asked for again (renewAt NEVER). */
    wanted(i: number): boolean {
        return this.subs[i].renewAtMs !== NEVER
    }

    /** A subscription whose renewal is due at `nowMs` (its renewal is then no longer owed), else -1. */
    due(nowMs: number): number {
        for (let i = 0; i < this.subs.length; ++i) {
            const sub = this.subs[i]
            if (sub.renewAtMs > 0 && nowMs >= sub.renewAtMs) {
                sub.renewAtMs = 0
                return i
            }
        }
        return -1
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
        if (sub.renewAtMs > 0) sub.renewAtMs = 0
        sub.replayOwed = 0 // a new subscription: a cut replay of an earlier one no longer counts
        if (sub.sinceMs === undefined) sub.sinceMs = serverNowMs
        const params: any = { since: sub.lastAt === undefined ? sub.sinceMs : sub.lastAt, limit: REPLAY_LIMIT }
        return encodeRequest({ method: "subscribe", resource: sub.resource, params: params, headers: headers, token: token })
    }

    /**
     * [P§8] The subscribe of `i` was acknowledged truncated: `replayed` pushes follow, then the rest
     * is to be asked for with since = `nextSince` (the subscription is not live).
     */
    truncated(i: number, replayed: number, nextSince: string) {
        const sub = this.subs[i]
        sub.nextSince = nextSince
        sub.replayOwed = replayed > 0 ? replayed : 0
        if (sub.replayOwed === 0) this.caughtUp(i)
    }

    /** Hands a push to its handler. False when the token belongs to no subscription. */
    deliver(r: Response): boolean {
        for (let i = 0; i < this.subs.length; ++i) {
            const sub = this.subs[i]
            if (sub.token === r.token) {
                if (r.status >= 300) {
                    // [P§8] a final push: nothing with this token follows
                    sub.token = undefined
                    this.ended(i, r)
                    return true
                }
                this.push(sub, r)
                if (sub.replayOwed > 0 && --sub.replayOwed === 0) this.caughtUp(i)
                return true
            }
        }
        return false
    }

    /** The cut replay of `i` has been handled: everything up to its `next_since` is in; ask for the rest. */
    private caughtUp(i: number) {
        const sub = this.subs[i]
        if (sub.nextSince !== undefined && (sub.lastAt === undefined || textAfter(sub.nextSince, sub.lastAt))) sub.lastAt = sub.nextSince
        this.resubscribe(i)
    }

    private push(sub: Subscription, r: Response) {
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
