// [P§8] The hub owns every subscription's whole life: it registers a subscribe (replacing the one with
// the same token on that connection), reads its `since` replay, sends it and then goes live without
// missing or repeating anything, ends it on its timeout, on unsubscribe, when its key stops allowing it,
// when its feed is deleted or its connection closes. Writers publish committed changes here; the fair
// fan-out (fanout.ts) delivers them, and refuses writes to a feed that already owes too many pushes.
// A connection is only a PushTarget: it takes lines and tells the hub when it closed. Where several
// processes share a store, what is published here is also relayed to the others (`relay`, the bus),
// and what they publish arrives through receive().
import { ApiError, asApiError, notFound, unprocessable } from "../errors.ts"
import {
    FANOUT_QUANTUM_PUSHES,
    FANOUT_RETRY_MAX_MS,
    FANOUT_RETRY_MIN_MS,
    FANOUT_TURN_BUDGET_MS,
    CATCH_UP_MAX_POINTS,
    CATCH_UP_PAGE_FEEDS,
    MAX_OWED_PUSHES_PER_FEED,
    MAX_SUBSCRIPTIONS_PER_CONNECTION,
    MAX_SUBSCRIPTIONS_PER_RESOURCE,
    STAMP_ORDER_HOLD_MS,
    STAMP_ORDER_MAX_FEEDS,
    STAMP_ORDER_MAX_HELD,
} from "../limits.ts"
import type { Store, StoredPoint } from "../storage/store.ts"
import { isoOf } from "../time.ts"
import { Fanout, type FanoutClock, type FanoutLimits, type Reservation } from "./fanout.ts"
import { ChangeBatch, pushHead, pushLine, seqPushTail, type ChangeEvent } from "./push.ts"
import { readReplay, readSeqReplay, type ReplayRead, type RetentionGap } from "./replay.ts"
import { CommitOrder } from "./commit-order.ts"
import { planCatchUp, pointEvent, type CatchUpOutcome } from "./catch-up.ts"
import { finalPushLine, Subscription, type PushTarget, type SubscriptionSpec } from "./subscription.ts"
import { WheelTimer, type TimerWheel } from "../timer-wheel.ts"

export { changeBody, changeResource, datastreamDeletionEvent, pushLine, pushTail, type ChangeEvent } from "./push.ts"
export { cutReplay } from "./replay.ts"
export { fanoutRetryAfterMs, type FanoutLimits } from "./fanout.ts"
export type { CatchUpOutcome } from "./catch-up.ts"
export { Subscription, type PushTarget, type Refusal, type SubscriptionState } from "./subscription.ts"

/** The server's clock and timers, injected so tests drive them by hand. */
export interface HubClock extends FanoutClock {
    setTimer(fn: () => void, ms: number): unknown
    clearTimer(timer: unknown): void
}

/** Node's own: timers that do not keep the process alive, setImmediate between turns. */
export const NODE_CLOCK: HubClock = {
    monotonicMs: () => performance.now(),
    defer: (fn) => void setImmediate(fn),
    afterCurrent: (fn) => process.nextTick(fn),
    setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
    clearTimer: (t) => clearTimeout(t as NodeJS.Timeout),
}

/**
 * The server's: subscriptions' timers (timeouts, token expiries) on the timer wheel it already runs for
 * keep-alive checks (one Node interval, not a timer per subscription; up to one slot late), fan-out turns
 * on Node's.
 */
export function hubClockOn(wheel: TimerWheel): HubClock {
    return {
        ...NODE_CLOCK,
        setTimer: (fn, ms) => {
            const t = new WheelTimer(fn)
            wheel.schedule(t, ms)
            return t
        },
        clearTimer: (t) => wheel.cancel(t as WheelTimer),
    }
}

export interface HubLimits extends FanoutLimits {
    maxSubscriptionsPerConnection: number
    maxSubscriptionsPerResource: number
    /** (several processes) a change waits this long for its feed's change committed before it (commit-order.ts) */
    stampOrderHoldMs: number
}

export const DEFAULT_HUB_LIMITS: HubLimits = {
    maxSubscriptionsPerConnection: MAX_SUBSCRIPTIONS_PER_CONNECTION,
    maxSubscriptionsPerResource: MAX_SUBSCRIPTIONS_PER_RESOURCE,
    quantumPushes: FANOUT_QUANTUM_PUSHES,
    turnBudgetMs: FANOUT_TURN_BUDGET_MS,
    maxOwedPerFeed: MAX_OWED_PUSHES_PER_FEED,
    retryMinMs: FANOUT_RETRY_MIN_MS,
    retryMaxMs: FANOUT_RETRY_MAX_MS,
    stampOrderHoldMs: STAMP_ORDER_HOLD_MS,
}

