// Fair, bounded fan-out. Each feed has its own FIFO of owed pushes (the changes of one write × the
// subscriptions the feed had when it committed); feeds with something owed are served round robin, a
// quantum of pushes each, in turns of at most a CPU budget, after which the event loop reads sockets and
// commits writes again. One feed's backlog therefore delays another feed's pushes by at most one quantum
// per busy feed, not by the backlog. What a feed owes is bounded: a write that would add to a feed that
// already owes too much is refused (the hub answers 429 E_FANOUT_BUSY), so nothing acknowledged is ever
// dropped or owed without bound. Pushes go into each subscriber connection's own queue, which the
// session bounds (a subscriber that cannot keep up is dropped, not waited for).
import { ChangeBatch, type ChangeEvent } from "./push.ts"
import type { Subscription } from "./subscription.ts"

export interface FanoutClock {
    /** monotonic ms (performance.now): a turn's budget is measured with it */
    monotonicMs(): number
    /** runs `fn` once pending I/O has been handled (setImmediate) */
    defer(fn: () => void): void
    /**
     * runs `fn` right after the current callback and what it queued for then (process.nextTick): the
     * connections write out (encrypt, send) a turn's pushes there, so a turn's cost is measured up to it
     */
    afterCurrent(fn: () => void): void
}

export interface FanoutLimits {
    /** pushes (one change to one subscription) a feed is served per visit of the round robin */
    quantumPushes: number
    /** a turn delivers for at most this long, then yields to the event loop */
    turnBudgetMs: number
    /** a feed owing this many pushes (queued or reserved) takes no more writes until it owes less */
    maxOwedPerFeed: number
    /** retry hints of a refused write: at least, at most */
    retryMinMs: number
    retryMaxMs: number
}

/** The changes of one write, and the subscriptions still to hand them to. */
interface Job {
    batch: ChangeBatch
    subs: readonly Subscription[]
    next: number
}

class FeedLoad {
    jobs: (Job | undefined)[] = []
    head = 0
    /** pushes queued and not yet delivered */
    owed = 0
    /** pushes of admitted writes whose commit has not returned yet */
    reserved = 0
}

/** Pushes handed out per ms of wall time before anything was measured: a cautious guess (this 2-core box does several times that). */
const INITIAL_PUSHES_PER_MS = 20
/** A turn's first guess of what one push costs, rendering and writing out (ms): a cautious one (~2 µs measured here). */
const INITIAL_MS_PER_PUSH = 0.01
/** weight of the newest turn in the measured rate */
const RATE_SMOOTHING = 0.2
/** a gap between turns longer than this was idle time, not work: it says nothing about the rate */
const RATE_GAP_MS = 1000

/**
 * How long a refused writer should wait: until the feed's backlog above half its bound is delivered at
 * the feed's share of the measured rate, within [min, max]. Pure.
 */
export function fanoutRetryAfterMs(owed: number, maxOwed: number, pushesPerMs: number, busyFeeds: number, limits: Pick<FanoutLimits, "retryMinMs" | "retryMaxMs">): number {
    const excess = Math.max(0, owed - maxOwed / 2)
    const share = Math.max(pushesPerMs, 1e-3) / Math.max(1, busyFeeds)
    return Math.min(limits.retryMaxMs, Math.max(limits.retryMinMs, Math.ceil(excess / share)))
}

/** A write's claim on its feed's fan-out, from admission to its commit; settle() once, either way. */
export class Reservation {
    private settled = false
    constructor(
        private readonly load: FeedLoad | undefined,
        readonly pushes: number,
    ) {}

    settle(): void {
        if (this.settled) return
        this.settled = true
        if (this.load) this.load.reserved -= this.pushes
    }
}

export type Admission = { ok: true; reservation: Reservation } | { ok: false; owed: number; retryAfterMs: number }

/** A write that owes no pushes (its feed has no subscribers here: most writes) reserves nothing: one shared answer, its settle() a no-op. */
const NOTHING_RESERVED: Admission = { ok: true, reservation: new Reservation(undefined, 0) }

export class Fanout {
    /** every feed that owes or has reserved something */
    private readonly loads = new Map<number, FeedLoad>()
    /** the feeds with pushes queued, in round-robin order (a served feed moves to the back) */
    private readonly ring = new Map<number, FeedLoad>()
    private scheduled = false
    private pushesPerMs = INITIAL_PUSHES_PER_MS
    private lastTurnStartMs?: number
    private deliveredLastTurn = 0
    /** what one push costs, rendered and written out, measured over recent turns (ms) */
    private msPerPush = INITIAL_MS_PER_PUSH

    constructor(
        private readonly clock: FanoutClock,
        readonly limits: FanoutLimits,
    ) {}

    private loadOf(feed: number): FeedLoad {
        let load = this.loads.get(feed)
        if (!load) this.loads.set(feed, (load = new FeedLoad()))
        return load
    }

    private forgetIfIdle(feed: number, load: FeedLoad): void {
        if (load.owed <= 0 && load.reserved <= 0 && load.head >= load.jobs.length) this.loads.delete(feed)
    }

    /** Pushes `feed` owes: queued plus reserved by writes being committed. */
    owed(feed: number): number {
        const load = this.loads.get(feed)
        return load ? load.owed + load.reserved : 0
    }

    /** Every push owed, all feeds. */
    get totalOwed(): number {
        let n = 0
        for (const load of this.loads.values()) n += load.owed + load.reserved
        return n
    }

