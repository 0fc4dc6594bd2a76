// [P§8] Subscriptions and fan-out. Writers publish committed changes; the hub delivers them to every
// subscription that covers them, in slices of FANOUT_SLICE deliveries per event-loop turn, so that
// thousands of subscribers never hold up ingest. The changes of one write reach a subscriber as one
// batch of lines (one socket write), queued on its connection, whose outgoing queue is bounded
// (session.ts drops a connection that cannot keep up).
import { encodeResponse, errorBody, quote } from "../../src/protocol.ts"
import { isoOf } from "./time.ts"

/** Deliveries per event-loop turn: large enough to be efficient, small enough to keep requests flowing. */
export const FANOUT_SLICE = 2000

/** One committed change. */
export interface ChangeEvent {
    feed: number
    /** the store's sequence number of the write; deletions use Infinity (never part of a replay) */
    seq: number
    /** undefined: the feed itself (deleted) */
    stream?: string
    atMs?: number
    value?: string
    deleted?: boolean
}

/** The connection side of a subscription (implemented by the session). */
export interface Subscriber {
    /** queue lines for the peer, in order */
    deliver(lines: string[]): void
    /** the subscription ended on the hub's side: forget it (its final push is delivered right after) */
    ended(sub: Subscription): void
}

export type SubscriptionState = "replaying" | "live" | "ended"

export class Subscription {
    state: SubscriptionState = "replaying"
    /** live changes that arrive while the replay is being read */
    buffered: ChangeEvent[] = []
    /** changes with seq <= this were part of the replay (or happened before it) */
    liveAfterSeq = 0
    timer?: NodeJS.Timeout
    /** the feed was deleted while the replay was read: goLive ends the subscription after its acknowledgement */
    private feedDeleted = false

    constructor(
        readonly subscriber: Subscriber,
        /**
         * re-checks the subscribing key [P§7] before every push and whenever keys change: why it may no longer
         * read the feed (revoked, expired, narrowed), or undefined while it may
         */
        readonly refusal: () => string | undefined,
        readonly token: string,
        /** the resource as subscribed, normalised */
        readonly resource: string,
        readonly feed: number,
        /** undefined = the whole feed */
        readonly stream?: string,
    ) {}

    covers(ev: ChangeEvent): boolean {
        return ev.feed === this.feed && (this.stream === undefined || ev.stream === undefined || ev.stream === this.stream)
    }

    /** Called by the hub with the changes of one write (all of one feed); takes those it covers. */
    receive(events: ChangeEvent[]): void {
        const mine = this.stream === undefined ? events : events.filter((ev) => this.covers(ev))
        if (mine.length === 0) return
        if (this.state === "replaying") this.buffered.push(...mine)
        else if (this.state === "live") this.push(mine)
    }

    /** Ends the replay: pushes the replayed points, then what arrived meanwhile and was not in the replay. */
    goLive(replayed: ChangeEvent[], highWaterSeq: number): void {
        if (this.state !== "replaying") return
        this.liveAfterSeq = highWaterSeq
        this.state = "live"
        this.send(replayed)
        const waiting = this.buffered
        this.buffered = []
        this.push(waiting)
        if (this.feedDeleted) return this.endFeedDeleted()
        // the key may have been revoked while the replay was read (a sweep skips replaying subscriptions)
        if (this.state === "live") this.endIfRefused()
    }

    private push(events: ChangeEvent[]): void {
        const fresh = events.filter((ev) => ev.seq > this.liveAfterSeq) // in the replay already: nothing is sent twice
        if (fresh.length === 0) return
        if (this.endIfRefused()) return
        this.send(fresh)
    }

    /** Ends the subscription with a final 403 push when its key no longer allows it; true if it did. */
    endIfRefused(): boolean {
        const reason = this.refusal()
        if (reason === undefined) return false
        this.end(403, "E_FORBIDDEN", `${reason}; the subscription to ${this.resource} ended`)
        return true
    }

    /**
     * [P§8] The feed was deleted: the deletion push, then a final 404 push; its id is never given out
     * again, so nothing could ever be pushed here. A subscription still replaying ends once it is acknowledged.
     */
    endFeedDeleted(): void {
        if (this.state === "replaying") this.feedDeleted = true
        if (this.state !== "live") return
        const deleted = pushLine(this.token, { feed: this.feed, seq: Infinity })
        this.end(404, "E_FEED_DELETED", `feed ${this.feed} was deleted; the subscription to ${this.resource} ended`, [deleted])
    }

    /**
     * [P§8] Ends the subscription with a final push: `status` (408 timeout, 403 key, 404 feed), a stable
     * code and a reason a person can act on; `before` goes out first. The subscriber forgets it first, so
     * nothing follows the final push.
     */
    end(status: number, code: string, reason: string, before: string[] = []): void {
        if (this.state === "ended") return
        this.state = "ended"
        this.subscriber.ended(this)
        const final = encodeResponse({ token: this.token, status, resource: this.resource, body: errorBody("Subscription ended", reason, code) })
        this.subscriber.deliver([...before, final])
    }

