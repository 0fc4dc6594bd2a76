// The hub on its own [P§8], on a hand-driven clock (turns, timers and the CPU budget are stepped by the
// test, nothing sleeps): a subscription's whole life (replace by token, several per resource, replay then
// live, timeout, unsubscribe, connection closed, feed deleted), fair fan-out across feeds with a per-turn
// budget, and back-pressure to writers (429 E_FANOUT_BUSY) with nothing acknowledged ever dropped.
import assert from "node:assert/strict"
import { test } from "node:test"
import { fanoutRetryAfterMs, Hub, type ChangeEvent, type HubClock, type HubLimits, type PushTarget } from "../../../devs/server/hub/index.ts"
import type { SeqReplay, StoredPoint } from "../../../devs/server/storage/store.ts"
import { readReplay } from "../../../devs/server/hub/replay.ts"
import { MAX_REPLAY_POINTS } from "../../../devs/server/limits.ts"

/** Turns run when the test says; the monotonic clock moves `stepMs` at every look (the cost of a delivery). */
class ManualClock implements HubClock {
    nowMs = 0
    stepMs = 0
    private deferred: (() => void)[] = []
    private afterCurrentQueue: (() => void)[] = []
    private timers = new Map<number, { atMs: number; fn: () => void }>()
    private nextTimer = 1
    monotonicMs(): number {
        this.nowMs += this.stepMs
        return this.nowMs
    }
    defer(fn: () => void): void {
        this.deferred.push(fn)
    }
    afterCurrent(fn: () => void): void {
        this.afterCurrentQueue.push(fn)
    }
    /** what the connections do right after a turn: write out what it queued (Target adds its cost here) */
    flushMs = 0
    setTimer(fn: () => void, ms: number): unknown {
        const id = this.nextTimer++
        this.timers.set(id, { atMs: this.nowMs + ms, fn })
        return id
    }
    clearTimer(t: unknown): void {
        this.timers.delete(t as number)
    }
    /** runs deferred turns; returns how many ran */
    turns(max = Infinity): number {
        let n = 0
        while (this.deferred.length && n < max) {
            this.deferred.shift()!()
            this.nowMs += this.flushMs
            this.flushMs = 0
            for (const fn of this.afterCurrentQueue.splice(0)) fn()
            n++
        }
        return n
    }
    /** timers set and not yet run or cleared */
    get pendingTimers(): number {
        return this.timers.size
    }
    advance(ms: number): void {
        this.nowMs += ms
        for (const [id, t] of [...this.timers]) {
            if (t.atMs > this.nowMs) continue
            this.timers.delete(id)
            t.fn()
        }
    }
}

class Target implements PushTarget {
    open = true
    lines: string[] = []
    /** writing a line out after the turn costs this much of `clock` */
    constructor(private readonly flush?: { clock: ManualClock; msPerLine: number }) {}
    deliver(lines: string[]): void {
        this.lines.push(...lines)
        if (this.flush) this.flush.clock.flushMs += lines.length * this.flush.msPerLine
    }
    parsed(): any[] {
        return this.lines.map((l) => JSON.parse(l))
    }
    values(token?: string): string[] {
        return this.parsed()
            .filter((r) => token === undefined || r.token === token)
            .filter((r) => r.status === 200 && r.body.current_value !== undefined)
            .map((r) => r.body.current_value)
    }
}

interface Setup {
    hub: Hub
    clock: ManualClock
    store: { points: StoredPoint[]; highWaterSeq: number; feeds: Set<number>; replayGate?: Promise<void> }
}

function setup(limits: Partial<HubLimits> = {}): Setup {
    const clock = new ManualClock()
    const store: Setup["store"] = { points: [], highWaterSeq: 0, feeds: new Set([1, 2, 3]) }
    const hub = new Hub({
        clock,
        limits,
        store: {
            async feedExists(feed) {
                return store.feeds.has(feed)
            },
            async replay(feed, stream, afterMs, limit): Promise<SeqReplay> {
                await store.replayGate
                const points = store.points.filter((p) => p.atMs > afterMs && (stream === undefined || p.stream === stream)).slice(0, limit)
                const highWaterSeq = store.highWaterSeq
                return { points, seen: (c) => c.seq <= highWaterSeq, highSeq: highWaterSeq }
            },
            async replayAfterSeq(feed, stream, afterSeq, limit) {
                await store.replayGate
                const points = afterSeq === undefined ? [] : store.points.filter((p) => p.seq > afterSeq && (stream === undefined || p.stream === stream)).sort((a, b) => a.seq - b.seq).slice(0, limit)
                const highWaterSeq = store.highWaterSeq
                return { points, seen: (c) => c.seq <= highWaterSeq, highSeq: highWaterSeq }
            },
        },
    })
    return { hub, clock, store }
}

