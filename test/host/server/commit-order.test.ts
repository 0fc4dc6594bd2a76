// [P§8] A feed's changes handed on in commit order where several processes commit to it (hub/commit-order.ts),
// on its own: a change waits for the one it follows (`prevSeq`), changes in no chain keep their place
// behind a waiting one, what waits too long or grows too large is a gap, and the store's last seqs read at
// start (load) say what need not be waited for. The time is passed in; nothing sleeps.
import assert from "node:assert/strict"
import { test } from "node:test"
import type { ChangeEvent } from "../../../devs/server/hub/push.ts"
import { CommitOrder } from "../../../devs/server/hub/commit-order.ts"

const F = 1
const limits = { holdMs: 5000, maxHeldEvents: 100, maxFeeds: 1000 }

/** one commit: the feed's last seq before it, and its seq (a point with its own `at` as well as a stamped one) */
const chained = (prevSeq: number, seq: number, value = String(seq)): ChangeEvent[] => [{ feed: F, seq, stream: "led", atMs: seq, value, prevSeq }]
/** a change without prevSeq (as a deletion): in no chain */
const given = (seq: number): ChangeEvent[] => [{ feed: F, seq, stream: "temp", atMs: seq, value: "t" }]
const deletion = (): ChangeEvent[] => [{ feed: F, seq: Infinity, stream: "led", deleted: true }]
const values = (lists: ChangeEvent[][]) => lists.map((l) => l.map((e) => (e.deleted ? "deleted" : e.value)).join("+"))

/** an order that has handed on the feed's seqs up to `last` (what a start reads from the store) */
function started(last: number): CommitOrder {
    const o = new CommitOrder(limits)
    o.load([[F, last]], true)
    return o
}

test("a change that follows the last one handed on goes at once", () => {
    const o = started(100)
    assert.deepEqual(values(o.offer(F, chained(100, 101), 0).released), ["101"])
    assert.deepEqual(values(o.offer(F, chained(101, 102), 0).released), ["102"])
    assert.equal(o.waiting, 0)
})

test("a change heard before the one it follows waits for it, then both go in commit order", () => {
    const o = started(100)
    const early = o.offer(F, chained(101, 102, "second"), 0)
    assert.deepEqual([early.released, early.held], [[], true])
    assert.deepEqual(values(o.offer(F, chained(100, 101, "first"), 10).released), ["first", "second"])
    assert.equal(o.waiting, 0)
    assert.equal(o.nextDeadlineMs(), undefined)
})

test("three commits heard last to first go first to last", () => {
    const o = started(100)
    o.offer(F, chained(102, 103, "c"), 0)
    o.offer(F, chained(101, 102, "b"), 0)
    assert.deepEqual(values(o.offer(F, chained(100, 101, "a"), 0).released), ["a", "b", "c"])
})

test("a change in no chain keeps its place behind a waiting one, and goes at once when nothing waits", () => {
    const o = started(100)
    assert.deepEqual(values(o.offer(F, given(50), 0).released), ["t"])
    o.offer(F, chained(101, 102, "second"), 0)
    assert.deepEqual(o.offer(F, deletion(), 0).released, [], "a deletion heard after a waiting change stays after it")
    assert.deepEqual(values(o.offer(F, chained(100, 101, "first"), 0).released), ["first", "second", "deleted"])
})

test("another feed's changes do not wait for this one's", () => {
    const o = started(100)
    o.offer(F, chained(101, 102), 0)
    const other: ChangeEvent[] = [{ feed: 2, seq: 5000, stream: "x", atMs: 5000, value: "v", prevSeq: 0 }]
    assert.deepEqual(o.offer(2, other, 0).released, [other], "its first change: nothing to wait for")
})

test("a predecessor that does not come within holdMs: the feed is a gap, to be caught up from the store; what waited keeps waiting meanwhile", () => {
    const o = started(100)
    o.offer(F, chained(101, 102, "second"), 1000)
    assert.equal(o.nextDeadlineMs(), 6000)
    assert.deepEqual(o.expired(5999), [])
    assert.deepEqual(o.expired(6000), [F])
    // the hub pauses it while it reads the store: no deadline, no second expiry
    o.pause(F)
    assert.equal(o.nextDeadlineMs(), undefined)
    assert.deepEqual(o.expired(9000), [])
    assert.equal(o.offer(F, chained(102, 103, "third"), 7000).held, true, "a change heard while the feed is caught up waits for the read")
    // the store had 101 and 102 (read after 100): they go first, in commit order; 102 heard is not pushed twice, 103 follows
    const r = o.resume(F, 102, [...chained(100, 101, "first"), ...chained(101, 102, "second")])
    assert.deepEqual(values(r.released), ["first+second", "third"])
    assert.equal(r.overflowed, false)
    assert.equal(o.waiting, 0)
    // the late publish of 101 is handed on already: dropped
    assert.deepEqual(o.offer(F, chained(100, 101, "first"), 7000).released, [])
})

