// Router fuzzing against a running server, over the TLS device port and HTTP: random and mutated
// requests carrying a valid key. The server must never crash or answer 5xx, must answer every
// rejected request with a 4xx, a stable E_ code and a reason, must change nothing in the store for a
// rejected request, and must keep serving other connections. Seeded: FUZZ_SEED replays, FUZZ_RUNS scales.
import { test, before, after } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import fc from "fast-check"
import { METHODS } from "../../../../src/protocol.ts"
import { startTestServer, TlsClient, WsClient, type TestServer } from "../../harness/server-harness.ts"
import { bodyArb, FUZZ_SEED, fuzzRuns, mutatedArb, nastyNumberLiteral, nastyString, resourceArb, REQUEST_SEEDS } from "../../protocol/envelope-arbitraries.ts"

/** Cases per test (FUZZ_RUNS scales them all) and a time limit that grows with them: each case is a network round trip. */
const TLS_RUNS = fuzzRuns(400)
const WS_RUNS = fuzzRuns(200)
const MUTATED_RUNS = fuzzRuns(150)
const HTTP_RUNS = fuzzRuns(300)
const limitFor = (runs: number) => ({ timeout: 60_000 + runs * 50 })

console.log(`# router fuzz seed ${FUZZ_SEED} (replay: FUZZ_SEED=${FUZZ_SEED} npm run fuzz)`)

let server: TestServer
let feed: number
let key: string
let bystander: TlsClient

before(async () => {
    // the fuzz sends thousands of requests on one connection: lift the per-connection request rate
    server = await startTestServer({ ratePerSecond: 1_000_000, rateBurst: 1_000_000 })
    feed = server.credentials.feedId
    key = server.credentials.deviceKey
    const c = await TlsClient.open(server, key)
    const put = await c.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "temp", datapoints: [{ at: 1732250000000, value: "21.5" }, { at: 1732250001000, value: "22" }] }] } })
    assert.equal(put.status, 200)
    c.close()
    // a well-behaved connection that must still be served when the fuzzing is over
    bystander = await TlsClient.open(server, key)
})

after(async () => {
    bystander?.close()
    await server?.stop()
})

/** Everything a request could change, as one comparable string. */
async function snapshot(): Promise<string> {
    const store = server.store
    const feeds = await store.listFeeds()
    const out: unknown[] = []
    for (const f of feeds) {
        const streams = await store.listDatastreams(f.id)
        const replay = await store.replay(f.id, undefined, -8.64e15, 1_000_000)
        out.push({ f: [f.id, f.title, f.updatedMs], streams: streams.map((d) => [d.id, d.currentValue, d.atMs, d.minValue, d.maxValue]), points: replay.points })
    }
    const keys = (await store.listKeys()).map((k) => [k.id, k.label, k.permissions, k.feeds, k.master, k.revokedMs])
    return JSON.stringify({ out, keys })
}

/** A rejection is a 4xx whose body carries a stable code and a reason a person can act on. */
function assertRejection(status: number, body: any, context: string): void {
    assert.ok(status >= 400 && status < 500, `${context}: status ${status}`)
    assert.ok(body && typeof body.code === "string" && body.code.startsWith("E_"), `${context}: no E_ code in ${JSON.stringify(body)}`)
    assert.ok(typeof body.errors === "string" && body.errors.length > 5, `${context}: no reason in ${JSON.stringify(body)}`)
}

// no "key": over HTTP ?key= is a credential, and wrong keys trip the per-address limiter
const PARAM_NAMES = ["start", "end", "duration", "interval", "limit", "since", "timeout", "find", "per_page"]

