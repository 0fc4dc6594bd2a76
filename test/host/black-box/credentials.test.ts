// The sixth audit, black-box: one credential a request [P§7], however it is repeated. Two different keys or tokens in
// one request, as two header lines, two ?key=, or two spellings of a header's name in an envelope, are
// 400 E_CONFLICTING_CREDENTIALS on every door (was: the first Authorization, the last ?key=, the first envelope
// member acted); the same one twice is one.
import assert from "node:assert/strict"
import { test } from "node:test"
import { serverForThisFile } from "../harness/server-harness.ts"
import { Door, freshAddress, rawHttp } from "./client.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey

async function tenant(): Promise<{ feed: number; key: string; token: string }> {
    const made = await rawHttp(s, `POST /v2/feeds HTTP/1.1\r\nX-ApiKey: ${master}`, JSON.stringify({ title: "tenant" }))
    const feed = made.body.id as number
    const key = (await rawHttp(s, `POST /v2/keys HTTP/1.1\r\nX-ApiKey: ${master}`, JSON.stringify({ label: "tenant", permissions: ["read"], feeds: [feed] }))).body.key as string
    const token = (await rawHttp(s, `POST /jwt HTTP/1.1\r\nX-ApiKey: ${key}`, "{}")).body.token as string
    return { feed, key, token }
}

test("HTTP: a header or ?key= repeated with another credential is refused, whichever comes first", async () => {
    const t = await tenant()
    const masterToken = (await rawHttp(s, `POST /jwt HTTP/1.1\r\nX-ApiKey: ${master}`, "{}")).body.token as string
    const twice = [
        [`X-ApiKey: ${t.key}`, `X-ApiKey: ${master}`],
        [`Authorization: Bearer ${t.token}`, `Authorization: Bearer ${masterToken}`],
    ]
    for (const [a, b] of twice) {
        for (const head of [`${a}\r\n${b}`, `${b}\r\n${a}`]) {
            const r = await rawHttp(s, `GET /v2/feeds/${t.feed} HTTP/1.1\r\n${head}`)
            assert.deepEqual([r.status, r.body?.code], [400, "E_CONFLICTING_CREDENTIALS"], head)
            const jwt = await rawHttp(s, `POST /jwt HTTP/1.1\r\n${head}`, "{}")
            assert.deepEqual([jwt.status, jwt.body?.code], [400, "E_CONFLICTING_CREDENTIALS"], `POST /jwt ${head}`)
        }
    }
    for (const query of [`key=${t.key}&key=${master}`, `key=${master}&key=${t.key}`]) {
        const r = await rawHttp(s, `GET /v2/feeds/1?${query} HTTP/1.1`)
        assert.deepEqual([r.status, r.body?.code], [400, "E_CONFLICTING_CREDENTIALS"], query)
    }
    // the same one twice is one credential
    assert.equal((await rawHttp(s, `GET /v2/feeds/${t.feed} HTTP/1.1\r\nX-ApiKey: ${t.key}\r\nx-apikey: ${t.key}`)).status, 200)
    assert.equal((await rawHttp(s, `GET /v2/feeds/${t.feed}?key=${t.key}&key=${t.key} HTTP/1.1`)).status, 200)
})

test("device port and WebSocket: X-ApiKey and x-apikey members with different keys are refused, in either order", async () => {
    const t = await tenant()
    for (const [door, d] of await Door.both(s)) {
        let n = 0
        for (const headers of [
            { "X-ApiKey": t.key, "x-apikey": master },
            { "x-apikey": master, "X-ApiKey": t.key },
            { Authorization: `Bearer ${t.token}`, authorization: "Bearer x.y.z" },
        ]) {
            const r = await d.ask({ method: "get", resource: "/feeds/1", headers, token: `c${++n}` })
            assert.deepEqual([r.status, r.body?.code], [400, "E_CONFLICTING_CREDENTIALS"], `${door} ${JSON.stringify(Object.keys(headers))}`)
        }
        const same = await d.ask({ method: "get", resource: `/feeds/${t.feed}`, headers: { "X-ApiKey": t.key, "x-apikey": t.key }, token: "same" })
        assert.equal(same.status, 200, door)
        d.close()
    }
})

