// What crosses processes when several servers share one PostgreSQL and one Redis (issue 14): a write
// acknowledged by one reaches subscribers on every other; a key revoked or a token family signed out
// on one ends what it allowed on every other at the others' next look for key changes; /v2/sessions on any one lists every
// one's connections, and a dead one's drop out; the per-key budget is one budget over all of them; a
// deleted feed ends its subscriptions everywhere; a process drained while writes are in flight pushes
// what it acknowledged to the others before it exits; when the link to Redis breaks, subscribers are
// told to resubscribe with `since`. Two servers in this process stand for two processes (each has its own hub,
// store connections and bus connection); the dead one is a real child process, SIGKILLed.
// Skipped, counted, where PostgreSQL or Redis is not installed.
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { after, before, describe, test } from "node:test"
import { startServer } from "../../../../devs/server/index.ts"
import { startServerProcess } from "../../../e2e/server-process.ts"
import { SCALE_SKIP, startScaleServices, startServerGroup, stopServerGroup, type ScaleServices } from "../../harness/scale.ts"
import { http, InProcessClient, SERVER_OWN_EVENT_WAIT_MS, TlsClient, WsClient, type TestServer } from "../../harness/server-harness.ts"
import { until } from "../../harness/until.ts"
import { compiledCli } from "../../../../devs/server/compiled.ts"

const execFileAsync = promisify(execFile)
/** A dead process's sessions leave the lists within their TTL (5 s, bus/redis.ts); this allows for a loaded machine. */
const DEAD_SESSIONS_GONE_WITHIN_MS = 15_000
/** Another process's new connection shows in a list within one announcement (1 s); the same allowance. */
const SESSIONS_SHOWN_WITHIN_MS = 10_000