    /** True when nothing is queued. */
    get idle(): boolean {
        return this.ring.size === 0
    }

    /**
     * May a write that would owe `pushes` more to `feed` go ahead? A feed under its bound always may (so
     * a single write larger than the bound still goes through, alone); one at or over it is refused with
     * a retry hint. An admitted write's pushes are reserved until it is published or fails.
     */
    admit(feed: number, pushes: number): Admission {
        if (pushes <= 0) return NOTHING_RESERVED
        const owed = this.owed(feed)
        if (owed >= this.limits.maxOwedPerFeed) {
            const busy = Math.max(1, this.ring.size)
            return { ok: false, owed, retryAfterMs: fanoutRetryAfterMs(owed, this.limits.maxOwedPerFeed, this.pushesPerMs, busy, this.limits) }
        }
        const load = this.loadOf(feed)
        load.reserved += pushes
        const reservation = new Reservation(load, pushes)
        return { ok: true, reservation }
    }

    /** Queues the changes of one write (all of `feed`) for `subs`; returns at once. */
    publish(feed: number, events: ChangeEvent[], subs: readonly Subscription[]): void {
        if (events.length === 0 || subs.length === 0) return
        const load = this.loadOf(feed)
        load.jobs.push({ batch: new ChangeBatch(events), subs, next: 0 })
        load.owed += events.length * subs.length
        if (!this.ring.has(feed)) this.ring.set(feed, load)
        this.schedule()
    }

    private schedule(): void {
        if (this.scheduled) return
        this.scheduled = true
        this.clock.defer(() => this.turn())
    }

    /**
     * One turn: the busy feeds in round-robin order, a quantum each, until the budget is spent. The budget
     * is time: the pushes rendered and queued in it (checked as it goes), plus their writing out, which
     * the connections do right after the turn; so a turn takes at most as many pushes as the measured cost
     * per push fits in the budget.
     */
    turn(): void {
        this.scheduled = false
        if (this.ring.size === 0) return
        const start = this.clock.monotonicMs()
        this.measureRate(start)
        const deadline = start + this.limits.turnBudgetMs
        let left = Math.max(1, Math.floor(this.limits.turnBudgetMs / this.msPerPush))
        let delivered = 0
        while (this.ring.size && left > 0) {
            const [feed, load] = this.ring.entries().next().value as [number, FeedLoad]
            const served = this.serve(load, Math.min(this.limits.quantumPushes, left), deadline)
            delivered += served.pushes
            left -= served.pushes
            this.ring.delete(feed)
            if (load.head < load.jobs.length) this.ring.set(feed, load) // to the back: the next feed's turn
            else this.emptied(feed, load)
            if (served.outOfTime) break
        }
        this.deliveredLastTurn = delivered
        if (delivered > 0) this.clock.afterCurrent(() => this.measureCost(start, delivered))
        if (this.ring.size) this.schedule()
    }

    /** A turn's pushes are written out: what each cost, from the turn's start (smoothed). */
    private measureCost(startMs: number, pushes: number): void {
        const ms = this.clock.monotonicMs() - startMs
        this.msPerPush += RATE_SMOOTHING * (ms / pushes - this.msPerPush)
    }

    /** Delivers everything `feed` has queued, now, whatever the budget (its deletion must come after them). */
    flush(feed: number): void {
        const load = this.ring.get(feed)
        if (!load) return
        this.serve(load, Infinity, Infinity)
        this.ring.delete(feed)
        this.emptied(feed, load)
    }

    /** Hands `load`'s queued changes to their subscriptions, oldest first, up to `quantum` pushes or `deadline`. */
    private serve(load: FeedLoad, quantum: number, deadline: number): { pushes: number; outOfTime: boolean } {
        let pushes = 0
        while (pushes < quantum && load.head < load.jobs.length) {
            const job = load.jobs[load.head]!
            const sub = job.subs[job.next++]
            const cost = job.batch.events.length
            pushes += cost
            load.owed -= cost
            if (sub.state !== "ended") sub.receive(job.batch)
            if (job.next >= job.subs.length) this.jobDone(load)
            if (deadline !== Infinity && this.clock.monotonicMs() >= deadline) return { pushes, outOfTime: true }
        }
        return { pushes, outOfTime: false }
    }

    private emptied(feed: number, load: FeedLoad): void {
        load.jobs = []
        load.head = 0
        this.forgetIfIdle(feed, load)
    }

    private jobDone(load: FeedLoad): void {
        load.jobs[load.head++] = undefined
        if (load.head > 1024 && load.head * 2 > load.jobs.length) {
            load.jobs = load.jobs.slice(load.head)
            load.head = 0
        }
    }

    /** Settles a write's reservation; the load is forgotten when nothing else is owed. */
    settle(feed: number, reservation: Reservation): void {
        reservation.settle()
        const load = this.loads.get(feed)
        if (load) this.forgetIfIdle(feed, load)
    }

    /** Pushes delivered per ms from one turn's start to the next, while busy (idle gaps say nothing). */
    private measureRate(startMs: number): void {
        const last = this.lastTurnStartMs
        this.lastTurnStartMs = startMs
        if (last === undefined || this.deliveredLastTurn === 0) return
        const gap = startMs - last
        if (gap <= 0 || gap > RATE_GAP_MS) return
        this.pushesPerMs += RATE_SMOOTHING * (this.deliveredLastTurn / gap - this.pushesPerMs)
    }
}
