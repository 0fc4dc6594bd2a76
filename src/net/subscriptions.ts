// The app's subscriptions [P§8]: which resources it follows, the token each subscription currently
// has (pushes carry it) and its cursor (src/subscription-cursor.ts, shared with the client library and
// the dashboard page): after a reconnect the link subscribes again with since = the last `at` handled, so
// what was written meanwhile arrives and nothing arrives twice; a backlog comes in replays of at most
// REPLAY_LIMIT pushes, and after a cut one has been handled the subscription is made again from where it
// ended, until the server says it is live.
import { Response, encodeShortRequest, namesAChange, pushIsFor, trimResource } from "../protocol"
import { SubscriptionCursor } from "../subscription-cursor"

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
    cursor: SubscriptionCursor
    /** when to subscribe again after the server ended or refused it (Link decides); 0: nothing owed, NEVER: not at all */
    renewAtMs: number
}

/** renewAt() value of a subscription that is not asked for again, not even after a reconnect */
export const NEVER = -1

export class Subscriptions {
    private subs: Subscription[] = []
    /** handlers that threw; counted, never fatal */
    handlerErrors = 0
    /** pushes under a subscription's token that name another resource: not handled; the first one logged */
    foreignPushes = 0

    /**
     * `resubscribe(i)`: a cut replay of subscription `i` has been handled; send request(i) again.
     * `ended(i, r)`: the server ended subscription `i` with the final push `r` (status >= 300) [P§8].
     */
    constructor(private log: (msg: string) => void, private resubscribe: (i: number, stale?: string) => void, private ended: (i: number, r: Response) => void) {}

    /** Adds a subscription, replaying from `sinceAt` (the last `at` handled before a reboot) if given; returns its index. */
    add(resource: string, handler: PushHandler, sinceAt?: string): number {
        // [P§8] as the server names it ("/feeds/7/datastreams/led/" is "/feeds/7/datastreams/led"): its pushes are compared with it
        resource = trimResource(resource)
        // one datastream's pushes come in `at` order: an older point a server replays against `since` is dropped
        const cursor = new SubscriptionCursor(sinceAt, REPLAY_LIMIT, resource.indexOf("/datastreams/") >= 0, true)
        this.subs.push({ resource: resource, handler: handler, token: undefined, cursor: cursor, renewAtMs: 0 })
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

    /**
     * A subscription whose renewal is due at `nowMs` (its renewal is then no longer owed), else -1. A cut replay's
     * pushes still owed then (its `timeout` is up) were lines it could not read (bad lines, counted): skipped, the
     * subscription goes on past them (SubscriptionCursor.overdue).
     */
    due(nowMs: number): number {
        for (let i = 0; i < this.subs.length; ++i) {
            const sub = this.subs[i]
            if (sub.renewAtMs > 0 && nowMs >= sub.renewAtMs) {
                sub.renewAtMs = 0
                const skipped = sub.cursor.overdue()
                if (skipped > 0) this.log(`link: subscription ${sub.resource}: ${skipped} of a cut replay's pushes not read (bad lines); going on past them`)
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
        sub.cursor.anchor(serverNowMs)
        // [P§5a] the short form (its ack too; the pushes keep the long form)
        return encodeShortRequest({ method: "subscribe", resource: sub.resource, params: sub.cursor.subscribeParams(), headers: headers, token: token })
    }

    /**
     * [P§8] The subscribe of `i` was acknowledged (status 200): a cut replay's pushes follow, then the rest is
     * asked for. Pushes not all in by `replayDueMs` (lines it could not read, or a `replayed` count overstated):
     * skipped then, the rest asked for from past them (due()).
     */
    acknowledged(i: number, body: any, replayDueMs: number) {
        const sub = this.subs[i]
        const cursor = sub.cursor
        const o = cursor.acknowledged(body)
        const stale = this.rewound(sub)
        if (o === "resubscribe") this.resubscribe(i, stale)
        else if (o === "replaying") this.renewAt(i, replayDueMs)
    }

    /**
     * The server's seqs went back (another store, a restored backup, a reset database), as an answer or a push said:
     * said once per answer or push; the token of the subscription that said so, which is to be ended (a subscribe
     * replaces it that replays what it would miss: kept, every later change would come twice on this connection)
     */
    private rewound(sub: Subscription): string {
        const cursor = sub.cursor
        if (cursor.rewoundFrom === undefined) return undefined
        this.log(`link: subscription ${sub.resource}: the server's seq ${cursor.seq} is below ${cursor.rewoundFrom}, the last handled (its history was reset, restored or moved to another store); asking for what it got since the last at handled, then following its seqs`)
        cursor.rewoundFrom = undefined
        return sub.token
    }

    /** Hands a push to its handler. False when the token belongs to no subscription. */
    deliver(r: Response): boolean {
        for (let i = 0; i < this.subs.length; ++i) {
            const sub = this.subs[i]
            if (sub.token === r.token) {
                // [P§8] every push names what changed (body.id): a 200 without it is the subscribe's answer
                // again, which would be handed on as a change and counted as one of a cut replay's pushes
                // (nested ifs, not &&: the compiler keeps each && in a variable, ~9 B of code each)
                if (r.status < 300) if (!namesAChange(r.body)) return false
                // [P§8] a push's resource is the subscribed one or one under it (or above it: a feed's deletion).
                // Another (a server that mixed up its subscriptions) is not this subscription's: not handled, and
                // it neither moves the cursor nor ends the subscription
                if (!pushIsFor(sub.resource, r.resource)) {
                    if (this.foreignPushes++ === 0) this.log(`link: E_FOREIGN_PUSH ${r.resource} under the token of ${sub.resource}; ignored (stats().foreignPushes counts them)`)
                    return true
                }
                if (r.status >= 300) {
                    // [P§8] a final push: nothing with this token follows
                    sub.token = undefined
                    this.ended(i, r)
                    return true
                }
                const step = sub.cursor.push(r.status, r.body)
                if (step.deliver) this.handle(sub, r)
                if (step.caughtUp) this.resubscribe(i, this.rewound(sub))
                return true
            }
        }
        return false
    }

    private handle(sub: Subscription, r: Response) {
        try {
            sub.handler(r.body, r.resource || sub.resource)
        } catch (e) {
            this.handlerErrors++
            this.log(`link: handler for ${sub.resource} threw: ${e}`)
        }
    }
}