describe("across processes on PostgreSQL and Redis", { skip: SCALE_SKIP }, () => {
    let services: ScaleServices
    let a: TestServer
    let b: TestServer
    before(async () => {
        services = await startScaleServices()
        ;[a, b] = await startServerGroup(services, 2)
    })
    after(async () => {
        await stopServerGroup([a, b].filter(Boolean))
        await services?.stop()
    })

    const write = (s: TestServer, stream: string, value: string, feed = a.credentials.feedId) =>
        http(s, "PUT", `/v2/feeds/${feed}`, { key: a.credentials.deviceKey, body: { datastreams: [{ id: stream, current_value: value }] } })

    test("the second process found the first's credentials (one master key, feed 1, one device key)", async () => {
        assert.deepEqual(b.credentials, a.credentials)
        assert.equal(a.credentialsCreated !== b.credentialsCreated, true, "exactly one made them")
        const keys = await a.keys.list()
        assert.deepEqual(keys.map((k) => k.label).sort(), ["device, feed 1", "master"])
    })

    test("a write acknowledged by one process is pushed to subscribers on the other, over TLS and WebSocket, once", async (t) => {
        const tls = await TlsClient.open(b, a.credentials.deviceKey)
        const ws = await WsClient.open(b)
        t.after(() => (tls.close(), ws.close()))
        await ws.welcome()
        for (const c of [tls, ws]) {
            const r = await c.request({ method: "subscribe", resource: `/feeds/${a.credentials.feedId}/datastreams/cross`, headers: { "X-ApiKey": a.credentials.deviceKey }, token: "x" })
            assert.equal(r.status, 200)
        }
        assert.equal((await write(a, "cross", "from-a")).status, 200)
        for (const c of [tls, ws]) assert.equal((await c.push("x")).body.current_value, "from-a")
        // and the other way round, on a TLS connection to a
        const onA = await TlsClient.open(a, a.credentials.deviceKey)
        t.after(() => onA.close())
        assert.equal((await onA.request({ method: "subscribe", resource: `/feeds/${a.credentials.feedId}/datastreams/cross`, token: "y" })).status, 200)
        assert.equal((await write(b, "cross", "from-b")).status, 200)
        assert.equal((await onA.push("y")).body.current_value, "from-b")
        for (const c of [tls, ws]) assert.equal((await c.push("x")).body.current_value, "from-b")
        // nothing twice: exactly two pushes each on b's connections
        for (const c of [tls, ws]) assert.equal(c.q.lines.filter((l) => l.response?.token === "x" && l.response.status === 200 && l.response.body?.current_value).length, 2)
    })

    test("[P§8] a `since` replay on one process holds what the other acknowledged, then goes live without a gap or a repeat", async (t) => {
        const since = new Date(Date.now() - 1000).toISOString()
        for (let i = 0; i < 5; i++) assert.equal((await write(a, "replayed", `r${i}`)).status, 200)
        const c = await TlsClient.open(b, a.credentials.deviceKey)
        t.after(() => c.close())
        c.sendRaw(JSON.stringify({ method: "subscribe", resource: `/feeds/${a.credentials.feedId}/datastreams/replayed`, params: { since }, token: "r" }))
        // written on the other process while the subscribe is on its way: pushed once, live or replayed
        const during = write(a, "replayed", "r5")
        const values: string[] = []
        while (values.length < 6) {
            const line = await c.push("r")
            if (line.body?.current_value) values.push(line.body.current_value)
        }
        await during
        assert.deepEqual(values, ["r0", "r1", "r2", "r3", "r4", "r5"])
        assert.equal((await write(a, "replayed", "r6")).status, 200)
        assert.equal((await c.push("r")).body.current_value, "r6")
    })

    // "within a second", without a clock: the other process hears the revocation's NOTIFY (catchUp() waits
    // until it has), and its next look for key changes (keys.refresh(), every 500 ms: server/background.test.ts)
    // ends the subscriptions at once, as a connection inside b's process shows. The CLI's revocation below is
    // left to the processes' own looks, waited for as an event.
    test("a key revoked on one process ends its idle subscriptions on the other at the other's next look for key changes, and the other refuses it", async (t) => {
        const made = await http(a, "POST", "/v2/keys", { key: a.credentials.masterKey, body: { label: "doomed", permissions: ["read"], feeds: [a.credentials.feedId] } })
        assert.equal(made.status, 201)
        const c = await TlsClient.open(b, made.body.key)
        const inB = await InProcessClient.open(b, made.body.key)
        t.after(() => (c.close(), inB.close()))
        for (const sub of [c, inB]) assert.equal((await sub.request({ method: "subscribe", resource: `/feeds/${a.credentials.feedId}`, token: "d" })).status, 200)
        assert.equal((await http(a, "DELETE", `/v2/keys/${made.body.id}`, { key: a.credentials.masterKey })).status, 200)
        await b.store.catchUp()
        await b.keys.refresh()
        assert.deepEqual(inB.sent("d").map((r) => [r.status, r.body?.code]), [[200, undefined], [403, "E_FORBIDDEN"]], "ended by b's look: the subscribe's answer, then the final push")
        const end = await c.push("d", SERVER_OWN_EVENT_WAIT_MS)
        assert.deepEqual([end.status, end.body.code], [403, "E_FORBIDDEN"])
        assert.equal((await http(b, "GET", `/v2/feeds/${a.credentials.feedId}`, { key: made.body.key })).status, 401)
    })

    test("feedline keys --database-url: a key the CLI makes works on both processes at once; revoked by the CLI, its subscriptions end", async (t) => {
        const databaseUrl = a.databaseUrl!
        const cliDir = mkdtempSync(join(tmpdir(), "feedline-keys-cli-"))
        t.after(() => rmSync(cliDir, { recursive: true, force: true }))
        const cli = async (...args: string[]) =>
            (await execFileAsync(process.execPath, [compiledCli(), "keys", ...args, "--data-dir", cliDir, "--database-url", databaseUrl])).stdout
        const made = JSON.parse(await cli("create", "--label", "from the cli", "--permissions", "read", "--feeds", String(a.credentials.feedId)))
        for (const s of [a, b]) assert.equal((await http(s, "GET", `/v2/feeds/${a.credentials.feedId}`, { key: made.key })).status, 200)
        const c = await TlsClient.open(b, made.key)
        t.after(() => c.close())
        assert.equal((await c.request({ method: "subscribe", resource: `/feeds/${a.credentials.feedId}`, token: "k" })).status, 200)
        await cli("revoke", made.id)
        // announced by the CLI's commit (NOTIFY), heard by both servers; nobody asks b: its own look ends it
        const end = await c.push("k", SERVER_OWN_EVENT_WAIT_MS)
        assert.deepEqual([end.status, end.body.code], [403, "E_FORBIDDEN"])
        for (const s of [a, b]) assert.equal((await http(s, "GET", `/v2/feeds/${a.credentials.feedId}`, { key: made.key })).status, 401)
    })

    test("[P§7] a token family signed out on one process is refused on the other, and its subscriptions there end", async (t) => {
        const key = await a.keys.create({ permissions: ["read"], feeds: [a.credentials.feedId] })
        const signedIn = await http(a, "POST", "/jwt", { key: key.secret })
        assert.equal(signedIn.status, 200)
        const bearer = { authorization: `Bearer ${signedIn.body.token}` }
        // the processes share the data folder, and with it the token secret: a's token is good on b
        assert.equal((await http(b, "GET", "/v2/feeds", { headers: bearer })).status, 200)
        const ws = await WsClient.open(b)
        t.after(() => ws.close())
        await ws.welcome()
        assert.equal((await ws.request({ method: "subscribe", resource: `/feeds/${a.credentials.feedId}`, headers: { "X-ApiKey": `Bearer ${signedIn.body.token}` }, token: "j" })).status, 200)
        assert.equal((await http(a, "DELETE", "/jwt", { headers: bearer })).status, 200)
        const end = await ws.push("j", SERVER_OWN_EVENT_WAIT_MS)
        assert.deepEqual([end.status, end.body.code], [403, "E_FORBIDDEN"])
        assert.match(end.body.errors, /signed out/)
        assert.equal((await http(b, "GET", "/v2/feeds", { headers: bearer })).status, 401)
    })

    test("/v2/sessions on either process lists both processes' connections, each with the process holding it", async (t) => {
        const onA = await TlsClient.open(a, a.credentials.deviceKey)
        const onB = await TlsClient.open(b, a.credentials.deviceKey)
        t.after(() => (onA.close(), onB.close()))
        const idOf = async (c: TlsClient) => (await c.request({ method: "get", resource: "/session" })).body as { id: string; process: string }
        const [sa, sb] = [await idOf(onA), await idOf(onB)]
        assert.notEqual(sa.process, sb.process)
        for (const s of [a, b]) {
            await until("both connections in the list", async () => {
                const r = await http(s, "GET", "/v2/sessions", { key: a.credentials.masterKey })
                const byId = new Map<string, any>(r.body.sessions.map((e: any) => [e.id, e]))
                return byId.get(sa.id)?.process === sa.process && byId.get(sb.id)?.process === sb.process
            }, SESSIONS_SHOWN_WITHIN_MS)
        }
        // a scoped key sees them too (same feeds), through the other process. Polled like the lists above: a's
        // entries reach b by announcements every second that expire after 5 s, and a process stalled that long
        // on a loaded machine drops out until its next one (a single look failed so once, at load 15-20)
        await until("a's connection in b's list for a scoped key", async () => {
            const r = await http(b, "GET", "/v2/sessions", { key: a.credentials.deviceKey })
            return r.body.sessions.some((e: any) => e.id === sa.id && e.key_label === "device, feed 1")
        }, SESSIONS_SHOWN_WITHIN_MS)
        // a closed connection leaves the other process's list
        onA.close()
        await until("the closed connection to leave", async () => !(await http(b, "GET", "/v2/sessions", { key: a.credentials.masterKey })).body.sessions.some((e: any) => e.id === sa.id), SESSIONS_SHOWN_WITHIN_MS)
    })

    test("the per-key budget is one budget over every process (429 E_KEY_RATE_LIMITED on both once it is spent)", async () => {
        const [x, y] = await startServerGroup(services, 2, { keyRatePerSecond: 0.001, keyRateBurst: 6 })
        try {
            const get = (s: TestServer) => http(s, "GET", `/v2/feeds/${x.credentials.feedId}`, { key: x.credentials.deviceKey })
            for (let i = 0; i < 3; i++) {
                assert.equal((await get(x)).status, 200)
                assert.equal((await get(y)).status, 200)
            }
            for (const s of [x, y]) {
                const r = await get(s)
                assert.deepEqual([r.status, r.body.code], [429, "E_KEY_RATE_LIMITED"])
                assert.ok(r.body.retry_after_ms > 0)
            }
            // another key has its own budget
            const other = await x.keys.create({ permissions: ["read"] })
            assert.equal((await http(y, "GET", "/v2/feeds", { key: other.secret })).status, 200)
        } finally {
            await stopServerGroup([x, y])
        }
    })

    test("[P§7] a key's token budget (POST /jwt: sign-ins and renewals) is one over every process (429 E_TOKEN_RATE_LIMITED on both once it is spent)", async () => {
        const [x, y] = await startServerGroup(services, 2, { tokenMintRatePerSecond: 0.001, tokenMintBurst: 4 })
        try {
            const signIn = (s: TestServer) => http(s, "POST", "/jwt", { key: x.credentials.deviceKey })
            const first = await signIn(x)
            assert.equal(first.status, 200, JSON.stringify(first.body))
            assert.equal((await signIn(y)).status, 200)
            // a renewal on the other process spends the same budget
            assert.equal((await http(y, "POST", "/jwt", { headers: { authorization: `Bearer ${first.body.token}` } })).status, 200)
            assert.equal((await signIn(x)).status, 200)
            for (const s of [x, y]) {
                const r = await signIn(s)
                assert.deepEqual([r.status, r.body.code], [429, "E_TOKEN_RATE_LIMITED"], JSON.stringify(r.body))
                assert.ok(r.body.retry_after_ms > 0)
                assert.ok(Number(r.headers.get("retry-after")) > 0)
            }
            // another key has its own
            assert.equal((await http(y, "POST", "/jwt", { key: x.credentials.masterKey })).status, 200)
        } finally {
            await stopServerGroup([x, y])
        }
    })

    test("[P§8] a feed deleted on one process ends its subscriptions on the other (deletion push, then 404)", async (t) => {
        const made = await http(a, "POST", "/v2/feeds", { key: a.credentials.masterKey, body: { title: "short-lived" } })
        const feed = made.body.id as number
        const c = await TlsClient.open(b, a.credentials.masterKey)
        t.after(() => c.close())
        assert.equal((await c.request({ method: "subscribe", resource: `/feeds/${feed}`, token: "f" })).status, 200)
        assert.equal((await http(a, "PUT", `/v2/feeds/${feed}`, { key: a.credentials.masterKey, body: { datastreams: [{ id: "last", current_value: "v" }] } })).status, 200)
        assert.equal((await c.push("f")).body.current_value, "v")
        assert.equal((await http(a, "DELETE", `/v2/feeds/${feed}`, { key: a.credentials.masterKey })).status, 200)
        assert.deepEqual((await c.push("f")).body, { id: feed, deleted: true })
        const end = await c.push("f")
        assert.deepEqual([end.status, end.body.code], [404, "E_FEED_DELETED"])
    })

    test("a second server on the database without --redis-url is refused, saying what to do", async () => {
        const dataDir = mkdtempSync(join(tmpdir(), "feedline-alone-"))
        try {
            const databaseUrl = a.databaseUrl!
            await assert.rejects(startServer({ dataDir, databaseUrl, devicePort: 0, appPort: 0, logLevel: "silent" }), (e: Error) => /--redis-url/.test(e.message) && (e as { code?: string }).code === "E_BAD_CONFIG")
        } finally {
            rmSync(dataDir, { recursive: true, force: true })
        }
    })

    test("a process that dies (SIGKILL) drops out of the others' session lists", async (t) => {
        const databaseUrl = a.databaseUrl!
        const child = await startServerProcess({ dataDir: a.dataDir, args: ["--database-url", databaseUrl, "--redis-url", services.redis.url] })
        t.after(() => child.stop("SIGKILL"))
        const ca = a.ca
        const c = await TlsClient.open({ devicePort: child.devicePort, ca }, a.credentials.deviceKey)
        t.after(() => c.close())
        const { id } = (await c.request({ method: "get", resource: "/session" })).body as { id: string }
        const listed = async () => (await http(b, "GET", "/v2/sessions", { key: a.credentials.masterKey })).body.sessions.some((e: any) => e.id === id)
        await until("the child's connection in b's list", listed, SESSIONS_SHOWN_WITHIN_MS)
        await child.stop("SIGKILL")
        await until("the dead process's connection to leave b's list", async () => !(await listed()), DEAD_SESSIONS_GONE_WITHIN_MS)
    })

    test("a process drained (SIGTERM's shutdown) while writes are in flight: every write it acknowledged reaches the other process's subscribers, once", async (t) => {
        const [x, y] = await startServerGroup(services, 2)
        t.after(() => stopServerGroup([x, y]))
        const feed = x.credentials.feedId
        const sub = await TlsClient.open(y, x.credentials.deviceKey)
        const writers = await Promise.all([0, 1, 2, 3].map(() => TlsClient.open(x, x.credentials.deviceKey)))
        t.after(() => [sub, ...writers].forEach((c) => c.close()))
        assert.equal((await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/drain`, token: "s" })).status, 200)
        // writes pipelined on four connections, the drain begun while they are being handled: those in
        // flight are finished and acknowledged during the drain (their commits and pushes go out before it
        // ends), the rest refused or never answered, and each connection gets the 503 notice
        writers.forEach((c, n) => {
            for (let i = 0; i < 150; i++) c.sendRaw(JSON.stringify({ method: "put", resource: `/feeds/${feed}/datastreams/drain`, body: { current_value: `${n}-${i}` }, token: `w${i}` }))
        })
        await Promise.all(writers.map((c) => c.response("w0")))
        const answeredBefore = writers.map((c) => c.q.lines.length)
        await x.close()
        const ackedOn = (c: TlsClient, from = 0) => c.q.lines.slice(from).filter((l) => l.response?.status === 200 && /^w\d+$/.test(l.response.token ?? ""))
        const acked = writers.flatMap((c, n) => ackedOn(c).map((l) => `${n}-${l.response!.token!.slice(1)}`))
        const duringDrain = writers.reduce((sum, c, n) => sum + ackedOn(c, answeredBefore[n]).length, 0)
        const pushed = () => sub.q.lines.filter((l) => l.response?.token === "s" && l.response.body?.current_value !== undefined).map((l) => l.response!.body.current_value as string)
        await until("every write the drained process acknowledged pushed by the other", async () => acked.every((v) => pushed().includes(v)), SESSIONS_SHOWN_WITHIN_MS)
        assert.equal(new Set(pushed()).size, pushed().length, "nothing pushed twice")
        console.log(`drain: ${acked.length} of 600 pipelined writes acknowledged (${duringDrain} of them during the drain); all pushed once on the other process`)
    })

    test("[P§8] two processes writing one feed: its seqs are the feed's own, one after another in commit order over both, whatever another tenant writes meanwhile; a subscriber on either gets them in order", async (t) => {
        const feed = a.credentials.feedId
        const master = await TlsClient.open(a, a.credentials.masterKey)
        const c = await TlsClient.open(b, a.credentials.deviceKey)
        t.after(() => (master.close(), c.close()))
        const other = await master.request({ method: "post", resource: "/feeds", body: { title: "another tenant" } })
        assert.equal(other.status, 201, JSON.stringify(other))
        const subscribed = await c.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/own`, params: { after: "latest" }, token: "o" })
        assert.equal(subscribed.status, 200)
        const PER_PROCESS = 8
        const writes: Promise<{ status: number }>[] = []
        for (let i = 0; i < PER_PROCESS; i++) {
            writes.push(write(a, "own", `a${i}`), write(b, "own", `b${i}`))
            // the other tenant's points, on both processes, in between
            for (const s of [a, b]) writes.push(http(s, "PUT", `/v2/feeds/${other.body.id}`, { key: a.credentials.masterKey, body: { datastreams: [{ id: "x", datapoints: [{ value: "1" }, { value: "2" }] }] } }))
        }
        for (const r of await Promise.all(writes)) assert.equal(r.status, 200)
        const seqs: number[] = []
        while (seqs.length < 2 * PER_PROCESS) seqs.push((await c.push("o")).body.seq as number)
        const first = subscribed.body.seq as number
        assert.deepEqual(seqs, Array.from({ length: 2 * PER_PROCESS }, (_, i) => first + 1 + i), "distinct, increasing, no gaps: nothing of the other tenant's in them")
        const latest = await c.request({ method: "subscribe", resource: `/feeds/${feed}`, params: { after: "latest" }, token: "l" })
        assert.equal(latest.body.seq, seqs.at(-1), "the feed's cursor is its last write's seq on either process")
    })

    // the last test: it stops the file's Redis
    test("[P§8] when the link to Redis breaks, subscribers stay connected: the other process's writes reach them from the store (caught up while Redis is away), once, with their seq", async (t) => {
        const feed = a.credentials.feedId
        const key = a.credentials.deviceKey
        const c = await TlsClient.open(b, key)
        t.after(() => c.close())
        const subscribed = await c.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/away`, params: { after: "latest" }, token: "i" })
        assert.equal(subscribed.status, 200)
        await services.redis.stop()
        assert.equal((await http(a, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [{ id: "away", current_value: "while away" }] } })).status, 200)
        const p = await c.push("i", SERVER_OWN_EVENT_WAIT_MS)
        assert.equal(p.body.current_value, "while away")
        assert.ok(p.body.seq > subscribed.body.seq)
        assert.equal(c.q.closed, false, "not told to reconnect")
        assert.equal(c.q.lines.filter((l) => l.response?.token === "i").length, 2, "the acknowledgement and one push")
    })
})
