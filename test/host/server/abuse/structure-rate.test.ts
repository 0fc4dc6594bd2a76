// Changes to a feed's structure (making or deleting feeds and datastreams, renaming a feed, deleting a range
// of points) are held to a budget per key, apart from its request rate. Found by red-teaming the server as a
// tenant would: one key making and deleting empty datastreams in a loop (each such change makes the SQLite
// store move its journal into the tables and takes its write lock, outside the group commit of points) raised
// another tenant's write p99 from ~45 ms to 140-410 ms (max 0.8 s) at the key's request rate. The budget is
// the key's over all its connections and doors; a points write spends none of it, nor does a master key.
// The server's clocks are the test's (the budget runs on the monotonic one): the bucket refills only when the
// test moves them. A refusal says when its turn comes [P§6]: one token after the turn of the refusal before it.
import assert from "node:assert/strict"
import { test } from "node:test"
import { RETRY_JITTER_SHARE, STRUCTURE_RATE_BURST } from "../../../../devs/server/limits.ts"
import { http, startTestServer, TlsClient, type TestServer } from "../../harness/server-harness.ts"

let clockMs = Date.now()
const now = () => clockMs

async function tenant(s: TestServer): Promise<{ feed: number; key: string }> {
    const master = s.credentials.masterKey
    const feed = (await http(s, "POST", "/v2/feeds", { key: master, body: { title: "tenant" } })).body.id
    const k = await http(s, "POST", "/v2/keys", { key: master, body: { label: "tenant", permissions: ["read", "update", "create", "delete"], feeds: [feed] } })
    assert.equal(k.status, 201)
    return { feed, key: k.body.key }
}

/** `turnMs`: how far off the refused change's turn is; retry_after_ms is that and up to RETRY_JITTER_SHARE more */
function assertLimited(r: { status: number; body?: any }, what: string, turnMs: number): void {
    assert.equal(r.status, 429, `${what}: ${JSON.stringify(r)}`)
    assert.equal(r.body.code, "E_STRUCTURE_RATE_LIMITED", what)
    const ms = r.body.retry_after_ms
    assert.ok(ms >= turnMs && ms <= turnMs * (1 + RETRY_JITTER_SHARE), `${what}: retry_after_ms ${ms}, its turn ${turnMs} ms away`)
    assert.match(r.body.errors, /making or deleting feeds and datastreams/, what)
}

