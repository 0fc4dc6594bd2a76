// [P§8] `subscribe` with `after`: a subscriber that was away resumes from the `seq` of the last push it handled
// and gets every datapoint written meanwhile, in commit order, backfills included (a point whose own `at` is
// older than one it handled: a device sending the samples it kept while offline), which a `since` replay
// (by `at`) leaves out. On the default store (SQLite); the store contract runs the replay on PostgreSQL too.
import assert from "node:assert/strict"
import { test } from "node:test"
import { serverForThisFile, TlsClient } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const feed = s.credentials.feedId
const T0 = Date.UTC(2026, 11, 7, 8)
const iso = (ms: number) => new Date(ms).toISOString()

const device = () => TlsClient.open(s, s.credentials.deviceKey)

async function put(c: TlsClient, stream: string, points: { at: number; value: string }[]) {
    const r = await c.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: stream, datapoints: points }] } })
    assert.equal(r.status, 200, JSON.stringify(r))
}

test("after: a backfill written while the subscriber was away is replayed (since leaves it out), in commit order, then live", async () => {
    const writer = await device()
    const first = await device()
    const resource = `/feeds/${feed}/datastreams/bf`
    const ack = await first.request({ method: "subscribe", resource, params: { after: "latest" }, token: "a" })
    assert.equal(ack.status, 200)
    assert.equal(typeof ack.body.seq, "number", "the cursor to keep until a push moves it")
    await put(writer, "bf", [{ at: T0 + 10, value: "handled" }])
    const handled = await first.push("a")
    assert.deepEqual([handled.body.current_value, handled.body.at], ["handled", iso(T0 + 10)])
    assert.ok(handled.body.seq > ack.body.seq, "a push carries its seq")
    first.close()

    // while it is away: a backfill (older `at` than the one handled), then a newer point
    await put(writer, "bf", [{ at: T0 + 5, value: "backfill" }])
    await put(writer, "bf", [{ at: T0 + 20, value: "newer" }])

    const back = await device()
    const byAt = await back.request({ method: "subscribe", resource, params: { since: handled.body.at }, token: "old" })
    assert.equal(byAt.status, 200)
    assert.equal((await back.push("old")).body.current_value, "newer", "since (by `at`) skips the backfill: the documented limit of since")
    await back.request({ method: "unsubscribe", params: { token: "old" } })

    const resumed = await back.request({ method: "subscribe", resource, params: { after: handled.body.seq }, token: "b" })
    assert.equal(resumed.status, 200)
    const got = [await back.push("b"), await back.push("b")]
    assert.deepEqual(
        got.map((p) => [p.body.current_value, p.body.at]),
        [
            ["backfill", iso(T0 + 5)],
            ["newer", iso(T0 + 20)],
        ],
        "every point written while it was away, in commit order",
    )
    assert.ok(got[0].body.seq > handled.body.seq && got[1].body.seq > got[0].body.seq)
    assert.equal(resumed.body.seq, got[1].body.seq, "the acknowledgement's cursor: nothing of the feed after it yet")
    await put(writer, "bf", [{ at: T0 + 1, value: "live backfill" }])
    const live = await back.push("b")
    assert.deepEqual([live.body.current_value, live.body.at], ["live backfill", iso(T0 + 1)])
    assert.ok(live.body.seq > got[1].body.seq)
    back.close()
    writer.close()
})

test("after on a whole feed: a cut replay says next_after and never repeats or skips; a resubscribe with a later seq replays nothing", async () => {
    const writer = await device()
    const sub = await device()
    const start = await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, params: { after: "latest" }, token: "w" })
    const from = start.body.seq as number
    await sub.request({ method: "unsubscribe", params: { token: "w" } })
    // five points over two datastreams, each write's `at` older than the one before
    for (let i = 0; i < 5; ++i) await put(writer, i % 2 ? "wa" : "wb", [{ at: T0 + 1000 - i, value: `v${i}` }])
    const seen: string[] = []
    let after = from
    for (let round = 0; ; ++round) {
        assert.ok(round < 5)
        const ack = await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, params: { after, limit: 2 }, token: `c${round}` })
        assert.equal(ack.status, 200)
        const n = ack.body.truncated ? (ack.body.replayed as number) : 5 - seen.length
        for (let i = 0; i < n; ++i) {
            const p = await sub.push(`c${round}`)
            seen.push(p.body.current_value)
            after = p.body.seq
        }
        if (!ack.body.truncated) break
        assert.deepEqual([ack.body.replayed, ack.body.next_after], [2, after])
    }
    assert.deepEqual(seen, ["v0", "v1", "v2", "v3", "v4"])
    const none = await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, params: { after }, token: "n" })
    assert.deepEqual([none.status, none.body], [200, { seq: after }])
    sub.close()
    writer.close()
})

