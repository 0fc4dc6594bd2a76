// The budgets a single process keeps in memory (a key's requests, its structure changes, its browser tokens,
// claims per address and per product) ran on the wall clock: a step forward (NTP, a resumed VM) refilled
// a budget at once, a step back froze it for as long as the step. They run on the monotonic clock
// (ServerOptions.elapsedMs) now, as the failed-key lockout does (auth/lockout-clock.test.ts). With Redis the
// budget is Redis's, on Redis's TIME.
import assert from "node:assert/strict"
import { test } from "node:test"
import { serverForThisFile, TlsClient } from "../harness/server-harness.ts"

const HOUR_MS = 3600_000
/** one token every 100 s: the test's own time refills nothing */
const RATE_PER_SECOND = 0.01
let stepMs = 0
let skippedMs = 0
const s = await serverForThisFile({
    now: () => Date.now() + stepMs,
    elapsedMs: () => performance.now() + skippedMs,
    keyRatePerSecond: RATE_PER_SECOND,
    keyRateBurst: 2,
})

test("a step of the wall clock neither refills nor freezes a key's request budget; time gone by refills it", async () => {
    const c = await TlsClient.open(s, s.credentials.deviceKey) // the first of the burst's 2
    const codeOf = async () => {
        const r = await c.request({ method: "get", resource: "/session" })
        return r.status === 200 ? 200 : r.body.code
    }
    try {
        assert.equal(await codeOf(), 200, "the second of the burst")
        assert.equal(await codeOf(), "E_KEY_RATE_LIMITED", "the budget spent")
        stepMs = HOUR_MS
        assert.equal(await codeOf(), "E_KEY_RATE_LIMITED", "an hour forward on the wall clock refills nothing")
        stepMs = -HOUR_MS
        skippedMs += 1000 / RATE_PER_SECOND
        assert.equal(await codeOf(), 200, "an hour back on the wall clock freezes nothing: a token's time gone by gives a token")
        assert.equal(await codeOf(), "E_KEY_RATE_LIMITED")
    } finally {
        stepMs = 0
        c.close()
    }
})
