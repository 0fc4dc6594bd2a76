// [P§8] One subscription's state: replaying (live changes wait until the replay is out), live, ended.
// It decides what of a change it is pushed and how it ends; the hub (index.ts) registers, schedules and
// forgets it.
import { encodeResponse, errorBody } from "../../../src/protocol.ts"
import type { CommitRef } from "../storage/store.ts"
import { isFeedDeletion, pushHead, pushTail, seqPushTail, type ChangeBatch, type ChangeEvent } from "./push.ts"

/** The connection side of subscriptions (a session): it takes lines and bounds its own queue. */
export interface PushTarget {
    /** false once the connection is closing: nothing is registered for it any more */
    readonly open: boolean
    /** queue lines for the peer, in order */
    deliver(lines: string[]): void
}

export type SubscriptionState = "replaying" | "live" | "ended"

/** A subscription without a replay: every change that reaches it after it registered is pushed. */
const NOTHING_SEEN = () => false

export interface SubscriptionSpec {
    /** the subscribe request's token: every push carries it, and it names the subscription on its connection */
    token: string
    /** the resource as subscribed, normalised */
    resource: string
    feed: number
    /** undefined = the whole feed */
    stream?: string
    /**
     * re-checks the subscribing key [P§7] before every push, whenever keys change and when its token
     * expires: why it may no longer read the feed (revoked, expired, narrowed), or undefined while it may
     */
    refusal: () => Refusal | undefined
    /** a token's subscription: ms from now until the token expires (the hub ends the subscription then) */
    expiresInMs?: () => number
    /** [P§8] made with `after`: its datapoint pushes carry their `seq` (push.ts seqPushTail) */
    withSeq?: boolean
}

/** Why a subscription's credential no longer reads its feed: 401 E_TOKEN_EXPIRED (get a new token), else 403 E_FORBIDDEN. */
export interface Refusal {
    status: 401 | 403
    code: "E_TOKEN_EXPIRED" | "E_FORBIDDEN"
    reason: string
}

export class Subscription {
    state: SubscriptionState = "replaying"
    readonly token: string
    readonly resource: string
    readonly feed: number
    readonly stream?: string
    readonly refusal: () => Refusal | undefined
    /** the timeout's timer, kept by the hub */
    timer?: unknown
    /**
     * (several processes) the feed's head its replay was read at: every change up to it is in that read or before
     * it (never pushed to it); undefined until then (hub/index.ts startsAt)
     */
    startSeq?: number
    /** live changes that arrive while the replay is being read */
    private buffered: ChangeEvent[] = []
    /** whether a change was committed before the replay was read: in the replay already (or older than it), not pushed again */
    private seenByReplay: (c: CommitRef) => boolean = NOTHING_SEEN
    private readonly head: string
    /** how this subscription renders a change after its token: with `seq` or without */
    private readonly tailOf: (ev: ChangeEvent) => string
    private readonly withSeq: boolean

    constructor(
        readonly target: PushTarget,
        spec: SubscriptionSpec,
        /** the hub forgets it; called once, before its final push goes out */
        private readonly onEnd: (sub: Subscription) => void,
    ) {
        this.token = spec.token
        this.resource = spec.resource
        this.feed = spec.feed
        this.stream = spec.stream
        this.refusal = spec.refusal
        this.head = pushHead(spec.token)
        this.withSeq = spec.withSeq === true
        this.tailOf = this.withSeq ? seqPushTail : pushTail
    }

    covers(ev: ChangeEvent): boolean {
        return ev.feed === this.feed && (this.stream === undefined || ev.stream === undefined || ev.stream === this.stream)
    }

    /** From the fan-out: the changes of one write (all of one feed); takes those it covers. */
    receive(batch: ChangeBatch): void {
        if (this.state === "replaying") {
            for (const ev of batch.events) if (this.covers(ev)) this.buffered.push(ev)
        } else if (this.state === "live") this.pushLive(batch.events, this.withSeq ? (i) => batch.seqTail(i) : (i) => batch.tail(i))
    }

    /** Ends the replay: pushes the replayed points, then what arrived meanwhile and was not in the replay. */
    goLive(replayed: ChangeEvent[], seen: (c: CommitRef) => boolean = NOTHING_SEEN): void {
        if (this.state !== "replaying") return
        this.seenByReplay = seen
        this.state = "live"
        if (replayed.length) this.target.deliver(replayed.map((ev) => this.head + this.tailOf(ev)))
        const waiting = this.buffered
        this.buffered = []
        this.pushLive(waiting, (i) => this.tailOf(waiting[i]))
        // the key may have been revoked while the replay was read (a sweep skips replaying subscriptions)
        if (this.state === "live") this.endIfRefused()
    }

    /** Pushes the covered changes not in the replay; a deletion of the feed ends the subscription after them. */
    private pushLive(events: ChangeEvent[], tailOf: (i: number) => string): void {
        const lines: string[] = []
        let feedDeleted = false
        for (let i = 0; i < events.length; ++i) {
            const ev = events[i]
            // deletions (seq Infinity) are never part of a replay
            if (!this.covers(ev) || (ev.seq !== Infinity && this.seenByReplay(ev))) continue // in the replay already: nothing is sent twice
            if (isFeedDeletion(ev)) {
                feedDeleted = true
                break
            }
            lines.push(this.head + tailOf(i))
        }
        if (lines.length && this.endIfRefused()) return
        if (feedDeleted) return this.endFeedDeleted(lines)
        if (lines.length) this.target.deliver(lines)
    }

    /** Ends the subscription with a final 401/403 push when its key (token) no longer allows it; true if it did. */
    endIfRefused(): boolean {
        const refused = this.refusal()
        if (refused === undefined) return false
        this.end(refused.status, refused.code, `${refused.reason}; the subscription to ${this.resource} ended`)
        return true
    }

    /**
     * [P§8] The feed was deleted: the deletion push, then a final 404 push; its id is never given out
     * again, so nothing could ever be pushed here.
     */
    private endFeedDeleted(before: string[]): void {
        const deleted = this.head + pushTail({ feed: this.feed, seq: Infinity })
        this.end(404, "E_FEED_DELETED", `feed ${this.feed} was deleted; the subscription to ${this.resource} ended`, [...before, deleted])
    }

    /**
     * [P§8] Ends the subscription with a final push: `status` (408 timeout, 401 token expired, 403 key, 404 feed), a stable
     * code and a reason a person can act on; `before` goes out first. The hub forgets it first, so
     * nothing follows the final push.
     */
    end(status: number, code: string, reason: string, before: string[] = []): void {
        if (this.state === "ended") return
        this.state = "ended"
        this.onEnd(this)
        this.target.deliver([...before, finalPushLine(this, status, code, reason)])
    }

    /** Ends it without a word (unsubscribed, replaced, its connection closed). */
    detach(): void {
        this.state = "ended"
        this.buffered = []
    }
}

/** [P§8] The final push of a subscription: its token, a status other than 200, "Subscription ended", a code and why. */
export function finalPushLine(sub: Pick<Subscription, "token" | "resource">, status: number, code: string, reason: string): string {
    return encodeResponse({ token: sub.token, status, resource: sub.resource, body: errorBody("Subscription ended", reason, code) })
}
