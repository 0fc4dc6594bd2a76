// [P§6] The per-key budget kept in Redis (several processes: bus/redis.ts TAKE_TOKEN_LUA) tells a refused
// request its turn as the in-memory one does (ratelimit.ts retryTurnMs): a crowd refused at once is spread
// over the time the bucket needs to serve it, within its fill time and the jitter, not all told the time of
// one token.
import assert from "node:assert/strict"
import { after, before, test } from "node:test"
import { RedisBus } from "../../../../devs/server/bus/redis.ts"
import { RETRY_JITTER_SHARE } from "../../../../devs/server/limits.ts"
import { createLogger } from "../../../../devs/server/log.ts"
import { skipUnlessInstalled, startRedis, type RunningService } from "../../../../devs/tools/services.ts"

const skip = skipUnlessInstalled("redis")
let redis: RunningService | undefined
let bus: RedisBus | undefined
before(async () => {
    if (skip) return
    redis = await startRedis()
    bus = await RedisBus.connect(redis.url, createLogger("silent"), "turns")
})
after(async () => {
    await bus?.close()
    await redis?.stop()
})

test("Redis's budget: a crowd refused at once is told turns one token apart, within the fill time and its jitter", { skip }, async () => {
    const cfg = { ratePerSecond: 50, burst: 40 }
    const rate = bus!.keyRate(cfg)
    const taken = await Promise.all(Array.from({ length: cfg.burst }, () => rate.take("k", 0)))
    assert.ok(taken.every((t) => t.ok))
    const refused = await Promise.all(Array.from({ length: 30 }, () => rate.take("k", 0)))
    assert.ok(refused.every((t) => !t.ok), JSON.stringify(refused))
    const hints = refused.map((t) => t.retryAfterMs)
    const tokenMs = 1000 / cfg.ratePerSecond
    const fillMs = cfg.burst * tokenMs
    assert.ok(hints.every((h) => h >= 1 && h <= Math.ceil(fillMs + 1e-6) * (1 + RETRY_JITTER_SHARE)), JSON.stringify(hints))
    // told one token's time, all 30 would be within 20 ms; their turns run to 30 tokens later (600 ms, less the ms Redis took)
    assert.ok(new Set(hints).size >= 20, `${new Set(hints).size} distinct: ${hints}`)
    assert.ok(Math.max(...hints) >= 20 * tokenMs, `${hints}`)
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    assert.ok(mean(hints.slice(20)) > mean(hints.slice(0, 10)), `later refusals, later turns: ${hints}`)
})
