// Faults of the services several processes run on (docs/OPERATIONS.md "Running more than one process"),
// each a regression test of something that broke: PostgreSQL ending the server's connections in the middle
// of a commit (the process died), PostgreSQL or Redis that stop answering (requests waited as long as
// they did; subscribers on a silent Redis link were never told), the LISTEN connection gone silent (key
// changes of the others were never heard again). The faults are cut through the fault proxy
// (devs/faultproxy) between the server and PostgreSQL or Redis, or by PostgreSQL itself
// (pg_terminate_backend). Skipped, counted, where PostgreSQL or Redis is not installed.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import net from "node:net"
import { tmpdir } from "node:os"
import { Writable } from "node:stream"
import { join } from "node:path"
import { after, before, describe, test, type TestContext } from "node:test"
import { Redis } from "ioredis"
import pg from "pg"
import { startFaultProxy, type FaultProxy } from "../../../../devs/faultproxy/proxy.ts"
import { RedisBus } from "../../../../devs/server/bus/redis.ts"
import type { HubMessage } from "../../../../devs/server/hub/index.ts"
import { createLogger } from "../../../../devs/server/log.ts"
import { PostgresStore } from "../../../../devs/server/storage/postgres.ts"
import { StoreError, type Store } from "../../../../devs/server/storage/store.ts"
import { gateCommits } from "../../harness/postgres-commit-gate.ts"
import { SCALE_SKIP, startScaleServices, type ScaleServices } from "../../harness/scale.ts"
import { http, startTestServer, TlsClient, type TestServer } from "../../harness/server-harness.ts"
import { until } from "../../harness/until.ts"
import { SubscriptionCursor } from "../../../../src/subscription-cursor.ts"

/** How long a fault lasts at most: a server without the fix would wait it out; the fixed one answers long before. */
const FAULT_MS = 30_000

/** `url` with its port replaced by the proxy's. */
function through(url: string, proxy: FaultProxy): string {
    const u = new URL(url)
    u.port = String(proxy.port)
    return u.toString()
}