test("§7, §8: browser tokens: expiry, sign-out, forgery and a revoked key, each refused with its documented code on each door", async () => {
    const t = await tenant()
    const short = (await rawHttp(s, `POST /jwt HTTP/1.1\r\nX-ApiKey: ${t.key}`, JSON.stringify({ ttl: 1 }))).body
    assert.equal(short.expires_in, 1)
    const [tls, ws] = [await Door.tls(s), await Door.ws(s)]
    for (const d of [tls, ws]) {
        await d.next((o) => "welcome" in o)
        assert.equal((await d.ask({ method: "subscribe", resource: `/feeds/${t.feed}`, headers: { Authorization: `Bearer ${short.token}` }, token: "s" })).status, 200)
    }
    // the subscription ends at the expiry, with nothing written
    for (const d of [tls, ws]) assert.deepEqual(await d.answer("s", 30_000).then((p) => [p.status, p.body.code]), [401, "E_TOKEN_EXPIRED"])
    assert.ok(Date.now() >= Date.parse(short.expires_at))
    const expiredHttp = await rawHttp(s, `GET /v2/feeds/${t.feed} HTTP/1.1\r\nAuthorization: Bearer ${short.token}`, "", freshAddress())
    assert.deepEqual([expiredHttp.status, expiredHttp.body.code], [401, "E_UNAUTHORIZED"])
    for (const d of [tls, ws]) {
        const a = await d.ask({ method: "get", resource: `/feeds/${t.feed}`, headers: { Authorization: `Bearer ${short.token}` }, token: "e" })
        assert.deepEqual([a.status, a.body.code], [401, "E_UNAUTHORIZED"])
        d.close()
    }
    const renewExpired = await rawHttp(s, `POST /jwt HTTP/1.1\r\nAuthorization: Bearer ${short.token}`, "{}", freshAddress())
    assert.deepEqual([renewExpired.status, renewExpired.body.code], [401, "E_TOKEN_EXPIRED"])

    // signed out: refused at once, everywhere; a forged one (its claims widened, or alg none) was never issued
    const live = (await rawHttp(s, `POST /jwt HTTP/1.1\r\nX-ApiKey: ${t.key}`, JSON.stringify({ ttl: 600 }))).body.token as string
    const [header, payload, signature] = live.split(".")
    const widened = `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, "base64url").toString()), feeds: [1, t.feed] })).toString("base64url")}.${signature}`
    const unsigned = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payload}.`
    for (const forged of [widened, unsigned]) {
        assert.equal((await rawHttp(s, `GET /v2/feeds/1 HTTP/1.1\r\nAuthorization: Bearer ${forged}`, "", freshAddress())).body.code, "E_UNAUTHORIZED")
        assert.equal((await rawHttp(s, `POST /jwt HTTP/1.1\r\nAuthorization: Bearer ${forged}`, "{}", freshAddress())).body.code, "E_TOKEN_INVALID")
    }
    assert.equal((await rawHttp(s, `DELETE /jwt HTTP/1.1\r\nAuthorization: Bearer ${live}`, "", freshAddress())).status, 200)
    assert.equal((await rawHttp(s, `GET /v2/feeds/${t.feed} HTTP/1.1\r\nAuthorization: Bearer ${live}`, "", freshAddress())).body.code, "E_UNAUTHORIZED")
    assert.equal((await rawHttp(s, `POST /jwt HTTP/1.1\r\nAuthorization: Bearer ${live}`, "{}", freshAddress())).body.code, "E_TOKEN_REVOKED")

    // a token never reaches past its key: wider permissions or feeds asked for are not given
    const narrow = (await rawHttp(s, `POST /jwt HTTP/1.1\r\nX-ApiKey: ${t.key}`, JSON.stringify({ permissions: ["read", "update"], feeds: [1, t.feed] }))).body
    assert.deepEqual([narrow.permissions, narrow.feeds], [["read"], [t.feed]])
    const keyId = narrow.key_id as string
    assert.equal((await rawHttp(s, `DELETE /v2/keys/${keyId} HTTP/1.1\r\nX-ApiKey: ${master}`)).status, 200)
    assert.equal((await rawHttp(s, `GET /v2/feeds/${t.feed} HTTP/1.1\r\nAuthorization: Bearer ${narrow.token}`, "", freshAddress())).body.code, "E_UNAUTHORIZED")
    assert.equal((await rawHttp(s, `POST /jwt HTTP/1.1\r\nAuthorization: Bearer ${narrow.token}`, "{}", freshAddress())).body.code, "E_TOKEN_KEY_REVOKED")
})
