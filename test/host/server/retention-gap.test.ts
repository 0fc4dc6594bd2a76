// [P§8] A subscribe whose `since` is older than points the retention deleted (--retention-days) says that points are
// missing: its answer carries "retention_gap":true and "retained_from", the `at` from which on the retention deleted
// nothing (1 ms after the newest `at` it deleted from the resource). Was: the replay simply started later than asked;
// then: judged from the configured retention by the clock, so a retention not run yet (or a longer one after a
// shorter one deleted) announced a gap for points still stored, and one turned off after it deleted announced none.
// Now from what was deleted, recorded with the deletion: the same record a subscribe with `after` goes by.
import assert from "node:assert/strict"
import { test } from "node:test"
import { testOnEachEngine } from "../harness/each-engine.ts"
import { serverForThisFile, TlsClient, type TestServer } from "../harness/server-harness.ts"
import { subscribeForever } from "../../../devs/client/subscriber.ts"
import { isoOf } from "../../../devs/server/time.ts"

const DAY_MS = 86_400_000
const keepsAll = await serverForThisFile()

async function put(c: TlsClient, feed: number, stream: string, datapoints: { at: number; value: string }[]) {
    const r = await c.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: stream, datapoints }] } })
    assert.equal(r.status, 200, JSON.stringify(r))
}

/** The acknowledgement's body of a subscribe (the subscription then ended), and the values of the first `pushes` pushes of its replay. */
async function subscribed(c: TlsClient, resource: string, params: Record<string, string | number | boolean>, token: string, pushes = 0): Promise<{ body: Record<string, unknown> | undefined; values: string[] }> {
    const ack = await c.request({ method: "subscribe", resource, params, token })
    assert.equal(ack.status, 200, JSON.stringify(ack))
    const values: string[] = []
    for (let i = 0; i < pushes; i++) values.push((await c.push(token)).body.current_value)
    await c.request({ method: "unsubscribe", params: { token } })
    return { body: ack.body, values }
}

async function gapsFromWhatWasDeleted(s: TestServer): Promise<void> {
    const feed = s.credentials.feedId
    const c = await TlsClient.open(s, s.credentials.masterKey)
    try {
        const now = Date.now()
        const feedRes = `/feeds/${feed}`
        await put(c, feed, "a", [{ at: now - 60_000, value: "a-new" }])
        await put(c, feed, "b", [{ at: now - 30_000, value: "b-new" }])
        // a retention of a day and a `since` three days old: nothing was deleted, nothing is said (was: a gap)
        let r = await subscribed(c, `${feedRes}/datastreams/a`, { since: now - 3 * DAY_MS, after: "latest" }, "fresh", 1)
        assert.deepEqual([r.body?.retention_gap, r.body?.retained_from, r.values], [undefined, undefined, ["a-new"]], JSON.stringify(r))

        // the retention deletes a's point of ten days ago and b's of twelve (the hourly deletion's own call)
        await put(c, feed, "a", [{ at: now - 10 * DAY_MS, value: "a-old" }])
        await put(c, feed, "b", [{ at: now - 12 * DAY_MS, value: "b-old" }])
        await s.store.prune(now - DAY_MS)
        const fromA = isoOf(now - 10 * DAY_MS + 1)
        // before what was deleted: a gap, from 1 ms after the newest `at` deleted (the feed: a's, the newer)
        r = await subscribed(c, `${feedRes}/datastreams/a`, { since: now - 20 * DAY_MS }, "a-20", 1)
        assert.deepEqual([r.body?.retention_gap, r.body?.retained_from, r.values], [true, fromA, ["a-new"]], JSON.stringify(r))
        r = await subscribed(c, feedRes, { since: now - 11 * DAY_MS }, "f-11")
        assert.deepEqual([r.body?.retention_gap, r.body?.retained_from], [true, fromA], JSON.stringify(r))
        // b lost nothing after eleven days ago: nothing said for it, though the feed's answer says a's gap
        r = await subscribed(c, `${feedRes}/datastreams/b`, { since: now - 11 * DAY_MS }, "b-11", 1)
        assert.deepEqual([r.body?.retention_gap, r.values], [undefined, ["b-new"]], JSON.stringify(r))
        r = await subscribed(c, `${feedRes}/datastreams/b`, { since: now - 13 * DAY_MS }, "b-13")
        assert.deepEqual([r.body?.retention_gap, r.body?.retained_from], [true, isoOf(now - 12 * DAY_MS + 1)], JSON.stringify(r))
        // after everything deleted, though older than the retention keeps by the clock: nothing said (was: a gap)
        r = await subscribed(c, feedRes, { since: now - 5 * DAY_MS }, "f-5")
        assert.deepEqual([r.body?.retention_gap, r.body?.retained_from], [undefined, undefined], JSON.stringify(r))
        // at the newest `at` deleted: all that `since` asks for is held
        r = await subscribed(c, feedRes, { since: now - 10 * DAY_MS }, "f-at")
        assert.equal(r.body?.retention_gap, undefined, JSON.stringify(r))
        // with "after":"latest", and on a cut replay's acknowledgement too
        r = await subscribed(c, feedRes, { since: now - 20 * DAY_MS, after: "latest" }, "f-latest")
        assert.deepEqual([r.body?.retention_gap, r.body?.retained_from, typeof r.body?.seq], [true, fromA, "number"], JSON.stringify(r))
        r = await subscribed(c, feedRes, { since: now - 20 * DAY_MS, limit: 1 }, "f-cut")
        assert.deepEqual([r.body?.truncated, r.body?.retention_gap, r.body?.retained_from], [true, true, fromA], JSON.stringify(r))
    } finally {
        c.close()
    }
}