export interface HubDeps {
    store: Pick<Store, "replay" | "replayAfterSeq" | "feedExists" | "lastSeqs" | "changesAfter">
    clock?: HubClock
    limits?: Partial<HubLimits>
    /** told the number of subscriptions whenever it changes (the metrics gauge) */
    onCount?: (subscriptions: number) => void
    /** told of every write refused 429 E_FANOUT_BUSY (the metrics counter) */
    onBusy?: (feed: number) => void
    /** hands what this process publishes to the other processes on the store (the bus); absent: one process */
    relay?: (message: HubMessage) => void
    /** (with relay) a change waits for one of its feed committed before it, from another process (the metrics counter) */
    onHeld?: () => void
    /**
     * (with relay) a change of `feed` committed before others that went out here never came in time (the
     * metrics counter): the feed is caught up from the store (catchUp)
     */
    onOrderGap?: (feed: number) => void
    /**
     * (with relay) a catch-up could not bring these feeds' subscribers here what they missed (why, per
     * feed): they must resubscribe with `after` (wiring.ts tells their connections, 503 E_PUSHES_INTERRUPTED)
     */
    onMissed?: (feeds: Map<number, string>) => void
    /** (with relay) a catch-up is over (the log and the metrics) */
    onCaughtUp?: (outcome: CatchUpOutcome, why: string) => void
}

/**
 * What one process's hub tells the others' (through the bus): committed changes, or a feed deleted (with
 * its deletion's transaction id where the store has one, as changes carry theirs: bus/unheard-commits.ts).
 */
export type HubMessage =
    /**
     * chained "seq": the changes carry `prevSeq` (commit-order.ts); `true` from a process of an older version
     * (its stamped changes carried the feed's last stamp, a chain this one does not follow), absent from an
     * older one still
     */
    | { events: ChangeEvent[]; chained?: true | "seq" }
    | { endedFeed: number; txn?: number }

export interface SubscribeRequest extends SubscriptionSpec {
    /** replay the datapoints stored with an `at` after this first */
    sinceMs?: number
    /**
     * [P§8] `after`: replay the datapoints written after the change with this sequence number first, in commit
     * order, and push with `seq` ("latest": no replay, only the cursor). With sinceMs, "latest": the replay
     * after sinceMs, then live with `seq`s; a number (the `next_after` of a cut replay by `at`): the rest of that
     * replay, the points after sinceMs with a seq up to it, after which the client goes on with `after` = it
     */
    afterSeq?: number | "latest"
    /** the most datapoints the replay sends */
    limit: number
    /** end the subscription this long after it went live */
    timeoutMs?: number
}

export interface Subscribed {
    /**
     * the acknowledgement's body: set when the replay was cut (the subscription is then not live), for a
     * subscription made with `after`: the cursor to resubscribe from while no push came (`seq`), or when the
     * retention deleted points the replay was asked for (RetentionGap)
     */
    body?:
        | ({ replayed: number; truncated: true; next_since: string; next_after?: number } & Partial<RetentionGap>)
        | ({ replayed: number; truncated: true; next_after: number; seq?: number } & Partial<RetentionGap>)
        | ({ seq: number; replayed?: number; next_after?: number } & Partial<RetentionGap>)
        | RetentionGap
    /** Run right after the acknowledgement is queued: the replay's pushes, then live (and the timeout starts). */
    start(): void
}

/** Which subscriptions of a connection an unsubscribe names; neither: all of them. */
export interface UnsubscribeWhich {
    token?: string
    resource?: string
}

/** A committed write's pushes, once admitted. */
export interface PendingWrite {
    /** the write committed: queue its changes */
    publish(events: ChangeEvent[]): void
    /** the write committed these points (of the admitted feed): queue them, as changes for whoever listens */
    publishPoints(points: StoredPoint[]): void
    /** the write failed: nothing is owed */
    cancel(): void
}

/** The admission of one write (Hub.admit): no closures, it is made on every write. */
class AdmittedWrite implements PendingWrite {
    constructor(
        private readonly hub: Hub,
        private readonly feed: number,
        private readonly reservation: Reservation,
    ) {}

    publish(events: ChangeEvent[]): void {
        this.hub.publish(events)
        this.hub.settle(this.feed, this.reservation)
    }

    publishPoints(points: StoredPoint[]): void {
        // a write to a feed nobody subscribed (here or in another process) has nothing to build
        if (this.hub.listened(this.feed)) this.hub.publish(points.map((p) => pointEvent(this.feed, p)))
        this.hub.settle(this.feed, this.reservation)
    }

    cancel(): void {
        this.hub.settle(this.feed, this.reservation)
    }
}

