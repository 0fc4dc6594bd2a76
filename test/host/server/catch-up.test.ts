// [P§8] A hub of one of several processes catching feeds up from the store (hub/catch-up.ts, Hub.catchUp)
// after it may have missed other processes' changes, on its own: the store is a fake holding each feed's
// points, datastream deletions and last seq. The missed changes go out in commit order before what was
// heard meanwhile, nothing twice, a datastream's deletion among them; a deleted feed gets its deletion; only a feed that cannot be caught up has
// its subscribers told; the store unreadable rejects (the caller tells everyone). The PostgreSQL side:
// test/host/server/scale/faults.test.ts and push-order.test.ts.
import assert from "node:assert/strict"
import { test } from "node:test"
import { planCatchUp } from "../../../devs/server/hub/catch-up.ts"
import { Hub, type ChangeEvent, type PushTarget } from "../../../devs/server/hub/index.ts"
import type { FeedChanges, RecordedDeletion, StoredPoint } from "../../../devs/server/storage/store.ts"

class Target implements PushTarget {
    open = true
    lines: string[] = []
    deliver(lines: string[]): void {
        this.lines.push(...lines)
    }
    parsed(): any[] {
        return this.lines.map((l) => JSON.parse(l))
    }
    values(): string[] {
        return this.parsed()
            .filter((r) => r.status === 200 && r.body.current_value !== undefined)
            .map((r) => r.body.current_value)
    }
}

/** what a store holds of a feed: its points and its datastreams' deletions (seq order), and its newest deletion it cannot name */
interface FakeFeed {
    points: StoredPoint[]
    deletions: RecordedDeletion[]
    unnamedSeq: number
}

function setup(opts: { holdMs?: number } = {}) {
    const feeds = new Map<number, FakeFeed>([
        [1, { points: [], deletions: [], unnamedSeq: 0 }],
        [2, { points: [], deletions: [], unnamedSeq: 0 }],
        [3, { points: [], deletions: [], unnamedSeq: 0 }],
    ])
    const lastOf = (f: FakeFeed) => Math.max(f.unnamedSeq, ...f.deletions.map((d) => d.seq), ...f.points.map((p) => p.seq), 0)
    const missed: Map<number, string>[] = []
    const counted = { gaps: 0, held: 0 }
    let failing = false
    /** while set, the catch-ups' reads (changesAfter) and the subscribes' replays wait for them (a read in flight) */
    const gates: { reads?: Promise<void>; replays?: Promise<void> } = {}
    const hub = new Hub({
        relay: () => {},
        limits: opts.holdMs === undefined ? undefined : { stampOrderHoldMs: opts.holdMs },
        onMissed: (told) => missed.push(told),
        onOrderGap: () => counted.gaps++,
        onHeld: () => counted.held++,
        store: {
            feedExists: (feed) => feeds.has(feed),
            replay: async () => ({ points: [], seen: () => false, highSeq: 0 }),
            // the feed's head in the read's snapshot: every seq up to it committed before the read (seen), later ones not
            replayAfterSeq: async (feed, _stream, afterSeq, limit) => {
                const f = feeds.get(feed)!
                const highSeq = lastOf(f)
                const points = f.points.filter((p) => p.seq > (afterSeq ?? Infinity)).slice(0, limit)
                if (gates.replays) await gates.replays
                return { points, seen: (c) => c.seq <= highSeq, highSeq }
            },
            lastSeqs: async () => ({ seqs: new Map([...feeds].map(([id, f]) => [id, lastOf(f)])), complete: true }),
            changesAfter: async (after, limit) => {
                if (failing) throw new Error("the store is away")
                // the snapshot is taken when the read starts: what is committed while it is in flight is not in it
                const out = new Map<number, FeedChanges>()
                for (const [id, seq] of after) {
                    const f = feeds.get(id)
                    if (f) out.set(id, { lastSeq: lastOf(f), unnamedDeletionSeq: f.unnamedSeq, deletions: f.deletions.filter((d) => d.seq > seq).slice(0, limit + 1), points: f.points.filter((p) => p.seq > seq).slice(0, limit + 1) })
                }
                if (gates.reads) await gates.reads
                return out
            },
        },
    })
    /** a change another process committed: stored, and (unless lost) heard */
    const commit = (feed: number, seq: number, value: string, heard = true): ChangeEvent[] => {
        const f = feeds.get(feed)!
        const prevSeq = lastOf(f)
        const p: StoredPoint = { stream: "s", atMs: 1_700_000_000_000 + seq, value, seq }
        f.points.push(p)
        const events = [{ feed, seq, stream: "s", atMs: p.atMs, value, prevSeq }]
        if (heard) hub.receive({ events, chained: "seq" })
        return events
    }
    /** the catch-ups' reads, or the subscribes' replays, started from now on wait until the returned function is called (their snapshots taken) */
    const hold = (which: keyof typeof gates): (() => void) => {
        let open!: () => void
        gates[which] = new Promise<void>((r) => (open = r))
        return () => {
            gates[which] = undefined
            open()
        }
    }
    /** the store's history goes back to `seq` (a failover to a restored replica): what feed committed after it is gone */
    const restore = (feed: number, seq: number) => {
        const f = feeds.get(feed)!
        f.points = f.points.filter((p) => p.seq <= seq)
    }
    return { hub, feeds, commit, missed, counted, hold, restore, fail: (on: boolean) => (failing = on) }
}

