// [P§6] A token bucket's refusal says when the request's turn comes (ratelimit.ts retryTurnMs), jittered
// (retryHintMs): a crowd refused at one instant is spread over the time the bucket needs to serve it. Told
// the time of one token instead (~5 ms on a key's 200/s), a crowd came back together and all but one were
// refused again (the fleet soak: a refused write refused about twice more). Pure decisions, no sleeps;
// then one flood through the device door of a real server.
import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import { RETRY_JITTER_SHARE } from "../../../devs/server/limits.ts"
import { fullBucket, peek, retryHintMs, retryTurnMs, take, TAKEN, type BucketConfig } from "../../../devs/server/ratelimit.ts"
import { serverForThisFile, TlsClient } from "../harness/server-harness.ts"

/** the longest retry_after_ms a bucket's refusal may say: its fill time, jittered */
const hintCapMs = (cfg: BucketConfig) => Math.ceil((cfg.burst * 1000) / cfg.ratePerSecond) * (1 + RETRY_JITTER_SHARE)
/** a request sent again reaches the server a little after its hint (here a ns: the refill's float arithmetic must not be what decides) */
const TRAVEL_MS = 1e-6

/**
 * `n` requests refused at once by an emptied bucket, each sent again at its retry_after_ms (plus `spreadMs`
 * of its own: `random() * spreadMs`), again and again until served; nothing else spends the bucket. How many
 * were served at their first retry, and how many retries were refused.
 */
function crowd(cfg: BucketConfig, n: number, random: () => number, spreadMs = 0): { firstRetryServed: number; reRefused: number; hints: number[] } {
    const bucket = fullBucket(cfg, 0)
    while (take(bucket, cfg, 0, random).ok);
    const due: { atMs: number; first: boolean }[] = []
    const hints: number[] = []
    const later = (atMs: number, first: boolean) => {
        // kept sorted by time, ties in the order sent
        let i = due.length
        while (i > 0 && due[i - 1].atMs > atMs) i--
        due.splice(i, 0, { atMs, first })
    }
    for (let i = 0; i < n; i++) {
        const t = take(bucket, cfg, 0, random)
        assert.equal(t.ok, false)
        hints.push(t.retryAfterMs)
        later(t.retryAfterMs + TRAVEL_MS + random() * spreadMs, true)
    }
    let firstRetryServed = 0
    let reRefused = 0
    for (let next = due.shift(); next; next = due.shift()) {
        const t = take(bucket, cfg, next.atMs, random)
        if (t.ok) firstRetryServed += next.first ? 1 : 0
        else {
            reRefused++
            later(next.atMs + t.retryAfterMs + TRAVEL_MS + random() * spreadMs, false)
        }
    }
    return { firstRetryServed, reRefused, hints }
}

const config = fc.record({ ratePerSecond: fc.integer({ min: 1, max: 2000 }), burst: fc.integer({ min: 1, max: 800 }) })

test("a crowd refused at once and back at its hints is served on its first retry, however large the bucket and its rate (up to a burst's worth)", () => {
    fc.assert(
        fc.property(config, fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), fc.integer({ min: 1, max: 800 }), (cfg, r, size) => {
            const n = Math.min(size, cfg.burst)
            const { firstRetryServed, reRefused } = crowd(cfg, n, () => r)
            assert.equal(firstRetryServed, n, `${n} refused at once on ${JSON.stringify(cfg)}: ${reRefused} refused again`)
        }),
        { numRuns: 200 },
    )
})

test("the soak's crowd: 500 refused at once on a key's budget (200/s, bursts of 400), with the clients' own spread of up to 1 s: few refused again", () => {
    const cfg = { ratePerSecond: 200, burst: 400 }
    let seed = 1
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646
    for (const spreadMs of [0, 1000]) {
        const { firstRetryServed, reRefused, hints } = crowd(cfg, 500, random, spreadMs)
        // 400 fit in the 2 s the bucket takes to fill; the last 100 are told about 2 s too, and only those meet the queue's end
        assert.ok(firstRetryServed >= 400, `spread ${spreadMs} ms: ${firstRetryServed} of 500 served at their first retry`)
        assert.ok(reRefused <= 150, `spread ${spreadMs} ms: ${reRefused} retries refused again`)
        assert.ok(Math.max(...hints) <= hintCapMs(cfg))
        console.log(`# crowd of 500 on 200/s bursts of 400, client spread ${spreadMs} ms: ${firstRetryServed} served at their first retry, ${reRefused} retries refused again, hints ${Math.min(...hints)}-${Math.max(...hints)} ms`)
    }
})

