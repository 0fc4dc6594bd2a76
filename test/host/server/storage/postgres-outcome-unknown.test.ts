// [P§9] PostgreSQL: a write whose COMMIT was on its way when the link to the database broke, and whose outcome
// the store could not learn before the write's deadline (its transaction still in progress: here held at
// commit time by a gate), is refused 503 E_OUTCOME_UNKNOWN ("send it again"). The COMMIT then took effect.
// The device's resend with the same `at` finds its point stored, "no change": it was acknowledged and never
// pushed, so the subscribers never got the point. Now it is answered as written and pushed, once, as on SQLite
// (writer-lost-answer.test.ts; one implementation, storage/unknown-outcomes.ts); with several processes
// (Redis) as the lost commit's change, in the feed's commit order, so the next write is pushed at once after
// it and the catch-up a gap would call for brings nothing twice. Skipped, counted, where PostgreSQL or Redis
// is not installed.
import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import pg from "pg"
import { startFaultProxy } from "../../../../devs/faultproxy/proxy.ts"
import { gateCommits } from "../../harness/postgres-commit-gate.ts"
import { SCALE_SKIP, startScaleServices, type ScaleServices } from "../../harness/scale.ts"
import { http, startTestServer, TlsClient } from "../../harness/server-harness.ts"
import { until } from "../../harness/until.ts"

const T0 = Date.UTC(2026, 11, 7, 5)
/** the store's bound on a write (postgres.ts WRITE_TIMEOUT_MS, 10 s) and a margin: the refusal comes at its end */
const REFUSAL_WAIT_MS = 40_000
/** longer than the commit order's hold (limits.ts STAMP_ORDER_HOLD_MS, 5 s): a push held for a gap would come first */
const NEXT_PUSH_WAIT_MS = 15_000

describe("PostgreSQL: a resend after 503 E_OUTCOME_UNKNOWN found stored is pushed", { skip: SCALE_SKIP }, () => {
    let services: ScaleServices
    before(async () => {
        services = await startScaleServices()
    })
    after(async () => {
        await services?.stop()
    })

    for (const relay of [false, true]) {
        test(`${relay ? "with Redis (commit order)" : "one process"}: refused 503 E_OUTCOME_UNKNOWN, its COMMIT took effect; the resend is answered 200 and pushed once, then the next write`, { timeout: 120_000 }, async (t) => {
            const url = await services.database()
            const proxy = await startFaultProxy({ target: { port: services.postgres.port } })
            t.after(() => proxy.close())
            const proxied = new URL(url)
            proxied.port = String(proxy.port)
            const s = await startTestServer({ databaseUrl: proxied.toString(), redisUrl: relay ? services.redis.url : undefined })
            t.after(() => s.stop())
            // COMMITs of a point valued "gated…" wait at commit time for the test to open the gate
            const admin = new pg.Client({ connectionString: url })
            await admin.connect()
            t.after(() => admin.end())
            const gate = await gateCommits(admin, REFUSAL_WAIT_MS)

            const key = s.credentials.deviceKey
            const feed = s.credentials.feedId
            const sub = await TlsClient.open(s, key)
            t.after(() => sub.close())
            assert.equal((await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/d`, token: "s" })).status, 200)
            const put = (datapoint: { at: string; value: string }) => http(s, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [{ id: "d", datapoints: [datapoint] }] } })
            const pushed = () => sub.q.lines.filter((l) => l.response?.token === "s" && l.response.body?.current_value !== undefined).map((l) => l.response!.body.current_value as string)
            const stored = async () => (await admin.query("SELECT value FROM datapoints WHERE feed = $1 AND stream = 'd' ORDER BY at_ms", [feed])).rows.map((r) => r.value as string)

            const point = { at: new Date(T0).toISOString(), value: "gated-lost" }
            const refusing = put(point)
            await gate.commitWaiting()
            // the link breaks with the COMMIT on its way; PostgreSQL says "in progress" until the write's bound
            proxy.reset()
            const refused = await refusing
            assert.deepEqual([refused.status, refused.body?.code], [503, "E_OUTCOME_UNKNOWN"], JSON.stringify(refused.body))
            await gate.open()
            await until("the refused write's COMMIT to take effect", async () => (await stored()).includes("gated-lost"), REFUSAL_WAIT_MS, 20)
            assert.deepEqual(pushed(), [], "nobody was pushed it")

            assert.equal((await put(point)).status, 200, "the resend")
            assert.equal((await sub.push("s")).body.current_value, "gated-lost", "the resend, found stored, is pushed")
            assert.equal((await put(point)).status, 200, "sent once more")
            assert.equal((await put({ at: new Date(T0 + 1).toISOString(), value: "next" })).status, 200)
            assert.equal((await sub.push("s", NEXT_PUSH_WAIT_MS)).body.current_value, "next")
            assert.deepEqual(pushed(), ["gated-lost", "next"], "each once")
            assert.deepEqual(await stored(), ["gated-lost", "next"], "stored once")
        })
    }
})