export class Hub {
    private readonly byFeed = new Map<number, Set<Subscription>>()
    /** a connection's subscriptions by their token */
    private readonly byTarget = new Map<PushTarget, Map<string, Subscription>>()
    private readonly fanout: Fanout
    private readonly clock: HubClock
    readonly limits: HubLimits
    private count = 0
    /** several processes: each feed's changes handed to the fan-out in commit order */
    private readonly order?: CommitOrder
    private orderTimer?: unknown
    /** the catch-up running or last queued (they run one at a time) */
    private catching: Promise<unknown> = Promise.resolve()
    /** a catch-up of every subscribed feed queued and not yet started: a new request for one joins it */
    private queuedFull?: Promise<CatchUpOutcome>
    /**
     * feeds whose catch-up could not be done while a subscription of theirs here was still reading its replay: they
     * stay paused and are read again once every one has started (startsAt), or gone
     */
    private readonly awaitingStart = new Set<number>()

    constructor(private readonly deps: HubDeps) {
        this.clock = deps.clock ?? NODE_CLOCK
        this.limits = { ...DEFAULT_HUB_LIMITS, ...deps.limits }
        this.fanout = new Fanout(this.clock, this.limits)
        if (deps.relay) {
            this.order = new CommitOrder({ holdMs: this.limits.stampOrderHoldMs, maxHeldEvents: STAMP_ORDER_MAX_HELD, maxFeeds: STAMP_ORDER_MAX_FEEDS })
        }
    }

    /** Subscriptions registered (replaying or live). */
    get size(): number {
        return this.count
    }

    /** True when every published change has been handed to its subscriptions. */
    get idle(): boolean {
        return this.fanout.idle
    }

    /** Pushes `feed` owes (queued, and reserved by writes being committed). */
    owed(feed: number): number {
        return this.fanout.owed(feed)
    }

    /** Pushes owed over all feeds. */
    get totalOwed(): number {
        return this.fanout.totalOwed
    }

    /** A connection's subscriptions, oldest first (GET /session). */
    subscriptionsOf(target: PushTarget): Subscription[] {
        return [...(this.byTarget.get(target)?.values() ?? [])]
    }