test("a refusal's turn: one token after the turn given before it, never sooner than one token, never further than the bucket's fill time", () => {
    fc.assert(
        fc.property(config, fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 0, max: 5000 }), (cfg, n, atMs) => {
            const b = fullBucket(cfg, 0)
            while (take(b, cfg, 0).ok);
            const tokenMs = 1000 / cfg.ratePerSecond
            const fillMs = cfg.burst * tokenMs
            let previousAtMs = -Infinity
            for (let i = 0; i < n; i++) {
                b.tokens = Math.min(b.tokens, 0.999) // refused: less than one token (what take() leaves it at)
                const oneTokenMs = (1 - b.tokens) * tokenMs
                const waitMs = retryTurnMs(b, cfg, atMs)
                assert.ok(waitMs >= Math.min(oneTokenMs, fillMs) - 1e-9, "not before one token is there")
                assert.ok(waitMs <= fillMs + 1e-9, "within the fill time")
                if (atMs + waitMs < atMs + fillMs - 1e-6) assert.ok(atMs + waitMs >= previousAtMs + tokenMs - 1e-6, "one token after the previous turn")
                previousAtMs = atMs + waitMs
            }
        }),
        { numRuns: 100 },
    )
})

test("retry_after_ms is the turn's wait in whole ms plus at most RETRY_JITTER_SHARE of it, never sooner", () => {
    fc.assert(
        fc.property(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), (waitMs, r) => {
            const hint = retryHintMs(waitMs, r)
            assert.ok(Number.isInteger(hint))
            assert.ok(hint >= waitMs && hint <= Math.ceil(waitMs) * (1 + RETRY_JITTER_SHARE), `${waitMs} ${r} -> ${hint}`)
        }),
    )
    assert.equal(retryHintMs(99.5, 0), 100)
    assert.equal(retryHintMs(100, 0.5), 110)
})

test("the accept path draws nothing and answers the one shared object; a peek's refusal takes no turn", () => {
    const cfg = { ratePerSecond: 10, burst: 5 }
    const b = fullBucket(cfg, 0)
    const never = () => assert.fail("random drawn for a request served")
    for (let i = 0; i < cfg.burst; i++) {
        assert.equal(peek(b, cfg, 0, never), TAKEN)
        assert.equal(take(b, cfg, 0, never), TAKEN)
    }
    assert.deepEqual(peek(b, cfg, 0, () => 0), { ok: false, retryAfterMs: 100 })
    assert.deepEqual(peek(b, cfg, 0, () => 0), { ok: false, retryAfterMs: 100 }, "a peek queues nothing")
    assert.deepEqual(take(b, cfg, 0, () => 0), { ok: false, retryAfterMs: 100 })
    assert.deepEqual(take(b, cfg, 0, () => 0), { ok: false, retryAfterMs: 200 }, "the next refusal's turn is one token later")
    assert.deepEqual(take(b, cfg, 0, () => 0.5), { ok: false, retryAfterMs: 330 }, "jittered: 300 ms and up to a fifth more")
    // the shortage over, turns start from the time of one token again
    for (let i = 0; i < cfg.burst; i++) assert.equal(take(b, cfg, 2000, never), TAKEN)
    assert.deepEqual(take(b, cfg, 2000, () => 0), { ok: false, retryAfterMs: 100 })
})

test("through the device door: a burst beyond a key's budget is told turns that spread over the bucket's fill time, within its cap", { timeout: 60_000 }, async () => {
    const cfg = { ratePerSecond: 50, burst: 100 }
    const s = await serverForThisFile({ keyRatePerSecond: cfg.ratePerSecond, keyRateBurst: cfg.burst })
    const c = await TlsClient.open(s, s.credentials.deviceKey) // one token spent
    try {
        // more than the burst and whatever the bucket refills while a loaded machine answers them (50/s)
        const N = 600
        let text = ""
        for (let i = 0; i < N; ++i) text += `{"method":"get","resource":"/session","token":"q${i}"}\n`
        c.socket.write(text)
        const responses = await Promise.all(Array.from({ length: N }, (_, i) => c.push(`q${i}`, 20_000)))
        const refused = responses.filter((r) => r.status === 429)
        assert.ok(refused.every((r) => r.body.code === "E_KEY_RATE_LIMITED"), JSON.stringify(refused.find((r) => r.body.code !== "E_KEY_RATE_LIMITED")))
        assert.ok(refused.length >= 150, `${refused.length} refused: the burst was ${cfg.burst}`)
        const hints: number[] = refused.map((r) => r.body.retry_after_ms)
        const tokenMs = 1000 / cfg.ratePerSecond
        assert.ok(Math.min(...hints) >= 1)
        assert.ok(Math.max(...hints) <= hintCapMs(cfg), `at most the fill time and its jitter (${hintCapMs(cfg)} ms): ${Math.max(...hints)}`)
        // told one token's time (20 ms) they would all come back within 20 ms; told their turns, over the 2 s the bucket needs
        assert.ok(new Set(hints).size >= 50, `${new Set(hints).size} distinct hints among ${hints.length}`)
        assert.ok(Math.max(...hints) >= 50 * tokenMs, `the latest turn ${Math.max(...hints)} ms`)
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
        const first = mean(hints.slice(0, 25))
        const late = mean(hints.slice(25, 50))
        assert.ok(late > first, `later refusals are told later turns: ${first.toFixed(0)} ms, then ${late.toFixed(0)} ms`)
        console.log(`# ${N} pipelined on a key of ${cfg.ratePerSecond}/s bursts of ${cfg.burst}: ${refused.length} refused, hints ${Math.min(...hints)}-${Math.max(...hints)} ms, ${new Set(hints).size} distinct`)
    } finally {
        c.close()
    }
})
