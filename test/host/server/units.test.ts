// Pure server modules (the keep-alive decision is tested in keepalive.test.ts): token buckets, times and durations, history queries, push lines.
import assert from "node:assert/strict"
import { test } from "node:test"
import { encodeResponse } from "../../../src/protocol.ts"
import { ApiError } from "../../../devs/server/errors.ts"
import { changeBody, changeResource, pushLine, type ChangeEvent } from "../../../devs/server/hub/index.ts"
import { historyQueryOf } from "../../../devs/server/handlers/datapoints.ts"
import { Buckets, fullBucket, take } from "../../../devs/server/ratelimit.ts"
import { ServerStamps } from "../../../devs/server/storage/stamps.ts"
import fc from "fast-check"
import { isoOf, parseDuration, parseTime } from "../../../devs/server/time.ts"
import { atOf, EARLIEST_AT_MS, MAX_FUTURE_MS, pointsOfDatapoints, pointsOfDatastream, pointsOfDatastreams } from "../../../devs/server/handlers/body.ts"

test("isoOf writes what Date#toISOString writes, without calling it for times from 1970 to 9999 (its time-zone lookup pages in ICU's zone data)", () => {
    const MAX_MS = 253_402_300_800_000 // 10000-01-01: a six-digit year from there on
    const edges = [0, 1, 999, 86_399_999, 86_400_000, 951_782_400_000 /* 2000-02-29 */, 951_868_800_000, 4_107_542_400_000 /* 2100-03-01 */, 4_107_456_000_000, 1_704_067_199_999, MAX_MS - 1]
    const expected = (ms: number) => new Date(ms).toISOString()
    const original = Date.prototype.toISOString
    const wanted = [...edges, ...fc.sample(fc.integer({ min: 0, max: MAX_MS - 1 }), 20_000)].map((ms) => [ms, expected(ms)] as const)
    Date.prototype.toISOString = () => {
        throw new Error("isoOf called Date#toISOString")
    }
    try {
        for (const [ms, iso] of wanted) assert.equal(isoOf(ms), iso, String(ms))
    } finally {
        Date.prototype.toISOString = original
    }
    // outside that range (never a stored time) it is toISOString's own answer
    for (const ms of [MAX_MS, -1, 1.5, 8.64e15]) assert.equal(isoOf(ms), new Date(ms).toISOString())
})

test("token bucket: a burst, then the rate, with a retry hint", () => {
    const cfg = { ratePerSecond: 10, burst: 3 }
    const b = fullBucket(cfg, 0)
    assert.deepEqual([take(b, cfg, 0).ok, take(b, cfg, 0).ok, take(b, cfg, 0).ok], [true, true, true])
    // the hint: the refused request's turn, no jitter drawn here (retry-hints.test.ts)
    assert.deepEqual(take(b, cfg, 0, () => 0), { ok: false, retryAfterMs: 100 })
    // one token is 50 ms away, but the refusal before took that turn: this one's is a token later
    assert.deepEqual(take(b, cfg, 50, () => 0), { ok: false, retryAfterMs: 150 })
    assert.equal(take(b, cfg, 100).ok, true)
    assert.equal(take(b, cfg, 10_000).ok, true)
    assert.ok(b.tokens <= cfg.burst)
})

test("address buckets: per address, bounded, least recently used forgotten first", () => {
    const buckets = new Buckets({ ratePerSecond: 1, burst: 1 }, 2)
    assert.equal(buckets.take("a", 0).ok, true)
    assert.equal(buckets.take("a", 0).ok, false)
    assert.equal(buckets.take("b", 0).ok, true)
    assert.equal(buckets.peek("a", 0).ok, false)
    buckets.take("c", 0) // forgets "a", the least recently used
    assert.equal(buckets.peek("a", 0).ok, true)
})