let seq = 0
function changes(feed: number, n: number, stream = "s", tag = "v"): ChangeEvent[] {
    return Array.from({ length: n }, (_, i) => ({ feed, seq: ++seq, stream, atMs: 1_700_000_000_000 + seq, value: `${tag}${i}` }))
}

/** the points of a write, as admit() sees them: their datastreams */
const pts = (n: number, stream = "s") => Array.from({ length: n }, () => ({ stream }))

const sub = (feed: number, token: string, more: Partial<Parameters<Hub["subscribe"]>[1]> = {}) => ({
    token,
    resource: more.stream ? `/feeds/${feed}/datastreams/${more.stream}` : `/feeds/${feed}`,
    feed,
    refusal: () => undefined,
    limit: 1000,
    ...more,
})

async function live(h: Hub, target: PushTarget, req: Parameters<Hub["subscribe"]>[1]) {
    const s = await h.subscribe(target, req)
    s.start()
    return s
}

test("hub: several subscriptions per resource, each by its token; the same token replaces; unsubscribe by token, resource or all (issue 11 item 15)", async () => {
    const { hub, clock } = setup({ maxSubscriptionsPerResource: 3, maxSubscriptionsPerConnection: 5 })
    const t = new Target()
    await live(hub, t, sub(1, "a"))
    await live(hub, t, sub(1, "b"))
    await live(hub, t, sub(1, "c"))
    await assert.rejects(hub.subscribe(t, sub(1, "d")), (e: any) => e.status === 422 && e.code === "E_TOO_MANY_SUBSCRIPTIONS" && /to one resource/.test(e.message))
    // the same token again replaces (and may move to another resource): still three, not four
    await live(hub, t, sub(1, "c", { stream: "x" }))
    assert.deepEqual(hub.subscriptionsOf(t).map((s) => [s.token, s.resource]), [["a", "/feeds/1"], ["b", "/feeds/1"], ["c", "/feeds/1/datastreams/x"]])
    hub.admit(1, pts(1)).publish(changes(1, 1, "y"))
    clock.turns()
    assert.deepEqual(t.parsed().map((r) => r.token), ["a", "b"], "each subscription of the resource gets its own push; c covers only x")
    await live(hub, t, sub(2, "d"))
    await live(hub, t, sub(3, "e"))
    await assert.rejects(hub.subscribe(t, sub(2, "f")), (e: any) => e.code === "E_TOO_MANY_SUBSCRIPTIONS" && /5 subscriptions/.test(e.message))
    assert.equal(hub.unsubscribe(t, { token: "a" }), 1)
    assert.equal(hub.unsubscribe(t, { token: "a" }), 0)
    assert.equal(hub.unsubscribe(t, { token: "b", resource: "/feeds/2" }), 0, "a token on another resource is not that one")
    assert.equal(hub.unsubscribe(t, { resource: "/feeds/1" }), 1)
    assert.equal(hub.size, 3)
    assert.equal(hub.unsubscribe(t), 3)
    assert.equal(hub.size, 0)
    // another connection's tokens are its own
    const u = new Target()
    await live(hub, t, sub(1, "same"))
    await live(hub, u, sub(1, "same"))
    hub.connectionClosed(t)
    assert.deepEqual(hub.subscriptionsOf(u).map((s) => s.token), ["same"])
    assert.equal(hub.size, 1)
})

