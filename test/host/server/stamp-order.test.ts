// [P§8] A feed's changes handed on in stamp order where several processes commit to it (hub/stamp-order.ts),
// on its own: a stamped change waits for the one it follows (`after`), changes in no chain keep their place
// behind a waiting one, what waits too long or grows too large is a gap, and the store's last stamps read at
// start (load) say what need not be waited for. The time is passed in; nothing sleeps.
import assert from "node:assert/strict"
import { test } from "node:test"
import type { ChangeEvent } from "../../../devs/server/hub/push.ts"
import { StampOrder } from "../../../devs/server/hub/stamp-order.ts"

const F = 1
const limits = { holdMs: 5000, maxHeldEvents: 100, maxFeeds: 1000 }

/** one stamped commit: the feed's last stamp before it, and its stamp */
const stamped = (after: number, atMs: number, value = String(atMs)): ChangeEvent[] => [{ feed: F, seq: atMs, stream: "led", atMs, value, after }]
/** a point with its own `at`, or a deletion: in no chain */
const given = (atMs: number): ChangeEvent[] => [{ feed: F, seq: atMs, stream: "temp", atMs, value: "t" }]
const deletion = (): ChangeEvent[] => [{ feed: F, seq: Infinity, stream: "led", deleted: true }]
const values = (lists: ChangeEvent[][]) => lists.map((l) => l.map((e) => (e.deleted ? "deleted" : e.value)).join("+"))

/** an order that has handed on the feed's stamps up to `lastMs` (what a start reads from the store) */
function started(lastMs: number, floorMs = 0): StampOrder {
    const o = new StampOrder(limits)
    o.load([[F, lastMs]], floorMs)
    return o
}

test("a change that follows the last one handed on goes at once", () => {
    const o = started(100)
    assert.deepEqual(values(o.offer(F, stamped(100, 101), 0).released), ["101"])
    assert.deepEqual(values(o.offer(F, stamped(101, 102), 0).released), ["102"])
    assert.equal(o.waiting, 0)
})

test("a change heard before the one it follows waits for it, then both go in stamp order", () => {
    const o = started(100)
    const early = o.offer(F, stamped(101, 102, "second"), 0)
    assert.deepEqual([early.released, early.held], [[], true])
    assert.deepEqual(values(o.offer(F, stamped(100, 101, "first"), 10).released), ["first", "second"])
    assert.equal(o.waiting, 0)
    assert.equal(o.nextDeadlineMs(), undefined)
})

test("three commits heard last to first go first to last", () => {
    const o = started(100)
    o.offer(F, stamped(102, 103, "c"), 0)
    o.offer(F, stamped(101, 102, "b"), 0)
    assert.deepEqual(values(o.offer(F, stamped(100, 101, "a"), 0).released), ["a", "b", "c"])
})

test("a change in no chain keeps its place behind a waiting one, and goes at once when nothing waits", () => {
    const o = started(100)
    assert.deepEqual(values(o.offer(F, given(50), 0).released), ["t"])
    o.offer(F, stamped(101, 102, "second"), 0)
    assert.deepEqual(o.offer(F, deletion(), 0).released, [], "a deletion heard after a waiting change stays after it")
    assert.deepEqual(values(o.offer(F, stamped(100, 101, "first"), 0).released), ["first", "second", "deleted"])
})

test("another feed's changes do not wait for this one's", () => {
    const o = started(100)
    o.offer(F, stamped(101, 102), 0)
    const other: ChangeEvent[] = [{ feed: 2, seq: 1, stream: "x", atMs: 5000, value: "v", after: 0 }]
    assert.deepEqual(o.offer(2, other, 0).released, [other], "its first stamped change: nothing to wait for")
})

test("a predecessor that does not come within holdMs: the feed is a gap, what waited is dropped, and a late predecessor goes at once", () => {
    const o = started(100)
    o.offer(F, stamped(101, 102, "second"), 1000)
    assert.equal(o.nextDeadlineMs(), 6000)
    assert.deepEqual(o.expired(5999), [])
    assert.deepEqual(o.expired(6000), [F])
    assert.equal(o.waiting, 0)
    // what followed the dropped change goes on, and so does the late one (a replay's subscription skips it: Replay.seen)
    assert.deepEqual(values(o.offer(F, stamped(102, 103, "third"), 7000).released), ["third"])
    assert.deepEqual(values(o.offer(F, stamped(100, 101, "first"), 7000).released), ["first"])
})

test("more than maxHeldEvents waiting: a gap at once", () => {
    const o = started(100)
    let last
    for (let i = 0; i <= limits.maxHeldEvents; i++) last = o.offer(F, stamped(101 + i, 102 + i), 0)
    assert.deepEqual([last!.gap, last!.held, o.waiting], [true, false, 0])
})

test("before load() nothing is known: changes go as heard, as with one process", () => {
    const o = new StampOrder(limits)
    assert.deepEqual(values(o.offer(F, stamped(101, 102), 0).released), ["102"])
    assert.deepEqual(values(o.offer(F, stamped(102, 103), 0).released), ["103"])
})

test("load(): a feed not listed waits only for a stamp above the floor; a waiting change whose predecessor the store has goes", () => {
    const o = new StampOrder(limits)
    o.load([[F, 500]], 400)
    const other = (after: number, atMs: number): ChangeEvent[] => [{ feed: 2, seq: atMs, stream: "x", atMs, value: String(atMs), after }]
    assert.deepEqual(values(o.offer(2, other(300, 600), 0).released), ["600"], "its last stamp at the read was at most the floor")
    assert.equal(o.offer(2, other(650, 700), 0).held, true, "650 came after the read: it will be heard")
    // a second read (after the link to the others broke) has the feed's 650: what waited for it goes
    assert.deepEqual(o.load([[2, 650]], 400).map((r) => values([r.events])[0]), ["700"])
})

test("a publisher of an older version (no `after`): its changes go as heard and count as handed on", () => {
    const o = started(100)
    const old: ChangeEvent[] = [{ feed: F, seq: 1, stream: "led", atMs: 101, value: "old" }]
    assert.deepEqual(values(o.offer(F, old, 0, false).released), ["old"])
    assert.deepEqual(values(o.offer(F, stamped(101, 102), 0).released), ["102"], "not held for a stamp the old publisher gave")
})

test("the feed deleted: what waits goes, in arrival order, and the feed is forgotten", () => {
    const o = started(100)
    o.offer(F, stamped(101, 102, "second"), 0)
    o.offer(F, deletion(), 0)
    assert.deepEqual(values(o.release(F)), ["second", "deleted"])
    assert.equal(o.waiting, 0)
})

test("past maxFeeds the oldest stamps are forgotten and the floor rises to them: a forgotten feed's next change goes at once", () => {
    const o = new StampOrder({ ...limits, maxFeeds: 4 })
    o.load([], 0)
    const ev = (feed: number, after: number, atMs: number): ChangeEvent[] => [{ feed, seq: atMs, stream: "x", atMs, value: String(atMs), after }]
    for (let feed = 1; feed <= 5; feed++) o.offer(feed, ev(feed, 0, feed * 100), 0)
    // feed 1 (stamp 100) was forgotten to make room for feed 5: the floor is 100
    assert.deepEqual(values(o.offer(1, ev(1, 100, 1000), 0).released), ["1000"])
    assert.equal(o.offer(1, ev(1, 1500, 1600), 0).held, true, "known again: 1500 not handed on")
})