test("a change whose seqs were all handed on (a catch-up pushed it from the store) is dropped; before load() nothing is", () => {
    const o = started(100)
    assert.deepEqual(o.resume(F, 105, []).released, [])
    assert.deepEqual(o.offer(F, chained(104, 105), 0).released, [], "105 went out from the store")
    assert.deepEqual(values(o.offer(F, chained(105, 106), 0).released), ["106"])
    const fresh = new CommitOrder(limits)
    assert.equal(fresh.handedOnUpTo(F), -Infinity)
    fresh.offer(F, chained(5, 6), 0)
    assert.deepEqual(values(fresh.offer(F, chained(4, 5), 0).released), ["5"], "heard out of order before load(): goes as heard")
})

test("one commit's changes arrive as several messages (one per write it held), in any order: every one goes", () => {
    const o = started(100)
    const second: ChangeEvent[] = [{ feed: F, seq: 102, stream: "led", atMs: 102, value: "b", prevSeq: 100 }]
    const first: ChangeEvent[] = [{ feed: F, seq: 101, stream: "led", atMs: 101, value: "a", prevSeq: 100 }]
    assert.deepEqual(values(o.offer(F, second, 0).released), ["b"])
    assert.deepEqual(values(o.offer(F, first, 0).released), ["a"], "not taken for one handed on already")
})

test("more than maxHeldEvents arrive while the feed is caught up: dropped, and resume says so", () => {
    const o = started(100)
    o.pause(F)
    for (let i = 0; i <= limits.maxHeldEvents; i++) o.offer(F, chained(101 + i, 102 + i), 0)
    const r = o.resume(F, 101, [])
    assert.deepEqual([r.overflowed, r.released, o.waiting], [true, [], 0])
})

test("giveUp: what waits is dropped and counted as handed on (the feed's subscribers resubscribe)", () => {
    const o = started(100)
    o.offer(F, chained(101, 102, "second"), 0)
    o.giveUp(F)
    assert.equal(o.waiting, 0)
    assert.deepEqual(o.offer(F, chained(100, 101, "first"), 0).released, [], "the late predecessor: in their replays")
    assert.deepEqual(values(o.offer(F, chained(102, 103, "third"), 0).released), ["third"])
})

test("more than maxHeldEvents waiting: a gap at once", () => {
    const o = started(100)
    let last
    for (let i = 0; i <= limits.maxHeldEvents; i++) last = o.offer(F, chained(101 + i, 102 + i), 0)
    assert.deepEqual([last!.gap, last!.held, o.waiting], [true, false, 0])
})

test("before load() nothing is known: changes go as heard, as with one process", () => {
    const o = new CommitOrder(limits)
    assert.deepEqual(values(o.offer(F, chained(101, 102), 0).released), ["102"])
    assert.deepEqual(values(o.offer(F, chained(102, 103), 0).released), ["103"])
})

const ofFeed = (feed: number, prevSeq: number, seq: number): ChangeEvent[] => [{ feed, seq, stream: "x", atMs: seq, value: String(seq), prevSeq }]

test("load() listing every feed with a seq: a feed not listed has none, so its first commit goes and one after a seq it never had waits; a waiting change whose predecessor a later read has goes", () => {
    const o = new CommitOrder(limits)
    o.load([[F, 500]], true)
    assert.equal(o.offer(2, ofFeed(2, 3, 4), 0).held, true, "feed 2 had no seq at the read: its 3 came after, it will be heard")
    assert.deepEqual(values(o.offer(3, ofFeed(3, 0, 1), 0).released), ["1"], "feed 3's first commit")
    // a second read (after the link to the others broke) has feed 2's 3: what waited for it goes
    assert.deepEqual(o.load([[2, 3]], true).map((r) => values([r.events])[0]), ["4"])
})

test("[P§8] seqs are per feed: another feed's seqs, however high, say nothing of this one's (a read that did not list every feed leaves the others unknown: their changes go as heard)", () => {
    const o = new CommitOrder(limits)
    o.load([[F, 9000]], false)
    assert.equal(o.handedOnUpTo(2), -Infinity, "nothing known of feed 2")
    assert.deepEqual(values(o.offer(2, ofFeed(2, 6, 7), 0).released), ["7"], "goes as heard, and starts feed 2's chain here")
    assert.equal(o.offer(2, ofFeed(2, 8, 9), 0).held, true, "8 not handed on")
    assert.deepEqual(values(o.offer(2, ofFeed(2, 7, 8), 0).released), ["8", "9"])
    assert.equal(o.offer(F, chained(9001, 9002), 0).held, true, "feed 1's chain is its own")
})

test("a publisher of an older version (no `prevSeq`): its changes go as heard and count as handed on", () => {
    const o = started(100)
    const old: ChangeEvent[] = [{ feed: F, seq: 101, stream: "led", atMs: 5, value: "old" }]
    assert.deepEqual(values(o.offer(F, old, 0, false).released), ["old"])
    assert.deepEqual(values(o.offer(F, chained(101, 102), 0).released), ["102"], "not held for a seq the old publisher committed")
})