/** Requests aimed at the router: real resources (often), real-ish params, a Xively-shaped body, the device's key. */
function routerRequestArb(feedId: number, apiKey: string) {
    const f = String(feedId)
    const resources = [
        "/feeds",
        `/feeds/${f}`,
        `/feeds/${f}.json`,
        `/feeds/${f}/datastreams`,
        `/feeds/${f}/datastreams/temp`,
        `/feeds/${f}/datastreams/temp/datapoints`,
        `/feeds/${f}/datastreams/nope/datapoints`,
        `/feeds/${f}/datastreams/temp/datapoints/x`,
        `/feeds/${f}/whatever`,
        "/feeds/2",
        "/feeds/999999",
        "/feeds/0",
        "/feeds/01",
        "/feeds/1e3",
        "/feeds/99999999999999999999",
        "/keys",
        "/keys/abc",
        "/session",
        "/",
        "/jwt",
    ]
    const paramValue = fc.oneof(
        fc.constantFrom("2026-11-22T05:00:00.000Z", "2026-13-45T99:00:00Z", "1732250000000", "-1", "0", "30seconds", "6hours", "99999999999weeks", "1weeks", "", "NaN", "Infinity", "1e400", "1000", "1001", "100000"),
        nastyString,
        nastyNumberLiteral.map(Number),
        fc.boolean()
    )
    return fc.record(
        {
            method: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...METHODS) }, { weight: 1, arbitrary: fc.constantFrom("PUT", "patch", "") }),
            resource: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...resources) }, { weight: 2, arbitrary: resourceArb }),
            params: fc.dictionary(fc.oneof(fc.constantFrom(...PARAM_NAMES), nastyString), paramValue, { maxKeys: 3 }),
            // only the valid key: wrong keys trip the per-address limiter (tested on its own), after
            // which every request from 127.0.0.1 is answered 429 and the router is no longer reached
            headers: fc.oneof({ weight: 6, arbitrary: fc.constantFrom({ "X-ApiKey": apiKey }, { "x-apikey": apiKey }) }, { weight: 1, arbitrary: fc.constant({}) }),
            body: bodyArb,
        },
        { requiredKeys: ["method", "resource", "headers"] }
    )
}

/** Sends generated requests over one envelope connection (TLS or WebSocket) and checks every answer and the store. */
async function fuzzEnvelopes(client: TlsClient | WsClient, door: string, runs: number): Promise<void> {
    let baseline = await snapshot()
    const counts: Record<string, number> = {}
    let n = 0
    await fc.assert(
        fc.asyncProperty(routerRequestArb(feed, key), async (req) => {
            const token = `${door}${++n}`
            const res = await client.request({ ...req, token } as any, 10_000)
            const label = `${res.status}${res.body?.code ? " " + res.body.code : ""}`
            counts[label] = (counts[label] ?? 0) + 1
            assert.ok(res.status < 500, `5xx for ${JSON.stringify(req)}: ${JSON.stringify(res)}`)
            const after = await snapshot()
            if (res.status >= 400) {
                assertRejection(res.status, res.body, JSON.stringify(req))
                assert.equal(after, baseline, `a rejected request (${res.status} ${res.body.code}) changed the store: ${JSON.stringify(req)}`)
            }
            baseline = after
        }),
        { seed: FUZZ_SEED, numRuns: runs, includeErrorInReport: true }
    )
    console.log(`# router fuzz (${door}): ${n} requests, statuses ${JSON.stringify(counts)}`)
}

test("router fuzz over TLS: never 5xx, rejections are coded 4xx and change nothing", limitFor(TLS_RUNS), async () => {
    const client = await TlsClient.open(server, key)
    await fuzzEnvelopes(client, "TLS", TLS_RUNS)
    client.close()
})

test("router fuzz over WebSocket: never 5xx, rejections are coded 4xx and change nothing", limitFor(WS_RUNS), async () => {
    const client = await WsClient.open(server)
    await client.welcome()
    assert.equal((await client.request({ method: "get", resource: "/session", headers: { "X-ApiKey": key } })).status, 200)
    await fuzzEnvelopes(client, "WS", WS_RUNS)
    client.close()
})

test("mutated request text, each on a fresh TLS connection: coded 4xx, nothing written, server alive", limitFor(MUTATED_RUNS), async () => {
    const texts = fc.oneof(
        mutatedArb(REQUEST_SEEDS.map((s) => s.replace(/"\/feeds\/504"/g, `"/feeds/${feed}"`).replace(/abcdef123456/g, key))),
        fc.string({ unit: "binary", maxLength: 40 })
    )
    let baseline = await snapshot()
    let sentinels = 0
    await fc.assert(
        fc.asyncProperty(texts, async (text) => {
            const c = await TlsClient.open(server)
            c.sendRaw(text)
            // a sentinel: once it is answered, everything the text caused has been answered too.
            // A text that leaves an object open swallows it; then the connection must still be alive.
            c.sendRaw('}]]]]]]]]"}\n{"method":"get","resource":"/session","token":"sentinel"}')
            const answered = await c.response("sentinel", 1500).then(
                () => true,
                () => false
            )
            if (answered) sentinels++
            for (const line of c.q.lines) {
                assert.ok(line.kind !== "invalid", `the server sent a line that is not protocol: ${line.raw}`)
                if (line.kind !== "response") continue
                const r = line.response!
                assert.ok(r.status < 500, `5xx for ${JSON.stringify(text)}: ${line.raw}`)
                if (r.status >= 400) assertRejection(r.status, r.body, JSON.stringify(text))
            }
            const anyOk = c.q.lines.some((l) => l.kind === "response" && l.response!.status < 300 && l.response!.token !== "sentinel")
            c.close()
            const after = await snapshot()
            if (!anyOk) assert.equal(after, baseline, `rejected text changed the store: ${JSON.stringify(text)}`)
            baseline = after
        }),
        { seed: FUZZ_SEED, numRuns: MUTATED_RUNS, includeErrorInReport: true }
    )
    console.log(`# mutated texts: sentinel answered on ${sentinels} connections (the others were left mid-object or closed, as they should)`)
})

