// [P§7] Every door reads a request's credential by one rule (devs/server/auth/credential.ts): X-ApiKey, ?key= (on
// /v2) and Authorization: Bearer, the same one sent twice being one; two that differ are refused 400
// E_CONFLICTING_CREDENTIALS. Was: /v2 (and the device port, the WebSocket) acted with X-ApiKey, POST /jwt with
// Authorization, so a client sending its master key beside a token narrowed to read acted as either by route.
// And a sign-in with a key at POST /jwt proves the key from its address as any request made with it does: it
// passes that address's failed-key lockout, on /jwt and elsewhere (was: a key used only through /jwt never did).
import assert from "node:assert/strict"
import { test } from "node:test"
import { http, httpFrom, serverForThisFile, streamDoors } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey
const feed = s.credentials.feedId

async function readToken(): Promise<string> {
    const r = await http(s, "POST", "/jwt", { key: master, body: { permissions: ["read"], ttl: 600 } })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    return r.body.token
}

test("a key and a different token (or two different keys) in one request: 400 E_CONFLICTING_CREDENTIALS on /v2, POST and DELETE /jwt, the device port and the WebSocket", async () => {
    const token = await readToken()
    const both = { "X-ApiKey": master, authorization: `Bearer ${token}` }
    for (const [method, path, headers] of [
        ["GET", `/v2/feeds/${feed}`, both],
        ["POST", "/jwt", both],
        ["DELETE", "/jwt", both],
        ["GET", `/v2/feeds/${feed}?key=${s.credentials.deviceKey}`, { "X-ApiKey": master }],
        ["GET", `/v2/feeds/${feed}?key=${master}`, { authorization: `Bearer ${token}` }],
    ] as const) {
        const r = await http(s, method, path, { headers })
        assert.deepEqual([r.status, r.body?.code], [400, "E_CONFLICTING_CREDENTIALS"], `${method} ${path}: ${JSON.stringify(r.body)}`)
    }
    const { doors, close } = await streamDoors(s)
    try {
        for (const [door, c] of doors) {
            const r = await c.request({ method: "get", resource: `/feeds/${feed}`, headers: both })
            assert.deepEqual([r.status, r.body.code], [400, "E_CONFLICTING_CREDENTIALS"], door)
        }
    } finally {
        close()
    }
    // the token was not signed out by the refused DELETE
    assert.equal((await http(s, "GET", `/v2/feeds/${feed}`, { headers: { authorization: `Bearer ${token}` } })).status, 200)
})

test("the same credential sent two ways is one; an Authorization that is not Bearer (a proxy's Basic) is none", async () => {
    const token = await readToken()
    const twice = { "X-ApiKey": `Bearer ${token}`, authorization: `bearer  ${token}` }
    assert.equal((await http(s, "GET", `/v2/feeds/${feed}`, { headers: twice })).status, 200)
    assert.equal((await http(s, "GET", `/v2/feeds/${feed}?key=${master}`, { headers: { "X-ApiKey": master } })).status, 200)
    const renewed = await http(s, "POST", "/jwt", { headers: twice })
    assert.equal(renewed.status, 200, JSON.stringify(renewed.body))
    assert.deepEqual(renewed.body.permissions, ["read"], "renewed: the token, not a sign-in")
    const basic = { "X-ApiKey": master, authorization: "Basic Zm9vOmJhcg==" }
    assert.equal((await http(s, "GET", `/v2/feeds/${feed}`, { headers: basic })).status, 200)
    assert.equal((await http(s, "POST", "/jwt", { headers: basic })).status, 200)
})

test("a sign-in with a key at POST /jwt proves it from that address: it passes the failed-key lockout there, at /jwt and on /v2; a key not proven there does not", async () => {
    const from = "127.0.0.41"
    const signIn = (key: string) => httpFrom(s, from, "POST", "/jwt", { headers: { "X-ApiKey": key } })
    assert.equal((await signIn(master)).status, 200)
    const codes: string[] = []
    for (let i = 0; i < 12; i++) codes.push((await signIn(`wrong-${i}`)).body.code)
    assert.equal(codes.at(-1), "E_AUTH_RATE_LIMITED", codes.join(" "))
    const again = await signIn(master)
    assert.equal(again.status, 200, JSON.stringify(again.body))
    const read = await httpFrom(s, from, "GET", `/v2/feeds/${feed}`, { headers: { "X-ApiKey": master } })
    assert.equal(read.status, 200, JSON.stringify(read.body))
    for (const other of [await signIn(s.credentials.deviceKey), await httpFrom(s, from, "GET", `/v2/feeds/${feed}`, { headers: { "X-ApiKey": s.credentials.deviceKey } })]) {
        assert.deepEqual([other.status, other.body.code], [429, "E_AUTH_RATE_LIMITED"])
    }
})
