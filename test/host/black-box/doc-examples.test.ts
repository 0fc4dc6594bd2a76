// Every example of docs/PROTOCOL.md, read from the doc itself and sent to a real server over the device port (TLS)
// and the WebSocket: requests as the doc writes them, answers held to the doc's lines (doc-pattern.ts says how its
// placeholders read). Edit an example and this test checks the new one; add one and the last test fails until it
// is sent here (or listed, with why, in NOT_SENT). And the Xively seed's own example, verbatim.
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { test } from "node:test"
import { serverForThisFile, startTestServer } from "../harness/server-harness.ts"
import { Door, rawHttp } from "./client.ts"
import { examplesOf, filled, mismatches, parsePattern, type Pattern } from "./doc-pattern.ts"

const markdown = readFileSync(new URL("../../../docs/PROTOCOL.md", import.meta.url), "utf8")
const examples = examplesOf(markdown)
const sent = new Set<string>()

/** Members whose values are the server's own (its session id, clock readings, a jittered wait): held to their type. */
const LOOSE = new Set(["welcome", "session", "time", "retry_after_ms"])

/** Examples that are not messages this test can bring about, and why. */
const NOT_SENT: [string, string][] = [
    ['{"hardware_id"', "a claim needs a product's signed activation code (test/host/server/fleet/ sends claims)"],
    ['{"device","feed","key"', "a claim's answer, as above"],
    ['{"after":"<next>"}', "a second page of /sessions needs 64 KiB of sessions (test/host/server/sessions.test.ts)"],
]

/** The one example holding `fragment` (the one equal to it among several); recorded as sent. */
function example(fragment: string): string {
    let found = examples.filter((e) => e.includes(fragment))
    if (found.length > 1) found = found.filter((e) => e === fragment)
    assert.equal(found.length, 1, `docs/PROTOCOL.md has ${found.length} examples holding ${fragment}`)
    sent.add(found[0])
    return found[0]
}

function pattern(fragment: string): Pattern {
    return parsePattern(example(fragment))
}

function assertMatches(fragment: string, actual: unknown, context: string, loose = LOOSE): void {
    const text = example(fragment)
    const wrong = mismatches(parsePattern(text), actual, loose)
    assert.deepEqual(wrong, [], `${context}: the server answered ${JSON.stringify(actual)}\nwhere docs/PROTOCOL.md shows ${text}`)
}

const s = await serverForThisFile()
const master = s.credentials.masterKey
const FILLS = { "X-ApiKey": master }
/** what a request example sends: as written when it holds no placeholder, else with its placeholders filled */
const sendable = (text: string, fills: Record<string, unknown> = {}) => (/…|\.\.\./.test(text) ? JSON.stringify(filled(parsePattern(text), { ...FILLS, ...fills })) : text)

async function signedIn(): Promise<[string, Door][]> {
    const doors = await Door.both(s)
    for (const [door, d] of doors) assert.equal((await d.ask({ method: "get", resource: "/session", headers: { "X-ApiKey": master }, token: "in" })).status, 200, door)
    return doors
}

// the doc's examples name feed 504 (§5) and feed 9, which must not exist (§5a, §6)
const made = await rawHttp(s, `POST /v2/feeds HTTP/1.1\r\nX-ApiKey: ${master}`, JSON.stringify({ title: "the doc's examples", id: 504 }))
assert.equal(made.status, 201)

test("§2: the welcome example (WebSocket: as written; device port: its members, the field profile's numbers)", async () => {
    for (const [door, d] of [["ws", await Door.ws(s)], ["tls", await Door.tls(s)]] as const) {
        const loose = door === "ws" ? LOOSE : new Set([...LOOSE, "heartbeat", "faulty", "timeout"])
        assertMatches('{"welcome"', await d.next(), door, loose)
        d.close()
    }
})

test("§5, §6: the request example, its answer, the answer with a body, the answer without a token", async () => {
    const body = filled(pattern('{"version":"1.0.0","datastreams":[{"id":"0","current_value":"980"}]}'), {})
    for (const [door, d] of await Door.both(s)) {
        d.send(sendable(example('{"method":"put","resource":"/feeds/504"'), { body }))
        assertMatches('{"token":"0x12345","status":200,"resource":"/feeds/504"}', await d.answer("0x12345"), door)
        d.send({ method: "get", resource: "/feeds/504", token: "0x12345" })
        assertMatches('{"token":"0x12345","status":200,"resource":"/feeds/504","body":{...}}', await d.answer("0x12345"), door)
        d.send({ method: "get", resource: "/feeds/504" })
        assertMatches('{"status":200,"resource":"/feeds/504","body":{…}}', await d.next((o) => o.resource === "/feeds/504"), door)
        d.close()
    }
})

