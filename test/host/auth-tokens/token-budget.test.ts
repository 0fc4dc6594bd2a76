// [P§7] POST /jwt has a budget per key (limits.ts TOKEN_MINT_*), over every address: the per-address request
// rate bounds one address, not a leaked key used from many. Sign-ins and renewals both spend it; over it,
// 429 E_TOKEN_RATE_LIMITED with retry_after_ms and Retry-After, and no token. (Across processes, on Redis:
// scale/cross-process.test.ts.)
import assert from "node:assert/strict"
import { after, test } from "node:test"
import { RETRY_JITTER_SHARE } from "../../../devs/server/limits.ts"
import { httpFrom, startTestServer } from "../harness/server-harness.ts"

let t = Date.UTC(2026, 11, 1)
// the budget runs on the monotonic clock (a wall-clock step neither refills nor freezes it): held still here, moved with t.
// A whole number of ms: from a fractional performance.now(), (x + 1000) - x can come out just under 1000, a token
// short of one, and the mint "a second later" was refused (1 run in 3)
let elapsed = Math.floor(performance.now())
// 3 tokens per key, one more a second
const s = await startTestServer({ now: () => t, elapsedMs: () => elapsed, tokenMintRatePerSecond: 1, tokenMintBurst: 3 })
after(() => s.stop())

/** POST /jwt from loopback address `from` (127.0.0.x: each its own address to the server). */
async function mint(from: string, headers: Record<string, string>) {
    const r = await httpFrom(s, from, "POST", "/jwt", { headers })
    return { ...r, retryAfter: r.headers["retry-after"] }
}

test("a key's tokens are limited over every address: sign-ins and renewals spend one budget; 429 E_TOKEN_RATE_LIMITED with retry_after_ms and Retry-After; other keys unaffected", async () => {
    const key = { "X-ApiKey": s.credentials.deviceKey }
    const first = await mint("127.0.0.2", key)
    assert.equal(first.status, 200, JSON.stringify(first.body))
    assert.equal((await mint("127.0.0.3", key)).status, 200)
    // a renewal is a token too
    assert.equal((await mint("127.0.0.4", { authorization: `Bearer ${first.body.token}` })).status, 200)
    for (const [turn, from, headers] of [[1, "127.0.0.5", key], [2, "127.0.0.6", { authorization: `Bearer ${first.body.token}` }]] as const) {
        const over = await mint(from, headers)
        assert.deepEqual([over.status, over.body.code, over.body.token], [429, "E_TOKEN_RATE_LIMITED", undefined], `${from}: ${JSON.stringify(over.body)}`)
        // [P§6] its turn: the n-th refused waits for the n-th token to come (1 s each), and up to a fifth more
        const ms = over.body.retry_after_ms
        assert.ok(ms >= turn * 1000 && ms <= turn * 1000 * (1 + RETRY_JITTER_SHARE), JSON.stringify(over.body))
        assert.equal(over.retryAfter, String(Math.ceil(ms / 1000)))
        assert.match(over.body.errors, new RegExp(`key ${first.body.key_id}`))
    }
    // another key has its own budget; a wrong key spends none (it is a failed key of its address)
    assert.equal((await mint("127.0.0.7", { "X-ApiKey": s.credentials.masterKey })).status, 200)
    assert.equal((await mint("127.0.0.7", { "X-ApiKey": "not-a-key-at-all" })).status, 401)
    // a second later the key has one token again
    t += 1000
    elapsed += 1000
    assert.equal((await mint("127.0.0.8", key)).status, 200)
    assert.equal((await mint("127.0.0.8", key)).status, 429)
    // what was minted before still works
    const feed = await fetch(`http://127.0.0.1:${s.appPort}/v2/feeds/${s.credentials.feedId}`, { headers: { authorization: `Bearer ${first.body.token}` } })
    assert.equal(feed.status, 200)
})

test("wrong keys at /jwt close the address's failed-key gate: 429 E_AUTH_RATE_LIMITED with retry_after_ms and Retry-After (was without the header)", async () => {
    const codes: string[] = []
    for (let i = 0; i < 12; i++) codes.push((await mint("127.0.0.9", { "X-ApiKey": `wrong-${i}` })).body.code)
    assert.equal(codes.at(-1), "E_AUTH_RATE_LIMITED", codes.join(" "))
    const gated = await mint("127.0.0.9", { "X-ApiKey": s.credentials.deviceKey })
    assert.deepEqual([gated.status, gated.body.code], [429, "E_AUTH_RATE_LIMITED"])
    assert.ok(gated.body.retry_after_ms > 0)
    assert.equal(gated.retryAfter, String(Math.ceil(gated.body.retry_after_ms / 1000)))
})
