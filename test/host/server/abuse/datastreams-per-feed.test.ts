// [P§10] A feed has at most MAX_DATASTREAMS_PER_FEED datastreams. Found by red-teaming the server as a tenant
// would: a key with `update` on one feed named 1,200 new datastreams per 16 KiB PUT and made 70,000 in 20 s,
// so GET /feeds/F (all of them in one answer, built in the server's memory) grew without end and the shared
// store writer was held by each such write. Every door that creates datastreams is refused
// 422 E_TOO_MANY_DATASTREAMS past the bound, nothing of the refused request is stored, the datastreams the
// feed has stay writable, and a deletion (also one this process did not see) makes room again.
import assert from "node:assert/strict"
import { test } from "node:test"
import { MAX_DATASTREAMS_PER_FEED } from "../../../../devs/server/limits.ts"
import { http, serverForThisFile, TlsClient } from "../../harness/server-harness.ts"
import { startChildServer } from "./child-server.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey

/** A fresh feed and a key that may read, update, create and delete on it alone (a tenant). */
async function tenant(): Promise<{ feed: number; key: string }> {
    const feed = (await http(s, "POST", "/v2/feeds", { key: master, body: { title: "tenant" } })).body.id
    const k = await http(s, "POST", "/v2/keys", { key: master, body: { label: "tenant", permissions: ["read", "update", "create", "delete"], feeds: [feed] } })
    assert.equal(k.status, 201)
    return { feed, key: k.body.key }
}

/** n datastream ids, short enough that a thousand named without values fit one 16 KiB request */
const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => (from + i).toString(36))

async function streamIds(feed: number, key: string): Promise<string[]> {
    const r = await http(s, "GET", `/v2/feeds/${feed}`, { key })
    assert.equal(r.status, 200)
    return r.body.datastreams.map((d: { id: string }) => d.id)
}

function assertRefused(r: { status: number; body?: any }, what: string): void {
    assert.equal(r.status, 422, `${what}: ${JSON.stringify(r)}`)
    assert.equal(r.body.code, "E_TOO_MANY_DATASTREAMS", what)
    assert.match(r.body.errors, new RegExp(`at most ${MAX_DATASTREAMS_PER_FEED}`), what)
}

test("a feed takes new datastreams up to the bound, then every door refuses more and stores nothing of the request", async () => {
    const { feed, key } = await tenant()
    const device = await TlsClient.open(s, key)
    try {
        // the bound, exactly, in one device write (the datastreams named without a value are made empty)
        const full = await device.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: ids(0, MAX_DATASTREAMS_PER_FEED).map((id) => ({ id })) } })
        assert.equal(full.status, 200, JSON.stringify(full))
        assert.equal((await streamIds(feed, key)).length, MAX_DATASTREAMS_PER_FEED)

        // one more, with a value for a datastream the feed has: all of it refused, the known one's value too
        const over = await device.request({
            method: "put",
            resource: `/feeds/${feed}`,
            body: { datastreams: [{ id: "0", current_value: "changed" }, { id: "new-one", current_value: "1" }] },
        })
        assertRefused(over, "PUT /feeds/F over TLS")
        const zero = await http(s, "GET", `/v2/feeds/${feed}/datastreams/0`, { key })
        assert.equal(zero.body.current_value, undefined, "nothing of a refused write is stored")

        // the other doors that make datastreams
        assertRefused(await http(s, "PUT", `/v2/feeds/${feed}/datastreams/new-one`, { key, body: { current_value: "1" } }), "PUT a datastream")
        assertRefused(await http(s, "PUT", `/v2/feeds/${feed}/datastreams/new-one`, { key, body: {} }), "PUT an empty datastream")
        assertRefused(await http(s, "POST", `/v2/feeds/${feed}/datastreams`, { key, body: { datastreams: [{ id: "new-one" }] } }), "POST datastreams")
        assertRefused(await http(s, "POST", `/v2/feeds/${feed}/datastreams/new-one/datapoints`, { key, body: { datapoints: [{ at: Date.now(), value: "1" }] } }), "POST datapoints")
        const ws = await device.request({ method: "put", resource: `/feeds/${feed}/datastreams/new-one`, body: { current_value: "1" } })
        assertRefused(ws, "PUT a datastream over TLS")
        assert.equal((await streamIds(feed, key)).length, MAX_DATASTREAMS_PER_FEED, "no datastream was made by a refused request")
        assert.equal((await http(s, "GET", `/v2/feeds/${feed}/datastreams/new-one`, { key })).status, 404)

        // what the feed has stays writable, on every door
        const known = await device.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "0", current_value: "21.5" }, { id: "1" }] } })
        assert.equal(known.status, 200, JSON.stringify(known))
        assert.equal((await http(s, "POST", `/v2/feeds/${feed}/datastreams/2/datapoints`, { key, body: { datapoints: [{ at: Date.now(), value: "3" }] } })).status, 200)
        assert.equal((await http(s, "GET", `/v2/feeds/${feed}/datastreams/0`, { key })).body.current_value, "21.5")

        // a deletion makes room for one
        assert.equal((await http(s, "DELETE", `/v2/feeds/${feed}/datastreams/5`, { key })).status, 200)
        const fits = await device.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "new-one", current_value: "1" }] } })
        assert.equal(fits.status, 200, JSON.stringify(fits))
        assertRefused(await device.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "new-two", current_value: "1" }] } }), "full again")

        // a deletion this process did not see (another server process on the same store; here the store
        // itself) is found when the bound would refuse: no refusal on a stale count
        assert.ok(await s.store.deleteDatastream(feed, "6"))
        const afterOthers = await device.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "new-two", current_value: "1" }] } })
        assert.equal(afterOthers.status, 200, JSON.stringify(afterOthers))
        assert.equal((await streamIds(feed, key)).length, MAX_DATASTREAMS_PER_FEED)
    } finally {
        device.close()
    }
})