test("hub: replay then live, nothing missed and nothing twice; a subscribe whose connection closed registers nothing", async () => {
    const { hub, clock, store } = setup()
    const old = changes(1, 3, "s", "old")
    store.points = old.map((e) => ({ seq: e.seq, stream: e.stream!, atMs: e.atMs!, value: e.value! }))
    let release!: () => void
    store.replayGate = new Promise((r) => (release = r))
    const t = new Target()
    const pending = hub.subscribe(t, sub(1, "r", { sinceMs: 0 }))
    await new Promise((r) => setImmediate(r)) // registered, reading the replay
    // written while the replay is read: one already in it (seq <= high water), one after it
    const inReplay = changes(1, 1, "s", "both")
    store.points.push({ seq: inReplay[0].seq, stream: "s", atMs: inReplay[0].atMs!, value: inReplay[0].value! })
    store.highWaterSeq = inReplay[0].seq
    hub.admit(1, pts(1)).publish(inReplay)
    const after = changes(1, 1, "s", "new")
    hub.admit(1, pts(1)).publish(after)
    clock.turns()
    assert.deepEqual(t.lines, [], "nothing before the acknowledgement")
    release()
    const s = await pending
    s.start()
    assert.deepEqual(t.values("r"), ["old0", "old1", "old2", "both0", "new0"])
    // a subscribe that arrives after its connection closed registers nothing (there is no one to answer)
    const closed = new Target()
    closed.open = false
    ;(await hub.subscribe(closed, sub(1, "x"))).start()
    assert.equal(hub.size, 1)
    assert.deepEqual(closed.lines, [])
})

test("hub: a subscription's timeout ends it with a final 408 push on the injected timers; nothing follows it", async () => {
    const { hub, clock } = setup()
    const t = new Target()
    await live(hub, t, sub(1, "to", { timeoutMs: 60_000 }))
    clock.advance(59_999)
    assert.equal(hub.size, 1)
    clock.advance(1)
    assert.equal(hub.size, 0)
    const final = t.parsed().at(-1)
    assert.deepEqual([final.token, final.status, final.body.code], ["to", 408, "E_SUBSCRIPTION_ENDED"])
    hub.admit(1, pts(1)).publish(changes(1, 1))
    clock.turns()
    assert.equal(t.lines.length, 1)
    // an unsubscribe clears the timer: no final push later
    await live(hub, t, sub(1, "u", { timeoutMs: 10 }))
    hub.unsubscribe(t, { token: "u" })
    clock.advance(100)
    assert.equal(t.lines.length, 1)
})

test("hub: a token's subscription ends when the token expires, idle, with a final 401 E_TOKEN_EXPIRED push; one timer per subscription", async () => {
    const { hub, clock } = setup()
    const t = new Target()
    // the manual clock stands for the server's wall clock too: the token expires at 30 s
    const tokenSub = (token: string, expiresAtMs: number, more: Partial<Parameters<Hub["subscribe"]>[1]> = {}) =>
        sub(1, token, {
            refusal: () => (clock.nowMs >= expiresAtMs ? { status: 401, code: "E_TOKEN_EXPIRED", reason: "the token expired" } : undefined),
            expiresInMs: () => expiresAtMs - clock.nowMs,
            ...more,
        })
    await live(hub, t, tokenSub("tok", 30_000, { timeoutMs: 60_000 }))
    await live(hub, t, sub(1, "key")) // a key's subscription: no timer
    assert.equal(clock.pendingTimers, 1)
    clock.advance(29_999)
    assert.deepEqual([hub.size, t.lines.length], [2, 0])
    clock.advance(1)
    assert.equal(hub.size, 1)
    const final = t.parsed().at(-1)
    assert.deepEqual([final.token, final.status, final.body.code], ["tok", 401, "E_TOKEN_EXPIRED"])
    assert.match(final.body.errors, /the token expired; the subscription to \/feeds\/1 ended/)
    assert.equal(clock.pendingTimers, 0, "its timeout's timer went with it")
    clock.advance(60_000)
    assert.equal(t.parsed().filter((r) => r.token === "tok").length, 1, "nothing follows the final push")

    // a timeout that comes first still ends it with 408, counted from its start
    const u = new Target()
    await live(hub, u, tokenSub("short", clock.nowMs + 90_000, { timeoutMs: 1000 }))
    clock.advance(1000)
    assert.deepEqual(u.parsed().map((r) => [r.status, r.body.code]), [[408, "E_SUBSCRIPTION_ENDED"]])

    // a timer that fires while the token still counts (the clocks apart) waits again for the expiry
    const v = new Target()
    const expiresAtMs = clock.nowMs + 1500
    await live(hub, v, tokenSub("late", expiresAtMs, { expiresInMs: () => expiresAtMs - 500 - clock.nowMs }))
    clock.advance(1000)
    assert.deepEqual([v.lines.length, clock.pendingTimers], [0, 1])
    clock.advance(500)
    assert.deepEqual(v.parsed().map((r) => [r.status, r.body.code]), [[401, "E_TOKEN_EXPIRED"]])
})