test("§6: the 403 example, a key scoped to another feed asking for feed 9", async () => {
    const scoped = await rawHttp(s, `POST /v2/keys HTTP/1.1\r\nX-ApiKey: ${master}`, JSON.stringify({ label: "504 only", permissions: ["read"], feeds: [504] }))
    for (const [door, d] of await Door.both(s)) {
        const a7 = await d.ask({ method: "get", resource: "/feeds/9", headers: { "X-ApiKey": scoped.body.key }, token: "a7" })
        assertMatches('{"token":"a7","status":403', a7, door)
        d.close()
    }
})

test("§5a: the short-form block, line by line: each request sent as written, each answer held to the next line", async () => {
    const block = examples.slice(examples.indexOf(example('{"r":"/feeds/1","h"')))
    for (const [door, d] of await Door.both(s)) {
        const asked = new Set<string>()
        for (const line of block) {
            const o = parsePattern(line)
            if (o.kind !== "object") break
            const isRequest = o.members.has("m") || o.members.has("r")
            const answers = ["t", "s", "b"].some((m) => o.members.has(m)) && [...o.members.keys()].every((m) => ["t", "s", "b"].includes(m))
            if (!isRequest && !answers) break // the block ended
            const t = (filled(o, FILLS) as { t: string }).t
            sent.add(line)
            if (isRequest) {
                d.send(sendable(line))
                asked.add(t)
            } else {
                assert.ok(asked.has(t), `docs/PROTOCOL.md §5a shows the answer ${line} but no request with "t":"${t}" before it`)
                const answer = await d.answer(t)
                assertMatches(line, answer, door)
                assertMatches('{"t":…,"s":…,"b":…}', { s: 200, b: {}, ...answer }, door)
            }
        }
        assert.ok(asked.size >= 3, `${door}: the block's requests were read (${[...asked]})`)
        d.send({ m: "get", r: "feeds/1", t: "a3" })
        assertMatches('{"t":"a3","s":400', await d.answer("a3"), door)
        d.close()
    }
})

test("§8: the subscribe example, its acknowledgement, the push, the unsubscribe example, a timeout's final push", async () => {
    // the push example's point, written as a device would (its `at` is in the past of this test's clock)
    const push = filled(pattern('"current_value":"1","at":"2026-11-22T05:00:01.000Z"'), {}) as { resource: string; body: { current_value: string; at: string } }
    const write = { method: "put", resource: push.resource, body: { datapoints: [{ at: push.body.at, value: push.body.current_value }] }, token: "w" }
    for (const [door, d] of await signedIn()) {
        d.send(example('{"method":"subscribe","resource":"/feeds/1/datastreams/led"'))
        assertMatches('{"token":"s1","status":200,"resource":"/feeds/1/datastreams/led"}', await d.answer("s1"), door)
        assert.equal((await d.ask(write)).status, 200, door)
        // on the second door the point is already stored: the replay brings it (written again, it is no change)
        assertMatches('"current_value":"1","at":"2026-11-22T05:00:01.000Z"', await d.answer("s1"), door)
        d.send(example('{"method":"unsubscribe","resource":"/feeds/1/datastreams/led","params":{"token":"s1"},"token":"u7"}'))
        const u7 = await d.answer("u7")
        assertMatches('{"removed":n}', u7.body, door)
        assert.equal(u7.body.removed, 1, door)
        assertMatches('{"removed":0}', (await d.ask({ method: "unsubscribe", token: "u0" })).body, door)
        assert.equal((await d.ask({ method: "subscribe", resource: push.resource, params: { timeout: 100 }, token: "s1" })).status, 200)
        assertMatches('"status":408,"resource":R', await d.answer("s1"), door)
        d.close()
    }
})