test("key buckets: a name in use is kept while names used less recently are forgotten, also when it is not moved on every use", () => {
    const buckets = new Buckets({ ratePerSecond: 1, burst: 100 }, 4)
    for (const n of ["a", "b", "c", "d"]) buckets.take(n, 0)
    for (let i = 0; i < 10; i++) buckets.take("a", 0) // 11 taken from "a"
    buckets.take("e", 0) // forgets "b", the least recently used
    buckets.take("f", 0) // then "c"
    assert.equal(buckets.peek("a", 0).ok, true)
    for (let i = 0; i < 89; i++) buckets.take("a", 0)
    assert.equal(buckets.take("a", 0).ok, false, "a's bucket was kept: 100 taken")
    // "b" was forgotten: it starts full again (kept, it would have 99 left)
    let taken = 0
    while (buckets.take("b", 0).ok) taken++
    assert.equal(taken, 100)
})

test("times: ms or ISO-8601; durations as Xively wrote them", () => {
    assert.equal(parseTime(1763790000000), 1763790000000)
    assert.equal(parseTime("1763790000000"), 1763790000000)
    assert.equal(parseTime("2026-11-22T05:00:00.000Z"), Date.UTC(2026, 10, 22, 5))
    assert.equal(parseTime("2026-11-22T06:00:00+01:00"), Date.UTC(2026, 10, 22, 5))
    for (const bad of ["March 7", "", "-5", 1.5, -1, "2026-13-45", null, {}]) assert.equal(parseTime(bad), undefined, String(bad))
    // a day the month does not have is refused, not rolled into the next month (V8's Date.parse makes 2026-02-30 March 2)
    for (const bad of ["2026-02-29", "2026-02-30T00:00:00Z", "2026-04-31", "2100-02-29T12:00:00.000Z"]) assert.equal(parseTime(bad), undefined, bad)
    assert.equal(parseTime("2028-02-29T00:00:00Z"), Date.UTC(2028, 1, 29))
    assert.equal(parseTime("2000-02-29"), Date.UTC(2000, 1, 29))
    // the last ms a Date holds, and nothing after it (past it, writing the time threw: a 500)
    assert.equal(parseTime(8.64e15), 8.64e15)
    for (const bad of [8.64e15 + 1, "8640000000000001", Number.MAX_SAFE_INTEGER]) assert.equal(parseTime(bad), undefined, String(bad))
    assert.throws(() => atOf(8.64e15 + 1, "at", Date.UTC(2026, 10, 22)), (e: any) => e.status === 422 && e.code === "E_BAD_TIME")
    // a date-time without an offset is UTC whatever the server's time zone (Date.parse alone reads it as local time)
    const zone = process.env.TZ
    try {
        for (const tz of ["America/New_York", "Asia/Kolkata", "UTC"]) {
            process.env.TZ = tz
            assert.equal(parseTime("2026-11-22T05:00:00"), Date.UTC(2026, 10, 22, 5), tz)
            assert.equal(parseTime("2026-11-22 05:00:00.250"), Date.UTC(2026, 10, 22, 5, 0, 0, 250), tz)
            assert.equal(parseTime("2026-11-22T06:00:00+01:00"), Date.UTC(2026, 10, 22, 5), tz)
            assert.equal(parseTime("2026-11-22"), Date.UTC(2026, 10, 22), tz)
        }
    } finally {
        if (zone === undefined) delete process.env.TZ
        else process.env.TZ = zone
    }
    assert.equal(parseDuration("6hours"), 6 * 3600_000)
    assert.equal(parseDuration("1day"), 86_400_000)
    assert.equal(parseDuration("30seconds"), 30_000)
    assert.equal(parseDuration("2 weeks"), 14 * 86_400_000)
    for (const bad of ["6", "hours", "0hours", "6 fortnights", 6]) assert.equal(parseDuration(bad), undefined, String(bad))
})

test("history query: duration counts back from end or now, forward from start", () => {
    const now = Date.UTC(2026, 10, 22, 12)
    assert.deepEqual(historyQueryOf({ duration: "6hours" }, now), { startMs: now - 6 * 3600_000, endMs: now, intervalMs: undefined, limit: 100, newest: true, descending: false })
    const start = "2026-11-22T00:00:00Z"
    assert.deepEqual(historyQueryOf({ start, duration: "2hours", interval: 60, limit: 1000 }, now), {
        startMs: Date.UTC(2026, 10, 22),
        endMs: Date.UTC(2026, 10, 22, 2),
        intervalMs: 60_000,
        limit: 1000,
        newest: false,
        descending: false,
    })
})

