// [CORS] --cors-origins: a web app on an allowed origin gets its preflight answered and may read every answer
// (errors, Retry-After included); any other origin gets no CORS headers and a coded refusal of its preflight;
// unset, the port sends no CORS headers at all. Preflights spend the address's request budget, never a key's.
// The WebSocket takes any origin (no credential on the port is ambient).
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { WebSocket } from "ws"
import { ConfigError } from "../../../devs/server/errors.ts"
import { startServer } from "../../../devs/server/index.ts"
import { corsPolicyOf } from "../../../devs/server/listeners/cors.ts"
import { httpFrom, serverForThisFile, startTestServer } from "../harness/server-harness.ts"

const APP = "https://app.example.com"
const OTHER = "https://evil.example.net"
const preflight = (origin: string, method = "GET", headers = "x-apikey") => ({
    origin,
    "access-control-request-method": method,
    "access-control-request-headers": headers,
})

const open = await serverForThisFile({ corsOrigins: [APP, "http://localhost:3000"] })
const feed = `/v2/feeds/${open.credentials.feedId}`

test("an allowed origin's preflight: 204 with the REST door's methods, its key/token/JSON headers and a max age; no credentials", async () => {
    for (const path of [feed, "/jwt"]) {
        const r = await httpFrom(open, "127.0.0.1", "OPTIONS", path, { headers: preflight(APP, "POST", "content-type, authorization") })
        assert.equal(r.status, 204, path)
        assert.equal(r.headers["access-control-allow-origin"], APP)
        assert.equal(r.headers.vary, "Origin")
        assert.deepEqual(String(r.headers["access-control-allow-methods"]).split(", ").sort(), ["DELETE", "GET", "POST", "PUT"])
        assert.deepEqual(String(r.headers["access-control-allow-headers"]).toLowerCase().split(", ").sort(), ["authorization", "content-type", "x-apikey"])
        assert.ok(Number(r.headers["access-control-max-age"]) > 0)
        assert.equal(r.headers["access-control-allow-credentials"], undefined)
    }
    const local = await httpFrom(open, "127.0.0.1", "OPTIONS", feed, { headers: preflight("http://localhost:3000") })
    assert.equal(local.headers["access-control-allow-origin"], "http://localhost:3000")
})

test("another origin's preflight is refused, 403 E_ORIGIN_NOT_ALLOWED, with no CORS headers; its calls get none either", async () => {
    // a prefix or a near miss of an allowed origin is another origin
    for (const origin of [OTHER, "https://app.example.com:8443", "http://app.example.com", "null"]) {
        const r = await httpFrom(open, "127.0.0.1", "OPTIONS", feed, { headers: preflight(origin) })
        assert.equal(r.status, 403, origin)
        assert.equal(r.body.code, "E_ORIGIN_NOT_ALLOWED")
        assert.equal(r.headers["access-control-allow-origin"], undefined)
        assert.equal(r.headers["access-control-allow-methods"], undefined)
    }
    const r = await httpFrom(open, "127.0.0.1", "GET", feed, { headers: { origin: OTHER, "x-apikey": open.credentials.masterKey } })
    assert.equal(r.status, 200)
    assert.equal(r.headers["access-control-allow-origin"], undefined)
    assert.equal(r.headers.vary, "Origin")
})

test("an allowed origin may read every answer: success, 401 on /v2 and on /jwt, 404, with Retry-After and Location exposed", async () => {
    const answers = [
        await httpFrom(open, "127.0.0.1", "GET", feed, { headers: { origin: APP, "x-apikey": open.credentials.masterKey } }),
        await httpFrom(open, "127.0.0.1", "GET", feed, { headers: { origin: APP } }),
        await httpFrom(open, "127.0.0.1", "POST", "/jwt", { headers: { origin: APP, "x-apikey": "not-a-key-at-all" }, body: {} }),
        await httpFrom(open, "127.0.0.1", "GET", "/nothing-here", { headers: { origin: APP } }),
    ]
    assert.deepEqual(
        answers.map((a) => a.status),
        [200, 401, 401, 404],
    )
    assert.equal(answers[1].body.code, "E_UNAUTHORIZED")
    for (const a of answers) {
        assert.equal(a.headers["access-control-allow-origin"], APP)
        assert.equal(a.headers.vary, "Origin")
        assert.match(String(a.headers["access-control-expose-headers"]), /Retry-After/)
        assert.match(String(a.headers["access-control-expose-headers"]), /Location/)
        assert.equal(a.headers["access-control-allow-credentials"], undefined)
    }
})

