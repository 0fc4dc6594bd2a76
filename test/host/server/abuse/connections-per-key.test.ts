// [P§6, P§7] Connections per key: one tenant's key on a few addresses could take every slot of the server
// (the caps were in all and per address only). A connection counts against its first accepted key (a
// browser token: against the key that minted it), on both stream doors; over --max-connections-per-key the
// request that would authenticate it is answered 429 E_TOO_MANY_CONNECTIONS_FOR_KEY with retry_after_ms,
// then the same notice, and it closes. Every close frees the slot; master keys are not counted.
import assert from "node:assert/strict"
import type tls from "node:tls"
import { after, test } from "node:test"
import { MAX_OBJECT_BYTES } from "../../../../devs/server/limits.ts"
import { http, serverForThisFile, TlsClient, WsClient } from "../../harness/server-harness.ts"
import { SERVER_POLL_MS, until } from "../../harness/until.ts"

const MAX_PER_KEY = 3
const s = await serverForThisFile({ maxConnectionsPerKey: MAX_PER_KEY })
const master = s.credentials.masterKey

async function tenantKey(label: string): Promise<string> {
    const k = await http(s, "POST", "/v2/keys", { key: master, body: { label, permissions: ["read", "update"] } })
    assert.equal(k.status, 201, JSON.stringify(k.body))
    return k.body.key
}
const keyA = await tenantKey("tenant A")
const keyB = await tenantKey("tenant B")

type Door = "tls" | "ws"
type Opened = { client: TlsClient | WsClient; status: number; body: any }
const open: (TlsClient | WsClient)[] = []
after(() => open.forEach((c) => c.close()))

/** Opens a connection on `door` (TLS from `from`, a loopback address) and sends its first keyed request. */
async function connect(door: Door, credential: string, from = "127.0.0.1"): Promise<Opened> {
    const client = door === "tls" ? await TlsClient.connect(s, { localAddress: from } as tls.ConnectionOptions) : await WsClient.open(s, { heartbeat: true })
    open.push(client)
    await client.welcome()
    const r = await client.request({ method: "get", resource: "/session", headers: { "X-ApiKey": credential } })
    return { client, status: r.status, body: r.body }
}

async function assertRefused(o: Opened, what: string): Promise<void> {
    assert.deepEqual([o.status, o.body?.code], [429, "E_TOO_MANY_CONNECTIONS_FOR_KEY"], `${what}: ${JSON.stringify(o.body)}`)
    assert.ok(o.body.retry_after_ms > 0, JSON.stringify(o.body))
    const notice = await o.client.notice()
    assert.equal(notice.body.code, "E_TOO_MANY_CONNECTIONS_FOR_KEY", what)
    await o.client.q.untilClosed()
}

/** This key's connections as the server lists them (GET /sessions with the master key). */
async function openWith(keyId: string): Promise<number> {
    const r = await http(s, "GET", "/v2/sessions", { key: master })
    return r.body.sessions.filter((x: any) => x.key_id === keyId).length
}

async function fill(doors: Door[], credential: string): Promise<Opened[]> {
    const out: Opened[] = []
    // from several addresses: the cap is the key's, wherever its connections come from
    for (const [i, door] of doors.entries()) out.push(await connect(door, credential, `127.0.0.${2 + i}`))
    for (const o of out) assert.equal(o.status, 200, JSON.stringify(o.body))
    return out
}