test("history query: sort=asc takes the oldest points, sort=desc the newest, newest first (issue 11 item 16)", () => {
    const now = Date.UTC(2026, 10, 22, 12)
    const q = (p: Record<string, string>) => {
        const { newest, descending } = historyQueryOf(p, now)
        return { newest, descending }
    }
    assert.deepEqual(q({ sort: "desc" }), { newest: true, descending: true })
    assert.deepEqual(q({ sort: "desc", start: "2026-11-22T00:00:00Z" }), { newest: true, descending: true })
    assert.deepEqual(q({ sort: "asc" }), { newest: false, descending: false })
    assert.deepEqual(q({ duration: "1hours", sort: "asc" }), { newest: false, descending: false })
})

test("history query: bad parameters are 422 with a code", () => {
    const code = (p: Record<string, string | number>) => {
        try {
            historyQueryOf(p, Date.now())
            return "accepted"
        } catch (e) {
            return (e as ApiError).code
        }
    }
    assert.equal(code({ limit: 1001 }), "E_LIMIT")
    assert.equal(code({ sort: "newest" }), "E_BAD_PARAM")
    assert.equal(code({ limit: 0 }), "E_BAD_PARAM")
    assert.equal(code({ interval: "x" }), "E_BAD_PARAM")
    assert.equal(code({ duration: "6" }), "E_BAD_PARAM")
    assert.equal(code({ start: "yesterday" }), "E_BAD_PARAM")
    assert.equal(code({ start: 2000, end: 1000 }), "E_BAD_PARAM")
})

test("push lines are the bytes encodeResponse makes", () => {
    const events: ChangeEvent[] = [
        { feed: 1, seq: 5, stream: "led", atMs: Date.UTC(2026, 10, 22, 5, 0, 1), value: 'on "1" é' },
        { feed: 1, seq: Infinity, stream: "led", deleted: true },
        { feed: 7, seq: Infinity },
    ]
    for (const ev of events) {
        assert.equal(pushLine("s\n1", ev), encodeResponse({ token: "s\n1", status: 200, resource: changeResource(ev), body: changeBody(ev) }))
    }
    assert.equal(
        pushLine("s1", events[0]),
        '{"token":"s1","status":200,"resource":"/feeds/1/datastreams/led","body":{"id":"led","current_value":"on \\"1\\" \\u00e9","at":"2026-11-22T05:00:01.000Z"}}',
    )
})

test("server stamps [P§9]: strictly increasing per feed, datastreams of one body sharing one, several points of a datastream in a body each their own; a given `at` is left alone", () => {
    const st = new ServerStamps()
    const ats = (feed: number, pts: { stream: string; atMs?: number }[], nowMs: number) => st.stamp(feed, pts.map((p) => ({ ...p, value: "v" })), nowMs).map((p) => p.atMs)
    assert.deepEqual(ats(1, [{ stream: "a" }, { stream: "a" }, { stream: "b" }], 1000), [1000, 1001, 1000])
    assert.deepEqual(ats(1, [{ stream: "a" }, { stream: "a", atMs: 1001 }], 1000), [1002, 1001], "the same millisecond again: after the last stamp")
    assert.deepEqual(ats(2, [{ stream: "a" }], 1000), [1000], "per feed")
    assert.deepEqual(ats(1, [{ stream: "a" }], 1001), [1003], "the clock has not passed the stamps yet")
    assert.deepEqual(ats(1, [{ stream: "b" }], 1001), [1004], "another datastream of the feed: after the feed's last stamp, not at the clock")
    assert.deepEqual(ats(1, [{ stream: "a" }, { stream: "b" }], 5000), [5000, 5000], "the clock has passed them: its time again")
    assert.deepEqual(ats(1, [{ stream: "a" }], 4000), [5001], "a clock stepping back never reuses a stamp")
    assert.deepEqual(ats(1, [{ stream: "a", atMs: 7000 }, { stream: "b", atMs: 7000 }], 6000), [7000, 7000], "every point with its `at` (nothing stamped): as given")
    assert.deepEqual(ats(1, [{ stream: "a" }], 6000), [6000], "given times are no stamps: the next stamp is the clock's")
})