describe("faults of PostgreSQL and Redis under the server", { skip: SCALE_SKIP }, () => {
    let services: ScaleServices
    const cleanups: (() => Promise<unknown>)[] = []
    before(async () => {
        services = await startScaleServices()
    })
    after(async () => {
        for (const c of cleanups.reverse()) await c().catch(() => {})
        await services?.stop()
    })

    test("PostgreSQL ends the server's connections while a write waits in its commit (pg_terminate_backend): the process lives, the write is tried again on a new connection and stored once, the next ones work", async () => {
        const databaseUrl = await services.database()
        const s = await startTestServer({ databaseUrl, redisUrl: services.redis.url })
        cleanups.push(() => s.stop())
        const key = s.credentials.deviceKey
        const feed = s.credentials.feedId
        const put = (value: string, atS: number) =>
            http(s, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [{ id: "t", datapoints: [{ at: new Date(Date.UTC(2026, 0, 1, 0, 0, atS)).toISOString(), value }] }] } })
        assert.equal((await put("before", 1)).status, 200)
        // another session holds the feed's row, so the server's commit waits inside its transaction
        const admin = new pg.Client({ connectionString: databaseUrl })
        await admin.connect()
        try {
            await admin.query("BEGIN")
            await admin.query("SELECT 1 FROM feeds WHERE id = $1 FOR UPDATE", [feed])
            const waiting = put("retried", 2)
            await until("the server's commit to wait for the feed's row", async () => (await admin.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()")).rowCount! > 0, 10_000, 20)
            const ended = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            assert.ok(ended.rowCount! >= 2, "the pool's connections and the LISTEN connection were ended")
            // ended before its COMMIT was sent: it did not commit, and the store tries it again (once the feed's row is free)
            await admin.query("ROLLBACK")
            assert.equal((await waiting).status, 200)
            // no restart: the pool makes new connections
            assert.equal((await put("after", 3)).status, 200)
            const read = await http(s, "GET", `/v2/feeds/${feed}/datastreams/t?start=2026-01-01T00:00:00Z&end=2026-01-02T00:00:00Z`, { key })
            assert.equal(read.status, 200)
            const stored = (await admin.query("SELECT value FROM datapoints WHERE feed = $1 AND stream = 't' ORDER BY at_ms", [feed])).rows.map((r) => r.value)
            assert.deepEqual(stored, ["before", "retried", "after"])
        } finally {
            await admin.end()
        }
    })

    /**
     * A store on a new database (through `proxy` when given) whose COMMITs of a datapoint valued "gated…" wait
     * at commit time (a deferred trigger) for an advisory lock `admin` holds until `open()`: the moment a
     * COMMIT is on its way and its outcome not yet known.
     */
    async function gatedStore(proxy?: FaultProxy) {
        const url = await services.database()
        const store = await PostgresStore.open({ url: proxy ? through(url, proxy) : url })
        cleanups.push(() => store.close())
        const admin = new pg.Client({ connectionString: url })
        await admin.connect()
        cleanups.push(() => admin.end())
        const { commitWaiting, open } = await gateCommits(admin, FAULT_MS)
        const { id: feed } = await store.createFeed({})
        const stored = async () => (await admin.query("SELECT stream, at_ms, value FROM datapoints WHERE feed = $1 ORDER BY stream, at_ms", [feed])).rows
        return { url, store, admin, feed, commitWaiting, stored, open }
    }

    test("the link to PostgreSQL breaks while a COMMIT is on its way and the COMMIT took effect: the write is acknowledged with what was stored, nothing stored twice (a point without `at` included)", async () => {
        const proxy = await startFaultProxy({ target: { port: services.postgres.port } })
        cleanups.push(() => proxy.close())
        const g = await gatedStore(proxy)
        const writing = g.store.writePoints(g.feed, [{ stream: "a", atMs: 5, value: "gated-a" }, { stream: "n", value: "gated-n" }])
        await g.commitWaiting()
        // the store's connections are reset; PostgreSQL's backend goes on with its COMMIT once the gate opens
        proxy.reset()
        await g.open()
        const points = await writing
        const rows = await g.stored()
        assert.deepEqual(rows.map((r) => [r.stream, r.value]), [["a", "gated-a"], ["n", "gated-n"]])
        assert.deepEqual(points.map((p) => [p.stream, p.atMs, p.value]), rows.map((r) => [r.stream, Number(r.at_ms), r.value]), "acknowledged with the points stored, the server's stamp included")
        assert.ok(points.every((p) => p.txn !== undefined && p.seq > 0))
    })

    test("PostgreSQL ends the connection while a COMMIT is on its way (pg_terminate_backend) and the COMMIT did not take effect: the store finds out, tries again, and the write is stored once", async () => {
        const g = await gatedStore()
        const writing = g.store.writePoints(g.feed, [{ stream: "a", atMs: 5, value: "gated-a" }, { stream: "n", value: "gated-n" }])
        writing.catch(() => {}) // awaited below; a refusal fails the test there
        const first = await g.commitWaiting()
        await g.admin.query("SELECT pg_terminate_backend($1)", [first])
        // the second attempt's COMMIT, on another connection
        await until("the write to be tried again", async () => (await g.commitWaiting()) !== first, FAULT_MS)
        await g.open()
        const points = await writing
        const rows = await g.stored()
        assert.deepEqual(rows.map((r) => [r.stream, r.value]), [["a", "gated-a"], ["n", "gated-n"]])
        assert.deepEqual(points.map((p) => [p.stream, p.atMs, p.value]), rows.map((r) => [r.stream, Number(r.at_ms), r.value]))
    })

    test("a write tried again after its connection was lost is checked against keys changed meanwhile: another process's revocation waits for the write's COMMIT, commits once that connection is lost, and the write tried again is refused 'keys-changed' (its key checked again), not stored", async () => {
        const g = await gatedStore()
        const other = await PostgresStore.open({ url: g.url })
        cleanups.push(() => other.close())
        const asOf = g.store.keysVersion()
        const writing = g.store.writePoints(g.feed, [{ stream: "a", atMs: 5, value: "gated-a" }], Date.now(), asOf)
        writing.catch(() => {}) // awaited below
        const first = await g.commitWaiting()
        // a key revoked by another process while the write waits in its COMMIT: the revocation waits for it (LOCK_KEYS)
        let revoked = false
        const revoking = other.revokeKey("no-such-key", 1).then(() => (revoked = true))
        const revocationWaits = "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'advisory' AND query LIKE 'SELECT pg_advisory_xact_lock(%'"
        await until("the revocation to wait for the write's commit", async () => ((await g.admin.query(revocationWaits)).rowCount ?? 0) > 0, FAULT_MS, 20)
        assert.equal(revoked, false)
        await g.admin.query("SELECT pg_terminate_backend($1)", [first])
        await revoking
        await assert.rejects(writing, (e) => e instanceof StoreError && e.failure === "keys-changed")
        await g.open()
        assert.deepEqual(await g.stored(), [])
    })

    test("PostgreSQL going away and coming back within a write's bound (a restart, a failover: connections ended, then refused for a while): the write waits, is tried again on a new connection and stored once", async () => {
        const url = await services.database()
        const proxy = await startFaultProxy({ target: { port: services.postgres.port } })
        cleanups.push(() => proxy.close())
        let retries = 0
        const store = await PostgresStore.open({ url: through(url, proxy), onNotice: (m) => /trying it again/.test(m) && retries++ })
        cleanups.push(() => store.close())
        const { id: feed } = await store.createFeed({})
        await store.writePoints(feed, [{ stream: "s", atMs: 1, value: "before" }])
        proxy.refuse({ mode: "refused" })
        proxy.reset()
        const writing = store.writePoints(feed, [{ stream: "s", atMs: 2, value: "during" }, { stream: "n", value: "stamped" }])
        writing.catch(() => {}) // awaited below
        await until("the write to be tried again while PostgreSQL refuses", () => retries >= 2, FAULT_MS)
        proxy.accept()
        const points = await writing
        assert.deepEqual(points.map((p) => p.value).sort(), ["during", "stamped"])
        assert.deepEqual((await store.history(feed, "s", { startMs: 0, endMs: 10, limit: 10 })).map((p) => p.value), ["before", "during"])
        assert.deepEqual((await store.history(feed, "n", { startMs: 0, endMs: Number.MAX_SAFE_INTEGER, limit: 10 })).map((p) => p.value), ["stamped"])
    })

    test("a PostgreSQL that stalls: a write queued behind a stalled commit gets its 503 within the write bound from when it was sent, not after the stalled one's bound and its own", async () => {
        const url = await services.database()
        const proxy = await startFaultProxy({ target: { port: services.postgres.port } })
        cleanups.push(() => proxy.close())
        const boundMs = 2000
        const store = await PostgresStore.open({ url: through(url, proxy), timeouts: { queryMs: boundMs, connectMs: boundMs, writeMs: boundMs } })
        cleanups.push(() => store.close())
        const { id: feed } = await store.createFeed({})
        await store.writePoints(feed, [{ stream: "s", atMs: 1, value: "before" }])
        proxy.blackhole({ forMs: FAULT_MS })
        const holing = () => proxy.activeFaults().some((f) => f.startsWith("blackhole"))
        const settled = (p: Promise<unknown>) => p.then(() => "stored", (e) => (e instanceof StoreError ? e.failure : String(e)))
        const sentA = performance.now()
        const a = settled(store.writePoints(feed, [{ stream: "s", atMs: 2, value: "a" }]))
        // B arrives while A's batch waits for PostgreSQL: it goes in the next batch
        await new Promise((r) => setTimeout(r, boundMs / 4))
        const sentB = performance.now()
        const b = settled(store.writePoints(feed, [{ stream: "s", atMs: 3, value: "b" }]))
        const [outA, outB] = await Promise.all([a, b])
        const tookB = performance.now() - sentB
        assert.ok(holing(), "answered while PostgreSQL was still silent")
        assert.deepEqual([outA, outB], ["unavailable", "unavailable"])
        // without a bound per write, B waited for A's batch to give up (about boundMs) and then for its own (boundMs more)
        assert.ok(tookB < boundMs * 1.5, `B waited ${Math.round(tookB)} ms (A ${Math.round(performance.now() - sentA)} ms); bound ${boundMs} ms`)
        proxy.clear()
        await store.writePoints(feed, [{ stream: "s", atMs: 4, value: "after" }])
        assert.deepEqual((await store.history(feed, "s", { startMs: 0, endMs: 10, limit: 10 })).map((p) => p.value), ["before", "after"])
    })

    test("a PostgreSQL that stops answering (black hole): writes, reads and a new store fail with 'unavailable' (503 E_STORE_FAILED) within the bounds, nothing refused is stored, and it works again once PostgreSQL answers", async () => {
        const url = await services.database()
        const proxy = await startFaultProxy({ target: { port: services.postgres.port } })
        cleanups.push(() => proxy.close())
        const timeouts = { queryMs: 1000, connectMs: 1000 }
        const store = await PostgresStore.open({ url: through(url, proxy), timeouts })
        cleanups.push(() => store.close())
        const { id: feed } = await store.createFeed({})
        await store.writePoints(feed, [{ stream: "s", atMs: 1, value: "before" }])
        proxy.blackhole({ forMs: FAULT_MS })
        const unavailable = (e: unknown) => e instanceof StoreError && e.failure === "unavailable" && e.retryAfterMs! > 0
        const holing = () => proxy.activeFaults().some((f) => f.startsWith("blackhole"))
        await assert.rejects(store.writePoints(feed, [{ stream: "s", atMs: 2, value: "refused" }]), unavailable)
        await assert.rejects(store.history(feed, "s", { startMs: 0, endMs: 10, limit: 10 }), unavailable)
        await assert.rejects(PostgresStore.open({ url: through(url, proxy), timeouts }), (e: Error) => /no answer in time/.test(e.message))
        assert.ok(holing(), "all three were answered while PostgreSQL was still silent")
        proxy.clear()
        await store.writePoints(feed, [{ stream: "s", atMs: 3, value: "after" }])
        assert.deepEqual((await store.history(feed, "s", { startMs: 0, endMs: 10, limit: 10 })).map((p) => p.value), ["before", "after"])
    })

    test("the LISTEN connection gone silent (its packets dropped for good) is noticed and made again: another process's key change is heard after it", async () => {
        const url = await services.database()
        const proxy = await startFaultProxy({ target: { port: services.postgres.port } })
        cleanups.push(() => proxy.close())
        const listening = await PostgresStore.open({ url: through(url, proxy), timeouts: { queryMs: 1000, listenCheckMs: 200 } })
        const other = await PostgresStore.open({ url })
        cleanups.push(() => listening.close(), () => other.close())
        // every connection open now goes silent (a lost NAT mapping); new ones work
        proxy.blackhole({ scope: "existing" })
        const before = listening.keysVersion()
        await until("the silent LISTEN connection to be made again", () => listening.keysVersion() !== before, FAULT_MS)
        const remade = listening.keysVersion()
        await other.revokeKey("no-such-key", 1)
        await until("another process's key change to be heard", () => listening.keysVersion() !== remade, FAULT_MS)
    })

    /** Two servers on one new database (`databaseUrl`) and the file's Redis: `a` reaches Redis through `proxy`, `b` directly. */
    async function serversWithRedisThroughProxy() {
        const proxy = await startFaultProxy({ target: { port: services.redis.port } })
        cleanups.push(() => proxy.close())
        const databaseUrl = await services.database()
        const dataDir = mkdtempSync(join(tmpdir(), "feedline-faults-"))
        cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }))
        const a = await startTestServer({ databaseUrl, redisUrl: through(services.redis.url, proxy), dataDir })
        const b = await startTestServer({ databaseUrl, redisUrl: services.redis.url, dataDir })
        return { proxy, a, b, databaseUrl }
    }

    /** a's links to Redis are cut (and refused from now on; b's are fine), a commits `lastWords` and stops (PostgreSQL's record of a's commits shows b what it missed). */
    async function diesUnheard(proxy: FaultProxy, a: TestServer, lastWords: () => Promise<void>): Promise<void> {
        proxy.refuse({ mode: "reset" })
        proxy.reset()
        await lastWords()
        await a.close()
    }

    /**
     * A subscriber on `a` (with `after`, token "s") to the device feed's datastream `stream`, and `put`, a write of it on
     * `b`: one change has crossed from b to a's subscriber when it returns.
     */
    async function subscribedAcross(a: TestServer, b: TestServer, stream: string, t: TestContext) {
        const key = a.credentials.deviceKey
        const feed = a.credentials.feedId
        const put = (value: string) => http(b, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [{ id: stream, current_value: value }] } })
        const sub = await TlsClient.open(a, key)
        t.after(() => sub.close())
        assert.equal((await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/${stream}`, token: "s", params: { after: "latest" } })).status, 200)
        assert.equal((await put("crossed")).status, 200)
        assert.equal((await sub.push("s")).body.current_value, "crossed")
        return { sub, put }
    }

    /** No notice (503 E_PUSHES_INTERRUPTED) came to `c`, and it is still connected. */
    function neverTold(c: TlsClient, what: string): void {
        assert.equal(c.q.lines.find((l) => l.response?.body?.code === "E_PUSHES_INTERRUPTED")?.raw, undefined, `${what}: not told to resubscribe`)
        assert.equal(c.q.closed, false, `${what}: still connected`)
    }

    test("[P§8] a Redis that stops answering: requests are let through without the per-key budget while it is silent, and the other process's writes reach the subscribers from the store meanwhile (not told to reconnect); afterwards pushes cross again", async (t) => {
        const { proxy, a, b } = await serversWithRedisThroughProxy()
        cleanups.push(() => a.close(), () => b.close())
        const key = a.credentials.deviceKey
        const feed = a.credentials.feedId
        const put = (s: TestServer, value: string) => http(s, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [{ id: "r", current_value: value }] } })
        const sub = await TlsClient.open(a, key)
        t.after(() => sub.close())
        assert.equal((await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/r`, token: "s" })).status, 200)
        assert.equal((await put(b, "crossed")).status, 200)
        assert.equal((await sub.push("s")).body.current_value, "crossed")

        proxy.blackhole({ forMs: FAULT_MS })
        const holing = () => proxy.activeFaults().some((f) => f.startsWith("blackhole"))
        const during = await put(a, "during")
        assert.equal(during.status, 200)
        assert.ok(holing(), "answered while Redis was still silent (the per-key budget let it through)")
        assert.equal((await sub.push("s", FAULT_MS)).body.current_value, "during")
        // b's write cannot cross through Redis: a reads it from the store once it noticed the silence
        assert.equal((await put(b, "from b during")).status, 200)
        assert.equal((await sub.push("s", FAULT_MS)).body.current_value, "from b during")
        assert.ok(holing(), "pushed while Redis was still silent")
        neverTold(sub, "the subscriber")

        proxy.clear()
        assert.equal((await put(b, "back")).status, 200)
        assert.equal((await sub.push("s", FAULT_MS)).body.current_value, "back")
        neverTold(sub, "the subscriber")
    })

    test("[P§8] a process whose link to Redis broke commits a change and dies before the link is back: another process's subscribers get the change from the store (PostgreSQL's record of the dead one's commits), not told to reconnect", async (t) => {
        const { proxy, a, b } = await serversWithRedisThroughProxy()
        let aDead = false
        cleanups.push(() => (aDead ? Promise.resolve() : a.close()), () => b.close())
        const key = a.credentials.deviceKey
        const feed = a.credentials.feedId
        const resource = `/feeds/${feed}/datastreams/d`
        const put = (s: TestServer, value: string) => http(s, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [{ id: "d", current_value: value }] } })
        const sub = await TlsClient.open(b, key)
        t.after(() => sub.close())
        assert.equal((await sub.request({ method: "subscribe", resource, token: "s", params: { after: "latest" } })).status, 200)
        assert.equal((await put(a, "crossed")).status, 200)
        const crossed = await sub.push("s")
        assert.equal(crossed.body.current_value, "crossed")

        await diesUnheard(proxy, a, async () => assert.equal((await put(a, "last words")).status, 200, "acknowledged: committed in PostgreSQL"))
        aDead = true
        const caught = await sub.push("s", FAULT_MS)
        assert.equal(caught.body.current_value, "last words")
        assert.ok(caught.body.seq > crossed.body.seq)
        neverTold(sub, "the subscriber")
    })

    for (const what of ["datastream", "datastream twice", "feed"] as const) {
        const outcome = {
            datastream: "get its deletion push in its place, between the changes before and after it (caught up from the store)",
            "datastream twice": "of that feed alone are told 503 E_PUSHES_INTERRUPTED (the store names each datastream's last deletion only)",
            feed: "get the deletion and the final 404 (caught up from the store)",
        }[what]
        test(`[P§8] a process whose link to Redis broke deletes a ${what} and dies before the link is back: another process's subscribers ${outcome}`, async (t) => {
            const { proxy, a, b } = await serversWithRedisThroughProxy()
            let aDead = false
            cleanups.push(() => (aDead ? Promise.resolve() : a.close()), () => b.close())
            // the master key on feeds of its own: deleting the device's feed would revoke the device key, which ends subscriptions another way
            const key = a.credentials.masterKey
            const feedOf = async (title: string) => {
                const made = await http(a, "POST", "/v2/feeds", { key, body: { title } })
                assert.equal(made.status, 201)
                return made.body.id as number
            }
            const feed = await feedOf("deleted while unheard")
            const other = await feedOf("untouched")
            const resource = `/feeds/${feed}/datastreams/d`
            const sub = await TlsClient.open(b, key)
            const bystander = await TlsClient.open(b, key)
            t.after(() => (sub.close(), bystander.close()))
            assert.equal((await sub.request({ method: "subscribe", resource, token: "s" })).status, 200)
            assert.equal((await bystander.request({ method: "subscribe", resource: `/feeds/${other}`, token: "o" })).status, 200)
            const putD = (value: string) => http(a, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [{ id: "d", current_value: value }] } })
            assert.equal((await putD("crossed")).status, 200)
            assert.equal((await sub.push("s")).body.current_value, "crossed")

            const path = what === "feed" ? `/v2/feeds/${feed}` : `/v2/feeds/${feed}/datastreams/d`
            await diesUnheard(proxy, a, async () => {
                assert.equal((await http(a, "PUT", `/v2/feeds/${other}`, { key, body: { datastreams: [{ id: "o", current_value: "unheard too" }] } })).status, 200)
                assert.equal((await http(a, "DELETE", path, { key })).status, 200, "deleted: committed in PostgreSQL")
                if (what === "feed") return
                // made again by its next write
                assert.equal((await putD("again")).status, 200)
                if (what === "datastream twice") assert.equal((await http(a, "DELETE", path, { key })).status, 200)
            })
            aDead = true
            if (what === "feed") {
                assert.deepEqual((await sub.push("s", FAULT_MS)).body, { id: feed, deleted: true })
                const final = await sub.push("s", FAULT_MS)
                assert.deepEqual([final.status, final.body.code], [404, "E_FEED_DELETED"])
                neverTold(sub, "the deleted feed's subscriber")
            } else if (what === "datastream") {
                // what a live subscriber got: the deletion (the subscription goes on), then the write that made it again
                assert.deepEqual((await sub.push("s", FAULT_MS)).body, { id: "d", deleted: true })
                assert.equal((await sub.push("s", FAULT_MS)).body.current_value, "again")
                neverTold(sub, "the deleted datastream's subscriber")
            } else {
                const notice = await sub.notice(FAULT_MS)
                assert.deepEqual([notice.status, notice.body.code], [503, "E_PUSHES_INTERRUPTED"])
                assert.match(notice.body.errors, /datastream "d" of feed \d+ was deleted more than once/)
                // what the subscriber does then: subscribe again, and read what a replay does not carry (deletions)
                assert.equal((await http(b, "GET", `/v2/feeds/${feed}/datastreams/d`, { key })).status, 404)
            }
            assert.equal((await bystander.push("o", FAULT_MS)).body.current_value, "unheard too", "the other feed's change, from the store")
            neverTold(bystander, "another feed's subscriber")
        })
    }

    test("[P§8] a process's link to Redis cut while another writes to many feeds: its subscribers stay connected and get every change once, in commit order (caught up from the store), a datastream deleted meanwhile among them in its place; a feed deleted meanwhile gets its deletion; none is told", async (t) => {
        const { proxy, a, b } = await serversWithRedisThroughProxy()
        cleanups.push(() => a.close(), () => b.close())
        const key = a.credentials.masterKey
        const FEEDS = 10
        const feeds: number[] = []
        for (let i = 0; i < FEEDS; i++) {
            const made = await http(b, "POST", "/v2/feeds", { key, body: { title: `cut ${i}` } })
            assert.equal(made.status, 201)
            feeds.push(made.body.id as number)
        }
        const [trimmed, deleted, ...kept] = feeds
        assert.equal((await http(b, "PUT", `/v2/feeds/${trimmed}`, { key, body: { datastreams: [{ id: "gone", current_value: "x" }] } })).status, 200)
        // on a: one connection per feed, each subscribed with `after` (its pushes carry their seq)
        const subs = new Map<number, { c: TlsClient; from: number }>()
        for (const f of feeds) {
            const c = await TlsClient.open(a, key)
            t.after(() => c.close())
            const r = await c.request({ method: "subscribe", resource: `/feeds/${f}`, params: { after: "latest" }, token: "s" })
            assert.equal(r.status, 200)
            subs.set(f, { c, from: r.body.seq as number })
        }
        // b writes to every feed still there, round after round, until told to stop
        const writing = new Set(feeds)
        let rounds = 0
        let stop = false
        const writer = (async () => {
            while (!stop) {
                rounds++
                const answers = await Promise.all([...writing].map((f) => http(b, "PUT", `/v2/feeds/${f}`, { key, body: { datastreams: [{ id: "v", current_value: String(rounds) }] } })))
                for (const r of answers) assert.ok(r.status === 200 || r.status === 404, `a write answered ${r.status}`)
                await new Promise((r) => setTimeout(r, 20))
            }
        })()
        const roundsPast = (n: number) => until(`${n} more rounds of writes`, ((from) => () => rounds >= from + n)(rounds), FAULT_MS, 10)
        await roundsPast(5)
        // a's links to Redis cut and refused: it hears nothing of b's writes
        proxy.refuse({ mode: "reset" })
        proxy.reset()
        await roundsPast(10)
        writing.delete(deleted)
        assert.equal((await http(b, "DELETE", `/v2/feeds/${deleted}`, { key })).status, 200)
        assert.equal((await http(b, "DELETE", `/v2/feeds/${trimmed}/datastreams/gone`, { key })).status, 200)
        await roundsPast(10)
        proxy.accept()
        await roundsPast(10)
        stop = true
        await writer

        // what the store holds after each subscription's cursor, in commit order (a replay by seq, on b)
        const reader = await TlsClient.open(b, key)
        t.after(() => reader.close())
        for (const f of [trimmed, ...kept]) {
            const { c, from } = subs.get(f)!
            const r = await reader.request({ method: "subscribe", resource: `/feeds/${f}`, params: { after: from }, token: `r${f}` })
            assert.equal(r.status, 200)
            // the replay's pushes, up to the cursor the acknowledgement gives (the feed's last seq)
            const stored: number[] = []
            while (stored.length === 0 || stored[stored.length - 1] < r.body.seq) stored.push((await reader.push(`r${f}`)).body.seq as number)
            assert.ok(stored.length >= 30, `feed ${f}: ${stored.length} changes written`)
            const pushedSeqs = () => c.q.lines.filter((l) => l.response?.token === "s" && l.response.status === 200 && l.response.body?.seq !== undefined && l.response.body?.current_value !== undefined).map((l) => l.response!.body.seq as number)
            await until(`feed ${f}'s subscriber on a to have every change`, () => pushedSeqs().length >= stored.length, FAULT_MS, 50)
            assert.deepEqual(pushedSeqs(), stored, `feed ${f}: every change once, in commit order`)
            neverTold(c, `feed ${f}'s subscriber`)
            if (f !== trimmed) continue
            // the datastream's deletion took the one seq of the feed's chain no replay holds: pushed between the points before and after it
            const deletionSeq = stored.find((seq, i) => seq !== (i === 0 ? from : stored[i - 1]) + 1)! - 1
            const order = c.q.lines.filter((l) => l.response?.token === "s" && l.response.status === 200 && (l.response.body?.current_value !== undefined || l.response.body?.deleted)).map((l) => (l.response!.body.deleted ? `deleted ${l.response!.body.id}` : (l.response!.body.seq as number)))
            assert.deepEqual(order, [...stored.filter((seq) => seq < deletionSeq), "deleted gone", ...stored.filter((seq) => seq > deletionSeq)], "the deletion in its place")
        }
        // the deleted feed's subscriber: its changes up to the deletion, then the deletion and the final 404
        const gone = subs.get(deleted)!.c
        const final = await gone.q.next((l) => l.response?.token === "s" && l.response.status === 404, FAULT_MS)
        assert.equal(final.response!.body.code, "E_FEED_DELETED")
        assert.ok(gone.q.lines.some((l) => l.response?.token === "s" && l.response.body?.deleted === true && l.response.body.id === deleted), "the deletion push")
        neverTold(gone, "the deleted feed's subscriber")
        assert.ok(a.metrics.catchUps.get({ outcome: "repaired" }) >= 1, "a caught feeds up from the store")
        t.diagnostic(`${rounds} rounds of writes; a pushed ${a.metrics.pushesCaughtUp.get()} changes from the store in ${a.metrics.catchUps.get({ outcome: "repaired" })} feed catch-ups, told ${a.metrics.pushesInterrupted.get({ scope: "feed" })} connection(s)`)
    })

    test("[P§8] feeds nobody on a process subscribed to while its link to Redis was down (its catch-ups skip them): a subscriber made there once the link is back gets what it asked for, each once, and nothing before: a plain one only what is committed after its answer, one with `after: \"latest\"` not told to resubscribe (over 1000 changes were missed), one with `after` or `since` its replay", async (t) => {
        const { proxy, a, b } = await serversWithRedisThroughProxy()
        cleanups.push(() => a.close(), () => b.close())
        const key = a.credentials.masterKey
        const feedOf = async (title: string) => {
            const made = await http(b, "POST", "/v2/feeds", { key, body: { title } })
            assert.equal(made.status, 201)
            return made.body.id as number
        }
        const [plain, latest, after, since] = [await feedOf("plain"), await feedOf("after latest"), await feedOf("after a cursor"), await feedOf("since")]
        const atOf = (i: number) => new Date(Date.UTC(2026, 0, 1) + i).toISOString()
        // writes on b of datapoints numbered from `from` on, their `at`s in that order (a body holds at most 16 KiB: 250 a write)
        const put = async (feed: number, values: string[], from: number) => {
            for (let i = 0; i < values.length; i += 250) {
                const datapoints = values.slice(i, i + 250).map((value, j) => ({ at: atOf(from + i + j), value }))
                assert.equal((await http(b, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [{ id: "v", datapoints }] } })).status, 200)
            }
        }
        for (const f of [plain, latest, after, since]) await put(f, ["before"], 0)
        // the cursor a client of `after` kept, from a subscription on b
        const reader = await TlsClient.open(b, key)
        t.after(() => reader.close())
        const cursor = (await reader.request({ method: "subscribe", resource: `/feeds/${after}`, token: "r", params: { after: "latest" } })).body.seq as number

        // a's links to Redis cut: b's writes meanwhile never reach it, and nobody on a subscribes to those feeds
        proxy.refuse({ mode: "reset" })
        proxy.reset()
        const missed = ["missed 1", "missed 2", "missed 3"]
        for (const f of [plain, after, since]) await put(f, missed, 1)
        await put(latest, Array.from({ length: 1100 }, (_, i) => `missed ${i + 1}`), 1)
        proxy.accept()
        // back: Redis counts a's subscription to the changes again
        const spy = new Redis(services.redis.url)
        cleanups.push(async () => spy.disconnect())
        const channel = `feedline:${await a.store.storeId()}:changes`
        await until("a to subscribe to the changes again", async () => ((await spy.pubsub("NUMSUB", channel)) as [string, number])[1] === 2, FAULT_MS, 50)

        const subscriber = async (feed: number, params?: Record<string, string | number>) => {
            const c = await TlsClient.open(a, key)
            t.after(() => c.close())
            assert.equal((await c.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/v`, token: "s", params })).status, 200)
            return c
        }
        const subs = { plain: await subscriber(plain), latest: await subscriber(latest, { after: "latest" }), after: await subscriber(after, { after: cursor }), since: await subscriber(since, { since: atOf(0) }) }
        for (const f of [plain, latest, after, since]) await put(f, ["new"], 2000)
        const values = (c: TlsClient) => c.q.lines.filter((l) => l.response?.token === "s" && l.response.body?.current_value !== undefined).map((l) => l.response!.body.current_value as string)
        const expected = { plain: ["new"], latest: ["new"], after: [...missed, "new"], since: [...missed, "new"] }
        for (const [what, c] of Object.entries(subs)) {
            // without the fix a held "new" for the changes it missed (its place in the feed's order left behind), then caught
            // the feed up from there: the plain subscriber got "missed 1" first, the one with `after: "latest"` was told
            await until(`the ${what} subscriber to have as many pushes as it is owed`, () => values(c).length >= expected[what as keyof typeof expected].length || c.q.closed, FAULT_MS, 50)
            assert.deepEqual(values(c), expected[what as keyof typeof expected], `the ${what} subscriber: each once, in order, nothing before what it asked`)
        }
        // and the next change crosses at once to each, alone
        for (const f of [plain, latest, after, since]) await put(f, ["next"], 2001)
        for (const [what, c] of Object.entries(subs)) {
            const owed = [...expected[what as keyof typeof expected], "next"]
            await until(`the ${what} subscriber to have the next change`, () => values(c).length >= owed.length || c.q.closed, FAULT_MS, 50)
            assert.deepEqual(values(c), owed, `the ${what} subscriber`)
            neverTold(c, `the ${what} subscriber`)
        }
    })

    test("[P§8] a change published while a process's returning link to Redis is not yet subscribed again (between ioredis's `ready` and Redis confirming the SUBSCRIBE): caught up from the store though its feed then goes quiet, pushed once", async (t) => {
        const redis = await SubscribeHoldingProxy.start(services.redis.port)
        cleanups.push(() => redis.close())
        // a's reads of PostgreSQL's record of commits can be held (unheard-commits.ts: its first read after the return counts what was committed as heard), and its catch-up reads are counted
        const commitReads = { held: false, waiting: [] as (() => void)[] }
        let catchUpReads = 0
        const wrapStore = storeWith((store) => ({
            lastCommits: async () => {
                if (commitReads.held) await new Promise<void>((go) => commitReads.waiting.push(go))
                return store.lastCommits!()
            },
            changesAfter: async (...args) => {
                catchUpReads++
                try {
                    return await store.changesAfter!(...args)
                } finally {
                    catchUpReads--
                }
            },
        }))
        const databaseUrl = await services.database()
        const dataDir = mkdtempSync(join(tmpdir(), "feedline-faults-"))
        cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }))
        const a = await startTestServer({ databaseUrl, redisUrl: `redis://127.0.0.1:${redis.port}`, dataDir, wrapStore })
        const b = await startTestServer({ databaseUrl, redisUrl: services.redis.url, dataDir })
        cleanups.push(() => a.close(), () => b.close())
        // what Redis has taken from b: its publishes, in the order Redis handles them
        const spy = new Redis(services.redis.url)
        cleanups.push(async () => spy.disconnect())
        const published: string[] = []
        spy.on("pmessage", (_p, _c, text: string) => published.push(text))
        await spy.psubscribe("feedline:*:changes")
        const { sub, put } = await subscribedAcross(a, b, "q", t)

        // a's links to Redis cut: b's change reaches a's subscriber from the store
        redis.cut()
        assert.equal((await put("while cut")).status, 200)
        assert.equal((await sub.push("s", FAULT_MS)).body.current_value, "while cut")

        // the link comes back, its SUBSCRIBE held on the way to Redis; whatever a caught up on the return is read
        commitReads.held = true
        redis.accept({ holdSubscribe: true })
        await redis.subscribeHeld
        await until("a's catch-ups to have read the store", () => catchUpReads === 0, FAULT_MS)
        // b's change: committed, and published while a is not subscribed (Redis does not keep it for a)
        assert.equal((await put("in the window")).status, 200)
        await until("Redis to have handled b's publish", () => published.some((m) => m.includes("in the window")), FAULT_MS)
        commitReads.held = false
        for (const go of commitReads.waiting.splice(0)) go()
        redis.release()

        // the feed goes quiet: only a catch-up after the subscription was confirmed brings the change
        assert.equal((await sub.push("s", FAULT_MS)).body.current_value, "in the window")
        // and the next change crosses Redis, each once
        assert.equal((await put("after")).status, 200)
        assert.equal((await sub.push("s", FAULT_MS)).body.current_value, "after")
        const pushed = sub.q.lines.filter((l) => l.response?.token === "s" && l.response.body?.current_value !== undefined).map((l) => l.response!.body.current_value)
        assert.deepEqual(pushed, ["crossed", "while cut", "in the window", "after"], "every change once, in order")
        neverTold(sub, "the subscriber")
    })

    test("[P§8] PostgreSQL failed over to a replica restored from before a feed's newest commits (its seqs go back): a process's subscriber is told to resubscribe (503 E_PUSHES_INTERRUPTED), not left without the new history's change; its cursor, resubscribing, gets it, then goes live", async () => {
        const { a, b, databaseUrl } = await serversWithRedisThroughProxy()
        cleanups.push(() => a.close(), () => b.close())
        const key = a.credentials.deviceKey
        const feed = a.credentials.feedId
        const put = (value: string) => http(b, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [{ id: "restored", current_value: value }] } })
        for (const v of ["before 1", "before 2"]) assert.equal((await put(v)).status, 200)
        // a device's cursor (by seq, one datastream), live on a from the feed's head: every seq up to it counts as pushed there
        const cursor = new SubscriptionCursor(undefined, 16, true, true)
        const resource = `/feeds/${feed}/datastreams/restored`
        const sub = await TlsClient.open(a, key)
        cleanups.push(async () => sub.close())
        const ack = await sub.request({ method: "subscribe", resource, token: "s", params: { after: "latest" } })
        assert.equal(cursor.acknowledged(ack.body), "live")
        const head = ack.body.seq as number
        for (const v of ["old 1", "old 2"]) assert.equal((await put(v)).status, 200)
        for (const v of ["old 1", "old 2"]) {
            const p = await sub.push("s", FAULT_MS)
            assert.equal(p.body.current_value, v)
            assert.equal(cursor.push(p.status, p.body).deliver, true)
        }
        // the failover: the replica has the feed up to the seq before the head; the next commit takes the head's seq again
        const admin = new pg.Client({ connectionString: databaseUrl })
        await admin.connect()
        cleanups.push(() => admin.end())
        await admin.query("DELETE FROM datapoints WHERE feed = $1 AND seq >= $2", [feed, head])
        await admin.query("UPDATE feeds SET last_seq = $2 WHERE id = $1", [feed, head - 1])
        assert.equal((await put("new")).status, 200)
        // without the fix a dropped it as pushed already (its seq at the subscriber's head): the subscriber never heard of it
        await until("a's subscriber to be told to resubscribe", () => sub.q.lines.some((l) => l.response?.body?.code === "E_PUSHES_INTERRUPTED"), FAULT_MS, 50)
        // as the firmware's link does: again with `after`, answered with the new head (below what it handled: a reset),
        // then by `since` the last `at` it handled up to that head, then live by `after`
        const again = await TlsClient.open(a, key)
        cleanups.push(async () => again.close())
        const resubscribe = (token: string) => again.request({ method: "subscribe", resource, token, params: cursor.subscribeParams() })
        assert.equal(cursor.acknowledged((await resubscribe("r1")).body), "resubscribe", "the lower head read as a reset")
        assert.equal(cursor.acknowledged((await resubscribe("r2")).body), "replaying")
        const p = await again.push("r2", FAULT_MS)
        assert.equal(p.body.current_value, "new")
        const handled = cursor.push(p.status, p.body)
        assert.deepEqual([handled.deliver, handled.caughtUp], [true, true])
        assert.equal(cursor.acknowledged((await resubscribe("r3")).body), "live")
        assert.equal((await put("next")).status, 200)
        assert.equal((await again.push("r3", FAULT_MS)).body.current_value, "next")
    })

    test("[P§8] PostgreSQL's record of commits cannot be read when a process's link to Redis comes back: the return waits for that read (tried again), so a change another process commits meanwhile and never publishes (it dies) is still pushed, from the store, once", async (t) => {
        // a's reads of the record of commits fail while `failing`; its catch-up reads are timed
        let failing = false
        let failedAtMs: number | undefined
        const catchUpReads: { startMs: number; done: boolean }[] = []
        const wrapStore = storeWith((store) => ({
            lastCommits: async () => {
                if (failing) {
                    failedAtMs ??= performance.now()
                    throw new StoreError("unavailable", "the record of commits could not be read (the test's fault)", 1000)
                }
                return store.lastCommits!()
            },
            changesAfter: async (...args) => {
                const read = { startMs: performance.now(), done: false }
                catchUpReads.push(read)
                try {
                    return await store.changesAfter!(...args)
                } finally {
                    read.done = true
                }
            },
        }))
        const [toA, toB] = [await startFaultProxy({ target: { port: services.redis.port } }), await startFaultProxy({ target: { port: services.redis.port } })]
        cleanups.push(() => toA.close(), () => toB.close())
        const databaseUrl = await services.database()
        const dataDir = mkdtempSync(join(tmpdir(), "feedline-faults-"))
        cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }))
        const a = await startTestServer({ databaseUrl, redisUrl: through(services.redis.url, toA), dataDir, wrapStore })
        const b = await startTestServer({ databaseUrl, redisUrl: through(services.redis.url, toB), dataDir })
        let bDead = false
        cleanups.push(() => a.close(), () => (bDead ? Promise.resolve() : b.close()))
        const { sub, put } = await subscribedAcross(a, b, "w", t)

        // a's link to Redis cut (it catches up from the store meanwhile); then back, its first read of the record failing
        toA.refuse({ mode: "reset" })
        toA.reset()
        const readsWhileDown = catchUpReads.length
        await until("a to catch up from the store while its link is down", () => catchUpReads.length > readsWhileDown, FAULT_MS)
        failing = true
        toA.accept()
        await until("a's read of the record of commits to fail after its link came back", () => failedAtMs !== undefined, FAULT_MS)
        // whatever a catches up on its return has read the store (without the fix: the last catch-up there is)
        await until("a catch-up after that failure to have read the store", () => catchUpReads.some((r) => r.startMs > failedAtMs! && r.done), FAULT_MS)

        // b commits a change and dies before its own link to Redis is back: only the store has it
        await diesUnheard(toB, b, async () => assert.equal((await put("unheard")).status, 200, "committed in PostgreSQL"))
        bDead = true
        failing = false
        // the feed stays quiet: without the fix a's next read of the record counted b's commit as heard, and no catch-up followed
        assert.equal((await sub.push("s", 15_000)).body.current_value, "unheard")
        const pushed = sub.q.lines.filter((l) => l.response?.token === "s" && l.response.body?.current_value !== undefined).map((l) => l.response!.body.current_value)
        assert.deepEqual(pushed, ["crossed", "unheard"], "every change once, in order")
        neverTold(sub, "the subscriber")
    })

    test("a process whose first reads of PostgreSQL's record of commits fail at its start reads it again before it goes on (what counts as heard is read before the feeds' last seqs)", async () => {
        let reads = 0
        const commits = {
            recordAs: () => {},
            last: async () => {
                if (++reads <= 2) throw new StoreError("unavailable", "the record of commits could not be read (the test's fault)")
                return new Map<string, number>()
            },
        }
        const bus = await RedisBus.connect(services.redis.url, createLogger("silent"), "baseline", commits)
        cleanups.push(() => bus.close())
        assert.equal(reads, 3, "read until it succeeded")
    })

    test("changes published while only the publisher's link to Redis is down never arrive: the other processes notice the gap and tell their subscribers; a change Redis hears twice is handed on once", async () => {
        const proxy = await startFaultProxy({ target: { port: services.redis.port } })
        cleanups.push(() => proxy.close())
        const log = createLogger("silent")
        // the publisher's log: when it has given up on a change (ioredis stops retrying it)
        let publisherLog = ""
        const publisher = await RedisBus.connect(through(services.redis.url, proxy), createLogger("warn", new Writable({ write: (chunk, _e, done) => ((publisherLog += chunk), done()) })), "gap")
        const receiver = await RedisBus.connect(services.redis.url, log, "gap")
        cleanups.push(() => publisher.close(), () => receiver.close())
        const got: HubMessage[] = []
        const told: string[] = []
        receiver.onMessage((m) => got.push(m))
        receiver.onInterrupted((why) => told.push(why))
        const change = (seq: number): HubMessage => ({ events: [{ feed: 1, seq }] })
        publisher.publish(change(1))
        await until("the first change to arrive", () => got.length === 1, FAULT_MS)
        // the publisher's connections are cut and refused; the receiver's link is fine
        proxy.refuse({ mode: "reset" })
        proxy.reset()
        publisher.publish(change(2))
        await until("the publisher to give up on its change", () => publisherLog.includes("publishing changes to the other processes failed"), FAULT_MS)
        proxy.accept()
        await until("the receiver to notice the change that never came", () => told.length > 0, FAULT_MS)
        assert.match(told[0], /did not arrive/)
        assert.deepEqual(got, [change(1)], "nothing else was handed on")
        // the same envelope twice (as ioredis resends a command whose answer a reconnect lost): handed on once
        const raw = new Redis(services.redis.url)
        cleanups.push(async () => raw.disconnect())
        const twice = JSON.stringify({ p: "another", n: 1, m: change(7) })
        await raw.publish("feedline:gap:changes", twice)
        await raw.publish("feedline:gap:changes", twice)
        publisher.publish(change(3))
        await until("the next change to arrive", () => got.some((m) => "events" in m && m.events[0].seq === 3), FAULT_MS)
        assert.deepEqual(got.map((m) => ("events" in m ? m.events[0].seq : 0)), [1, 7, 3])
    })

    test("the per-key budget while Redis is away: not asked while it is known to be down, asked at most once a second while it stalls (each question waited up to 1 s, also while it was down), enforced again once it is back", async () => {
        const proxy = await startFaultProxy({ target: { port: services.redis.port } })
        cleanups.push(() => proxy.close())
        const bus = await RedisBus.connect(through(services.redis.url, proxy), createLogger("silent"), "budget")
        cleanups.push(() => bus.close())
        const rate = bus.keyRate({ ratePerSecond: 1, burst: 2 })
        const oks = async (n: number, atMs: number) => {
            const out: boolean[] = []
            for (let i = 0; i < n; i++) out.push((await rate.take("k", atMs)).ok)
            return out
        }
        assert.deepEqual(await oks(3, 0), [true, true, false], "Redis's budget")
        // stalled: the first question waits for its timeout and lets the request through; the next ones within a second are not asked
        proxy.blackhole({ forMs: FAULT_MS })
        const first = rate.take("k", 1000)
        assert.ok(first instanceof Promise)
        assert.equal((await first).ok, true)
        assert.equal(rate.take("k", 1500) instanceof Promise, false, "not asked again at once")
        proxy.clear()
        // down (connections refused): not asked at all
        proxy.refuse({ mode: "refused" })
        proxy.reset()
        const atMs = 10_000
        await until("the limiter to know Redis is down", () => !(rate.take("k", atMs) instanceof Promise), FAULT_MS)
        assert.deepEqual(rate.take("k", atMs), { ok: true, retryAfterMs: 0 })
        proxy.accept()
        await until("the budget to be Redis's again", async () => (await rate.take("k", atMs + 5000)).ok === false, FAULT_MS, 20)
    })
})

