// Resource abuse on the request level, against `feedline serve` in a child process: a subscriber that
// never reads, request floods, oversized and garbage input, subscription floods. Queues stay bounded,
// the abuser is cut off (429, 413, a dropped connection), everyone else is served; peak memory printed.
import { test, before, after } from "node:test"
import assert from "node:assert/strict"
import { performance } from "node:perf_hooks"
import { MAX_OBJECT_BYTES } from "../../../../src/protocol.ts"
import { MAX_SUBSCRIPTIONS_PER_CONNECTION } from "../../../../devs/server/limits.ts"
import { TlsClient } from "../../harness/server-harness.ts"
import { metricSum, startChildServer, stopAndReport, type ChildServer } from "./child-server.ts"
import { until } from "../../harness/until.ts"

const RATE_PER_SECOND = 100
// `serve --rate N` gives a burst of 2N
const RATE_BURST_HTTP = 2 * RATE_PER_SECOND
/** Datapoints per PUT in the flood: about 11 KB of JSON, under MAX_OBJECT_BYTES. */
const POINTS_PER_BATCH = 250
/** The flood stops once the non-reader is dropped; this caps it (about 20 MB of pushes per subscriber). */
const MAX_BATCHES = 600
const PEAK_RSS_LIMIT_MIB = 400
/** Datapoint times start an hour ago: the server refuses times more than a day ahead of its clock. */
const AT0 = Date.now() - 3_600_000

let server: ChildServer
let key: string
let feed: number

before(async () => {
    // every test here uses the one device key: its per-key budget (issue 12) out of the way, so what binds is
    // what each test is about (the per-connection and per-address rates, queues, subscription limits); and the
    // per-address bound on HTTP connections (256, tested in http-connections.test.ts) too: the HTTP flood's
    // waves of 200 went over it at moments (sockets closed after a 429 are replaced before the server saw
    // them close), and a connection closed at accept failed that test ("fetch failed") in 2 of 6 runs
    server = await startChildServer(["--rate", String(RATE_PER_SECOND), "--key-rate", "1000000", "--max-http-connections-per-address", "100000", "--heartbeat-ms", "1000", "--timeout-ms", "30000"])
    key = server.credentials.deviceKey
    feed = server.credentials.feedId
})

after(() => stopAndReport(server, "abuse-queues", PEAK_RSS_LIMIT_MIB))

const pushesOf = (c: TlsClient, token: string, stream: string) => c.q.lines.filter((l) => l.kind === "response" && l.response!.token === token && l.response!.body?.id === stream)

test("a subscriber that never reads is dropped; a reading subscriber gets every push exactly once", { timeout: 120_000 }, async () => {
    const reader = await TlsClient.open(server, key)
    const stuck = await TlsClient.open(server, key)
    const writer = await TlsClient.open(server, key)
    for (const [c, token] of [[reader, "subA"], [stuck, "subB"]] as const) {
        const ack = await c.request({ method: "subscribe", resource: `/feeds/${feed}`, token })
        assert.equal(ack.status, 200)
    }
    stuck.socket.pause() // it keeps sending heartbeats, it never reads

    const t0 = performance.now()
    let written = 0
    let batches = 0
    for (; batches < MAX_BATCHES; ++batches) {
        const datapoints = Array.from({ length: POINTS_PER_BATCH }, (_, j) => ({ at: AT0 + written + j, value: String(j) }))
        const r = await writer.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "flood", datapoints }] } }, 20_000)
        assert.equal(r.status, 200, JSON.stringify(r.body))
        written += POINTS_PER_BATCH
        if (batches % 10 === 9 && metricSum(await server.metrics(), "feedline_queue_drops_total") > 0) break
    }
    const floodMs = performance.now() - t0
    assert.ok(metricSum(await server.metrics(), "feedline_queue_drops_total") >= 1, `the non-reader was not dropped after ${written} pushes`)

    // the reader keeps up and sees every datapoint once, in order
    await until(`${written} pushes to the reader`, () => pushesOf(reader, "subA", "flood").length >= written, 20_000)
    const ats = pushesOf(reader, "subA", "flood").map((l) => Date.parse(l.response!.body.at))
    assert.equal(ats.length, written, "no push twice")
    assert.deepEqual(ats, Array.from({ length: written }, (_, i) => AT0 + i), "every push once, in order")
    assert.equal(reader.q.closed, false)

    // the non-reader, once it reads again, finds its connection closed by the server
    stuck.socket.resume()
    await stuck.q.untilClosed(20_000)
    const got = pushesOf(stuck, "subB", "flood").length
    const pushBytes = pushesOf(reader, "subA", "flood").reduce((n, l) => n + l.raw.length + 1, 0)
    // Dropped means: the server ended the connection with a 503 E_SLOW_CONSUMER notice behind what it had
    // queued, and destroys it CLOSE_GRACE_MS later. A client that reads again within the grace gets all of
    // it (the notice last); one that reads later finds the rest of its queue, the notice with it, gone.
    // Which of the two is a matter of timing (how fast the reader caught up), so either is accepted.
    const notice = stuck.q.lines.find((l) => l.kind === "response" && l.response!.token === undefined)?.response
    if (notice) assert.deepEqual([notice.status, notice.body.code], [503, "E_SLOW_CONSUMER"])
    assert.ok(notice !== undefined || got < written, `the non-reader got ${got} of ${written} and no E_SLOW_CONSUMER notice`)
    console.log(
        `# slow consumer: dropped after ${batches + 1} batches (${written} datapoints, ${(pushBytes / 1048576).toFixed(1)} MiB of pushes per subscriber) in ${floodMs.toFixed(0)} ms; ` +
            `it had read ${got}; the reader got all ${written}; server RSS ${server.rssMiB().toFixed(0)} MiB, peak ${server.peakRssMiB().toFixed(0)} MiB`
    )
    for (const c of [reader, stuck, writer]) c.close()
})