test("a preflight spends the address's request budget (429 once it is gone, readable by the app) and never a key's", async () => {
    // budgets that do not refill within the test: 5 requests per address, 2 per key
    const limited = await startTestServer({ corsOrigins: [APP], ratePerSecond: 0.001, rateBurst: 5, keyRatePerSecond: 0.001, keyRateBurst: 2 })
    try {
        const key = limited.credentials.masterKey
        const path = `/v2/feeds/${limited.credentials.feedId}`
        // preflights carrying the key (browsers send none; one that does must not spend it either)
        for (let i = 0; i < 4; i++) {
            const r = await httpFrom(limited, "127.0.0.2", "OPTIONS", path, { headers: { ...preflight(APP), "x-apikey": key } })
            assert.equal(r.status, 204, `preflight ${i}`)
        }
        const served = await httpFrom(limited, "127.0.0.2", "GET", path, { headers: { origin: APP, "x-apikey": key } })
        assert.equal(served.status, 200, "the key's budget is whole after 4 preflights")
        for (const method of ["OPTIONS", "GET"]) {
            const r = await httpFrom(limited, "127.0.0.2", method, path, { headers: method === "OPTIONS" ? preflight(APP) : { origin: APP, "x-apikey": key } })
            assert.equal(r.status, 429, method)
            assert.equal(r.body.code, "E_RATE_LIMITED")
            assert.ok(Number(r.headers["retry-after"]) > 0)
            assert.equal(r.headers["access-control-allow-origin"], APP)
            assert.match(String(r.headers["access-control-expose-headers"]), /Retry-After/)
        }
        // the key spent one of its 2 requests: another address may use it once more
        assert.equal((await httpFrom(limited, "127.0.0.3", "GET", path, { headers: { "x-apikey": key } })).status, 200)
    } finally {
        await limited.stop()
    }
})

test("* allows every origin, with Access-Control-Allow-Origin: *", async () => {
    const any = await startTestServer({ corsOrigins: ["*"] })
    try {
        const p = await httpFrom(any, "127.0.0.1", "OPTIONS", "/v2/feeds", { headers: preflight(OTHER) })
        assert.equal(p.status, 204)
        assert.equal(p.headers["access-control-allow-origin"], "*")
        const r = await httpFrom(any, "127.0.0.1", "GET", "/v2/feeds", { headers: { origin: OTHER } })
        assert.equal(r.status, 401)
        assert.equal(r.headers["access-control-allow-origin"], "*")
    } finally {
        await any.stop()
    }
})

test("default (no --cors-origins): no CORS headers on any answer, and a preflight is refused with its code", async () => {
    const closed = await startTestServer()
    try {
        const p = await httpFrom(closed, "127.0.0.1", "OPTIONS", "/v2/feeds", { headers: preflight(APP) })
        assert.equal(p.status, 403)
        assert.equal(p.body.code, "E_ORIGIN_NOT_ALLOWED")
        assert.match(p.body.errors, /--cors-origins/)
        for (const r of [p, await httpFrom(closed, "127.0.0.1", "GET", `/v2/feeds/${closed.credentials.feedId}`, { headers: { origin: APP, "x-apikey": closed.credentials.masterKey } })]) {
            assert.deepEqual(
                Object.keys(r.headers).filter((h) => h.startsWith("access-control-") || h === "vary"),
                [],
            )
        }
        // an OPTIONS that is no preflight (no Origin) is the REST door's 405, as before
        assert.equal((await httpFrom(closed, "127.0.0.1", "OPTIONS", "/v2/feeds")).status, 405)
    } finally {
        await closed.stop()
    }
})

test("the WebSocket takes an upgrade from any origin: keys travel in envelopes, nothing on the port is ambient", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${open.appPort}/ws`, { origin: OTHER })
    const first = await new Promise<string>((resolve, reject) => {
        ws.once("message", (d) => resolve(d.toString()))
        ws.once("error", reject)
    })
    ws.close()
    assert.match(first, /"welcome"/)
})

test("a --cors-origins value that is not an exact origin stops the start with E_BAD_CONFIG and what to write instead", async () => {
    const cases: [string[], RegExp][] = [
        [["https://app.example.com/"], /write it as browsers send it: "https:\/\/app\.example\.com"/],
        [["https://App.example.com"], /"https:\/\/app\.example\.com"/],
        [["https://app.example.com:443"], /"https:\/\/app\.example\.com"/],
        [["https://app.example.com/path"], /not an origin/],
        [["app.example.com"], /not an origin.*http\(s\):\/\/host\[:port\]/],
        [["ftp://app.example.com"], /not an origin/],
        [["null"], /not an origin/],
        [["*", APP], /\* already allows every origin/],
    ]
    for (const [entries, message] of cases) {
        assert.throws(() => corsPolicyOf(entries), (e: unknown) => e instanceof ConfigError && e.code === "E_BAD_CONFIG" && message.test(e.message), entries.join(","))
    }
    assert.equal(corsPolicyOf([]), undefined)
    assert.equal(corsPolicyOf(undefined), undefined)
    // and at start, before anything is opened
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-cors-"))
    const r = await startServer({ dataDir, devicePort: 0, appPort: 0, logLevel: "silent", corsOrigins: ["https://app.example.com/"] }).catch((e: unknown) => e)
    rmSync(dataDir, { recursive: true, force: true })
    assert.ok(r instanceof ConfigError, String(r))
    assert.equal(r.code, "E_BAD_CONFIG")
    assert.match(r.message, /^--cors-origins: /)
})