/** One raw HTTP/1.1 exchange over a plain socket, so that no client library tidies the path. */
function rawHttp(port: number, method: string, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        const s = net.connect({ port, host: "127.0.0.1" })
        let data = ""
        s.setEncoding("latin1")
        const head = [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close", `Content-Length: ${Buffer.byteLength(body)}`]
        for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`)
        s.write(head.join("\r\n") + "\r\n\r\n" + body)
        s.on("data", (d: string) => (data += d))
        s.on("error", reject)
        s.setTimeout(10_000, () => reject(new Error(`no HTTP answer for ${method} ${path}`)))
        s.on("close", () => {
            const m = /^HTTP\/1\.1 (\d{3})/.exec(data)
            if (!m) return reject(new Error(`not an HTTP answer: ${JSON.stringify(data.slice(0, 200))}`))
            resolve({ status: Number(m[1]), body: data.slice(data.indexOf("\r\n\r\n") + 4) })
        })
    })
}

/** Percent-encodes every character outside `keep`, byte by byte (lone surrogates become U+FFFD, as on the wire). */
function percentEncode(text: string, keep: RegExp): string {
    let out = ""
    for (const ch of text) {
        if (keep.test(ch)) out += ch
        else for (const b of Buffer.from(ch, "utf8")) out += "%" + b.toString(16).padStart(2, "0").toUpperCase()
    }
    return out
}
/** Path characters HTTP allows are kept as they are (so "%2F" in a resource stays an encoded slash). */
const toHttpPath = (resource: string) => percentEncode(resource, /[A-Za-z0-9\-._~/%!$&'()*+,;=:@]/)
const toQueryPart = (text: string) => percentEncode(text, /[A-Za-z0-9\-._~]/)

test("router fuzz over HTTP: never 5xx, rejections are coded 4xx and change nothing", limitFor(HTTP_RUNS), async () => {
    let baseline = await snapshot()
    const counts: Record<string, number> = {}
    const httpMethod = fc.oneof({ weight: 6, arbitrary: fc.constantFrom("GET", "PUT", "POST", "DELETE") }, { weight: 1, arbitrary: fc.constantFrom("PATCH", "OPTIONS", "SUBSCRIBE", "PROPFIND") })
    await fc.assert(
        fc.asyncProperty(routerRequestArb(feed, key), httpMethod, fc.boolean(), async (req, method, mutateBody) => {
            const query = Object.entries(req.params ?? {})
                .map(([k, v]) => `${toQueryPart(k)}=${toQueryPart(String(v))}`)
                .join("&")
            const path = "/v2" + toHttpPath(typeof req.resource === "string" ? req.resource : "/") + (query ? "?" + query : "")
            let body = req.body === undefined ? "" : JSON.stringify(req.body)
            if (mutateBody && body.length > 2) body = body.slice(0, body.length >> 1)
            const headers: Record<string, string> = { ...(req.headers as Record<string, string>) }
            if (body) headers["Content-Type"] = "application/json"
            const res = await rawHttp(server.appPort, method, path, headers, body)
            const label = `${res.status}${/"code":"(E_\w+)"/.exec(res.body)?.[1] ? " " + /"code":"(E_\w+)"/.exec(res.body)![1] : ""}`
            counts[label] = (counts[label] ?? 0) + 1
            const context = `${method} ${path} ${body.slice(0, 200)}`
            assert.ok(res.status < 500, `5xx for ${context}: ${res.body}`)
            const after = await snapshot()
            if (res.status >= 400) {
                let json: unknown
                try {
                    json = JSON.parse(res.body)
                } catch {
                    assert.fail(`${context}: ${res.status} without a JSON reason: ${JSON.stringify(res.body.slice(0, 200))}`)
                }
                assertRejection(res.status, json, context)
                assert.equal(after, baseline, `a rejected HTTP request changed the store: ${context}`)
            }
            baseline = after
        }),
        { seed: FUZZ_SEED, numRuns: HTTP_RUNS, includeErrorInReport: true }
    )
    console.log(`# router fuzz (HTTP): statuses ${JSON.stringify(counts)}`)
})