    private send(events: ChangeEvent[]): void {
        if (events.length) this.subscriber.deliver(events.map((ev) => pushLine(this.token, ev)))
    }
}

/** [P§8] The resource a change is pushed under. */
export function changeResource(ev: ChangeEvent): string {
    return ev.stream === undefined ? `/feeds/${ev.feed}` : `/feeds/${ev.feed}/datastreams/${ev.stream}`
}

/** [P§8] The body of a push. */
export function changeBody(ev: ChangeEvent): Record<string, unknown> {
    if (ev.stream === undefined) return { id: ev.feed, deleted: true }
    if (ev.deleted) return { id: ev.stream, deleted: true }
    return { id: ev.stream, current_value: ev.value, at: isoOf(ev.atMs!) }
}

/** One push line; the same bytes encodeResponse() would make (test/host/server-units.test.ts checks). */
export function pushLine(token: string, ev: ChangeEvent): string {
    const resource = changeResource(ev)
    if (ev.stream === undefined || ev.deleted) {
        return `{"token":${quote(token)},"status":200,"resource":${quote(resource)},"body":${
            ev.stream === undefined ? `{"id":${ev.feed},"deleted":true}` : `{"id":${quote(ev.stream)},"deleted":true}`
        }}`
    }
    return `{"token":${quote(token)},"status":200,"resource":${quote(resource)},"body":{"id":${quote(ev.stream)},"current_value":${quote(
        ev.value!,
    )},"at":"${isoOf(ev.atMs!)}"}}`
}

/** The changes of one write to one feed, and the subscriptions of that feed still to hand them to. */
interface Job {
    events: ChangeEvent[]
    subs: Subscription[]
    next: number
}

export class Hub {
    private readonly byFeed = new Map<number, Set<Subscription>>()
    private jobs: Job[] = []
    private head = 0
    private scheduled = false
    private count = 0

    get size(): number {
        return this.count
    }

    add(sub: Subscription): void {
        let set = this.byFeed.get(sub.feed)
        if (!set) this.byFeed.set(sub.feed, (set = new Set()))
        if (!set.has(sub)) {
            set.add(sub)
            this.count++
        }
    }

    remove(sub: Subscription): void {
        if (sub.timer) clearTimeout(sub.timer)
        sub.state = "ended"
        const set = this.byFeed.get(sub.feed)
        if (set?.delete(sub)) {
            this.count--
            if (set.size === 0) this.byFeed.delete(sub.feed)
        }
    }

    /** Queues the committed changes of one write for delivery; returns at once. */
    publish(events: ChangeEvent[]): void {
        const byFeed = new Map<number, ChangeEvent[]>()
        for (const ev of events) {
            if (!this.byFeed.has(ev.feed)) continue
            const list = byFeed.get(ev.feed)
            if (list) list.push(ev)
            else byFeed.set(ev.feed, [ev])
        }
        for (const [feed, list] of byFeed) this.jobs.push({ events: list, subs: [...this.byFeed.get(feed)!], next: 0 })
        if (!this.scheduled && this.head < this.jobs.length) {
            this.scheduled = true
            setImmediate(() => this.pump())
        }
    }

    /** Delivers up to FANOUT_SLICE, then yields to the event loop. */
    private pump(): void {
        this.scheduled = false
        let budget = FANOUT_SLICE
        while (budget > 0 && this.head < this.jobs.length) {
            const job = this.jobs[this.head]
            while (budget > 0 && job.next < job.subs.length) {
                const sub = job.subs[job.next++]
                budget -= job.events.length
                if (sub.state !== "ended") sub.receive(job.events)
            }
            if (job.next >= job.subs.length) this.head++
        }
        if (this.head === this.jobs.length) {
            this.jobs = []
            this.head = 0
        } else if (this.head > 1024) {
            this.jobs = this.jobs.slice(this.head)
            this.head = 0
        }
        if (this.head < this.jobs.length) {
            this.scheduled = true
            setImmediate(() => this.pump())
        }
    }

    /** [P§8] The feed was deleted: every subscription to it (or under it) ends with a final push, at once. */
    endFeed(feed: number): void {
        for (const sub of [...(this.byFeed.get(feed) ?? [])]) sub.endFeedDeleted()
    }

    /**
     * Ends every live subscription whose key no longer allows it, without waiting for a push: called when
     * keys or tokens change (a revocation by `DELETE /keys`, `DELETE /jwt`, or the CLI in another process),
     * so an idle subscription ends too [P§8]. One pass over all subscriptions; keys change rarely.
     */
    recheck(): void {
        for (const set of [...this.byFeed.values()]) for (const sub of [...set]) if (sub.state === "live") sub.endIfRefused()
    }

    /** True when every published change has been handed to its subscribers (for shutdown and tests). */
    get idle(): boolean {
        return this.head >= this.jobs.length
    }
}