test("a publisher of an older version (no `prevSeq`): its change that a catch-up pushed from the store is not pushed again, whether its publish came during the read or after it", () => {
    const o = started(100)
    const old = (seq: number): ChangeEvent[] => [{ feed: F, seq, stream: "led", atMs: seq, value: `old ${seq}` }]
    o.pause(F)
    assert.equal(o.offer(F, old(101), 0, false).held, true, "heard while the feed is caught up: waits for the read")
    const r = o.resume(F, 102, [{ ...old(101)[0], prevSeq: 100 }, { ...old(102)[0], prevSeq: 101 }])
    assert.deepEqual(values(r.released), ["old 101+old 102"], "the read's, once; what waited was in it")
    assert.deepEqual(o.offer(F, old(102), 0, false).released, [], "its late publish: in the read")
    assert.deepEqual(values(o.offer(F, old(103), 0, false).released), ["old 103"])
})

test("the feed deleted: what waits goes, in arrival order, and the feed is forgotten", () => {
    const o = started(100)
    o.offer(F, chained(101, 102, "second"), 0)
    o.offer(F, deletion(), 0)
    assert.deepEqual(values(o.release(F)), ["second", "deleted"])
    assert.equal(o.waiting, 0)
})

test("past maxFeeds the feed handed on least recently is forgotten (not the one with the lowest seq: seqs are per feed); a forgotten feed's next change goes at once", () => {
    const o = new CommitOrder({ ...limits, maxFeeds: 4 })
    o.load([], true)
    assert.equal(o.offer(5, ofFeed(5, 1, 2), 0).held, true, "before the forgetting a feed not listed has no seq")
    o.giveUp(5)
    o.release(5)
    // feed 1 has the highest seq but was handed on first; feed 2 the lowest, handed on again last
    o.offer(1, ofFeed(1, 0, 900), 0)
    for (let feed = 2; feed <= 4; feed++) o.offer(feed, ofFeed(feed, 0, feed), 0)
    o.offer(2, ofFeed(2, 2, 3), 0)
    o.offer(5, ofFeed(5, 0, 50), 0)
    assert.equal(o.handedOnUpTo(1), -Infinity, "feed 1 forgotten to make room for feed 5")
    assert.equal(o.handedOnUpTo(2), 3, "feed 2 kept")
    assert.deepEqual(values(o.offer(1, ofFeed(1, 950, 1000), 0).released), ["1000"], "nothing known of feed 1: as heard")
    assert.equal(o.offer(1, ofFeed(1, 1500, 1600), 0).held, true, "known again: 1500 not handed on")
    assert.deepEqual(values(o.offer(6, ofFeed(6, 3, 4), 0).released), ["4"], "since a forgetting, a feed not known may have had seqs: as heard")
})

test("a change whose seqs were all handed on is stale (a late publish, or the store's history gone back: the hub asks the store), not while the feed is caught up; rewind starts the feed's order again at the store's head", () => {
    const o = started(100)
    assert.equal(o.offer(F, chained(100, 101), 0).stale, false)
    const late = o.offer(F, chained(99, 100, "late"), 0)
    assert.deepEqual([values(late.released), late.stale], [["late"], true], "not dropped (nothing says it went out): handed on, and said")
    o.resume(F, 105, [])
    const covered = o.offer(F, chained(102, 103, "new history"), 0)
    assert.deepEqual([covered.released, covered.stale], [[], true], "dropped as handed on, but said: the store tells whether its history went back")
    o.pause(F)
    assert.equal(o.offer(F, chained(101, 102), 0).stale, false, "the catch-up under way reads the store anyway")
    // the store's last seq is 3: the feed's place goes back there, what waited (of the old history) is dropped
    o.rewind(F, 3)
    assert.equal(o.handedOnUpTo(F), 3)
    assert.equal(o.waiting, 0)
    const next = o.offer(F, chained(3, 4, "4"), 0)
    assert.deepEqual([values(next.released), next.stale], [["4"], false])
    assert.deepEqual(values(o.offer(F, chained(4, 5, "5"), 0).released), ["5"])
})

test("startAt (every subscriber here read the store at that head or later) moves the feed's place while it is caught up too; what waits goes with the catch-up's end", () => {
    const o = started(100)
    assert.equal(o.offer(F, chained(101, 102, "before the head"), 0).held, true)
    o.pause(F)
    assert.deepEqual(o.startAt(F, 150), [], "paused: nothing goes yet")
    assert.equal(o.handedOnUpTo(F), 150, "a catch-up reading from here on starts at the subscribers' head")
    assert.equal(o.offer(F, chained(150, 151, "after it"), 0).held, true)
    assert.deepEqual(values(o.resume(F, 150, []).released), ["after it"], "the one before the head dropped (in every subscriber's read)")
})