test("after the fuzzing, the bystander connection and a fresh one are served", async () => {
    const r = await bystander.request({ method: "get", resource: `/feeds/${feed}/datastreams/temp` })
    assert.equal(r.status, 200)
    const fresh = await TlsClient.open(server, key)
    const put = await fresh.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "after", current_value: "1" }] } })
    assert.equal(put.status, 200)
    fresh.close()
})

// [P§2] "the server first sends one line": a client that pastes a request before the welcome arrives
// (openssl s_client, a device with a queued sample) must still read the welcome first, although the
// session defers the welcome one event-loop turn for DeviceScript's simulator.
test("a client that speaks before the welcome still reads the welcome first", async () => {
    let first = 0
    const N = 5
    for (let i = 0; i < N; ++i) {
        const c = await TlsClient.connect(server, { heartbeat: false })
        c.sendRaw('{"method":"get","resource":"/session","token":"early"}')
        await c.response("early")
        if (c.q.lines[0].kind === "welcome") first++
        c.close()
    }
    assert.equal(first, N, `the welcome came first on ${first} of ${N} connections`)
})

/**
 * One raw exchange of arbitrary bytes with the app port; resolves with the first answer once it is
 * complete (its headers and its content-length of body), or with what came back before the close.
 * Not waiting for the close: an answer that keeps the connection alive (a 401 to junk that is a valid
 * header) would hold each case for the server's 5 s keep-alive timeout.
 */
function rawExchange(port: number, bytes: string): Promise<string> {
    return new Promise((resolve) => {
        const s = net.connect({ port, host: "127.0.0.1" }, () => s.write(bytes, "latin1"))
        let data = ""
        const done = () => {
            s.destroy()
            resolve(data)
        }
        s.setEncoding("latin1")
        s.on("data", (d: string) => {
            data += d
            const headEnd = data.indexOf("\r\n\r\n")
            const length = /^content-length: *(\d+)\r$/im.exec(data.slice(0, headEnd + 2))
            if (headEnd >= 0 && length && data.length >= headEnd + 4 + Number(length[1])) done()
        })
        s.on("error", () => {})
        s.on("close", done)
        s.setTimeout(10_000, done) // a bound for a loaded machine; an answer takes milliseconds
    })
}

// Requests that Node's HTTP parser refuses never reach the router: Node answers a bare
// "400 Bad Request" without a body unless the server handles "clientError" itself.
test("malformed HTTP (lowercase method, control bytes, NUL in a header, no Host, garbage) gets a 4xx with a JSON reason", async () => {
    const malformed = fc.oneof(
        fc.constantFrom("get /v2/feeds/1 HTTP/1.1\r\nHost: x\r\n\r\n", "GET /v2/feeds/\u0001 HTTP/1.1\r\nHost: x\r\n\r\n", `GET /v2/feeds/1 HTTP/1.1\r\nHost: x\r\nX-ApiKey: a\u0000b\r\n\r\n`, "GARBAGE\r\n\r\n", "GET /v2/feeds/1 HTTP/1.1\r\n#:\r\n\r\n"),
        fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 60 }).map((junk) => `GET /v2/feeds/1 HTTP/1.1\r\n${junk}\r\n\r\n`)
    )
    await fc.assert(
        fc.asyncProperty(malformed, async (bytes) => {
            const answer = await rawExchange(server.appPort, bytes)
            // every case is answered: a server that closed unanswered, or served one, would pass otherwise
            const m = /^HTTP\/1\.1 (\d{3})/.exec(answer)
            assert.ok(m, `no HTTP answer for ${JSON.stringify(bytes)}: ${JSON.stringify(answer.slice(0, 120))}`)
            const status = Number(m[1])
            // junk that happens to be a valid header still leaves a request without Host and without a key
            assert.ok(status >= 400 && status < 500, `${status} for ${JSON.stringify(bytes)}`)
            const body = answer.slice(answer.indexOf("\r\n\r\n") + 4)
            let json: unknown
            try {
                json = JSON.parse(body)
            } catch {
                assert.fail(`${status} without a JSON reason for ${JSON.stringify(bytes)}: ${JSON.stringify(answer.slice(0, 120))}`)
            }
            assertRejection(status, json, JSON.stringify(bytes))
        }),
        { seed: FUZZ_SEED, numRuns: fuzzRuns(50), includeErrorInReport: true }
    )
})