/** startServer's wrapStore: the store with the methods `replaced` gives (each may call the store's own). */
function storeWith(replaced: (store: Store) => Partial<Store>): (store: Store) => Store {
    return (store) => {
        const own: Partial<Store> = replaced(store)
        return new Proxy(store, {
            get: (target, prop) => {
                if (Object.hasOwn(own, prop)) return own[prop as keyof Store]
                const v = Reflect.get(target, prop, target)
                return typeof v === "function" ? v.bind(target) : v
            },
        })
    }
}

/**
 * A TCP proxy to Redis that cuts its connections and refuses new ones (cut), lets them in again (accept),
 * and can hold a connection's bytes from its next SUBSCRIBE on until release(): Redis then confirms the
 * subscription only when the test says, and a publish meanwhile does not reach that connection.
 */
class SubscribeHoldingProxy {
    private readonly open = new Set<net.Socket>()
    private refusing = false
    private armed = false
    private held?: () => void
    private onHeld!: () => void
    /** resolves when a SUBSCRIBE is being held (after accept({ holdSubscribe: true })) */
    subscribeHeld!: Promise<void>

    private constructor(private readonly server: net.Server) {}

    static async start(targetPort: number): Promise<SubscribeHoldingProxy> {
        const server = net.createServer()
        const proxy = new SubscribeHoldingProxy(server)
        server.on("connection", (client) => proxy.pass(client, targetPort))
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
        return proxy
    }

