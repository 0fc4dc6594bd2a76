// [P§5] GET /sessions with several processes: the other processes' connections come from Redis, where each
// announces its own every second. Each list read every process's hash whole and parsed every entry, so a key's
// 200 requests a second were 200 full reads of every connection of the deployment. Others' entries are read at
// most every OTHERS_SESSIONS_FRESH_MS (concurrent lists share one read); they are never newer than their last
// announcement anyway. Found by the adversarial audit of 2026-12-07.
import assert from "node:assert/strict"
import { after, test } from "node:test"
import { Redis } from "ioredis"
import { OTHERS_SESSIONS_FRESH_MS, RedisBus } from "../../../../devs/server/bus/redis.ts"
import type { SessionEntry } from "../../../../devs/server/bus/bus.ts"
import { createLogger } from "../../../../devs/server/log.ts"
import { skipUnlessInstalled, startRedis, type RunningService } from "../../../../devs/tools/services.ts"
import { until } from "../../harness/until.ts"

const skip = skipUnlessInstalled("redis")
let redis: RunningService | undefined
after(() => redis?.stop())

const entryOf = (id: string, process: string): SessionEntry => ({ id, process, transport: "tls", remoteAddress: "127.0.0.1", connectedMs: 1, requests: 0, pushes: 0, subscriptions: [] })

/** How many HVALS Redis has run so far (INFO commandstats). */
async function hvalsCalls(admin: Redis): Promise<number> {
    const m = /cmdstat_hvals:calls=(\d+)/.exec(await admin.info("commandstats"))
    return m ? Number(m[1]) : 0
}

test("another process's sessions: read from Redis at most every so often, not once per list", { skip }, async () => {
    redis = await startRedis()
    const log = createLogger("silent")
    const [a, b] = [await RedisBus.connect(redis.url, log, "sessions"), await RedisBus.connect(redis.url, log, "sessions")]
    const admin = new Redis(redis.url)
    try {
        const bDir = b.sessionDirectory(() => [entryOf("b1", b.processId), entryOf("b2", b.processId)])
        const aDir = a.sessionDirectory(() => [entryOf("a1", a.processId)])
        await until("b's sessions announced", async () => (await aDir.list()).length === 3)
        const before = await hvalsCalls(admin)
        const startedMs = performance.now()
        // a burst of lists, some at once, some one after another: each sees every entry
        const lists = await Promise.all(Array.from({ length: 10 }, () => aDir.list()))
        for (let i = 0; i < 20; ++i) lists.push(await aDir.list())
        const tookMs = performance.now() - startedMs
        for (const l of lists) assert.deepEqual(l.map((e) => e.id).sort(), ["a1", "b1", "b2"])
        const reads = (await hvalsCalls(admin)) - before
        // one read per OTHERS_SESSIONS_FRESH_MS the burst took (however loaded the machine), not one per list
        const bound = 1 + Math.ceil(tookMs / OTHERS_SESSIONS_FRESH_MS)
        assert.ok(reads <= Math.min(bound, 29), `${reads} reads of the other process's hash for 30 lists in ${Math.round(tookMs)} ms`)
        await Promise.all([aDir.close(), bDir.close()])
    } finally {
        admin.disconnect()
        await Promise.all([a.close(), b.close()])
    }
})
