// [P§8] Subscriptions over TLS: push per datapoint, unsubscribe, unsubscribe-all, `since` replay with nothing
// missed and nothing twice while writes keep coming, timeout, limits; slow subscribers are dropped while
// the others keep receiving, and a connection's queue never grows past its bound.
import assert from "node:assert/strict"
import { test } from "node:test"
import type { Wire } from "../../../devs/server/index.ts"
import { MAX_SUBSCRIPTIONS_PER_RESOURCE } from "../../../devs/server/limits.ts"
import { feedlineCli, SERVER_OWN_EVENT_WAIT_MS, serverForThisFile, startTestServer, streamDoors, TlsClient } from "../harness/server-harness.ts"
import { until } from "../harness/until.ts"

const s = await serverForThisFile()
const feed = s.credentials.feedId
const T0 = Date.UTC(2026, 10, 22, 5)
const iso = (ms: number) => new Date(ms).toISOString()

const device = () => TlsClient.open(s, s.credentials.deviceKey)

async function put(c: TlsClient, stream: string, points: { at: number; value: string }[]) {
    const r = await c.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: stream, datapoints: points }] } })
    assert.equal(r.status, 200, JSON.stringify(r))
}

test("subscribe: acknowledged, then one push per datapoint in at order, for the resource and what is under it", async () => {
    const sub = await device()
    const writer = await device()
    const ack = await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/led`, token: "s1" })
    assert.deepEqual(ack, { token: "s1", status: 200, resource: `/feeds/${feed}/datastreams/led` })
    const whole = await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, token: "all" })
    assert.equal(whole.status, 200)
    await put(writer, "led", [{ at: T0 + 2, value: "0" }, { at: T0 + 1, value: "1" }])
    await put(writer, "temp", [{ at: T0 + 3, value: "21.5" }])
    const p1 = await sub.push("s1")
    const p2 = await sub.push("s1")
    assert.deepEqual(p1, { token: "s1", status: 200, resource: `/feeds/${feed}/datastreams/led`, body: { id: "led", current_value: "1", at: iso(T0 + 1) } })
    assert.equal(p2.body.current_value, "0")
    const all = [await sub.push("all"), await sub.push("all"), await sub.push("all")]
    assert.deepEqual(all.map((p) => p.body.id), ["led", "led", "temp"])
    assert.equal(all[2].resource, `/feeds/${feed}/datastreams/temp`)
    sub.close()
    writer.close()
})

test("unsubscribe stops that subscription only; unsubscribe without a resource removes all", async () => {
    const sub = await device()
    const writer = await device()
    await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/a`, token: "a" })
    await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/b`, token: "b" })
    const un = await sub.request({ method: "unsubscribe", resource: `/feeds/${feed}/datastreams/a` })
    assert.equal(un.status, 200)
    await put(writer, "a", [{ at: T0 + 10, value: "x" }])
    await put(writer, "b", [{ at: T0 + 10, value: "y" }])
    assert.equal((await sub.push("b")).body.current_value, "y")
    // pushes go out in commit order: had "a" still been subscribed, its push would be here by now
    assert.equal(sub.q.lines.filter((l) => l.response?.token === "a").length, 1) // the subscribe ack only
    const again = await sub.request({ method: "unsubscribe", resource: `/feeds/${feed}/datastreams/a` })
    assert.deepEqual([again.status, again.body.code], [404, "E_NOT_FOUND"])
    await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/c`, token: "c" })
    const all = await sub.request({ method: "unsubscribe" })
    assert.deepEqual([all.status, all.body], [200, { removed: 2 }])
    const session = await sub.request({ method: "get", resource: "/session" })
    assert.deepEqual(session.body.subscriptions, [])
    sub.close()
    writer.close()
})

