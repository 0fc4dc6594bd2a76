// [P§7, §8] A revoked key ends the subscriptions it made, on every door, without waiting for a write:
// TLS with the key, WebSocket with the key, WebSocket with a token (JWT) minted from the key. Idle
// subscriptions (nothing is written after the revocation) end with a final 403 push, whether the
// revocation comes through the API or from the `feedline keys` CLI in another process. How soon
// ("within a second") is held without a clock: a revocation through this server ends them before its
// answer, one by the CLI at the server's next look for key changes (keys.refresh(); the look's interval:
// server/background.test.ts), both shown on a connection inside the server's process, where a line is
// seen the moment it is sent. The sockets' pushes are waited for as events.
import assert from "node:assert/strict"
import { test, type TestContext } from "node:test"
import { feedlineCli, http, InProcessClient, SERVER_OWN_EVENT_WAIT_MS, serverForThisFile, startTestServer, TlsClient, WsClient } from "../../harness/server-harness.ts"

// The clients' heartbeats come from this process, which also runs the server: on a starved machine a
// stall of the whole process can outlast the seed contract's 3 s before the heartbeats queued behind it
// are read, and the door then ends with 408 E_IDLE_TIMEOUT instead of the revocation's 403. A slower
// contract on every door keeps the test about revocation.
const s = await serverForThisFile({ heartbeatMs: 1000, faultyMs: 10_000, timeoutMs: 30_000 })
const feed = s.credentials.feedId

type Door = TlsClient | WsClient | InProcessClient

/** A read key for the feed, and one idle subscription per door made with it (token "d"). */
async function subscribedOnEveryDoor() {
    const key = await s.keys.create({ label: "tenant", permissions: ["read"], feeds: [feed] })
    const minted = await http(s, "POST", "/jwt", { key: key.secret })
    assert.equal(minted.status, 200, JSON.stringify(minted.body))
    const tlsKey = await TlsClient.open(s, key.secret)
    // heartbeats keep them open while the CLI starts (seconds): idle means no data, not a silent link
    const wsKey = await WsClient.open(s, { heartbeat: true })
    const wsJwt = await WsClient.open(s, { heartbeat: true })
    const inProcess = await InProcessClient.open(s)
    const doors: Record<string, Door> = { tls: tlsKey, ws: wsKey, "ws+jwt": wsJwt, "in-process": inProcess }
    const credential: Record<string, string> = { tls: key.secret, ws: key.secret, "ws+jwt": `Bearer ${minted.body.token}`, "in-process": key.secret }
    for (const [name, c] of Object.entries(doors)) {
        const ack = await c.request({ method: "subscribe", resource: `/feeds/${feed}`, headers: { "X-ApiKey": credential[name] }, token: "d" })
        assert.equal(ack.status, 200, `${name}: ${JSON.stringify(ack)}`)
    }
    return { key, doors, inProcess }
}

/** The in-process door's final push was sent already: the call that just returned ended the subscription. */
function endedAlready(inProcess: InProcessClient, what: string) {
    const sent = inProcess.sent("d")
    assert.deepEqual(
        sent.map((r) => [r.status, r.body?.code]),
        [
            [200, undefined],
            [403, "E_FORBIDDEN"],
        ],
        `${what}: the subscribe's answer, then the final push`,
    )
}

/** Every door's final push: 403 E_FORBIDDEN saying "revoked", waited for as an event; the time it took is information. */
async function endsOnEveryDoor(t: TestContext, doors: Record<string, Door>, revokedMs: number) {
    const ends = await Promise.all(
        Object.entries(doors).map(async ([name, c]) => {
            const push = await c.push("d", SERVER_OWN_EVENT_WAIT_MS).catch((e) => assert.fail(`${name}: ${e.message}`))
            return { name, push, ms: Date.now() - revokedMs }
        }),
    )
    for (const { name, push } of ends) {
        assert.deepEqual([push.status, push.body.code], [403, "E_FORBIDDEN"], name)
        assert.match(push.body.errors, /revoked/, name)
    }
    t.diagnostic(`ended after ${ends.map(({ name, ms }) => `${name} ${ms} ms`).join(", ")} (not asserted: a loaded machine may take longer)`)
    for (const c of Object.values(doors)) c.close()
}

test("revoked by the CLI in another process, nobody asking: idle subscriptions on TLS, WebSocket and JWT WebSocket end with 403 by the server's own look for key changes", async (t) => {
    const { key, doors } = await subscribedOnEveryDoor()
    await feedlineCli(["keys", "revoke", key.record.id, "--data-dir", s.dataDir])
    // no request and no write from here on: only the server's background look can end them
    await endsOnEveryDoor(t, doors, Date.now())
})

