// The sixth audit, black-box: one credential a request [P§7], however it is repeated. Two different keys or tokens in
// one request, as two header lines, two ?key=, or two spellings of a header's name in an envelope, are
// 400 E_CONFLICTING_CREDENTIALS on every door (was: the first Authorization, the last ?key=, the first envelope
// member acted); the same one twice is one.
import assert from "node:assert/strict"
import { test } from "node:test"
import { serverForThisFile } from "../harness/server-harness.ts"
import { Door, rawHttp } from "./client.ts"

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
