// [P§9] PostgreSQL: a write whose COMMIT was on its way when the link to the database broke, and whose outcome
// the store could not learn before the write's deadline (its transaction still in progress: here held at
// commit time by a gate), is refused 503 E_OUTCOME_UNKNOWN ("send it again"). The COMMIT then took effect.
// The device's resend with the same `at` finds its point stored, "no change": it was acknowledged and never
// pushed, so the subscribers never got the point. Now it is answered as written and pushed, once, as on SQLite
// (writer-lost-answer.test.ts; one implementation, storage/unknown-outcomes.ts); with several processes
// (Redis) as the lost commit's change, in the feed's commit order, so the next write is pushed at once after
// it and the catch-up a gap would call for brings nothing twice. And the refusing process asks PostgreSQL about
// that COMMIT afterwards: once it took effect, the write is pushed on every process, resent or not (before, a
// resend to another process, or none, left every subscriber without it). Skipped, counted, where PostgreSQL or
// Redis is not installed.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, test, type TestContext } from "node:test"
import pg from "pg"
import { startFaultProxy } from "../../../../devs/faultproxy/proxy.ts"
import { gateCommits } from "../../harness/postgres-commit-gate.ts"
import { SCALE_SKIP, startScaleServices, type ScaleServices } from "../../harness/scale.ts"
import { http, startTestServer, TlsClient, type TestServer } from "../../harness/server-harness.ts"
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

    /** A new database and a fault proxy to its PostgreSQL (`proxied`: the database's URL through it). */
    async function proxiedDatabase(t: TestContext) {
        const url = await services.database()
        const proxy = await startFaultProxy({ target: { port: services.postgres.port } })
        t.after(() => proxy.close())
        const proxied = new URL(url)
        proxied.port = String(proxy.port)
        return { url, proxy, proxied: proxied.toString() }
    }

    /** On a connection of the test's to `url` (its tables made: a server started on it), COMMITs of a point valued "gated…" wait at commit time until gate.open(). */
    async function gated(t: TestContext, url: string) {
        const admin = new pg.Client({ connectionString: url })
        await admin.connect()
        t.after(() => admin.end())
        return { admin, gate: await gateCommits(admin, REFUSAL_WAIT_MS) }
    }

    for (const relay of [false, true]) {
        test(`${relay ? "with Redis (commit order)" : "one process"}: refused 503 E_OUTCOME_UNKNOWN, its COMMIT took effect; the resend is answered 200 and pushed once, then the next write`, { timeout: 120_000 }, async (t) => {
            const { url, proxy, proxied } = await proxiedDatabase(t)
            const s = await startTestServer({ databaseUrl: proxied, redisUrl: relay ? services.redis.url : undefined })
            t.after(() => s.stop())
            const { admin, gate } = await gated(t, url)

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

            // the resend at once: it, found stored, or the store learning the COMMIT's outcome (whichever comes first) pushes it
            assert.equal((await put(point)).status, 200, "the resend")
            assert.equal((await sub.push("s")).body.current_value, "gated-lost", "pushed")
            assert.equal((await put(point)).status, 200, "sent once more")
            assert.equal((await put({ at: new Date(T0 + 1).toISOString(), value: "next" })).status, 200)
            assert.equal((await sub.push("s", NEXT_PUSH_WAIT_MS)).body.current_value, "next")
            assert.deepEqual(pushed(), ["gated-lost", "next"], "each once")
            assert.deepEqual(await stored(), ["gated-lost", "next"], "stored once")
        })
    }

    test("several processes: refused 503 E_OUTCOME_UNKNOWN, its COMMIT took effect, and the client never sends it again to that process: pushed once the store learns the outcome, to the subscribers of every process, though that process's later commits reached the others first and the feed then goes quiet", { timeout: 120_000 }, async (t) => {
        const { url, proxy, proxied } = await proxiedDatabase(t)
        const dataDir = mkdtempSync(join(tmpdir(), "feedline-outcome-"))
        t.after(() => rmSync(dataDir, { recursive: true, force: true }))
        // a reaches PostgreSQL through the proxy, b directly; one Redis
        const a = await startTestServer({ databaseUrl: proxied, redisUrl: services.redis.url, dataDir })
        t.after(() => a.close())
        const b = await startTestServer({ databaseUrl: url, redisUrl: services.redis.url, dataDir })
        t.after(() => b.close())
        const { admin, gate } = await gated(t, url)

        const key = a.credentials.masterKey
        const feed = a.credentials.feedId
        const made = await http(b, "POST", "/v2/feeds", { key, body: { title: "another" } })
        assert.equal(made.status, 201)
        const subs = { a: await TlsClient.open(a, key), b: await TlsClient.open(b, key) }
        for (const c of Object.values(subs)) {
            t.after(() => c.close())
            assert.equal((await c.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/d`, token: "s" })).status, 200)
        }
        const put = (s: TestServer, f: number, value: string, atMs: number) => http(s, "PUT", `/v2/feeds/${f}`, { key, body: { datastreams: [{ id: "d", datapoints: [{ at: new Date(atMs).toISOString(), value }] }] } })
        assert.equal((await put(a, feed, "before", T0)).status, 200)
        for (const c of Object.values(subs)) assert.equal((await c.push("s")).body.current_value, "before")

        const refusing = put(a, feed, "gated-lost", T0 + 1)
        await gate.commitWaiting()
        proxy.reset()
        const refused = await refusing
        assert.deepEqual([refused.status, refused.body?.code], [503, "E_OUTCOME_UNKNOWN"], JSON.stringify(refused.body))
        await gate.open()
        await until("the refused write's COMMIT to take effect", async () => (await admin.query("SELECT 1 FROM datapoints WHERE value = 'gated-lost'")).rowCount === 1, REFUSAL_WAIT_MS, 20)
        // a's next commit (to another feed) reaches b: b counts a's commits up to it as heard (bus/unheard-commits.ts), so no catch-up brings the lost one
        assert.equal((await put(a, made.body.id as number, "elsewhere", T0 + 2)).status, 200)

        // no resend, and the feed goes quiet: without the fix only a resend to a, found stored, pushed it
        for (const [where, c] of Object.entries(subs)) {
            assert.equal((await c.push("s", NEXT_PUSH_WAIT_MS)).body.current_value, "gated-lost", `the subscriber on ${where}`)
        }
        // sent again (to b: no change there) and the next write: each pushed once
        assert.equal((await put(b, feed, "gated-lost", T0 + 1)).status, 200)
        assert.equal((await put(b, feed, "next", T0 + 3)).status, 200)
        for (const [where, c] of Object.entries(subs)) {
            assert.equal((await c.push("s", NEXT_PUSH_WAIT_MS)).body.current_value, "next", `the subscriber on ${where}`)
            const values = c.q.lines.filter((l) => l.response?.token === "s" && l.response.body?.current_value !== undefined).map((l) => l.response!.body.current_value)
            assert.deepEqual(values, ["before", "gated-lost", "next"], `the subscriber on ${where}: each once, in order`)
        }
    })
})