test("sample times: refused before 2000 and more than 24 h ahead of the server's clock, exactly at the bounds", () => {
    const now = Date.UTC(2026, 10, 22, 5)
    assert.equal(MAX_FUTURE_MS, 24 * 3600_000)
    assert.equal(atOf(now + MAX_FUTURE_MS, "at", now), now + MAX_FUTURE_MS, "a day ahead is still a sample")
    assert.throws(() => atOf(now + MAX_FUTURE_MS + 1, "at", now), (e: any) => e.code === "E_BAD_TIME" && e.status === 422 && /more than a day ahead/.test(e.message))
    assert.throws(() => atOf(new Date(now + 25 * 3600_000).toISOString(), "at", now), (e: any) => e.code === "E_BAD_TIME")
    assert.equal(atOf(EARLIEST_AT_MS, "at", now), EARLIEST_AT_MS)
    assert.throws(() => atOf(EARLIEST_AT_MS - 1, "at", now), (e: any) => e.code === "E_BAD_TIME" && /before 2000/.test(e.message))
    assert.equal(atOf(undefined, "at", now), undefined, "no time: the server stamps it")
})

test("body: a refused point names its place in the body (built only on refusal), for each way a write names it", () => {
    const now = Date.UTC(2026, 11, 6)
    const refusal = (f: () => unknown) => {
        try {
            f()
        } catch (e: any) {
            return `${e.code} ${e.message}`
        }
        return "accepted"
    }
    const feedUpdate = (list: unknown) => refusal(() => pointsOfDatastreams(list, now))
    const ok = { id: "a", current_value: "1" }
    assert.match(feedUpdate([ok, { id: "b", datapoints: [{ value: "1" }, { at: 5, value: "2" }] }]), /^E_BAD_TIME datastreams\[1\]\.datapoints\[1\]\.at is 1970/)
    assert.match(feedUpdate([ok, ok, { id: "c", datapoints: [{ value: [] }] }]), /^E_BAD_VALUE datastreams\[2\]\.datapoints\[0\]\.value must be/)
    assert.match(feedUpdate([ok, { id: "b", datapoints: {} }]), /^E_BAD_BODY datastreams\[1\]\.datapoints must be a list/)
    assert.match(feedUpdate([{ id: "b", datapoints: [1] }]), /^E_BAD_BODY datastreams\[0\]\.datapoints\[0\] must be an object/)
    assert.match(feedUpdate([ok, { id: "b", current_value: {} }]), /^E_BAD_VALUE datastreams\[1\]\.current_value must be/)
    assert.match(feedUpdate([ok, { id: "b", current_value: "1", at: "soon" }]), /^E_BAD_TIME datastreams\[1\]\.at must be/)
    // the datastream's own door and the datapoints door name theirs
    assert.match(refusal(() => pointsOfDatastream({ current_value: "1", at: -1 }, "t", "body", now)), /^E_BAD_TIME body\.at must be/)
    assert.match(refusal(() => pointsOfDatapoints("t", [{ value: "1" }, { value: null }], "datapoints", now)), /^E_BAD_VALUE datapoints\[1\]\.value must be/)
    // what is accepted is the same points as before
    assert.deepEqual(pointsOfDatastreams([ok, { id: "b", datapoints: [{ at: now, value: 2 }], current_value: true }], now), {
        points: [
            { stream: "a", atMs: undefined, value: "1" },
            { stream: "b", atMs: now, value: "2" },
            { stream: "b", atMs: undefined, value: "1" },
        ],
        ids: ["a", "b"],
    })
})