test("request flood on one connection: 429 E_RATE_LIMITED with retry_after_ms; the connection and others go on", { timeout: 60_000 }, async () => {
    const flooder = await TlsClient.open(server, key)
    const other = await TlsClient.open(server, key)
    const N = 600
    let text = ""
    for (let i = 0; i < N; ++i) text += `{"method":"get","resource":"/session","token":"q${i}"}\n`
    flooder.socket.write(text)
    const during = await other.request({ method: "get", resource: `/feeds/${feed}` })
    assert.equal(during.status, 200, "another connection has its own budget")
    const responses = await Promise.all(Array.from({ length: N }, (_, i) => flooder.push(`q${i}`, 20_000)))
    const ok = responses.filter((r) => r.status === 200).length
    const limited = responses.filter((r) => r.status === 429)
    assert.equal(ok + limited.length, N, "every request answered, 200 or 429")
    assert.ok(limited.length > 0, "the flood was limited")
    assert.ok(ok >= RATE_PER_SECOND, `${ok} served: at least the burst`)
    for (const r of limited) {
        assert.equal(r.body.code, "E_RATE_LIMITED")
        assert.ok(r.body.retry_after_ms > 0)
    }
    const wait = Math.max(...limited.map((r) => r.body.retry_after_ms))
    await new Promise((r) => setTimeout(r, wait))
    const again = await flooder.request({ method: "get", resource: "/session" })
    assert.equal(again.status, 200, "served again after retry_after_ms")
    console.log(`# request flood: ${N} pipelined requests: ${ok} served, ${limited.length} answered 429 (retry after <= ${wait} ms); another connection served meanwhile`)
    flooder.close()
    other.close()
})

test("HTTP flood from one address: 429 with a reason, never 5xx", { timeout: 60_000 }, async () => {
    // waves of concurrent GETs until one is refused: a loaded machine that spreads a single wave out
    // over more than its budget's refill still meets the limit in a later wave, so "limited" is always checked
    const WAVE = 200
    const MAX_WAVES = 20
    const startedMs = Date.now()
    const counts: Record<number, number> = {}
    let waves = 0
    while (waves < MAX_WAVES && !counts[429]) {
        waves++
        const statuses = await Promise.all(
            Array.from({ length: WAVE }, async () => {
                const res = await fetch(`http://127.0.0.1:${server.appPort}/v2/feeds/${feed}`, { headers: { "X-ApiKey": key } })
                const body = (await res.json()) as any
                if (res.status === 429) assert.equal(body.code, "E_RATE_LIMITED")
                return res.status
            })
        )
        for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1
    }
    console.log(`# HTTP flood: ${waves} waves of ${WAVE} concurrent GETs: ${JSON.stringify(counts)}`)
    assert.deepEqual(Object.keys(counts).filter((s) => s !== "200" && s !== "429"), [], JSON.stringify(counts))
    assert.ok(counts[429] > 0, `limited (after ${waves} waves)`)
    // never more served than the bucket's budget over the time the flood really took
    const budget = RATE_BURST_HTTP + (RATE_PER_SECOND * (Date.now() - startedMs)) / 1000
    assert.ok((counts[200] ?? 0) <= budget + 1, `served ${counts[200]} within a budget of ${budget.toFixed(0)}`)
})

