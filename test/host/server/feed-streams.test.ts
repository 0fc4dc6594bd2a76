// The per-feed datastream count (devs/server/feed-streams.ts) alone, with a fake store: what it reads, when,
// and what it refuses. The doors are tested in test/host/server/abuse/datastreams-per-feed.test.ts.
import assert from "node:assert/strict"
import { test } from "node:test"
import { asApiError } from "../../../devs/server/errors.ts"
import { FeedStreams } from "../../../devs/server/feed-streams.ts"

function fakeStore(feeds: Record<number, string[]>) {
    const reads: number[] = []
    return { reads, idsOf: async (feed: number) => (reads.push(feed), [...(feeds[feed] ?? [])]) }
}

test("a feed's ids are read once; writes to what it has are decided at once; new ones count at admission", async () => {
    const store = fakeStore({ 1: ["a", "b"] })
    const streams = new FeedStreams({ idsOf: store.idsOf, max: 4 })
    await streams.admit(1, ["a"])
    assert.equal(streams.admit(1, ["a", "b"]), undefined, "known ids: no promise, no read")
    assert.equal(streams.admit(1, ["c", "c"]), undefined, "a new id that fits is counted at once, once")
    assert.deepEqual(store.reads, [1])
    // pipelined: the second is refused although the first has not committed
    assert.equal(streams.admit(1, ["d"]), undefined)
    await assert.rejects(async () => streams.admit(1, ["e"]), (e) => asApiError(e).status === 422 && asApiError(e).code === "E_TOO_MANY_DATASTREAMS")
    assert.deepEqual(store.reads, [1, 1], "read again before refusing")
})

test("a refusal reads the store again: what was deleted elsewhere makes room", async () => {
    const feeds: Record<number, string[]> = { 1: ["a", "b"] }
    const store = fakeStore(feeds)
    const streams = new FeedStreams({ idsOf: store.idsOf, max: 2 })
    await assert.rejects(async () => streams.admit(1, ["c"]))
    feeds[1] = ["a"] // another process deleted b
    await streams.admit(1, ["c"])
    streams.forget(1, "a") // deleted here
    assert.equal(streams.admit(1, ["d"]), undefined)
})

test("over the ids it may hold, the feeds read longest ago are forgotten, not all of them", async () => {
    const store = fakeStore({ 1: ["a", "b"], 2: ["c", "d"], 3: ["e", "f"] })
    const streams = new FeedStreams({ idsOf: store.idsOf, max: 10, maxHeld: 4 })
    await streams.admit(1, ["a"])
    await streams.admit(2, ["c"])
    await streams.admit(3, ["e"]) // 6 ids: feed 1 goes
    assert.equal(streams.admit(2, ["c"]), undefined, "feed 2 is still held")
    assert.equal(streams.admit(3, ["e"]), undefined, "feed 3 is held")
    await streams.admit(1, ["a"])
    assert.deepEqual(store.reads, [1, 2, 3, 1])
})