test("hub: deleting a feed delivers what its feed still owed, then the deletion and a final 404; a replaying subscription ends after its replay", async () => {
    const { hub, clock, store } = setup()
    const t = new Target()
    await live(hub, t, sub(1, "a"))
    hub.admit(1, pts(3)).publish(changes(1, 3, "s", "owed"))
    let release!: () => void
    store.replayGate = new Promise((r) => (release = r))
    const replaying = hub.subscribe(t, sub(1, "b", { sinceMs: 0 }))
    await new Promise((r) => setImmediate(r))
    hub.endFeed(1) // before any turn ran
    const a = t.parsed().filter((r) => r.token === "a")
    assert.deepEqual(a.map((r) => [r.status, r.body.current_value ?? r.body.deleted ?? r.body.code]), [
        [200, "owed0"],
        [200, "owed1"],
        [200, "owed2"],
        [200, true],
        [404, "E_FEED_DELETED"],
    ])
    release()
    ;(await replaying).start()
    const b = t.parsed().filter((r) => r.token === "b")
    assert.deepEqual(b.map((r) => r.status), [200, 404], "the deletion push and the final push")
    assert.equal(hub.size, 0)
    clock.turns()
})

test("hub: one feed's backlog delays another feed's push by at most one quantum, turn after turn within the budget", () => {
    const { hub, clock } = setup({ quantumPushes: 1000, turnBudgetMs: 5, maxOwedPerFeed: Infinity })
    clock.stepMs = 0.002 // every delivery costs 2 µs of the budget
    const noisy = Array.from({ length: 100 }, () => new Target())
    const quiet = new Target()
    return (async () => {
        for (const [i, t] of noisy.entries()) await live(hub, t, sub(1, `n${i}`))
        await live(hub, quiet, sub(2, "q"))
        // 200 writes of 50 changes to 100 subscribers: a backlog of a million pushes on feed 1
        for (let w = 0; w < 200; ++w) hub.admit(1, pts(50)).publish(changes(1, 50))
        const pushedBefore = () => noisy.reduce((n, t) => n + t.lines.length, 0)
        clock.turns(3)
        const before = pushedBefore()
        let noisyInBetween = -1
        const deliver = quiet.deliver.bind(quiet)
        quiet.deliver = (lines) => {
            noisyInBetween = pushedBefore() - before
            deliver(lines)
        }
        hub.admit(2, pts(1)).publish(changes(2, 1, "s", "marker"))
        let turns = 0
        while (quiet.lines.length === 0) {
            assert.ok(clock.turns(1) === 1, "a turn was scheduled")
            turns++
        }
        assert.ok(turns <= 2, `the quiet feed waited ${turns} turns`)
        assert.ok(noisyInBetween <= 1000 + 50, `${noisyInBetween} pushes of the noisy feed went first`)
        // every turn stays within its budget (plus one delivery)
        const t0 = clock.nowMs
        const n0 = pushedBefore()
        clock.turns(1)
        const spent = clock.nowMs - t0
        assert.ok(spent <= 5 + 0.1, `a turn took ${spent} ms of the clock`)
        assert.ok(pushedBefore() > n0, "the turn delivered something")
        // and the backlog drains, everything delivered, in order
        while (clock.turns(1)) {}
        for (const t of noisy) assert.equal(t.lines.length, 200 * 50)
        assert.ok(hub.idle)
        assert.equal(hub.owed(1), 0)
    })()
})