    /**
     * [P§8] Registers a subscription of `target` and reads its replay. The same token on the same connection
     * replaces the subscription it names; several subscriptions may share a resource (up to
     * maxSubscriptionsPerResource). Registered before the replay is read, it buffers live changes until
     * the replay is sent; changes committed before the replay was read (Replay.seen) are not sent again.
     */
    async subscribe(target: PushTarget, req: SubscribeRequest): Promise<Subscribed> {
        // the connection closed while the request was on its way: nothing to register, and no one to answer
        if (!target.open) return { start: () => {} }
        const mine = this.byTarget.get(target)
        const replaced = mine?.get(req.token)
        const others = mine ? [...mine.values()].filter((s) => s !== replaced) : []
        const { maxSubscriptionsPerConnection: perConnection, maxSubscriptionsPerResource: perResource } = this.limits
        if (others.length >= perConnection) {
            throw unprocessable("E_TOO_MANY_SUBSCRIPTIONS", `a connection may hold ${perConnection} subscriptions; unsubscribe some, or subscribe to a whole feed instead`)
        }
        if (others.filter((s) => s.resource === req.resource).length >= perResource) {
            throw unprocessable("E_TOO_MANY_SUBSCRIPTIONS", `a connection may hold ${perResource} subscriptions to one resource; unsubscribe one (by its token) first`)
        }
        if (replaced) {
            // [P§8] the same token again: this one replaces it, once it can be taken. A renewal naming a feed that
            // does not exist is refused and leaves the subscription it named going on (was: ended without a word,
            // while a subscription ends only with a final push); the check after registering stays, for a deletion meanwhile
            if (!(await this.deps.store.feedExists(req.feed))) throw notFound(`feed ${req.feed} does not exist`)
            if (!target.open) return { start: () => {} }
            this.forget(replaced)
        }

        const sub = new Subscription(target, req, (s) => this.forget(s))
        this.register(sub)
        // the feed may have been deleted since the handler checked it: its deletion ends only what the hub holds by then
        if (!(await this.deps.store.feedExists(req.feed))) {
            this.forget(sub)
            throw notFound(`feed ${req.feed} does not exist`)
        }
        // one timer per subscription at most: its timeout or its token's expiry, whichever comes first
        let timeoutAtMs: number | undefined
        const startTimer = () => {
            sub.timer = undefined
            if (sub.state === "ended") return
            const now = this.clock.monotonicMs()
            if (req.timeoutMs !== undefined) timeoutAtMs ??= now + req.timeoutMs
            const timeoutInMs = timeoutAtMs === undefined ? Infinity : timeoutAtMs - now
            const expiresInMs = req.expiresInMs?.() ?? Infinity
            if (timeoutInMs === Infinity && expiresInMs === Infinity) return
            if (expiresInMs < timeoutInMs) {
                // [P§8] the token expired: ended as a revoked key ends it (401 E_TOKEN_EXPIRED); early (clocks apart): wait again
                sub.timer = this.clock.setTimer(() => void (sub.endIfRefused() || startTimer()), Math.max(0, expiresInMs))
                return
            }
            const ms = req.timeoutMs
            sub.timer = this.clock.setTimer(() => sub.end(408, "E_SUBSCRIPTION_ENDED", `the subscription's timeout of ${ms} ms elapsed; subscribe again to go on`), Math.max(0, timeoutInMs))
        }
        // [P§8] a plain subscribe pushes what is committed after its answer. Where feeds are caught up from the store (several
        // processes on PostgreSQL) it reads the feed's head too (a replay of nothing, one statement): the hub keeps no place
        // in the commit order of a feed nobody here subscribes to, and what a catch-up or a held change brings from before
        // that head is not pushed to it (seen), as a replay's is not; startsAt sets the place there
        const plain = req.sinceMs === undefined && req.afterSeq === undefined
        if (plain && (this.order === undefined || this.deps.store.changesAfter === undefined)) return { start: () => (sub.goLive([]), startTimer()) }

        let replay: ReplayRead & { highSeq: number; gap?: RetentionGap }
        try {
            // [P§8] `since` with `after: "latest"`: the replay by `at`, then live with `seq`s from the snapshot's cursor on
            replay =
                req.sinceMs === undefined
                    ? await readSeqReplay(this.deps.store, req.feed, req.stream, req.afterSeq === "latest" ? undefined : req.afterSeq, req.limit)
                    : await readReplay(this.deps.store, req.feed, req.stream, req.sinceMs, req.limit, typeof req.afterSeq === "number" ? req.afterSeq : undefined)
        } catch (e) {
            this.forget(sub)
            // the subscription it replaced is gone with it (live changes went to this one): its end is said, as every end is
            if (replaced) {
                const err = asApiError(e)
                target.deliver([finalPushLine(replaced, err.status, err.code, `the subscribe that was to replace it failed (${err.message}); the subscription to ${replaced.resource} ended: subscribe again with after (the seq of the last push handled), or since`)])
            }
            throw e
        }
        const events = replay.points.map((p) => pointEvent(req.feed, p))
        const last = replay.points[replay.points.length - 1]
        if (plain) {
            this.startsAt(sub, replay.highSeq)
            return { start: () => (sub.goLive([], replay.seen), startTimer()) }
        }
        if (replay.truncated) {
            // not live: the client resubscribes with next_since (next_after) and gets the rest, then live changes
            this.forget(sub)
            if (req.sinceMs === undefined) {
                return {
                    body: { replayed: events.length, truncated: true, next_after: last.seq, ...replay.gap },
                    start: () => target.deliver(events.map((ev) => pushHead(req.token) + seqPushTail(ev))),
                }
            }
            // with `after`: the cursor the rest of it is bounded by (the first cut's snapshot), so that what is
            // committed while the client pages, a backfill older than next_since included, comes by `after`
            const bound = req.afterSeq === undefined ? undefined : typeof req.afterSeq === "number" ? throughCursor(req.afterSeq, replay.highSeq) : replay.highSeq
            return {
                body: bound === undefined ? { replayed: events.length, truncated: true, next_since: isoOf(last.atMs), ...replay.gap } : { replayed: events.length, truncated: true, next_since: isoOf(last.atMs), next_after: bound, ...replay.gap },
                start: () => target.deliver(events.map((ev) => pushLine(req.token, ev))),
            }
        }
        if (req.sinceMs !== undefined && typeof req.afterSeq === "number") {
            // [P§8] the rest of a replay by `at` bounded by a cursor is all here: not live; the client handles these
            // (their seqs are not in commit order: they do not move its cursor) and goes on with `after` = the cursor
            this.forget(sub)
            const bound = throughCursor(req.afterSeq, replay.highSeq)
            return {
                body: { seq: bound, replayed: events.length, truncated: true, next_after: bound, ...replay.gap },
                start: () => target.deliver(events.map((ev) => pushHead(req.token) + seqPushTail(ev))),
            }
        }
        // [P§8] `after`: the cursor to keep until a push moves it (every change of the feed up to it is replayed or
        // older); with `since` also how many pushes the replay by `at` brings (their seqs are not in order: the
        // client resumes by `at` until it has handled them)
        // [P§8] either: the retention deleted points the replay was asked for (hub/replay.ts RetentionGap)
        let body: Subscribed["body"] = replay.gap
        if (req.afterSeq !== undefined) {
            const seq = Math.max(replay.highSeq, last?.seq ?? 0)
            // with `since`: also the `after` to resume with, beside `since`, should the link go before the replay is
            // handled (next_after: the rest of the replay up to this cursor, then by `after`)
            body = req.sinceMs === undefined ? { seq, ...replay.gap } : { seq, replayed: events.length, next_after: seq, ...replay.gap }
        }
        this.startsAt(sub, replay.highSeq)
        return { body, start: () => (sub.goLive(events, replay.seen), startTimer()) }
    }