test("writes in flight together cannot pass the bound between them", async () => {
    const { feed, key } = await tenant()
    const device = await TlsClient.open(s, key)
    try {
        const half = MAX_DATASTREAMS_PER_FEED / 2
        assert.equal((await device.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: ids(0, half).map((id) => ({ id })) } })).status, 200)
        // three pipelined writes of 300 new datastreams each: the first fits, the second would not (500 + 600)
        const answers = await Promise.all([0, 1, 2].map((i) => device.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: ids(10_000 + i * 300, 300).map((id) => ({ id })) } })))
        assert.deepEqual(
            answers.map((a) => a.status),
            [200, 422, 422],
        )
        assert.equal((await streamIds(feed, key)).length, half + 300)
    } finally {
        device.close()
    }
})

test("a new feed with more datastreams than the bound is refused and not made", async () => {
    const before = (await http(s, "GET", "/v2/feeds", { key: master })).body.totalResults
    const r = await http(s, "POST", "/v2/feeds", { key: master, body: { title: "too many", datastreams: ids(0, MAX_DATASTREAMS_PER_FEED + 1).map((id) => ({ id })) } })
    assertRefused(r, "POST /feeds")
    // the feed has no id yet: the reason invents none ("feed 0") and says what to do about this request
    assert.doesNotMatch(r.body.errors, /feed 0/)
    assert.match(r.body.errors, new RegExp(`^the new feed would have ${MAX_DATASTREAMS_PER_FEED + 1} datastreams`))
    assert.doesNotMatch(r.body.errors, /DELETE/, "no datastream of it exists to delete")
    const named = await http(s, "POST", "/v2/feeds", { key: master, body: { id: 90_001, datastreams: ids(0, MAX_DATASTREAMS_PER_FEED + 1).map((id) => ({ id })) } })
    assertRefused(named, "POST /feeds with an id")
    assert.match(named.body.errors, new RegExp(`^the new feed 90001 would have ${MAX_DATASTREAMS_PER_FEED + 1} datastreams`))
    assert.equal((await http(s, "GET", "/v2/feeds", { key: master })).body.totalResults, before)
})

test("an operator sets the bound: `feedline serve --max-datastreams-per-feed 3` refuses a fourth", async () => {
    const child = await startChildServer(["--max-datastreams-per-feed", "3"])
    try {
        const { masterKey } = child.credentials
        const feed = (await http(child, "POST", "/v2/feeds", { key: masterKey, body: { title: "small", datastreams: ids(0, 3).map((id) => ({ id })) } })).body.id
        const r = await http(child, "PUT", `/v2/feeds/${feed}/datastreams/another`, { key: masterKey, body: { current_value: "1" } })
        assert.equal(r.status, 422, JSON.stringify(r))
        assert.equal(r.body.code, "E_TOO_MANY_DATASTREAMS")
        assert.match(r.body.errors, /at most 3:/)
        assert.equal((await http(child, "PUT", `/v2/feeds/${feed}/datastreams/0`, { key: masterKey, body: { current_value: "1" } })).status, 200, "the three stay writable")
    } finally {
        await child.stop()
    }
})