test("an object over MAX_OBJECT_BYTES: notice 413 E_TOO_LARGE, then the connection is closed", async () => {
    const c = await TlsClient.open(server, key)
    c.socket.write(`{"method":"put","resource":"/feeds/${feed}","body":{"x":"${"a".repeat(MAX_OBJECT_BYTES + 100)}"}}\n`)
    const notice = await c.notice()
    assert.equal(notice.status, 413)
    assert.equal(notice.body.code, "E_TOO_LARGE")
    await c.q.untilClosed()
})

test("4 MiB of garbage between objects: answered 400 E_BAD_JSON, memory flat, the next request served", { timeout: 60_000 }, async () => {
    const c = await TlsClient.open(server, key)
    const rss0 = server.rssMiB()
    const chunk = "x".repeat(64 * 1024)
    for (let i = 0; i < 64; ++i) if (!c.socket.write(chunk)) await new Promise((r) => c.socket.once("drain", r))
    c.socket.write("\n") // [P§3] a bad line is skipped to its end; the next line is read afresh
    const r = await c.request({ method: "get", resource: "/session" }, 20_000)
    assert.equal(r.status, 200)
    const bad = c.q.lines.filter((l) => l.kind === "response" && l.response!.status === 400)
    assert.ok(bad.length >= 1 && bad.every((l) => l.response!.body.code === "E_BAD_JSON"), "garbage is answered E_BAD_JSON")
    assert.ok(bad.length < 10, `answered ${bad.length} times, not once per chunk`)
    const deep = "[".repeat(6000) + "]".repeat(6000)
    c.sendRaw(`{"method":"put","resource":"/feeds/${feed}","body":${deep},"token":"deep"}`)
    const d = await c.push("deep")
    assert.equal(d.status, 400)
    assert.equal(d.body.code, "E_TOO_DEEP")
    console.log(`# 4 MiB of garbage: ${bad.length} E_BAD_JSON answer(s); server RSS ${rss0.toFixed(0)} -> ${server.rssMiB().toFixed(0)} MiB`)
    c.close()
})

test("subscription flood: at most MAX_SUBSCRIPTIONS_PER_CONNECTION, the rest 422; resubscribing with the same token replaces", { timeout: 60_000 }, async () => {
    const c = await TlsClient.open(server, key)
    const before = metricSum(await server.metrics(), "feedline_subscriptions")
    const N = MAX_SUBSCRIPTIONS_PER_CONNECTION + 16
    const acks = await Promise.all(Array.from({ length: N }, (_, i) => c.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/s${i}`, token: `s${i}` })))
    const ok = acks.filter((a) => a.status === 200).length
    assert.equal(ok, MAX_SUBSCRIPTIONS_PER_CONNECTION)
    for (const a of acks.filter((a) => a.status !== 200)) {
        assert.equal(a.status, 422)
        assert.equal(a.body.code, "E_TOO_MANY_SUBSCRIPTIONS")
    }
    // the same token again and again: replaced, not added
    for (let i = 0; i < 100; ++i) c.sendRaw(`{"method":"subscribe","resource":"/feeds/${feed}/datastreams/s${i % 2}","token":"s0"}`)
    for (let i = 0; i < 100; ++i) assert.equal((await c.push("s0")).status, 200)
    assert.equal(metricSum(await server.metrics(), "feedline_subscriptions") - before, MAX_SUBSCRIPTIONS_PER_CONNECTION)
    assert.equal((await c.request({ method: "unsubscribe" })).status, 200)
    await until("the subscriptions to go", async () => metricSum(await server.metrics(), "feedline_subscriptions") === before, 20_000)
    c.close()
})
