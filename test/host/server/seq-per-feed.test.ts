// [P§8] The `seq` a client sees is its feed's own (audit finding, tenant safety): on SQLite it was one counter for
// the whole store, so a tenant read the others' write volume off its own feed: "after":"latest" moved while only
// other feeds were written, and the gap between two of its own pushes' seqs counted everyone else's points.
// Two feeds: writes on B leave A's cursor ("after":"latest", a replay's acknowledgement) where it was, and A's
// next push takes the seq right after its last one. Both engines (PostgreSQL drew every seq from one sequence
// for the whole database until its migration 9: the gaps between A's pushes counted B's points).
import assert from "node:assert/strict"
import { testOnEachEngine } from "../harness/each-engine.ts"
import { TlsClient, type TestServer } from "../harness/server-harness.ts"

/** The other tenant's points: enough that a store-wide counter could not hide them. */
const OTHER_POINTS = 40

async function put(c: TlsClient, feed: number, stream: string, values: string[]): Promise<void> {
    const r = await c.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: stream, datapoints: values.map((value) => ({ value })) }] } })
    assert.equal(r.status, 200, JSON.stringify(r))
}

async function seqsOfOneFeed(s: TestServer): Promise<void> {
    const c = await TlsClient.open(s, s.credentials.masterKey)
    try {
        const a = s.credentials.feedId
        const created = await c.request({ method: "post", resource: "/feeds", body: { title: "another tenant" } })
        assert.equal(created.status, 201, JSON.stringify(created))
        const b = created.body.id as number
        /** A's cursor as a first subscribe with "after":"latest" is acknowledged with it */
        const latest = async (token: string): Promise<number> => {
            const ack = await c.request({ method: "subscribe", resource: `/feeds/${a}`, params: { after: "latest" }, token })
            assert.equal(ack.status, 200, JSON.stringify(ack))
            await c.request({ method: "unsubscribe", params: { token } })
            return ack.body.seq as number
        }
        await put(c, b, "x", ["0"])
        const live = await c.request({ method: "subscribe", resource: `/feeds/${a}`, params: { after: "latest" }, token: "a" })
        assert.equal(live.status, 200, JSON.stringify(live))
        await put(c, a, "t", ["1"])
        const first = (await c.push("a")).body.seq as number
        const before = await latest("l1")
        assert.equal(before, first, "A's cursor is its last write")

        // the other tenant writes, in several requests and one of many points
        for (let i = 0; i < OTHER_POINTS / 2; i++) await put(c, b, "x", [String(i)])
        await put(c, b, "y", Array.from({ length: OTHER_POINTS / 2 }, (_, i) => String(i)))

        assert.equal(await latest("l2"), before, "B's writes do not move A's \"after\":\"latest\"")
        const replay = await c.request({ method: "subscribe", resource: `/feeds/${a}`, params: { after: first }, token: "r" })
        assert.deepEqual([replay.status, replay.body.seq], [200, before], "nor the cursor of a replay of A")
        await c.request({ method: "unsubscribe", params: { token: "r" } })
        await put(c, a, "t", ["2"])
        const second = (await c.push("a")).body.seq as number
        assert.ok(second > first, `A's seqs rise (${first}, ${second})`)
        assert.equal(second, first + 1, "A's next point takes the seq after its last: nothing of B's in between")
    } finally {
        c.close()
    }
}

testOnEachEngine("another feed's writes are not seen through a feed's seqs: \"after\":\"latest\" and a replay's cursor stay, the next push's seq follows the last", 120_000, seqsOfOneFeed)
