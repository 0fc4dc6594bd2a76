// [P§8, §9] A feed's pushes in commit order over several processes. Stamps and seqs follow commit order (the
// feed's row, locked), but each process publishes its own commits over Redis: when process A's commit (stamp
// 5) is published after process B's (stamp 6), a subscriber heard 6 first, and a device, whose cursor drops a
// point of its datastream not newer than the last one handled, never handled 5, nor got it in a replay
// (since = 6). The same for points written with their own `at` and a client resuming with `after` = the
// highest seq handled. Driven without a race: A's store holds its write after the commit (stored, stamped, not yet
// answered nor published) while B writes, and lets it go once the subscriber's process has B's change.
// Three servers in this process stand for three processes (each its own hub, store connections and bus
// connection). Skipped, counted, where PostgreSQL or Redis is not installed.
import assert from "node:assert/strict"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import { Redis } from "ioredis"
import { SubscriptionCursor } from "../../../../src/subscription-cursor.ts"
import { CommitGate } from "../../harness/commit-gate.ts"
import { SCALE_SKIP, startScaleServices, stopServerGroup, type ScaleServices } from "../../harness/scale.ts"
import { http, SERVER_OWN_EVENT_WAIT_MS, startTestServer, TlsClient, type TestServer } from "../../harness/server-harness.ts"
import { until } from "../../harness/until.ts"

/** c's STAMP_ORDER_HOLD_MS */
const GIVE_UP_MS = 1000