async function subscribed(hub: Hub, feed: number, params: { afterSeq?: number | "latest" } = {}): Promise<Target> {
    const t = new Target()
    ;(await hub.subscribe(t, { token: `s${feed}`, resource: `/feeds/${feed}`, feed, refusal: () => undefined, limit: 1000, withSeq: params.afterSeq !== undefined, ...params })).start()
    return t
}

/** lets the fan-out's turns (setImmediate) run */
const turns = () => new Promise((r) => setTimeout(r, 20))

test("missed changes go out from the store in commit order, before what was heard meanwhile; a late publish of one is not pushed again", async () => {
    const { hub, commit } = setup()
    await hub.syncCommitOrder()
    const t = await subscribed(hub, 1)
    commit(1, 11, "a")
    await turns()
    // b and c committed on a process whose publishes never came; d heard (it waits for c)
    const lostB = commit(1, 12, "b", false)
    commit(1, 13, "c", false)
    commit(1, 14, "d")
    await turns()
    assert.deepEqual(t.values(), ["a"], "d waits for the change before it")
    const o = await hub.catchUp("the link to the others broke")
    await turns()
    assert.deepEqual(t.values(), ["a", "b", "c", "d"])
    assert.deepEqual([o.checked, o.repaired, o.pushes, o.told.size], [1, 1, 3, 0], "b, c and d from the store (d heard, waiting: not pushed twice)")
    hub.receive({ events: lostB, chained: "seq" })
    commit(1, 15, "e")
    await turns()
    assert.deepEqual(t.values(), ["a", "b", "c", "d", "e"], "b's late publish dropped")
})

test("a datastream deleted unheard goes out in its place among the missed changes, to the subscribers it concerns; a feed the store cannot tell about (a name deleted twice, a deletion it cannot name) has its subscribers told; a deleted feed's subscribers get the deletion; a feed with nothing missed is left alone", async () => {
    const { hub, feeds, commit, missed } = setup()
    await hub.syncCommitOrder()
    const [t1, t2, t3] = [await subscribed(hub, 1), await subscribed(hub, 2), await subscribed(hub, 3)]
    const other = new Target()
    ;(await hub.subscribe(other, { token: "o", resource: "/feeds/1/datastreams/o", feed: 1, stream: "o", refusal: () => undefined, limit: 1000 })).start()
    commit(1, 21, "one")
    commit(2, 22, "two")
    await turns()
    // on a process whose publishes never came: feed 1's "s" deleted between two writes, feed 2's "s" deleted twice
    commit(1, 23, "before", false)
    feeds.get(1)!.deletions.push({ stream: "s", seq: 24, earlierSeq: 0 })
    commit(1, 25, "after", false)
    feeds.get(2)!.deletions.push({ stream: "s", seq: 27, earlierSeq: 26 })
    feeds.delete(3) // feed 3 deleted, unheard
    const o = await hub.catchUp("changes another process committed did not arrive")
    await turns()
    assert.deepEqual([...o.told.keys()], [2])
    assert.match(o.told.get(2)!, /datastream "s" of feed 2 was deleted more than once/)
    assert.deepEqual(missed.map((m) => [...m.keys()]), [[2]], "the wiring tells feed 2's subscribers alone")
    assert.deepEqual([o.repaired, o.pushes, o.deleted], [1, 3, 1])
    assert.deepEqual(t1.parsed().map((r) => r.body.current_value ?? (r.body.deleted && `deleted ${r.body.id}`)), ["one", "before", "deleted s", "after"], "in commit order")
    assert.deepEqual(other.lines, [], "a subscriber of another datastream of the feed is pushed nothing")
    const ended = t3.parsed()
    assert.deepEqual(ended.slice(-2).map((r) => [r.status, r.body.deleted ?? r.body.code]), [[200, true], [404, "E_FEED_DELETED"]])
    assert.deepEqual(t2.values(), ["two"])
})