test("a key's changes to feeds and datastreams are held to its budget on every door; points writes, other keys and the master key are not", async () => {
    const s = await startTestServer({ now, elapsedMs: now, structureRatePerSecond: 1, structureRateBurst: 6 })
    try {
        const a = await tenant(s)
        const b = await tenant(s)
        const device = await TlsClient.open(s, a.key)
        try {
            // six changes, each a different door that changes structure: the burst
            const spent = [
                await http(s, "PUT", `/v2/feeds/${a.feed}/datastreams/empty`, { key: a.key, body: {} }),
                await http(s, "POST", `/v2/feeds/${a.feed}/datastreams`, { key: a.key, body: { datastreams: [{ id: "made" }] } }),
                await http(s, "DELETE", `/v2/feeds/${a.feed}/datastreams/made`, { key: a.key }),
                await device.request({ method: "put", resource: `/feeds/${a.feed}`, body: { datastreams: [{ id: "named" }] } }),
                await device.request({ method: "put", resource: `/feeds/${a.feed}`, body: { title: "renamed" } }),
                await http(s, "DELETE", `/v2/feeds/${a.feed}/datastreams/empty/datapoints?start=0`, { key: a.key }),
            ]
            assert.deepEqual(
                spent.map((r) => r.status),
                [200, 201, 200, 200, 200, 200],
                JSON.stringify(spent),
            )

            // the seventh, on each door: refused, with when to come back (each a turn after the one before), and nothing of it done
            const overHttp = await http(s, "PUT", `/v2/feeds/${a.feed}/datastreams/refused`, { key: a.key, body: {} })
            assertLimited(overHttp, "PUT an empty datastream", 1000)
            assert.equal(overHttp.headers.get("retry-after"), String(Math.ceil(overHttp.body.retry_after_ms / 1000)), "HTTP says when too")
            assertLimited(await http(s, "DELETE", `/v2/feeds/${a.feed}/datastreams/named`, { key: a.key }), "DELETE a datastream", 2000)
            assertLimited(await device.request({ method: "put", resource: `/feeds/${a.feed}`, body: { datastreams: [{ id: "refused" }, { id: "x", current_value: "1" }] } }), "PUT /feeds/F naming one without a value", 3000)
            assertLimited(await device.request({ method: "post", resource: `/feeds/${a.feed}/datastreams`, body: { id: "refused" } }), "POST datastreams over TLS", 4000)
            const ids = (await http(s, "GET", `/v2/feeds/${a.feed}`, { key: a.key })).body.datastreams.map((d: { id: string }) => d.id).sort()
            assert.deepEqual(ids, ["empty", "named"], "a refused change changed nothing (nor wrote its points)")

            // writing points is what a device does all day: it spends none of the budget (a new datastream written with a value included)
            assert.equal((await device.request({ method: "put", resource: `/feeds/${a.feed}`, body: { datastreams: [{ id: "named", current_value: "1" }, { id: "valued", current_value: "2" }] } })).status, 200)
            assert.equal((await http(s, "PUT", `/v2/feeds/${a.feed}/datastreams/named`, { key: a.key, body: { current_value: "3" } })).status, 200)
            assert.equal((await http(s, "POST", `/v2/feeds/${a.feed}/datastreams/named/datapoints`, { key: a.key, body: { datapoints: [{ at: clockMs - 1, value: "4" }] } })).status, 200)

            // the budget is the key's: another tenant's key has its own, and the operator's master key none
            assert.equal((await http(s, "PUT", `/v2/feeds/${b.feed}/datastreams/other`, { key: b.key, body: {} })).status, 200)
            for (let i = 0; i < 10; ++i) {
                assert.equal((await http(s, "PUT", `/v2/feeds/${a.feed}/datastreams/m${i}`, { key: s.credentials.masterKey, body: {} })).status, 200)
                assert.equal((await http(s, "DELETE", `/v2/feeds/${a.feed}/datastreams/m${i}`, { key: s.credentials.masterKey })).status, 200)
            }

            // it refills at its rate: one change a second (the four refused above were told the next four turns)
            clockMs += 400
            assertLimited(await http(s, "DELETE", `/v2/feeds/${a.feed}/datastreams/named`, { key: a.key }), "0.4 s later, after the four turns given", 4600)
            clockMs += 600
            assert.equal((await http(s, "DELETE", `/v2/feeds/${a.feed}/datastreams/named`, { key: a.key })).status, 200)
            assertLimited(await http(s, "DELETE", `/v2/feeds/${a.feed}/datastreams/valued`, { key: a.key }), "the token spent", 5000)
        } finally {
            device.close()
        }
    } finally {
        await s.stop()
    }
})

test("a key that may create feeds spends the budget making and deleting them; the default burst is STRUCTURE_RATE_BURST", async () => {
    // the harness lifts the server's rate limits for tests: this one is started with the budget's defaults
    const s = await startTestServer({ now, elapsedMs: now, structureRatePerSecond: undefined, structureRateBurst: undefined })
    try {
        const master = s.credentials.masterKey
        const maker = (await http(s, "POST", "/v2/keys", { key: master, body: { label: "provisioner", permissions: ["read", "create", "delete"] } })).body.key
        const made: number[] = []
        for (let i = 0; i < STRUCTURE_RATE_BURST / 2; ++i) {
            const r = await http(s, "POST", "/v2/feeds", { key: maker, body: { title: `f${i}` } })
            assert.equal(r.status, 201, JSON.stringify(r))
            made.push(r.body.id)
        }
        for (const id of made) assert.equal((await http(s, "DELETE", `/v2/feeds/${id}`, { key: maker })).status, 200)
        const over = await http(s, "POST", "/v2/feeds", { key: maker, body: { title: "one too many" } })
        assert.equal(over.status, 429, JSON.stringify(over))
        assert.equal(over.body.code, "E_STRUCTURE_RATE_LIMITED")
        assert.ok(over.body.retry_after_ms > 0)
        const titles = (await http(s, "GET", "/v2/feeds", { key: master })).body.results.map((f: { title: string }) => f.title)
        assert.ok(!titles.includes("one too many"), "the refused feed was not made")
    } finally {
        await s.stop()
    }
})