test("revoked by the CLI: the server's look for key changes (keys.refresh(), run every 500 ms) ends every idle subscription at once", async (t) => {
    const { key, doors, inProcess } = await subscribedOnEveryDoor()
    await feedlineCli(["keys", "revoke", key.record.id, "--data-dir", s.dataDir])
    const lookedMs = Date.now()
    await s.keys.refresh()
    endedAlready(inProcess, "after one look")
    await endsOnEveryDoor(t, doors, lookedMs)
})

test("revoked through DELETE /keys: idle subscriptions on every door end with 403 at once (before the DELETE is answered)", async (t) => {
    const { key, doors, inProcess } = await subscribedOnEveryDoor()
    const revokedMs = Date.now()
    assert.equal((await http(s, "DELETE", `/v2/keys/${key.record.id}`, { key: s.credentials.masterKey })).status, 200)
    endedAlready(inProcess, "when DELETE /keys was answered")
    await endsOnEveryDoor(t, doors, revokedMs)
})

test("subscriptions of other keys go on after a revocation", async (t) => {
    const other = await TlsClient.open(s, s.credentials.deviceKey)
    assert.equal((await other.request({ method: "subscribe", resource: `/feeds/${feed}`, token: "o" })).status, 200)
    const { key, doors, inProcess } = await subscribedOnEveryDoor()
    await s.keys.revoke(key.record.id)
    endedAlready(inProcess, "when keys.revoke() returned")
    await endsOnEveryDoor(t, doors, Date.now())
    const writer = await TlsClient.open(s, s.credentials.deviceKey)
    assert.equal((await writer.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "after", current_value: "1" }] } })).status, 200)
    assert.equal((await other.push("o")).body.current_value, "1")
    other.close()
    writer.close()
})

test("revoked by the CLI while a device writes: its next write is 401 and stores nothing; reads and subscriptions with the key are 401 from the next request", async () => {
    const key = await s.keys.create({ label: "device", permissions: ["read", "update"], feeds: [feed] })
    const device = await TlsClient.open(s, key.secret)
    const reader = await TlsClient.open(s, key.secret)
    const put = (value: string) => device.request({ method: "put", resource: `/feeds/${feed}/datastreams/raced`, body: { current_value: value } })
    try {
        for (const v of ["1", "2", "3"]) assert.equal((await put(v)).status, 200)
        // a write that changes more than its points (a title) on the same proven key: checked in full, done
        const titled = await device.request({ method: "put", resource: `/feeds/${feed}`, body: { title: "raced", datastreams: [{ id: "raced", current_value: "4" }] } })
        assert.equal(titled.status, 200, JSON.stringify(titled))
        await feedlineCli(["keys", "revoke", key.record.id, "--data-dir", s.dataDir])
        const refused = await put("after")
        assert.deepEqual([refused.status, refused.body.code], [401, "E_UNAUTHORIZED"], JSON.stringify(refused))
        const read = await reader.request({ method: "get", resource: `/feeds/${feed}/datastreams/raced` })
        assert.equal(read.status, 401, JSON.stringify(read))
        const master = await http(s, "GET", `/v2/feeds/${feed}`, { key: s.credentials.masterKey })
        assert.equal(master.body.title, "raced")
        assert.equal(master.body.datastreams.find((d: { id: string }) => d.id === "raced").current_value, "4", "the write after the revocation stored nothing")
    } finally {
        device.close()
        reader.close()
    }
})

test("a device's writes on its proven key are checked at the commit, not by a read on the main thread: each carries the keys' version it relied on, and is stored", async () => {
    const keysAsOf: (number | undefined)[] = []
    const spied = await startTestServer({
        wrapStore: (store) => {
            const writePoints = store.writePoints.bind(store)
            store.writePoints = (feed, points, nowMs, asOf) => {
                keysAsOf.push(asOf)
                return writePoints(feed, points, nowMs, asOf)
            }
            return store
        },
    })
    const device = await TlsClient.open(spied, spied.credentials.deviceKey)
    try {
        const resource = `/feeds/${spied.credentials.feedId}`
        for (let i = 0; i < 5; i++) assert.equal((await device.request({ method: "put", resource, body: { datastreams: [{ id: "checked", current_value: String(i) }] } })).status, 200)
        assert.equal(keysAsOf.length, 5, "one store write per request: none was run again")
        assert.ok(keysAsOf.every((v) => v !== undefined), `every write carries the keys' version: ${JSON.stringify(keysAsOf)}`)
        const stored = await http(spied, "GET", `/v2${resource}/datastreams/checked`, { key: spied.credentials.masterKey })
        assert.equal(stored.body.current_value, "4")
    } finally {
        device.close()
        await spied.stop()
    }
})