test("the store cannot be read: a catch-up of every feed rejects (the caller tells every subscriber); one of given feeds tells theirs", async () => {
    const { hub, commit, missed, fail } = setup()
    await hub.syncCommitOrder()
    const t = await subscribed(hub, 1)
    fail(true)
    await assert.rejects(hub.catchUp("the link broke"), /the store is away/)
    const o = await hub.catchUp("a gap", [1])
    assert.deepEqual([...o.told.keys()], [1])
    assert.equal(missed.length, 1)
    // what was held is not held for ever: the feed goes on
    fail(false)
    commit(1, 31, "after")
    await turns()
    assert.deepEqual(t.values(), ["after"])
})

test("a feed nobody subscribed to while its changes were missed (a catch-up skips it): a plain subscriber made afterwards is pushed only what is committed after its answer, at once, not what was missed before it (nor held for it); one with `after` gets the missed ones in its replay, each once", async () => {
    const { hub, commit, missed } = setup()
    await hub.syncCommitOrder()
    commit(1, 1, "heard")
    commit(2, 1, "heard")
    await turns()
    // the link to the others broke: feeds 1 and 2 are written meanwhile, unheard, and a catch-up skips them (no subscriber here)
    for (let seq = 2; seq <= 4; seq++) commit(1, seq, `missed ${seq}`, false)
    for (let seq = 2; seq <= 1100; seq++) commit(2, seq, `missed ${seq}`, false)
    assert.equal((await hub.catchUp("the link to the others is back")).checked, 0)
    const plain = await subscribed(hub, 1)
    const after = await subscribed(hub, 2, { afterSeq: 1000 })
    commit(1, 5, "new")
    commit(2, 1101, "new")
    await turns()
    assert.deepEqual(plain.values(), ["new"], "without the hold a stale position puts on it, and nothing committed before the subscribe")
    const seqs = after.parsed().filter((r) => r.status === 200 && r.body.seq !== undefined).map((r) => r.body.seq)
    assert.deepEqual(seqs, [...Array.from({ length: 100 }, (_, i) => 1001 + i), 1101], "the replay after 1000, then the new change: each once, in order")
    // the next catch-up of every feed finds them current: nothing pushed again, nobody told
    const o = await hub.catchUp("another interruption")
    await turns()
    assert.deepEqual([o.checked, o.repaired, o.told.size, missed.length], [2, 0, 0, 0])
    assert.deepEqual(plain.values(), ["new"])
    assert.equal(after.parsed().length, 101)
})

test("planCatchUp: nothing newer, datapoints and deletions in seq order, too many, a name deleted twice, a deletion it cannot name, the feed gone, nothing known", () => {
    const p = (seq: number): StoredPoint => ({ stream: "s", atMs: seq, value: String(seq), seq })
    const d = (seq: number, earlierSeq = 0): RecordedDeletion => ({ stream: "t", seq, earlierSeq })
    const read = (lastSeq: number, points: StoredPoint[], deletions: RecordedDeletion[] = [], unnamedDeletionSeq = 0): FeedChanges => ({ lastSeq, unnamedDeletionSeq, deletions, points })
    assert.deepEqual(planCatchUp(1, 10, read(10, [], [], 5), 3), { kind: "current", storeSeq: 10 })
    const repair = planCatchUp(1, 10, read(13, [p(11), p(13)], [d(12, 4)], 5), 3)
    assert.deepEqual(repair.kind === "repair" && repair.events.map((e) => [e.seq, e.deleted ?? false]), [[11, false], [12, true], [13, false]])
    assert.equal(planCatchUp(1, 10, read(14, [p(11), p(12), p(13), p(14)]), 3).kind, "told")
    assert.equal(planCatchUp(1, 10, read(14, [p(11), p(12), p(13)], [d(14)]), 3).kind, "told", "more than the limit, deletions counted")
    assert.equal(planCatchUp(1, 10, read(12, [p(12)], [d(11, 0)], 11), 3).kind, "told", "a deletion it cannot name")
    assert.equal(planCatchUp(1, 10, read(13, [p(12)], [d(13, 11)]), 3).kind, "told", "a name deleted twice")
    assert.deepEqual(planCatchUp(1, 10, undefined, 3), { kind: "deleted" })
    assert.equal(planCatchUp(1, -Infinity, read(1, []), 3).kind, "told")
})