test("hub: a turn's budget counts the writing out of its pushes that follows it, so a turn with its flush stays near the budget", async () => {
    const { hub, clock } = setup({ quantumPushes: 1000, turnBudgetMs: 5, maxOwedPerFeed: Infinity })
    clock.stepMs = 0.01 // rendering: 10 µs per look at the clock, i.e. per delivery of 20 changes (0.5 µs a push)
    const targets = Array.from({ length: 50 }, () => new Target({ clock, msPerLine: 0.002 })) // writing out: 2 µs a push
    for (const [i, t] of targets.entries()) await live(hub, t, sub(1, `n${i}`))
    for (let w = 0; w < 400; ++w) hub.admit(1, pts(20)).publish(changes(1, 20))
    const spans: number[] = []
    for (let turn = 0; turn < 30; ++turn) {
        const t0 = clock.nowMs
        clock.turns(1)
        spans.push(clock.nowMs - t0)
    }
    // the first turns overrun (the cost is learned); from then on render + flush stay within ~the budget
    const settled = spans.slice(10)
    assert.ok(Math.max(...settled) <= 5 * 1.5, `turns took ${settled.map((x) => x.toFixed(1)).join(", ")} ms`)
    assert.ok(Math.min(...settled) >= 5 * 0.5, `turns do not starve: ${settled.map((x) => x.toFixed(1)).join(", ")} ms`)
})

test("hub: writes to a feed that owes too much are refused 429 E_FANOUT_BUSY with retry_after_ms; other feeds go on; every admitted write is pushed", async () => {
    const { hub, clock } = setup({ maxOwedPerFeed: 1000, quantumPushes: 100, retryMinMs: 100, retryMaxMs: 5000 })
    const subs = Array.from({ length: 10 }, () => new Target())
    for (const [i, t] of subs.entries()) await live(hub, t, sub(1, `s${i}`))
    const other = new Target()
    await live(hub, other, sub(2, "o"))
    // admissions reserve before the commit returns: ten writes of 10 points to 10 subscribers fill the bound
    const pending = Array.from({ length: 10 }, () => hub.admit(1, pts(10)))
    assert.equal(hub.owed(1), 1000)
    assert.throws(
        () => hub.admit(1, pts(10)),
        (e: any) => e.status === 429 && e.code === "E_FANOUT_BUSY" && e.retryAfterMs >= 100 && e.retryAfterMs <= 5000 && /nothing was stored/.test(e.message),
    )
    // a failed commit gives its reservation back
    pending.pop()!.cancel()
    const admitted = [...pending, hub.admit(1, pts(10))]
    const written: string[] = []
    for (const [w, p] of admitted.entries()) {
        const evs = changes(1, 10, "s", `w${w}.`)
        written.push(...evs.map((e) => e.value!))
        p.publish(evs)
    }
    assert.throws(() => hub.admit(1, pts(1)), (e: any) => e.code === "E_FANOUT_BUSY")
    // another feed is not held up by it
    hub.admit(2, pts(1)).publish(changes(2, 1, "s", "quiet"))
    clock.turns(1)
    assert.deepEqual(other.values(), ["quiet0"])
    // once it owes less than the bound, the feed takes writes again; nothing admitted was dropped
    while (hub.owed(1) >= 1000) clock.turns(1)
    hub.admit(1, pts(1)).cancel()
    while (clock.turns(1)) {}
    for (const t of subs) assert.deepEqual(t.values(), written)
    // a single write larger than the bound goes through when the feed owes less than the bound
    const big = hub.admit(1, pts(500))
    assert.equal(hub.owed(1), 5000)
    big.publish(changes(1, 500))
    while (clock.turns(1)) {}
    assert.equal(hub.owed(1), 0)
})

