// [P§8] A subscribe with `after` whose following points the retention deleted (--retention-days) is told so, as
// one with an old `since` is: "retention_gap":true and "retained_from", here the first seq still held (the first
// the replay brings; the acknowledgement's cursor when it brings none). Was: the replay silently started later.
// Exact, from what the retention deleted (per datastream, in the transaction that deleted it): a cursor after
// every deleted point, or a datastream the retention took nothing from, is told nothing. On SQLite and PostgreSQL.
import assert from "node:assert/strict"
import { testOnEachEngine } from "../harness/each-engine.ts"
import { TlsClient, type TestServer } from "../harness/server-harness.ts"

const DAY_MS = 86_400_000

async function put(c: TlsClient, feed: number, stream: string, at: number, value: string): Promise<number> {
    const r = await c.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: stream, datapoints: [{ at, value }] }] } })
    assert.equal(r.status, 200, JSON.stringify(r))
    return at
}

async function gaps(s: TestServer): Promise<void> {
    const feed = s.credentials.feedId
    const c = await TlsClient.open(s, s.credentials.masterKey)
    try {
        const start = await c.request({ method: "subscribe", resource: `/feeds/${feed}`, params: { after: "latest" }, token: "cursor" })
        const c0 = start.body.seq as number
        await c.request({ method: "unsubscribe", params: { token: "cursor" } })
        const now = Date.now()
        const old = now - 10 * DAY_MS
        // in commit order: an old point of a, a recent one of a, then a backfill of b older than the retention
        await put(c, feed, "a", old, "a-old")
        await put(c, feed, "a", now - 1000, "a-new")
        await put(c, feed, "b", old + 1, "b-old")
        await put(c, feed, "b", now - 500, "b-new")
        const seqs = new Map<string, number>()
        const all = await c.request({ method: "subscribe", resource: `/feeds/${feed}`, params: { after: c0 }, token: "all" })
        assert.equal(all.body?.retention_gap, undefined, "nothing deleted yet: nothing said")
        for (let i = 0; i < 4; ++i) {
            const p = await c.push("all")
            seqs.set(p.body.current_value, p.body.seq)
        }
        await c.request({ method: "unsubscribe", params: { token: "all" } })

        assert.equal(await s.store.prune(now - DAY_MS), 2, "the retention deletes the two old points")
        const subscribe = async (resource: string, afterSeq: number, token: string) => {
            const ack = await c.request({ method: "subscribe", resource, params: { after: afterSeq }, token })
            assert.equal(ack.status, 200, JSON.stringify(ack))
            await c.request({ method: "unsubscribe", params: { token } })
            return ack.body
        }
        // from before everything: both old points are gone; the first still held is a-new
        let body = await subscribe(`/feeds/${feed}`, c0, "f0")
        assert.deepEqual([body.retention_gap, body.retained_from], [true, seqs.get("a-new")], JSON.stringify(body))
        // after a-new: b-old (written after it) is gone; b-new is the first still held
        body = await subscribe(`/feeds/${feed}`, seqs.get("a-new")!, "f1")
        assert.deepEqual([body.retention_gap, body.retained_from], [true, seqs.get("b-new")], JSON.stringify(body))
        // after every deleted point: nothing said
        body = await subscribe(`/feeds/${feed}`, seqs.get("b-old")!, "f2")
        assert.equal(body.retention_gap, undefined, JSON.stringify(body))
        // one datastream: a lost nothing after a-new; b did, and nothing of it after b-new is held: the cursor
        body = await subscribe(`/feeds/${feed}/datastreams/a`, seqs.get("a-new")!, "a1")
        assert.equal(body.retention_gap, undefined, JSON.stringify(body))
        body = await subscribe(`/feeds/${feed}/datastreams/b`, c0, "b0")
        assert.deepEqual([body.retention_gap, body.retained_from], [true, seqs.get("b-new")], JSON.stringify(body))
        body = await subscribe(`/feeds/${feed}/datastreams/b`, seqs.get("a-new")!, "b1")
        assert.deepEqual([body.retention_gap, body.retained_from], [true, seqs.get("b-new")], JSON.stringify(body))
        // a cut replay says it too
        body = await (async () => {
            const ack = await c.request({ method: "subscribe", resource: `/feeds/${feed}`, params: { after: c0, limit: 1 }, token: "cut" })
            await c.push("cut")
            return ack.body
        })()
        assert.deepEqual([body.truncated, body.next_after, body.retention_gap, body.retained_from], [true, seqs.get("a-new"), true, seqs.get("a-new")], JSON.stringify(body))
    } finally {
        c.close()
    }
}

testOnEachEngine(`after below points the retention deleted: retention_gap with the first seq still held; nothing said when nothing after the cursor was deleted`, 120_000, gaps)