test("[P§8] the store's history went back (a failover to a restored replica): a change whose seqs were pushed here already (in the old history) is not dropped in silence: the feed's subscribers are told to resubscribe, and its order goes on from the store's head", async () => {
    const { hub, commit, missed, restore } = setup()
    await hub.syncCommitOrder()
    const t = await subscribed(hub, 1, { afterSeq: "latest" })
    for (let seq = 1; seq <= 5; seq++) commit(1, seq, `old ${seq}`)
    // a catch-up (the link to the others came back) found nothing missed: every seq up to 5 counts as pushed
    assert.equal((await hub.catchUp("the link to the others came back")).checked, 1)
    await turns()
    assert.deepEqual(t.values(), ["old 1", "old 2", "old 3", "old 4", "old 5"])
    // the store fails over to a replica restored at seq 2: the next commit takes seq 3 again, after 2
    restore(1, 2)
    commit(1, 3, "new 3")
    await turns()
    assert.deepEqual(missed.map((m) => [...m.keys()]), [[1]], "its subscribers are told (503 E_PUSHES_INTERRUPTED: they resubscribe with after)")
    assert.match(missed[0].get(1)!, /feed 1's seqs went back/)
    // resubscribed (by `after` = 2, the new head less one, as the cursor does): the replay, then the next change at once
    const again = await subscribed(hub, 1, { afterSeq: 2 })
    commit(1, 4, "new 4")
    await turns()
    assert.deepEqual(again.values(), ["new 3", "new 4"])
    assert.equal(missed.length, 1, "told once")
})

test("a feed's first subscriber here goes live while a catch-up of the feed reads the store from a place left behind: the catch-up goes on from its head, and nobody is told to resubscribe however many changes were missed before it", async () => {
    const { hub, commit, missed, hold } = setup()
    await hub.syncCommitOrder()
    const first = await subscribed(hub, 2)
    // the link to the others broke: 1100 changes of feed 2 unheard (more than a catch-up pushes)
    for (let seq = 1; seq <= 1100; seq++) commit(2, seq, `missed ${seq}`, false)
    const open = hold("reads")
    const catching = hub.catchUp("the link to the others is back")
    await turns()
    // while its read is in flight the feed's subscriber goes and another comes, live from the store's head
    hub.unsubscribe(first)
    const next = await subscribed(hub, 2, { afterSeq: "latest" })
    open()
    await catching
    await turns()
    assert.deepEqual(missed, [], "nobody told: the one subscriber went live after what was missed")
    commit(2, 1101, "new")
    await turns()
    assert.deepEqual(next.values(), ["new"], "at once")
})

test("a subscriber whose replay is read while a catch-up of its feed plans (registered, not live): not told to resubscribe for changes missed before its head, and pushed the next change at once", async () => {
    const { hub, commit, missed, hold } = setup()
    await hub.syncCommitOrder()
    const first = await subscribed(hub, 2)
    for (let seq = 1; seq <= 1100; seq++) commit(2, seq, `missed ${seq}`, false)
    hub.unsubscribe(first)
    const open = hold("replays")
    const subscribing = subscribed(hub, 2, { afterSeq: "latest" })
    await turns()
    await hub.catchUp("the link to the others is back")
    open()
    const next = await subscribing
    await turns()
    assert.deepEqual(missed, [], "nobody here had gone live before what was missed")
    commit(2, 1101, "new")
    await turns()
    assert.deepEqual(next.values(), ["new"])
})

test("two subscribers arriving at once on a feed whose changes were missed while nobody here subscribed: its next change goes to both at once, not held for the missed ones", async () => {
    const { hub, commit, counted, missed } = setup()
    await hub.syncCommitOrder()
    for (let seq = 1; seq <= 3; seq++) commit(1, seq, `missed ${seq}`, false)
    const [plain, after] = await Promise.all([subscribed(hub, 1), subscribed(hub, 1, { afterSeq: "latest" })])
    commit(1, 4, "new")
    await turns()
    assert.deepEqual([plain.values(), after.values(), counted.held, missed.length], [["new"], ["new"], 0, 0])
})

test("a feed nobody subscribes to here needs no order: after its changes were missed its next change is neither held nor a gap, nor is one waiting when its last subscriber goes", async () => {
    const { hub, commit, counted } = setup({ holdMs: 10 })
    await hub.syncCommitOrder()
    for (let seq = 1; seq <= 3; seq++) commit(3, seq, `missed ${seq}`, false)
    await hub.catchUp("the link to the others is back")
    commit(3, 4, "heard")
    // a subscriber whose feed has a change waiting for one that never comes, and goes
    const t = await subscribed(hub, 2)
    commit(2, 1, "lost", false)
    commit(2, 2, "waits")
    assert.equal(counted.held, 1)
    hub.unsubscribe(t)
    await new Promise((r) => setTimeout(r, 50))
    assert.deepEqual(counted, { gaps: 0, held: 1 })
    // feed 3's first subscriber later gets its next change at once
    const later = await subscribed(hub, 3)
    commit(3, 5, "new")
    await turns()
    assert.deepEqual(later.values(), ["new"])
})
