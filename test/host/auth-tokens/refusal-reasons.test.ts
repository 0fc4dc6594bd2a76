// [P§6, P§7] A refused browser token is told why, in words its holder can act on: expired (renew it), signed
// out or its key revoked (sign in again). Was: every refused token was "this key is unknown, revoked or
// expired", and a token a connection signed in with that then expired was told "this connection's key was
// revoked", sending its holder after a key nobody had touched. A request with no key over HTTP is told
// where HTTP carries one (the X-ApiKey header, ?key=, Authorization: Bearer), not the envelope's "headers". A
// request's headers carry a token as Authorization: Bearer on the device port and WebSocket too, as over HTTP
// (was: ignored there, "this request needs a key").
import assert from "node:assert/strict"
import { test } from "node:test"
import { http, serverForThisFile, streamDoors, WsClient, WAIT_MS } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const feed = s.credentials.feedId

async function signIn(key: string, body?: unknown) {
    const r = await http(s, "POST", "/jwt", { key, body })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    return r.body as { token: string; expires_at: string }
}

test("a token a connection signed in with that expires is told it expired, not that its key was revoked", async (t) => {
    const key = await s.keys.create({ permissions: ["read"], feeds: [feed] })
    // 3 s asked, whole seconds kept: it lasts more than 2 s, room for the first request on a loaded machine
    const signedIn = await signIn(key.secret, { ttl: 3 })
    const ws = await WsClient.open(s, { heartbeat: true })
    t.after(() => ws.close())
    await ws.welcome()
    const first = await ws.request({ method: "get", resource: "/session", headers: { "X-ApiKey": `Bearer ${signedIn.token}` } })
    assert.equal(first.status, 200, JSON.stringify(first.body))
    // past its expiry: no clock is asserted on, only waited past
    const expiresMs = Date.parse(signedIn.expires_at)
    for (const deadline = Date.now() + 10 * WAIT_MS; Date.now() <= expiresMs + 50 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100))
    const later = await ws.request({ method: "get", resource: `/feeds/${feed}` })
    assert.deepEqual([later.status, later.body.code], [401, "E_UNAUTHORIZED"])
    assert.match(later.body.errors, /expired/)
    assert.match(later.body.errors, /POST \/jwt/)
    assert.doesNotMatch(later.body.errors, /revoked/)
    // and over HTTP, the same token
    const overHttp = await http(s, "GET", `/v2/feeds/${feed}`, { headers: { authorization: `Bearer ${signedIn.token}` } })
    assert.equal(overHttp.status, 401)
    assert.match(overHttp.body.errors, /expired/)
})

test("a signed-out token, and a token whose key was revoked, each say so", async () => {
    const key = await s.keys.create({ permissions: ["read"], feeds: [feed] })
    const signedOut = await signIn(key.secret)
    assert.equal((await http(s, "DELETE", "/jwt", { headers: { authorization: `Bearer ${signedOut.token}` } })).status, 200)
    const out = await http(s, "GET", `/v2/feeds/${feed}`, { headers: { "X-ApiKey": `Bearer ${signedOut.token}` } })
    assert.deepEqual([out.status, out.body.code], [401, "E_UNAUTHORIZED"])
    assert.match(out.body.errors, /signed out/)

    const live = await signIn(key.secret)
    await s.keys.revoke(key.record.id)
    const ws = await WsClient.open(s)
    try {
        await ws.welcome()
        const r = await ws.request({ method: "get", resource: `/feeds/${feed}`, headers: { "X-ApiKey": `Bearer ${live.token}` } })
        assert.deepEqual([r.status, r.body.code], [401, "E_UNAUTHORIZED"])
        assert.match(r.body.errors, /key this token was minted from/)
    } finally {
        ws.close()
    }
    const forged = await http(s, "GET", `/v2/feeds/${feed}`, { headers: { authorization: "Bearer not.a.token" } })
    assert.equal(forged.status, 401)
    assert.match(forged.body.errors, /not one this server issued/)
})

test("no key over HTTP is told where HTTP carries one", async () => {
    for (const headers of [{}, { authorization: "Basic Zm9vOmJhcg==" }] as Record<string, string>[]) {
        const r = await http(s, "GET", `/v2/feeds/${feed}`, { headers })
        assert.deepEqual([r.status, r.body.code], [401, "E_UNAUTHORIZED"])
        assert.match(r.body.errors, /X-ApiKey header/)
        assert.match(r.body.errors, /Authorization: Bearer/)
        assert.doesNotMatch(r.body.errors, /"headers"/)
    }
})

test("a request's Authorization: Bearer carries a token on the device port and WebSocket, as over HTTP; another Authorization is no credential", async () => {
    const key = await s.keys.create({ permissions: ["read"], feeds: [feed] })
    const signedIn = await signIn(key.secret)
    const { doors, close } = await streamDoors(s)
    try {
        for (const [door, c] of doors) {
            const basic = await c.request({ method: "get", resource: `/feeds/${feed}`, headers: { Authorization: `Basic ${key.secret}` } })
            assert.deepEqual([basic.status, basic.body.code], [401, "E_UNAUTHORIZED"], door)
            const r = await c.request({ method: "get", resource: `/feeds/${feed}`, headers: { authorization: `Bearer ${signedIn.token}` } })
            assert.equal(r.status, 200, `${door}: ${JSON.stringify(r.body)}`)
        }
    } finally {
        close()
    }
})