describe("a feed's pushes in commit order across processes", { skip: SCALE_SKIP }, () => {
    let services: ScaleServices
    /** a: its writes held after their commit while the gate holds */
    let a: TestServer
    let b: TestServer
    let c: TestServer
    const gate = new CommitGate("after-commit")
    before(async () => {
        services = await startScaleServices()
        const databaseUrl = await services.database()
        const dataDir = mkdtempSync(join(tmpdir(), "feedline-order-"))
        const common = { databaseUrl, redisUrl: services.redis.url, dataDir }
        a = await startTestServer({ ...common, wrapStore: gate.wrap })
        b = await startTestServer(common)
        // c gives up on a change that never comes after 1 s, well before it could notice the commit unheard
        // in the store (bus/unheard-commits.ts: 5 s), which would end the resubscribed connection too
        c = await startTestServer({ ...common, stampOrderHoldMs: GIVE_UP_MS })
    })
    after(async () => {
        gate.release()
        await stopServerGroup([a, b, c].filter(Boolean))
        await services?.stop()
    })

    const feed = () => a.credentials.feedId
    /** a command as the dashboard writes it: no `at`, the server stamps it */
    const command = (s: TestServer, stream: string, value: string) =>
        http(s, "PUT", `/v2/feeds/${feed()}`, { key: a.credentials.deviceKey, body: { datastreams: [{ id: stream, current_value: value }] } })

    async function subscriber(s: TestServer, stream: string, token: string, since?: string): Promise<TlsClient> {
        const client = await TlsClient.open(s, a.credentials.deviceKey)
        const r = await client.request({ method: "subscribe", resource: `/feeds/${feed()}/datastreams/${stream}`, params: since ? { since } : {}, token })
        assert.equal(r.status, 200)
        return client
    }

    const pushed = (client: TlsClient, token: string, value: string) => client.q.lines.some((l) => l.response?.token === token && l.response.body?.current_value === value)

    /**
     * A's command committed first (stamped first) and held before its publish; B's committed after it. Lets
     * A's go once `on` has B's change: handed on (out of order) or held back for A's. Resolves to A's answer.
     */
    async function overtaken(stream: string, on: TestServer, seen: () => boolean, write = command): Promise<void> {
        const heldBefore = on.metrics.pushesHeld.get()
        gate.hold()
        const committed = gate.committed
        const first = write(a, stream, "first")
        await until("a's command committed", () => gate.committed > committed, SERVER_OWN_EVENT_WAIT_MS)
        assert.equal((await write(b, stream, "second")).status, 200)
        await until("b's change reached the subscriber's process", () => seen() || on.metrics.pushesHeld.get() > heldBefore, SERVER_OWN_EVENT_WAIT_MS)
        gate.release()
        assert.equal((await first).status, 200)
    }

    /** The pushes a device's cursor (one datastream: src/net/subscriptions.ts) hands to its actuator, in order. */
    async function handledByDevice(client: TlsClient, token: string, n: number): Promise<{ handled: string[]; ats: string[] }> {
        const cursor = new SubscriptionCursor(undefined, 16, true)
        const handled: string[] = []
        const ats: string[] = []
        for (let i = 0; i < n; i++) {
            const p = await client.push(token, SERVER_OWN_EVENT_WAIT_MS)
            ats.push(p.body.at)
            if (cursor.push(p.status, p.body).deliver) handled.push(p.body.current_value)
        }
        return { handled, ats }
    }

    test("[P§8] a subscriber on a third process gets the earlier-stamped command first, though its publish came later: the device handles both", async (t) => {
        const sub = await subscriber(c, "led", "s")
        t.after(() => sub.close())
        await overtaken("led", c, () => pushed(sub, "s", "second"))
        const { handled, ats } = await handledByDevice(sub, "s", 2)
        assert.deepEqual(handled, ["first", "second"], `pushed in stamp order (${ats.join(", ")}); a device drops a point older than the last it handled`)
        assert.ok(ats[0] < ats[1])
        assert.ok(c.metrics.pushesHeld.get() >= 1, "c held b's change back for a's")
    })

    test("[P§8] a subscriber on the process that committed the later change: its own change waits for the other process's earlier one", async (t) => {
        const sub = await subscriber(b, "relay", "r")
        t.after(() => sub.close())
        await overtaken("relay", b, () => pushed(sub, "r", "second"))
        const { handled } = await handledByDevice(sub, "r", 2)
        assert.deepEqual(handled, ["first", "second"])
    })

    test("[P§8] points written with their own `at` (the later one older: a backfill): a subscriber with `after` on a third process gets them in commit order, so a resume from the highest seq handled misses neither", async (t) => {
        const T = Date.UTC(2026, 11, 7, 9)
        const ats: Record<string, number> = { first: T + 10, second: T + 5 }
        const given = (s: TestServer, stream: string, value: string) =>
            http(s, "PUT", `/v2/feeds/${feed()}`, { key: a.credentials.deviceKey, body: { datastreams: [{ id: stream, datapoints: [{ at: new Date(ats[value]).toISOString(), value }] }] } })
        const sub = await TlsClient.open(c, a.credentials.deviceKey)
        t.after(() => sub.close())
        assert.equal((await sub.request({ method: "subscribe", resource: `/feeds/${feed()}/datastreams/own`, params: { after: "latest" }, token: "o" })).status, 200)
        await overtaken("own", c, () => pushed(sub, "o", "second"), given)
        const got = [await sub.push("o", SERVER_OWN_EVENT_WAIT_MS), await sub.push("o", SERVER_OWN_EVENT_WAIT_MS)]
        assert.deepEqual(got.map((p) => p.body.current_value), ["first", "second"], "in commit order, though a's publish came after b's")
        assert.ok(got[0].body.seq < got[1].body.seq)
    })

    test("[P§8] a change whose predecessor never arrives: the feed is caught up from the store, so the subscriber gets both in commit order without reconnecting, and the late publish is not pushed again", async (t) => {
        const sub = await subscriber(c, "lost", "l")
        t.after(() => sub.close())
        gate.hold()
        const committed = gate.committed
        const first = command(a, "lost", "first")
        await until("a's command committed", () => gate.committed > committed, SERVER_OWN_EVENT_WAIT_MS)
        assert.equal((await command(b, "lost", "second")).status, 200)
        // a's publish does not come (held): c gives up on it after GIVE_UP_MS and reads the feed's changes from the store
        const { handled } = await handledByDevice(sub, "l", 2)
        assert.deepEqual(handled, ["first", "second"])
        assert.equal(c.metrics.pushOrderGaps.get(), 1)
        assert.equal(c.metrics.catchUps.get({ outcome: "repaired" }), 1)
        // a's publish, late: handed on already, not pushed again
        gate.release()
        assert.equal((await first).status, 200)
        assert.equal((await command(b, "lost", "third")).status, 200)
        assert.equal((await sub.push("l", SERVER_OWN_EVENT_WAIT_MS)).body.current_value, "third")
        assert.equal(sub.q.lines.find((l) => l.response?.body?.code === "E_PUSHES_INTERRUPTED")?.raw, undefined, "not told to resubscribe")
        assert.equal(sub.q.closed, false)
    })
    test("[P§8] a rolling upgrade: a change a process of an older version publishes (no `prevSeq`) after a catch-up pushed it from the store is not pushed again", async (t) => {
        // what Redis carries, to learn the channel's name; and a connection to publish as the older process
        const spy = new Redis(services.redis.url)
        const olderProcess = new Redis(services.redis.url)
        t.after(() => (spy.disconnect(), olderProcess.disconnect()))
        let channel: string | undefined
        spy.on("pmessage", (_pattern, ch: string) => (channel ??= ch))
        await spy.psubscribe("feedline:*:changes")
        const sub = await TlsClient.open(c, a.credentials.deviceKey)
        t.after(() => sub.close())
        assert.equal((await sub.request({ method: "subscribe", resource: `/feeds/${feed()}/datastreams/upgrade`, params: { after: "latest" }, token: "u" })).status, 200)
        gate.hold()
        const committed = gate.committed
        const first = command(a, "upgrade", "first")
        await until("a's command committed", () => gate.committed > committed, SERVER_OWN_EVENT_WAIT_MS)
        assert.equal((await command(b, "upgrade", "second")).status, 200)
        // a's publish does not come (held): c pushes both from the store
        const caught = [await sub.push("u", SERVER_OWN_EVENT_WAIT_MS), await sub.push("u", SERVER_OWN_EVENT_WAIT_MS)]
        assert.deepEqual(caught.map((r) => r.body.current_value), ["first", "second"])
        // "first" published late, as a process of an older version publishes it: no prevSeq, not chained by seq
        const { seq, at } = caught[0].body
        const older = { p: "an older process", n: 1, m: { events: [{ feed: feed(), seq, stream: "upgrade", atMs: Date.parse(at), value: "first" }], chained: true } }
        await olderProcess.publish(await until("the changes channel's name", () => channel, SERVER_OWN_EVENT_WAIT_MS), JSON.stringify(older))
        gate.release()
        assert.equal((await first).status, 200)
        assert.equal((await command(b, "upgrade", "third")).status, 200)
        assert.equal((await sub.push("u", SERVER_OWN_EVENT_WAIT_MS)).body.current_value, "third")
        const values = sub.q.lines.filter((l) => l.response?.token === "u" && l.response.body?.current_value !== undefined).map((l) => l.response!.body.current_value)
        assert.deepEqual(values, ["first", "second", "third"], "each once")
    })
})
