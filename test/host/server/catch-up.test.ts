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

function setup() {
    const feeds = new Map<number, FakeFeed>([
        [1, { points: [], deletions: [], unnamedSeq: 0 }],
        [2, { points: [], deletions: [], unnamedSeq: 0 }],
        [3, { points: [], deletions: [], unnamedSeq: 0 }],
    ])
    const lastOf = (f: FakeFeed) => Math.max(f.unnamedSeq, ...f.deletions.map((d) => d.seq), ...f.points.map((p) => p.seq), 0)
    const missed: Map<number, string>[] = []
    let failing = false
    const hub = new Hub({
        relay: () => {},
        onMissed: (told) => missed.push(told),
        store: {
            feedExists: (feed) => feeds.has(feed),
            replay: async () => ({ points: [], seen: () => false, highSeq: 0 }),
            // the feed's head in the read's snapshot: every seq up to it committed before the read (seen), later ones not
            replayAfterSeq: async (feed, _stream, afterSeq, limit) => {
                const f = feeds.get(feed)!
                const highSeq = lastOf(f)
                return { points: f.points.filter((p) => p.seq > (afterSeq ?? Infinity)).slice(0, limit), seen: (c) => c.seq <= highSeq, highSeq }
            },
            lastSeqs: async () => ({ seqs: new Map([...feeds].map(([id, f]) => [id, lastOf(f)])), complete: true }),
            changesAfter: async (after, limit) => {
                if (failing) throw new Error("the store is away")
                const out = new Map<number, FeedChanges>()
                for (const [id, seq] of after) {
                    const f = feeds.get(id)
                    if (f) out.set(id, { lastSeq: lastOf(f), unnamedDeletionSeq: f.unnamedSeq, deletions: f.deletions.filter((d) => d.seq > seq).slice(0, limit + 1), points: f.points.filter((p) => p.seq > seq).slice(0, limit + 1) })
                }
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
    return { hub, feeds, commit, missed, fail: (on: boolean) => (failing = on) }
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