    get port(): number {
        return (this.server.address() as net.AddressInfo).port
    }

    private pass(client: net.Socket, targetPort: number): void {
        if (this.refusing) return void client.destroy()
        const upstream = net.connect(targetPort, "127.0.0.1")
        let holding: Buffer[] | undefined
        client.on("data", (chunk: Buffer) => {
            // RESP: the command name as a bulk string
            if (!holding && this.armed && /\$9\r\nsubscribe\r\n/i.test(chunk.toString("latin1"))) {
                this.armed = false
                holding = []
                this.held = () => {
                    if (holding) upstream.write(Buffer.concat(holding))
                    holding = undefined
                }
                this.onHeld()
            }
            if (holding) holding.push(chunk)
            else upstream.write(chunk)
        })
        upstream.on("data", (chunk: Buffer) => client.write(chunk))
        for (const s of [client, upstream]) {
            this.open.add(s)
            s.on("error", () => {})
            s.on("close", () => {
                this.open.delete(s)
                client.destroy()
                upstream.destroy()
            })
        }
    }

    /** every connection reset, new ones refused until accept() */
    cut(): void {
        this.refusing = true
        for (const s of this.open) s.resetAndDestroy()
    }

    accept({ holdSubscribe = false } = {}): void {
        this.refusing = false
        this.armed = holdSubscribe
        this.subscribeHeld = new Promise((r) => (this.onHeld = r))
    }

    /** the held SUBSCRIBE (and what followed it) goes on to Redis */
    release(): void {
        this.held?.()
        this.held = undefined
    }

    async close(): Promise<void> {
        this.release()
        for (const s of this.open) s.destroy()
        await new Promise((r) => this.server.close(r))
    }
}