test("several subscriptions to one resource on one connection, each by its token; unsubscribe by token, by resource or all, on TLS and WebSocket (issue 11 item 15)", async () => {
    const writer = await device()
    const { doors, close } = await streamDoors(s)
    const key = { "X-ApiKey": s.credentials.deviceKey }
    for (const [door, c] of doors) {
        const stream = `multi-${door}`
        const ds = `/feeds/${feed}/datastreams/${stream}`
        // two subscriptions to the same datastream (one with a replay), one to the whole feed
        for (const [token, resource, params] of [["m1", ds, undefined], ["m2", ds, { since: T0 }], ["f", `/feeds/${feed}`, undefined]] as const) {
            const ack = await c.request({ method: "subscribe", resource, params, headers: key, token })
            assert.equal(ack.status, 200, `${door} ${token}: ${JSON.stringify(ack)}`)
        }
        await put(writer, stream, [{ at: T0 + 1, value: `${door}-1` }])
        for (const token of ["m1", "m2", "f"]) assert.equal((await c.push(token)).body.current_value, `${door}-1`, `${door}: ${token} got its own push`)
        const session = await c.request({ method: "get", resource: "/session" })
        assert.deepEqual(session.body.subscriptions.map((x: any) => [x.token, x.resource]), [["m1", ds], ["m2", ds], ["f", `/feeds/${feed}`]])
        // by token: only that one
        const byToken = await c.request({ method: "unsubscribe", resource: ds, params: { token: "m1" } })
        assert.deepEqual([byToken.status, byToken.body], [200, { removed: 1 }], door)
        const gone = await c.request({ method: "unsubscribe", resource: ds, params: { token: "m1" } })
        assert.deepEqual([gone.status, gone.body.code], [404, "E_NOT_FOUND"], door)
        await put(writer, stream, [{ at: T0 + 2, value: `${door}-2` }])
        assert.equal((await c.push("m2")).body.current_value, `${door}-2`)
        assert.equal((await c.push("f")).body.current_value, `${door}-2`)
        // the same token again replaces it (the dashboard renews its subscriptions this way)
        assert.equal((await c.request({ method: "subscribe", resource: ds, headers: key, token: "m2" })).status, 200)
        // by resource: all of that resource, the feed's stays
        await c.request({ method: "subscribe", resource: ds, headers: key, token: "m3" })
        const byResource = await c.request({ method: "unsubscribe", resource: ds })
        assert.deepEqual([byResource.status, byResource.body], [200, { removed: 2 }], door)
        await put(writer, stream, [{ at: T0 + 3, value: `${door}-3` }])
        assert.equal((await c.push("f")).body.current_value, `${door}-3`)
        assert.equal(c.q.lines.filter((l) => l.response?.token === "m1").length, 2, `${door}: m1 got its ack and one push, nothing after its unsubscribe`)
        // by token without a resource; then all
        await c.request({ method: "subscribe", resource: ds, headers: key, token: "m4" })
        assert.deepEqual((await c.request({ method: "unsubscribe", params: { token: "m4" } })).body, { removed: 1 })
        assert.equal((await c.request({ method: "unsubscribe", params: { token: "nope" } })).status, 404)
        const bad = await c.request({ method: "unsubscribe", params: { token: true } })
        assert.deepEqual([bad.status, bad.body.code], [422, "E_BAD_PARAM"])
        assert.deepEqual((await c.request({ method: "unsubscribe" })).body, { removed: 1 })
        // bounded per resource
        for (let i = 0; i < MAX_SUBSCRIPTIONS_PER_RESOURCE; ++i) assert.equal((await c.request({ method: "subscribe", resource: ds, headers: key, token: `b${i}` })).status, 200)
        const over = await c.request({ method: "subscribe", resource: ds, headers: key, token: "over" })
        assert.deepEqual([over.status, over.body.code], [422, "E_TOO_MANY_SUBSCRIPTIONS"], door)
        assert.deepEqual((await c.request({ method: "unsubscribe" })).body, { removed: MAX_SUBSCRIPTIONS_PER_RESOURCE })
    }
    close()
    writer.close()
})