    /**
     * [P§8] Several processes: `sub`, going live, read the store at its feed's head `headSeq` (its replay's snapshot),
     * and every change up to it is in that read or before it (not pushed to it). Once every subscription of the feed
     * here has read its head, the feed's place in commit order moves up to the lowest of them: none needs a change up
     * to it from the order. A place left behind while nobody here subscribed would hold the next change for the ones
     * before it, then catch up from there (pushing nothing new to them) or, past CATCH_UP_MAX_POINTS, tell them to
     * resubscribe; moving it past a change still on its way to a subscription that started lower would drop that
     * change for it. (Was: only the feed's one subscription moved it: two arriving at once moved nothing, and a
     * catch-up under way kept it.) A head below the place (a history gone back) moves nothing: the feed's next change
     * is stale, and the store tells (check).
     */
    private startsAt(sub: Subscription, headSeq: number): void {
        const order = this.order
        if (order === undefined || !this.byFeed.get(sub.feed)?.has(sub)) return
        sub.startSeq = headSeq
        const from = this.startedFrom(sub.feed)
        if (from === undefined) return
        for (const events of order.startAt(sub.feed, from)) this.fanOut(sub.feed, events)
        if (this.awaitingStart.delete(sub.feed)) void this.catchUp(`feed ${sub.feed}'s subscriptions here went live`, [sub.feed])
    }

    /** The lowest head the feed's subscriptions here read (startsAt); undefined while one is still reading its replay, or none is left. */
    private startedFrom(feed: number): number | undefined {
        let from: number | undefined
        for (const s of this.byFeed.get(feed) ?? []) {
            if (s.startSeq === undefined) return undefined
            if (from === undefined || s.startSeq < from) from = s.startSeq
        }
        return from
    }

    /** [P§8] Removes a connection's subscriptions: the one with `token`, all to `resource`, or all; how many. */
    unsubscribe(target: PushTarget, which: UnsubscribeWhich = {}): number {
        const mine = this.byTarget.get(target)
        if (!mine) return 0
        const gone = [...mine.values()].filter((s) => (which.token === undefined || s.token === which.token) && (which.resource === undefined || s.resource === which.resource))
        // [P§5] it sees the writes answered before it: their pushes, still queued, go out first
        for (const feed of new Set(gone.map((s) => s.feed))) this.fanout.flush(feed)
        for (const s of gone) this.forget(s)
        return gone.length
    }

    /** The connection closed: its subscriptions go, without a word. */
    connectionClosed(target: PushTarget): void {
        for (const s of this.subscriptionsOf(target)) this.forget(s)
    }

    /**
     * Admission of a write of `points` datapoints to `feed`: refused with 429 E_FANOUT_BUSY (and a retry
     * hint) while the feed owes MAX_OWED_PUSHES_PER_FEED pushes or more; nothing is stored then. An
     * admitted write must publish or cancel.
     */
    admit(feed: number, points: readonly { stream: string }[]): PendingWrite {
        const a = this.fanout.admit(feed, this.pushesOf(feed, points))
        if (!a.ok) {
            this.deps.onBusy?.(feed)
            throw new ApiError(
                429,
                "E_FANOUT_BUSY",
                `feed ${feed} owes ${a.owed} pushes to its subscribers (at most ${this.limits.maxOwedPerFeed}); nothing was stored: send it again after retry_after_ms`,
                a.retryAfterMs,
            )
        }
        return new AdmittedWrite(this, feed, a.reservation)
    }

    /**
     * The pushes a write of `points` to `feed` owes: one per point to each subscription that covers its
     * datastream. A subscription to another datastream of the feed is owed nothing: counting it (as every
     * subscription of the feed once was) made a fleet sharing a feed, each device subscribed to its own
     * commands, owe N pushes per device write, so a fleet of 300 resending its outboxes after a restart
     * had the feed refuse writes, an operator's command too, 429 E_FANOUT_BUSY, for pushes nobody was owed.
     */
    private pushesOf(feed: number, points: readonly { stream: string }[]): number {
        const subs = this.byFeed.get(feed)
        if (subs === undefined || points.length === 0) return 0
        let pushes = 0
        let perStream: Map<string, number> | undefined
        for (const sub of subs) {
            if (sub.stream === undefined) pushes += points.length
            else {
                if (perStream === undefined) {
                    perStream = new Map()
                    for (const p of points) perStream.set(p.stream, (perStream.get(p.stream) ?? 0) + 1)
                }
                pushes += perStream.get(sub.stream) ?? 0
            }
        }
        return pushes
    }