// (a seq given with since was refused too; it is now the rest of a cut replay by `since`, replay-since-paged.test.ts)
test("after: refused 422 E_BAD_PARAM when it is not a seq, also with since", async () => {
    const sub = await device()
    const cases: Record<string, string | number>[] = [{ after: -1 }, { after: 1.5 }, { after: "soon" }, { after: "soon", since: T0 }, { after: -3, since: T0 }]
    for (const params of cases) {
        const r = await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, params, token: "x" })
        assert.deepEqual([r.status, r.body.code], [422, "E_BAD_PARAM"], JSON.stringify(params))
    }
    sub.close()
})

test('since with "after":"latest": the replay by `at`, acknowledged with the cursor and its count; then live pushes with seq, a backfill too', async () => {
    const writer = await device()
    const sub = await device()
    const resource = `/feeds/${feed}/datastreams/hs`
    await put(writer, "hs", [{ at: T0 + 100, value: "old" }])
    await put(writer, "hs", [{ at: T0 + 102, value: "h2" }])
    await put(writer, "hs", [{ at: T0 + 101, value: "h1" }])
    const ack = await sub.request({ method: "subscribe", resource, params: { since: T0 + 100, after: "latest" }, token: "h" })
    assert.equal(ack.status, 200, JSON.stringify(ack))
    assert.equal(ack.body.replayed, 2, "the pushes of the replay by `at` that follow")
    const history = [await sub.push("h"), await sub.push("h")]
    assert.deepEqual(
        history.map((p) => p.body.current_value),
        ["h1", "h2"],
        "by `at`, after since",
    )
    assert.ok(history.every((p) => typeof p.body.seq === "number" && p.body.seq <= ack.body.seq), "written before the cursor")
    await put(writer, "hs", [{ at: T0 + 50, value: "backfill" }])
    const live = await sub.push("h")
    assert.equal(live.body.current_value, "backfill")
    assert.ok(live.body.seq > ack.body.seq, "live: after the cursor")

    // cut: by `at` with next_since, as a replay with since alone
    const cut = await sub.request({ method: "subscribe", resource, params: { since: T0 + 100, after: "latest", limit: 1 }, token: "c" })
    assert.deepEqual([cut.status, cut.body.truncated, cut.body.replayed, cut.body.next_since], [200, true, 1, iso(T0 + 101)])
    assert.equal((await sub.push("c")).body.current_value, "h1")
    sub.close()
    writer.close()
})

test("since with a numeric after past the feed's head (a cursor no server gave): acknowledged with the head, so going on with after = it misses nothing written meanwhile", async () => {
    const writer = await device()
    const sub = await device()
    const resource = `/feeds/${feed}/datastreams/fh`
    await put(writer, "fh", [{ at: T0 + 200, value: "kept" }])
    const head = (await sub.request({ method: "subscribe", resource, params: { after: "latest" }, token: "l" })).body.seq as number
    await sub.request({ method: "unsubscribe", params: { token: "l" } })
    const rest = await sub.request({ method: "subscribe", resource, params: { since: T0 + 199, after: head + 1000 }, token: "r" })
    assert.equal(rest.status, 200, JSON.stringify(rest))
    assert.deepEqual([rest.body.seq, rest.body.next_after, rest.body.replayed], [head, head, 1], "the cursor is the head the replay was read at, not the one asked for")
    assert.equal((await sub.push("r")).body.current_value, "kept")
    // written between the rest of the replay and the subscribe that goes on from its cursor: replayed by that one
    await put(writer, "fh", [{ at: T0 + 201, value: "meanwhile" }])
    const on = await sub.request({ method: "subscribe", resource, params: { after: rest.body.next_after }, token: "o" })
    assert.deepEqual([on.status, on.body.truncated], [200, undefined], JSON.stringify(on))
    assert.equal((await sub.push("o")).body.current_value, "meanwhile")
    sub.close()
    writer.close()
})