test("a key's connections over --max-connections-per-key are refused 429 E_TOO_MANY_CONNECTIONS_FOR_KEY and closed, on both doors; another key and a master key are not", async () => {
    const held = await fill(["tls", "ws", "tls"], keyA)
    const keyIdA = held[0].body.key_id
    await assertRefused(await connect("tls", keyA, "127.0.0.9"), "a 4th on the device port")
    await assertRefused(await connect("ws", keyA), "a 4th on the WebSocket")

    // a browser token counts against the key that minted it
    const minted = await http(s, "POST", "/jwt", { key: keyA })
    assert.equal(minted.status, 200, JSON.stringify(minted.body))
    await assertRefused(await connect("ws", `Bearer ${minted.body.token}`), "a token of key A")

    // another tenant is unaffected, and the operator's master key is not counted
    const b = await fill(["tls", "ws", "ws"], keyB)
    const masters = await Promise.all(Array.from({ length: MAX_PER_KEY + 2 }, () => connect("ws", master)))
    for (const m of masters) assert.equal(m.status, 200, JSON.stringify(m.body))

    // the held connections still work
    for (const o of held) assert.equal((await o.client.request({ method: "get", resource: "/session" })).status, 200)
    assert.equal(await openWith(keyIdA), MAX_PER_KEY)
    for (const o of [...held, ...b, ...masters]) o.client.close()
    await until("key A's connections closed", async () => (await openWith(keyIdA)) === 0, undefined, SERVER_POLL_MS)
})

test("every close frees the key's slot: opening and closing past the cap, round after round, never leaks one nor frees one twice", { timeout: 60_000 }, async () => {
    const ROUNDS = 6
    let keyIdA = ""
    for (let round = 0; round < ROUNDS; round++) {
        const held = await fill(round % 2 ? ["ws", "tls", "ws"] : ["tls", "tls", "ws"], keyA)
        keyIdA = held[0].body.key_id
        await assertRefused(await connect(round % 2 ? "tls" : "ws", keyA), `round ${round}: over the cap`)
        // three close paths: the client drops the socket, the client closes the WebSocket, the server closes (413 notice)
        held[0].client.close()
        held[1].client.close()
        held[2].client.sendRaw(`{"r":"/session","x":"${"x".repeat(MAX_OBJECT_BYTES)}"}`)
        await until(`round ${round}: key A's connections closed`, async () => (await openWith(keyIdA)) === 0, undefined, SERVER_POLL_MS)
    }
    // still exactly the cap: none leaked (all three open again) and none freed twice (the 4th refused)
    const held = await fill(["tls", "ws", "tls"], keyA)
    await assertRefused(await connect("ws", keyA), "after the rounds: over the cap")
    held.forEach((o) => o.client.close())
})

/** One sample of GET /metrics (`name{labels}` as rendered), undefined when absent. */
async function metric(name: string): Promise<number | undefined> {
    const text = await (await fetch(`http://127.0.0.1:${s.appPort}/metrics`)).text()
    const line = text.split("\n").find((l) => l.startsWith(name + " "))
    return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

// An operator seeing 429 E_TOO_MANY_CONNECTIONS_FOR_KEY could not see who was near the cap: the metrics say how
// near the nearest key is and how many keys are near it, bounded whatever the number of keys (no series per
// key; which keys, GET /v2/sessions with a master key)
test("GET /metrics: the limit, the most connections one key holds, and how many keys hold half, 90% and all of it", async () => {
    assert.equal(await metric("feedline_key_connections_limit"), MAX_PER_KEY)
    const a = await fill(["tls", "ws", "tls"], keyA) // at the cap (3 of 3)
    const b = await fill(["ws", "tls"], keyB) // 2 of 3: over half, under 90%
    const masters = await Promise.all(Array.from({ length: MAX_PER_KEY + 2 }, () => connect("ws", master))) // not counted
    for (const m of masters) assert.equal(m.status, 200, JSON.stringify(m.body))
    try {
        assert.equal(await metric("feedline_key_connections_most"), MAX_PER_KEY)
        assert.deepEqual(
            [await metric('feedline_keys_near_connection_limit{share="0.5"}'), await metric('feedline_keys_near_connection_limit{share="0.9"}'), await metric('feedline_keys_near_connection_limit{share="1"}')],
            [2, 1, 1],
        )
    } finally {
        for (const o of [...a, ...b, ...masters]) o.client.close()
    }
    await until("the keys' connections closed", async () => (await metric("feedline_key_connections_most")) === 0, undefined, SERVER_POLL_MS)
    assert.equal(await metric('feedline_keys_near_connection_limit{share="0.5"}'), 0)
})