testOnEachEngine("since: retention_gap from what the retention deleted, per datastream or the feed's newest, not from the configured retention", 120_000, gapsFromWhatWasDeleted, { retentionDays: 1 })

test("a retention turned off after it deleted: the gap is still said", async () => {
    const s = keepsAll
    const feed = s.credentials.feedId
    const c = await TlsClient.open(s, s.credentials.deviceKey)
    try {
        const now = Date.now()
        await put(c, feed, "off", [{ at: now - 40 * DAY_MS, value: "old" }, { at: now - 60_000, value: "new" }])
        assert.deepEqual((await subscribed(c, `/feeds/${feed}/datastreams/off`, { since: 0 }, "before")).body, undefined, "nothing deleted: the answer as without a retention")
        // a server that ran with --retention-days 30 deleted it; this one runs without
        assert.equal(await s.store.prune(now - 30 * DAY_MS), 1)
        const r = await subscribed(c, `/feeds/${feed}/datastreams/off`, { since: 0 }, "after", 1)
        assert.deepEqual([r.body?.retention_gap, r.body?.retained_from, r.values], [true, isoOf(now - 40 * DAY_MS + 1), ["new"]], JSON.stringify(r))
    } finally {
        c.close()
    }
})

test("subscribeForever (the CLI's feedline sub) tells its caller of the gap", async () => {
    const s = keepsAll
    const now = Date.now()
    const c = await TlsClient.open(s, s.credentials.deviceKey)
    try {
        await put(c, s.credentials.feedId, "quiet", [{ at: now - 3 * DAY_MS, value: "gone" }])
    } finally {
        c.close()
    }
    await s.store.prune(now - 2 * DAY_MS)
    const controller = new AbortController()
    const gaps: string[] = []
    const run = subscribeForever({
        server: `tls://127.0.0.1:${s.devicePort}`,
        apiKey: s.credentials.deviceKey,
        ca: s.ca,
        resource: `/feeds/${s.credentials.feedId}/datastreams/quiet`,
        since: new Date(now - 4 * DAY_MS).toISOString(),
        onPush() {},
        onEvent(e) {
            if (e.kind === "gap") gaps.push(e.retainedFrom)
            if (e.kind === "subscribed") controller.abort()
        },
        signal: controller.signal,
    })
    await run
    assert.deepEqual(gaps, [isoOf(now - 3 * DAY_MS + 1)])
})
