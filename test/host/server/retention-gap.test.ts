// [P§8] A subscribe whose `since` is older than the retention keeps (--retention-days) says that points may be
// missing: its answer carries "retention_gap":true and "retained_from", the oldest `at` still kept (was: the
// replay simply started later than asked, and a subscriber could not tell a gap from a quiet datastream).
import assert from "node:assert/strict"
import { test } from "node:test"
import { serverForThisFile, TlsClient } from "../harness/server-harness.ts"
import { subscribeForever } from "../../../devs/client/subscriber.ts"

const DAY_MS = 86_400_000
const retained = await serverForThisFile({ retentionDays: 1 })
const keepsAll = await serverForThisFile()

async function putRecent(c: TlsClient, feed: number, stream: string, n: number) {
    const now = Date.now()
    const datapoints = Array.from({ length: n }, (_, i) => ({ at: now - 60_000 + i, value: String(i) }))
    const r = await c.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: stream, datapoints }] } })
    assert.equal(r.status, 200, JSON.stringify(r))
}

test("since older than the retention: the answer says retention_gap with retained_from, and the replay holds what is kept", async () => {
    const s = retained
    const feed = s.credentials.feedId
    const c = await TlsClient.open(s, s.credentials.deviceKey)
    try {
        await putRecent(c, feed, "led", 1)
        const before = Date.now()
        const ack = await c.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/led`, params: { since: before - 3 * DAY_MS }, token: "old" })
        const after = Date.now()
        assert.equal(ack.status, 200, JSON.stringify(ack))
        assert.equal(ack.body.retention_gap, true, JSON.stringify(ack))
        const from = Date.parse(ack.body.retained_from)
        assert.ok(from >= before - DAY_MS && from <= after - DAY_MS, `retained_from ${ack.body.retained_from}`)
        assert.equal((await c.push("old")).body.current_value, "0") // the kept point is replayed
        // a since within the retention: nothing can be missing, nothing said
        const recent = await c.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/led`, params: { since: Date.now() - DAY_MS / 2 }, token: "recent" })
        assert.equal(recent.status, 200)
        assert.equal(recent.body?.retention_gap, undefined, JSON.stringify(recent))
        // a cut replay says both
        await putRecent(c, feed, "many", 3)
        const cut = await c.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/many`, params: { since: 0, limit: 2 }, token: "cut" })
        assert.equal(cut.status, 200)
        assert.deepEqual([cut.body.truncated, cut.body.replayed, cut.body.retention_gap, typeof cut.body.retained_from], [true, 2, true, "string"])
    } finally {
        c.close()
    }
})

test("without a retention no since is too old: no retention_gap", async () => {
    const s = keepsAll
    const c = await TlsClient.open(s, s.credentials.deviceKey)
    try {
        const ack = await c.request({ method: "subscribe", resource: `/feeds/${s.credentials.feedId}/datastreams/led`, params: { since: 0 }, token: "old" })
        assert.deepEqual(ack, { token: "old", status: 200, resource: `/feeds/${s.credentials.feedId}/datastreams/led` })
    } finally {
        c.close()
    }
})

test("subscribeForever (the CLI's feedline sub) tells its caller of the gap", async () => {
    const s = retained
    const controller = new AbortController()
    const gaps: string[] = []
    const run = subscribeForever({
        server: `tls://127.0.0.1:${s.devicePort}`,
        apiKey: s.credentials.deviceKey,
        ca: s.ca,
        resource: `/feeds/${s.credentials.feedId}/datastreams/quiet`,
        since: new Date(Date.now() - 2 * DAY_MS).toISOString(),
        onPush() {},
        onEvent(e) {
            if (e.kind === "gap") gaps.push(e.retainedFrom)
            if (e.kind === "subscribed") controller.abort()
        },
        signal: controller.signal,
    })
    await run
    assert.equal(gaps.length, 1)
    assert.ok(Date.parse(gaps[0]) > Date.now() - DAY_MS - 60_000)
})

// The answer went by the plain wall clock while the deletion goes by the start plus the time gone by when that is
// earlier (background.ts retentionNowMs): after a step of the wall clock forward, a subscriber was told of a gap,
// with a retained_from in the future, for points the retention keeps. Both go by one RetentionClock now. Found by
// the adversarial audit of 2026-12-07.
test("a step of the wall clock forward: retention_gap and retained_from go by the time the retention deletes by", async () => {
    let stepMs = 0
    const s = await serverForThisFile({ retentionDays: 1, now: () => Date.now() + stepMs })
    const feed = s.credentials.feedId
    const c = await TlsClient.open(s, s.credentials.deviceKey)
    try {
        await putRecent(c, feed, "kept", 1) // a minute old: kept
        stepMs = 2 * DAY_MS
        const before = Date.now()
        const recent = await c.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/kept`, params: { since: before - DAY_MS / 2 }, token: "recent" })
        assert.equal(recent.status, 200, JSON.stringify(recent))
        assert.equal(recent.body?.retention_gap, undefined, `no gap: the retention keeps everything after ${new Date(before - DAY_MS).toISOString()}: ${JSON.stringify(recent)}`)
        assert.equal((await c.push("recent")).body.current_value, "0")
        const old = await c.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/kept`, params: { since: before - 3 * DAY_MS }, token: "old" })
        const after = Date.now()
        assert.equal(old.body.retention_gap, true, JSON.stringify(old))
        const from = Date.parse(old.body.retained_from)
        assert.ok(from >= before - DAY_MS && from <= after - DAY_MS, `retained_from ${old.body.retained_from}: a day before the time gone by, not before the stepped clock`)
    } finally {
        c.close()
    }
})