    /** Whether changes of `feed` go anywhere: its subscriptions here, or the other processes. */
    listened(feed: number): boolean {
        return this.byFeed.has(feed) || this.deps.relay !== undefined
    }

    /** An admitted write is over (published or failed): its reserved pushes are no longer owed. */
    settle(feed: number, reservation: Reservation): void {
        this.fanout.settle(feed, reservation)
    }

    /** Queues committed changes (deletions, admitted writes) for their subscriptions, here and on the other processes; returns at once. */
    publish(events: ChangeEvent[]): void {
        this.deliverLocally(events, true)
        if (events.length) this.deps.relay?.({ events, chained: "seq" })
    }

    /**
     * [P§9] Points of `feed` committed by a write this process refused as of unknown outcome (Store.onLateCommits): queued
     * for their subscriptions, here and on the other processes, as the write's would have been (no admission: a write's
     * few points, once).
     */
    publishCommitted(feed: number, points: StoredPoint[]): void {
        if (this.listened(feed)) this.publish(points.map((p) => pointEvent(feed, p)))
    }

    /** What another process published (through the bus): delivered to this process's subscriptions, relayed no further. */
    receive(message: HubMessage): void {
        if ("endedFeed" in message) this.endFeedHere(message.endedFeed)
        else this.deliverLocally(message.events, message.chained === "seq")
    }

    private deliverLocally(events: ChangeEvent[], chained: boolean): void {
        const order = this.order
        const byFeed = new Map<number, ChangeEvent[]>()
        for (const ev of events) {
            // a feed nobody here subscribes to needs no order: its place is set where its first subscribers start
            // (startsAt), so a change of it missed before then holds nothing back (was: after the link to the others
            // broke, such a feed's next change was held for holdMs and counted as a gap)
            if (!this.byFeed.has(ev.feed)) continue
            const list = byFeed.get(ev.feed)
            if (list) list.push(ev)
            else byFeed.set(ev.feed, [ev])
        }
        if (order === undefined) {
            for (const [feed, list] of byFeed) this.fanOut(feed, list)
            return
        }
        const now = this.clock.monotonicMs()
        for (const [feed, list] of byFeed) {
            const o = order.offer(feed, list, now, chained)
            if (o.held) this.deps.onHeld?.()
            for (const released of o.released) this.fanOut(feed, released)
            if (o.gap) this.orderGap(feed)
            if (o.stale) this.check(feed, `a change of feed ${feed} came with seqs pushed here already`)
        }
        this.watchOrder()
    }

    /**
     * [P§8] What this process knows of `feed` may be of a history the store no longer has (it failed over to a restored
     * replica, or was restored in place; else it was a late publish): the
     * feed is caught up, which compares the store's last seq with the one pushed here and tells its subscribers if the
     * store's went back (catch-up.ts). One at a time: the feed is paused meanwhile, and a paused feed says nothing stale.
     */
    private check(feed: number, why: string): void {
        void this.catchUp(`${why} (a late publish, or the store's history went back)`, [feed])
    }

    /** A change of `feed` waited too long for the one before it, or too many waited: the feed is caught up from the store. */
    private orderGap(feed: number): void {
        this.deps.onOrderGap?.(feed)
        void this.catchUp(`a change of feed ${feed} committed on another process did not arrive within ${this.limits.stampOrderHoldMs} ms`, [feed])
    }

    /** Queues one commit's changes of `feed` for the subscriptions it has now (one added later gets them from its replay, if at all). */
    private fanOut(feed: number, events: ChangeEvent[]): void {
        const subs = this.byFeed.get(feed)
        if (!subs) return
        // only the subscriptions the changes reach: the others are owed nothing (pushesOf)
        const reached: Subscription[] = []
        for (const sub of subs) if (sub.stream === undefined || events.some((ev) => sub.covers(ev))) reached.push(sub)
        this.fanout.publish(feed, events, reached)
    }

    /** While changes wait for an earlier commit, a timer for the first to be given up on. */
    private watchOrder(): void {
        const due = this.order?.nextDeadlineMs()
        if (due === undefined || this.orderTimer !== undefined) return
        this.orderTimer = this.clock.setTimer(() => {
            this.orderTimer = undefined
            for (const feed of this.order!.expired(this.clock.monotonicMs())) this.orderGap(feed)
            this.watchOrder()
        }, Math.max(0, due - this.clock.monotonicMs()))
    }

    /** The link to the other processes broke or came back, and every subscriber here was told to resubscribe: what waits for an earlier commit is dropped (their replays hold it). */
    dropWaiting(): void {
        this.order?.dropAll()
    }