test("since: replay then live, with nothing missed and nothing twice while writes keep coming", async () => {
    const writer = await device()
    const N = 300
    let written = 0
    const writing = (async () => {
        for (let i = 0; i < N; ++i) {
            await put(writer, "seq", [{ at: T0 + 100_000 + i, value: String(i) }])
            written = i + 1
        }
    })()
    while (written < 60) await new Promise((r) => setImmediate(r))
    const sub = await device()
    const since = iso(T0 + 100_000 + 49) // replay must start at value 50
    const ack = await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/seq`, params: { since }, token: "r" })
    assert.deepEqual(ack, { token: "r", status: 200, resource: `/feeds/${feed}/datastreams/seq` })
    assert.ok(written < N, "the subscription happened while writes were still coming")
    const got: string[] = []
    while (got.at(-1) !== String(N - 1)) got.push((await sub.push("r")).body.current_value)
    await writing
    assert.deepEqual(got, Array.from({ length: N - 50 }, (_, i) => String(50 + i)))
    sub.close()
    writer.close()
})

test("since on a whole feed replays every datastream in at order; a cut replay says where to go on", async () => {
    const writer = await device()
    const base = T0 + 500_000
    // 1200 points over two datastreams: more than one replay may send (1000)
    for (let i = 0; i < 600; i += 200) {
        const pts = (k: number) => Array.from({ length: 200 }, (_, j) => ({ at: base + (i + j) * 10 + k, value: String(i + j) }))
        const r = await writer.request({
            method: "put",
            resource: `/feeds/${feed}`,
            body: { datastreams: [{ id: "ra", datapoints: pts(0) }, { id: "rb", datapoints: pts(5) }] },
        })
        assert.equal(r.status, 200)
    }
    const sub = await device()
    const ack = await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, params: { since: base - 1 }, token: "f" })
    assert.equal(ack.body.truncated, true)
    assert.equal(ack.body.replayed, 1000)
    const first = []
    for (let i = 0; i < 1000; ++i) first.push(await sub.push("f"))
    const ats = first.map((p) => Date.parse(p.body.at))
    assert.deepEqual(ats, [...ats].sort((a, b) => a - b))
    assert.equal(ack.body.next_since, first.at(-1)!.body.at)
    const more = await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, params: { since: ack.body.next_since }, token: "f" })
    assert.deepEqual([more.status, more.body], [200, undefined])
    for (let i = 0; i < 200; ++i) await sub.push("f")
    await put(writer, "ra", [{ at: base + 9_999_999, value: "live" }])
    assert.equal((await sub.push("f")).body.current_value, "live")
    sub.close()
    writer.close()
})

test("limit caps a replay: cut replays acknowledged truncated with next_since until one goes live; one `at` is never split", async () => {
    const writer = await device()
    const sub = await device()
    const base = T0 + 50_000_000
    await put(writer, "lim", Array.from({ length: 40 }, (_, i) => ({ at: base + i, value: String(i) })))
    const resource = `/feeds/${feed}/datastreams/lim`
    for (const limit of [0, 1001, "16x", -1]) {
        const bad = await sub.request({ method: "subscribe", resource, params: { since: base - 1, limit }, token: "bad" })
        assert.deepEqual([bad.status, bad.body.code], [422, "E_BAD_PARAM"], `limit ${limit}`)
    }
    // a device with little memory catches up 16 at a time
    const got: string[] = []
    const acks: unknown[] = []
    let since: string | number = base - 1
    for (let round = 0; round < 5; ++round) {
        const ack = await sub.request({ method: "subscribe", resource, params: { since, limit: 16 }, token: `c${round}` })
        assert.equal(ack.status, 200)
        acks.push(ack.body)
        const n = ack.body?.replayed ?? 40 - got.length
        for (let i = 0; i < n; ++i) got.push((await sub.push(`c${round}`)).body.current_value)
        if (!ack.body?.truncated) break
        since = ack.body.next_since
    }
    assert.deepEqual(acks, [
        { replayed: 16, truncated: true, next_since: iso(base + 15) },
        { replayed: 16, truncated: true, next_since: iso(base + 31) },
        undefined, // the last 8, then live
    ])
    assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => String(i)))
    await put(writer, "lim", [{ at: base + 100, value: "live" }])
    assert.equal((await sub.push("c2")).body.current_value, "live")

    // a whole feed: five datastreams share one `at`, more than the limit of 3: all five go, then the rest
    const gAt = base + 1000
    const r = await writer.request({
        method: "put",
        resource: `/feeds/${feed}`,
        body: { datastreams: [0, 1, 2, 3, 4].map((k) => ({ id: `g${k}`, datapoints: [{ at: gAt, value: `g${k}` }] })).concat([{ id: "g0", datapoints: [{ at: gAt + 1, value: "after" }] }]) },
    })
    assert.equal(r.status, 200)
    const wide = await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, params: { since: gAt - 1, limit: 3 }, token: "g" })
    assert.deepEqual(wide.body, { replayed: 5, truncated: true, next_since: iso(gAt) })
    const group = []
    for (let i = 0; i < 5; ++i) group.push((await sub.push("g")).body.current_value)
    assert.deepEqual(group.sort(), ["g0", "g1", "g2", "g3", "g4"])
    const rest = await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, params: { since: wide.body.next_since, limit: 3 }, token: "g2" })
    assert.deepEqual([rest.status, rest.body], [200, undefined])
    assert.equal((await sub.push("g2")).body.current_value, "after")
    sub.close()
    writer.close()
})

test("subscription timeout ends it with a 408 push; bad subscribe requests are refused with codes", async () => {
    const sub = await device()
    const ack = await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/t`, params: { timeout: 50 }, token: "to" })
    assert.equal(ack.status, 200)
    const end = await sub.push("to")
    assert.deepEqual([end.status, end.body.title, end.body.code], [408, "Subscription ended", "E_SUBSCRIPTION_ENDED"])
    const noToken = await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, token: "" })
    assert.equal(noToken.body.code, "E_BAD_TOKEN")
    const other = await sub.request({ method: "subscribe", resource: "/feeds/999", token: "x" })
    assert.equal(other.status, 403)
    const keys = await sub.request({ method: "subscribe", resource: "/keys", token: "k" })
    assert.equal(keys.status, 405)
    const badSince = await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, params: { since: "soon" }, token: "b" })
    assert.equal(badSince.body.code, "E_BAD_PARAM")
    for (let i = 0; i < 64; ++i) assert.equal((await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/m${i}`, token: `m${i}` })).status, 200)
    const tooMany = await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/m64`, token: "m64" })
    assert.deepEqual([tooMany.status, tooMany.body.code], [422, "E_TOO_MANY_SUBSCRIPTIONS"])
    // subscribing again with the same token replaces that subscription and does not count twice (issue 11 item 15)
    assert.equal((await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/m0`, token: "m0" })).status, 200)
    // another token is another subscription, even to the same resource
    const another = await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/m0`, token: "again" })
    assert.deepEqual([another.status, another.body.code], [422, "E_TOO_MANY_SUBSCRIPTIONS"])
    sub.close()
})