test("§5: the answers' bodies: listings, /session, a feed made and deleted, a key, /jwt, datapoints written", async () => {
    for (const [door, d] of await signedIn()) {
        await d.ask({ method: "subscribe", resource: "/feeds/504", token: "s" })
        const body = async (request: Record<string, unknown>, status = 200) => {
            const a = await d.ask({ ...request, token: "b" })
            assert.equal(a.status, status, `${door} ${JSON.stringify(request)}: ${JSON.stringify(a)}`)
            return a.body
        }
        assertMatches('{"totalResults":N,"page":1,"results"', await body({ method: "get", resource: "/feeds" }), door)
        assertMatches('{"totalResults":N,"page":1,"keys"', await body({ method: "get", resource: "/keys" }), door)
        assertMatches('{"totalResults":N,"page":1,"products"', await body({ method: "get", resource: "/products" }), door)
        assertMatches('{"totalResults":N,"page":1,"sessions"', await body({ method: "get", resource: "/sessions" }), door)
        assertMatches('{"id","process","transport"', await body({ method: "get", resource: "/session" }), door)
        // its items' shape is held where there are devices (none here; test/host/server/fleet/ claims them)
        assertMatches('{"totalResults","page","devices"', await body({ method: "get", resource: "/devices" }), door)
        const points = filled(pattern('{"datapoints":[{"at":…,"value":…}]}'), { at: Date.now(), value: "1" })
        await body({ method: "post", resource: "/feeds/504/datastreams/p/datapoints", body: points })
        d.close()
    }
    // a feed of the doc's number, made once
    const [[door, d], [, ws]] = await signedIn()
    ws.close()
    const made = await d.ask({ method: "post", resource: "/feeds", body: { ...(filled(pattern('{"title":…}'), { title: "seven" }) as object), id: 7 }, token: "f" })
    assert.equal(made.status, 201)
    assertMatches('{"id":7,"resource":"/feeds/7"}', made.body, door)
    const key = await d.ask({ method: "post", resource: "/keys", body: filled(pattern('{"label":…,"permissions":["read","update"],"feeds":[7]}'), { label: "seven" }), token: "k" })
    assert.equal(key.status, 201)
    const deleted = await d.ask({ method: "delete", resource: "/feeds/7", token: "x" })
    assertMatches('{"id":F,"deleted":true', deleted.body, door)
    assert.deepEqual(deleted.body.revoked_keys, [key.body.id])
    d.close()
    const jwt = await rawHttp(s, `POST /jwt HTTP/1.1\r\nX-ApiKey: ${master}`, "{}")
    assertMatches('{"token","expires_at","expires_in","renewable_until",…}', jwt.body, "POST /jwt")
})

test("§6: the notice example, on both doors, when the server shuts down", async () => {
    const other = await startTestServer()
    const doors = await Door.both(other)
    await other.stop()
    for (const [door, d] of doors) assertMatches('{"notice":true,"status":503', await d.next(), door)
})

/** The request and its answer in the Xively Socket Server's "Using Sockets" page (/work/shared/seeds/000_…), as printed there. */
const XIVELY_REQUEST = `{
  "method" : "put",
  "resource" : "/feeds/504",
  "params" : {},
  "headers" : {"X-ApiKey":"abcdef123456"},
  "body" :
    {
      "version" : "1.0.0",
      "datastreams" : [
        {
          "id" : "0",
          "current_value" : "980"
        },
        {
          "id" : "1",
          "current_value" : "-261"
        }
      ]
    },
  "token" : "0x12345"
}
`
const XIVELY_RESPONSE = `{
  "token" : "0x12345",
  "status" : 200,
  "resource" : "/feeds/504"
}`

test("the Xively seed's example, pretty-printed as there: its own key is refused with a reason; with a real key, its answer", async () => {
    for (const [door, d] of await Door.both(s)) {
        d.write(XIVELY_REQUEST) // a stream of lines on the device port, one message on the WebSocket
        const refused = await d.answer("0x12345")
        assert.deepEqual([refused.status, refused.body.code], [401, "E_UNAUTHORIZED"], door)
        d.write(XIVELY_REQUEST.replace("abcdef123456", master))
        assert.deepEqual(await d.answer("0x12345"), JSON.parse(XIVELY_RESPONSE), door)
        d.close()
    }
})

test("every example of docs/PROTOCOL.md was sent, or is listed with why it is not", () => {
    for (const [fragment] of NOT_SENT) example(fragment)
    const left = examples.filter((e) => !sent.has(e))
    assert.deepEqual(left, [], "examples no test here sends: send them above, or list them in NOT_SENT with why")
})