    /**
     * [P§8] Several processes: changes of `feeds` (undefined: every feed subscribed here) may not have reached
     * this process (the link to the others broke, a publisher died before publishing, a change's predecessor
     * never came), or the store's history of them went back (check). Each is caught up from the store
     * (catch-up.ts): what was committed after the last seq handed on here is pushed in commit order before
     * anything heard later; a deleted feed's subscribers get the deletion; where that cannot be done, or the
     * history went back, the feed's subscribers are told (onMissed), save those still reading their replays
     * (the catch-up waits for them: what it could not tell may be before their heads). One catch-up at a
     * time. Rejects when the store could not be read, for `feeds` undefined (the caller then tells every
     * subscriber); for given feeds their subscribers are told then.
     */
    catchUp(why: string, feeds?: number[]): Promise<CatchUpOutcome> {
        const order = this.order
        if (order === undefined || this.deps.store.changesAfter === undefined) return Promise.resolve(noCatchUp())
        if (feeds === undefined && this.queuedFull) return this.queuedFull
        // what arrives for them from now on waits for the read (and a gap's timer stops)
        if (feeds) for (const f of feeds) order.pause(f)
        const run = this.catching.then(() => {
            if (feeds === undefined) this.queuedFull = undefined
            return this.catchUpNow(order, feeds, why)
        })
        if (feeds === undefined) this.queuedFull = run
        this.catching = run.catch(() => {})
        return run.then((outcome) => {
            this.watchOrder()
            this.deps.onCaughtUp?.(outcome, why)
            if (outcome.told.size) this.deps.onMissed?.(outcome.told)
            return outcome
        })
    }

    private async catchUpNow(order: CommitOrder, given: number[] | undefined, why: string): Promise<CatchUpOutcome> {
        const outcome = noCatchUp()
        const list = given ?? [...this.byFeed.keys()]
        /** feeds whose place moved while they were read (a subscription here went live at its head): read again from there */
        const again: number[] = []
        for (let i = 0; i < list.length; i += CATCH_UP_PAGE_FEEDS) {
            // a feed nobody subscribes to here has no one to catch up: what waits for it is dropped
            const page = list.slice(i, i + CATCH_UP_PAGE_FEEDS).filter((f) => {
                if (this.byFeed.has(f)) return true
                order.abandon(f)
                return false
            })
            if (page.length === 0) continue
            for (const f of page) order.pause(f)
            const after = new Map(page.map((f) => [f, order.handedOnUpTo(f)]))
            let read: Awaited<ReturnType<NonNullable<Store["changesAfter"]>>>
            try {
                // nothing known of a feed (-Infinity): no points asked, it is told
                read = await this.deps.store.changesAfter!(new Map([...after].map(([f, seq]) => [f, Number.isFinite(seq) ? seq : Number.MAX_SAFE_INTEGER])), CATCH_UP_MAX_POINTS)
            } catch (e) {
                const rest = [...page, ...list.slice(i + CATCH_UP_PAGE_FEEDS)]
                for (const f of rest) {
                    order.abandon(f)
                }
                if (given === undefined) throw e
                for (const f of rest) if (this.byFeed.has(f)) outcome.told.set(f, `the store could not be read to catch feed ${f} up (${(e as Error).message})`)
                return outcome
            }
            for (const f of page) {
                outcome.checked++
                const plan = planCatchUp(f, after.get(f)!, read.get(f), CATCH_UP_MAX_POINTS)
                if (plan.kind === "reset") {
                    order.rewind(f, plan.storeSeq)
                    // a subscription still reading its replay reads the store's new history: only those live here are told
                    if ([...(this.byFeed.get(f) ?? [])].some((s) => s.startSeq !== undefined)) outcome.told.set(f, plan.reason)
                    continue
                }
                if (plan.kind === "told") {
                    // [P§8] what it could not tell is before a subscription's head: not theirs to be told of
                    if (order.handedOnUpTo(f) > after.get(f)!) again.push(f)
                    else if (this.byFeed.has(f) && this.startedFrom(f) === undefined) this.awaitingStart.add(f)
                    else {
                        order.abandon(f, plan.storeSeq)
                        outcome.told.set(f, plan.reason)
                    }
                    continue
                }
                const repaired = plan.kind === "repair" ? plan.events : []
                const r = order.resume(f, plan.kind === "deleted" ? undefined : plan.storeSeq, repaired)
                if (r.overflowed) {
                    order.giveUp(f)
                    outcome.told.set(f, `more than ${STAMP_ORDER_MAX_HELD} changes of feed ${f} arrived while it was caught up`)
                    continue
                }
                for (const events of r.released) this.fanOut(f, events)
                if (plan.kind === "deleted") {
                    this.endFeedHere(f)
                    outcome.deleted++
                } else if (repaired.length) {
                    outcome.repaired++
                    outcome.pushes += repaired.length
                }
            }
        }
        if (again.length) void this.catchUp(why, again)
        return outcome
    }

