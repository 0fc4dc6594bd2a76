// [P§8] A hub of one of several processes catching feeds up from the store (hub/catch-up.ts, Hub.catchUp)
// after it may have missed other processes' changes, on its own: the store is a fake holding each feed's
// points, last seq and newest datastream deletion. The missed changes go out in commit order before what was
// heard meanwhile, nothing twice; a deleted feed gets its deletion; only a feed that cannot be caught up has
// its subscribers told; the store unreadable rejects (the caller tells everyone). The PostgreSQL side:
// test/host/server/scale/faults.test.ts and push-order.test.ts.
import assert from "node:assert/strict"
import { test } from "node:test"
import { planCatchUp } from "../../../devs/server/hub/catch-up.ts"
import { Hub, type ChangeEvent, type PushTarget } from "../../../devs/server/hub/index.ts"
import type { FeedChanges, StoredPoint } from "../../../devs/server/storage/store.ts"

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

/** what a store holds of a feed: its points (seq order) and its newest datastream deletion's seq */
interface FakeFeed {
    points: StoredPoint[]
    deletedSeq: number
}

function setup() {
    const feeds = new Map<number, FakeFeed>([
        [1, { points: [], deletedSeq: 0 }],
        [2, { points: [], deletedSeq: 0 }],
        [3, { points: [], deletedSeq: 0 }],
    ])
    const lastOf = (f: FakeFeed) => Math.max(f.deletedSeq, ...f.points.map((p) => p.seq), 0)
    const missed: Map<number, string>[] = []
    let failing = false
    const hub = new Hub({
        relay: () => {},
        onMissed: (told) => missed.push(told),
        store: {
            feedExists: (feed) => feeds.has(feed),
            replay: async () => ({ points: [], seen: () => false, highSeq: 0 }),
            replayAfterSeq: async () => ({ points: [], seen: () => false, highSeq: 0 }),
            lastSeqs: async () => ({ seqs: new Map([...feeds].map(([id, f]) => [id, lastOf(f)])), complete: true }),
            changesAfter: async (after, limit) => {
                if (failing) throw new Error("the store is away")
                const out = new Map<number, FeedChanges>()
                for (const [id, seq] of after) {
                    const f = feeds.get(id)
                    if (f) out.set(id, { lastSeq: lastOf(f), deletedSeq: f.deletedSeq, points: f.points.filter((p) => p.seq > seq).slice(0, limit + 1) })
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

async function subscribed(hub: Hub, feed: number): Promise<Target> {
    const t = new Target()
    ;(await hub.subscribe(t, { token: `s${feed}`, resource: `/feeds/${feed}`, feed, refusal: () => undefined, limit: 1000 })).start()
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

test("only a feed with a datastream deleted after what was pushed has its subscribers told; a deleted feed's subscribers get the deletion; a feed with nothing missed is left alone", async () => {
    const { hub, feeds, commit, missed } = setup()
    await hub.syncCommitOrder()
    const [t1, t2, t3] = [await subscribed(hub, 1), await subscribed(hub, 2), await subscribed(hub, 3)]
    commit(1, 21, "one")
    commit(2, 22, "two")
    feeds.get(2)!.deletedSeq = 23 // a datastream of feed 2 deleted on a process whose publish never came
    feeds.delete(3) // feed 3 deleted, unheard
    await turns()
    const o = await hub.catchUp("changes another process committed did not arrive")
    await turns()
    assert.deepEqual([...o.told.keys()], [2])
    assert.match(o.told.get(2)!, /datastream of feed 2 was deleted/)
    assert.deepEqual(missed.map((m) => [...m.keys()]), [[2]], "the wiring tells feed 2's subscribers alone")
    assert.equal(o.deleted, 1)
    const ended = t3.parsed()
    assert.deepEqual(ended.slice(-2).map((r) => [r.status, r.body.deleted ?? r.body.code]), [[200, true], [404, "E_FEED_DELETED"]])
    assert.deepEqual([t1.values(), t2.values()], [["one"], ["two"]])
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

test("planCatchUp: nothing newer, datapoints only, too many, a deletion, the feed gone, nothing known", () => {
    const p = (seq: number): StoredPoint => ({ stream: "s", atMs: seq, value: String(seq), seq })
    assert.deepEqual(planCatchUp(1, 10, { lastSeq: 10, deletedSeq: 5, points: [] }, 3), { kind: "current", storeSeq: 10 })
    const repair = planCatchUp(1, 10, { lastSeq: 12, deletedSeq: 5, points: [p(11), p(12)] }, 3)
    assert.deepEqual(repair.kind === "repair" && repair.events.map((e) => e.seq), [11, 12])
    assert.equal(planCatchUp(1, 10, { lastSeq: 14, deletedSeq: 0, points: [p(11), p(12), p(13), p(14)] }, 3).kind, "told")
    assert.equal(planCatchUp(1, 10, { lastSeq: 12, deletedSeq: 11, points: [p(12)] }, 3).kind, "told")
    assert.deepEqual(planCatchUp(1, 10, undefined, 3), { kind: "deleted" })
    assert.equal(planCatchUp(1, -Infinity, { lastSeq: 1, deletedSeq: 0, points: [] }, 3).kind, "told")
})