test("hub: a write owes pushes only to the subscriptions of its datastreams: a fleet on one feed, each device subscribed to its own commands, writes without 429 E_FANOUT_BUSY", async () => {
    const { hub, clock } = setup({ maxOwedPerFeed: 1000, quantumPushes: 100 })
    // 300 devices share feed 1, each subscribed to its own command datastream; one operator watches the whole feed
    const devices = Array.from({ length: 300 }, () => new Target())
    for (const [i, t] of devices.entries()) await live(hub, t, sub(1, `d${i}`, { stream: `cmd${i}` }))
    const operator = new Target()
    await live(hub, operator, sub(1, "op"))
    // every device's outbox at once, to its own datastream: each owes the operator one push, no device anything
    const writes = devices.map((_, i) => hub.admit(1, pts(2, `temp${i}`)))
    assert.equal(hub.owed(1), 600, "was 300 subscriptions x 2 points x 300 writes: 180,600, refused past the bound")
    const command = hub.admit(1, pts(1, "cmd7"))
    assert.equal(hub.owed(1), 602)
    for (const [i, w] of writes.entries()) w.publish(changes(1, 2, `temp${i}`))
    command.publish(changes(1, 1, "cmd7", "on"))
    assert.equal(hub.owed(1), 602, "published: owed to the operator, and one push to device 7")
    while (clock.turns(1)) {}
    assert.equal(hub.owed(1), 0)
    assert.deepEqual(devices[7]!.values(), ["on0"])
    assert.equal(devices.reduce((n, d) => n + d.lines.length, 0), 1, "no other device was pushed anything")
    assert.equal(operator.values().length, 601)
})

test("hub: drain delivers everything owed at once (shutdown: before the connections' final notices)", async () => {
    const { hub, clock } = setup({ quantumPushes: 10, turnBudgetMs: 1 })
    clock.stepMs = 0.001
    const t = new Target()
    await live(hub, t, sub(1, "a"))
    await live(hub, t, sub(2, "b"))
    for (let w = 0; w < 50; ++w) hub.admit(1, pts(10)).publish(changes(1, 10))
    hub.admit(2, pts(1)).publish(changes(2, 1))
    hub.drain(clock.nowMs + 1000)
    assert.ok(hub.idle)
    assert.equal(t.lines.length, 501)
    assert.equal(hub.totalOwed, 0)
})

test("fan-out retry hint: the time to deliver the backlog above half the bound at the feed's share, within its bounds", () => {
    const limits = { retryMinMs: 100, retryMaxMs: 5000 }
    assert.equal(fanoutRetryAfterMs(50_000, 50_000, 100, 1, limits), 250) // 25 000 over half, at 100 pushes/ms
    assert.equal(fanoutRetryAfterMs(50_000, 50_000, 100, 4, limits), 1000) // a quarter of the rate
    assert.equal(fanoutRetryAfterMs(50_000, 50_000, 10_000, 1, limits), 100) // never sooner than the minimum
    assert.equal(fanoutRetryAfterMs(10_000_000, 50_000, 1, 1, limits), 5000) // never longer than the maximum
    assert.equal(fanoutRetryAfterMs(50_000, 50_000, 0, 1, limits), 5000) // nothing measured yet
})

test("replay: more points at one `at` than a replay's limit, even past MAX_REPLAY_POINTS, all go in one replay; nothing is lost across the cut (was: 1000 of 1200)", async () => {
    const AT = 1_800_000_000_000
    // 1200 datastreams of a feed written at one `at`, then one point later
    const points: StoredPoint[] = Array.from({ length: 1200 }, (_, i) => ({ stream: `d${i}`, atMs: AT, value: "1", seq: i + 1, txn: 1 }))
    points.push({ stream: "late", atMs: AT + 1, value: "2", seq: 1201, txn: 2 })
    const store = {
        replay: async (_feed: number, _stream: string | undefined, afterMs: number, limit: number): Promise<SeqReplay> => ({
            points: points.filter((p) => p.atMs > afterMs).slice(0, limit),
            seen: () => true,
            highSeq: 1201,
        }),
    }
    for (const limit of [16, MAX_REPLAY_POINTS]) {
        const first = await readReplay(store, 1, undefined, AT - 1, limit)
        assert.deepEqual([first.points.length, first.truncated], [1200, true], `limit ${limit}`)
        // resubscribing with next_since (the last `at` sent) gets the rest, then live
        const rest = await readReplay(store, 1, undefined, first.points.at(-1)!.atMs, limit)
        assert.deepEqual([rest.points.map((p) => p.stream), rest.truncated], [["late"], false])
    }
    // nothing after that `at`: all of it, and live
    points.pop()
    const all = await readReplay(store, 1, undefined, AT - 1, 16)
    assert.deepEqual([all.points.length, all.truncated], [1200, false])
})