    /**
     * Several processes: reads each feed's last seq from the store (what was committed before now), so
     * that a change following one of those is not held for it. Once this process hears the others (at
     * start), and again after its link to them broke (wiring.ts).
     */
    async syncCommitOrder(): Promise<void> {
        if (!this.order || !this.deps.store.lastSeqs) return
        const { seqs, complete } = await this.deps.store.lastSeqs(STAMP_ORDER_MAX_FEEDS)
        for (const { feed, events } of this.order.load(seqs, complete)) this.fanOut(feed, events)
    }


    /**
     * [P§8] The feed was deleted: every subscription to it (or under it) gets what was written before (its
     * queue is delivered now: at most MAX_OWED_PUSHES_PER_FEED), then the deletion push and a final 404
     * push, at once. One still replaying ends right after its replay. `txn`: the deletion's (Deletion.txn).
     */
    endFeed(feed: number, txn?: number): void {
        this.endFeedHere(feed)
        this.deps.relay?.(txn === undefined ? { endedFeed: feed } : { endedFeed: feed, txn })
    }

    private endFeedHere(feed: number): void {
        for (const waiting of this.order?.release(feed) ?? []) this.fanOut(feed, waiting)
        this.fanout.flush(feed)
        const deletion = new ChangeBatch([{ feed, seq: Infinity }])
        for (const sub of [...(this.byFeed.get(feed) ?? [])]) sub.receive(deletion)
    }

    /**
     * Ends every live subscription whose key no longer allows it, without waiting for a push: called when
     * keys or tokens change (a revocation by `DELETE /keys`, `DELETE /jwt`, or the CLI in another process),
     * so an idle subscription ends too [P§8]. One pass over all subscriptions; keys change rarely.
     */
    recheck(): void {
        for (const set of [...this.byFeed.values()]) for (const sub of [...set]) if (sub.state === "live") sub.endIfRefused()
    }

    /** Runs fan-out turns until nothing is queued or `deadlineMs` (monotonic) passes (shutdown). */
    drain(deadlineMs: number): void {
        while (!this.fanout.idle && this.clock.monotonicMs() < deadlineMs) this.fanout.turn()
    }

    private register(sub: Subscription): void {
        let set = this.byFeed.get(sub.feed)
        if (!set) this.byFeed.set(sub.feed, (set = new Set()))
        set.add(sub)
        let mine = this.byTarget.get(sub.target)
        if (!mine) this.byTarget.set(sub.target, (mine = new Map()))
        mine.set(sub.token, sub)
        this.count++
        this.deps.onCount?.(this.count)
    }

    /** Unregisters a subscription (idempotent); what it still had queued is skipped. */
    private forget(sub: Subscription): void {
        if (sub.timer !== undefined) this.clock.clearTimer(sub.timer)
        sub.timer = undefined
        if (sub.state !== "ended") sub.detach()
        const set = this.byFeed.get(sub.feed)
        if (!set?.delete(sub)) return
        if (set.size === 0) {
            this.byFeed.delete(sub.feed)
            // nobody here to push to: what waits for an earlier commit of it waits for nothing (no gap)
            this.order?.giveUp(sub.feed)
        }
        // a catch-up waited for this one's replay: the others here have started, or none is left
        if (this.awaitingStart.has(sub.feed) && (set.size === 0 || this.startedFrom(sub.feed) !== undefined)) {
            this.awaitingStart.delete(sub.feed)
            void this.catchUp(`a subscription to feed ${sub.feed} that a catch-up waited for ended`, [sub.feed])
        }
        const mine = this.byTarget.get(sub.target)
        if (mine?.get(sub.token) === sub) {
            mine.delete(sub.token)
            if (mine.size === 0) this.byTarget.delete(sub.target)
        }
        this.count--
        this.deps.onCount?.(this.count)
    }
}

function noCatchUp(): CatchUpOutcome {
    return { checked: 0, repaired: 0, pushes: 0, deleted: 0, told: new Map() }
}

/**
 * [P§8] The cursor a replay by `at` up to a numeric `after` (a cut replay's `next_after`) is acknowledged with: that
 * `after`, but never past the head the replay was read at. A cursor no server gave (past the head: forged, or of
 * another store) was echoed, and the client's `after` = it then skipped what was committed between the head and it
 * before it went live. A cursor the server gave is never past a later head (SQLite: the compaction mark only rises;
 * PostgreSQL: the feed's highest seq, lower only when points were deleted, and then none of the feed lies between).
 */
export function throughCursor(afterSeq: number, headSeq: number): number {
    return Math.min(afterSeq, headSeq)
}