test("deleting a datastream pushes deleted; the subscription goes on", async () => {
    const sub = await device()
    const admin = await TlsClient.open(s, s.credentials.masterKey)
    await put(admin, "gone", [{ at: T0, value: "1" }])
    await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/gone`, token: "g" })
    assert.equal((await admin.request({ method: "delete", resource: `/feeds/${feed}/datastreams/gone` })).status, 200)
    assert.deepEqual((await sub.push("g")).body, { id: "gone", deleted: true })
    await put(admin, "gone", [{ at: T0 + 1, value: "2" }])
    assert.equal((await sub.push("g")).body.current_value, "2")
    sub.close()
    admin.close()
})

test("revoking the subscriber's key ends its idle subscription with 403, also when the CLI revokes it from another process", async () => {
    const key = await s.keys.create({ permissions: ["read"], feeds: [feed] })
    const sub = await TlsClient.open(s, key.secret)
    assert.equal((await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, token: "r" })).status, 200)
    // idle: nothing is written to the feed after the revocation, so only the server's own re-check can end it
    // (how soon it does, without a clock: auth/revocation.test.ts)
    await feedlineCli(["keys", "revoke", key.record.id, "--data-dir", s.dataDir])
    const ended = await sub.push("r", SERVER_OWN_EVENT_WAIT_MS)
    assert.deepEqual([ended.status, ended.body.code], [403, "E_FORBIDDEN"])
    assert.match(ended.body.errors, /revoked/)
    assert.equal(sub.q.lines.filter((l) => l.response?.token === "r").length, 2, "the ack and the final push, nothing else")
    sub.close()
})

test("a slow subscriber is dropped with a notice while another keeps receiving everything", async () => {
    // the queue bound (256 KiB) decides here, not the time bound: a loaded machine must not fail this test
    const small = await startTestServer({ slowConsumerMs: 60_000 })
    try {
        const key = small.credentials.deviceKey
        const fast = await TlsClient.open(small, key)
        const slow = await TlsClient.open(small, key)
        const writer = await TlsClient.open(small, key)
        await fast.request({ method: "subscribe", resource: `/feeds/1`, token: "f" })
        await slow.request({ method: "subscribe", resource: `/feeds/1`, token: "s" })
        slow.socket.pause() // stops reading: the kernel buffers fill (about 4 MB on loopback), then the server's queue
        const TOTAL = 48_000
        for (let i = 0; i < TOTAL; i += 400) {
            const datapoints = Array.from({ length: 400 }, (_, j) => ({ at: T0 + i + j, value: String(i + j) }))
            const r = await writer.request({ method: "put", resource: "/feeds/1", body: { datastreams: [{ id: "flood", datapoints }] } })
            assert.equal(r.status, 200)
        }
        await fast.q.next((l) => l.response?.token === "f" && l.response.body?.current_value === String(TOTAL - 1), 20_000)
        assert.equal(fast.q.lines.filter((l) => l.response?.token === "f").length, TOTAL + 1) // ack + every push
        assert.equal(small.metrics.queueDrops.get(), 1)
        slow.socket.resume()
        await slow.q.untilClosed()
        // the notice is the last line queued, but a peer that stays silent past the close grace period gets
        // a reset, which discards what its kernel still held: when it arrives, it says why
        const notice = slow.q.lines.find((l) => l.kind === "response" && l.response!.token === undefined)?.response
        if (notice) assert.deepEqual([notice.status, notice.body.code], [503, "E_SLOW_CONSUMER"])
        // either way it is told: by the notice, or by the pushes it never got (a close that flushed everything
        // and said nothing would pass neither)
        const pushes = slow.q.lines.filter((l) => l.response?.token === "s").length - 1
        assert.ok(notice !== undefined || pushes < TOTAL, `the slow subscriber got all ${TOTAL} pushes and no notice`)
        fast.close()
        writer.close()
    } finally {
        await small.stop()
    }
})

test("a connection's outgoing queue never holds more than its bound (a wire that never drains)", async () => {
    const MAX = 32 * 1024
    const small = await startTestServer({ maxQueueBytes: MAX })
    try {
        let queued = 0
        let peak = 0
        let ended = false
        const lines: string[] = []
        const stuck: Wire = {
            transport: "tcp",
            remoteAddress: "test",
            send: (batch) => {
                for (const line of batch) {
                    lines.push(line)
                    queued += line.length + 1
                }
                peak = Math.max(peak, queued)
            },
            heartbeat: () => {},
            bufferedBytes: () => queued,
            end: () => void (ended = true),
        }
        const session = small.attachWire(stuck)
        await new Promise((r) => setImmediate(r))
        session.receiveObject(JSON.stringify({ method: "subscribe", resource: "/feeds/1", headers: { "X-ApiKey": small.credentials.deviceKey }, token: "z" }))
        const writer = await TlsClient.open(small, small.credentials.deviceKey)
        for (let i = 0; i < 4000; i += 400) {
            const datapoints = Array.from({ length: 400 }, (_, j) => ({ at: T0 + i + j, value: "v" }))
            await writer.request({ method: "put", resource: "/feeds/1", body: { datastreams: [{ id: "x", datapoints }] } })
        }
        await until("the slow consumer to be dropped", () => ended, 30_000)
        const lastLine = lines.at(-1)!
        assert.match(lastLine, /"E_SLOW_CONSUMER"/)
        // bounded: the limit, plus the pushes of the one write that crossed it (a 16 KiB request holds at
        // most a few hundred datapoints), plus the notice
        const oneWriteBytes = 400 * Math.max(...lines.filter((l) => l.includes('"token":"z"')).map((l) => l.length + 1))
        assert.ok(peak <= MAX + oneWriteBytes + lastLine.length, `peak ${peak}`)
        assert.equal(session.state, "closing")
        writer.close()
    } finally {
        await small.stop()
    }
})

test("a subscribe still in flight when its connection closes leaves no subscription behind", async () => {
    const wire: Wire = { transport: "tcp", remoteAddress: "test", send: () => {}, heartbeat: () => {}, bufferedBytes: () => 0, end: () => {} }
    const session = s.attachWire(wire)
    const before = s.metrics.subscriptions.get()
    session.receiveObject(JSON.stringify({ method: "subscribe", resource: `/feeds/${feed}`, headers: { "X-ApiKey": s.credentials.deviceKey }, token: "late" }))
    session.closed() // the peer went away while the request was being handled
    for (let i = 0; i < 10; ++i) await new Promise((r) => setImmediate(r))
    assert.equal(s.metrics.subscriptions.get(), before)
})
