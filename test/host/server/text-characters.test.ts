// [P§10] Text a device may be pushed: what the server stores is what it pushes, as JSON every client (the
// firmware's decoder included) parses back to the same text. Found by red-teaming the server as a tenant
// would: a value holding NUL was stored on SQLite and pushed as \u0000, while PostgreSQL cannot store NUL in
// text at all, and there the whole group commit failed: every other tenant's write in it answered
// 503 E_STORE_FAILED ("send it again"), and the device resending its batch failed them again. And a value
// holding U+FFFF or U+FFFE was stored and pushed as \uffff, on which the DeviceScript runtime's JSON.parse
// panics: every subscribed board rebooted, and again at each replay (test/firmware/subs.test.ts). Control
// characters (U+0000-U+001F, U+007F-U+009F), U+FFFE and U+FFFF in a value, a title, a label or a name are
// now refused at the door, 400 E_BAD_CHARACTER naming the field; U+2028/U+2029, characters outside the BMP
// and any other Unicode text are stored and pushed (escaped: the wire is ASCII); a lone surrogate was
// already refused (400 E_BAD_UTF8, input.test.ts).
import assert from "node:assert/strict"
import { test } from "node:test"
import { decodeServerLine } from "../../../src/protocol.ts"
import { createScratchDatabase, skipUnlessInstalled, startPostgres } from "../../../devs/tools/services.ts"
import { http, serverForThisFile, startTestServer, TlsClient, WsClient, type Line } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const feed = s.credentials.feedId
const key = s.credentials.masterKey

/** Values a device may be pushed: each stored and pushed as it was written. */
const ACCEPTED: [string, string][] = [
    ["U+2028 and U+2029 (line ends to JavaScript, not to JSON)", "a\u2028b\u2029c"],
    ["a character outside the BMP (a surrogate pair)", "\u{1F600}x"],
    ["accented and CJK text", "\u00e9\u4e2d"],
    ["a byte-order mark and a noncharacter the device parses", "\ufeff\ufdd0"],
]

/** Values refused: each with the code point the answer names. */
const REFUSED: [string, string, string][] = [
    ["NUL", "a\u0000b", "U+0000"],
    ["ESC (a terminal's escape sequences)", "\u001b[2J", "U+001B"],
    ["a newline", "1\n", "U+000A"],
    ["a tab", "\t1", "U+0009"],
    ["DEL", "1\u007f", "U+007F"],
    ["a C1 control (NEL)", "1\u0085", "U+0085"],
    ["U+FFFF (the DeviceScript runtime's JSON.parse panics on it)", "1\uffff", "U+FFFF"],
    ["U+FFFE (the same)", "\ufffe", "U+FFFE"],
]

function isAscii(line: string): boolean {
    for (let i = 0; i < line.length; ++i) if (line.charCodeAt(i) > 126 || line.charCodeAt(i) < 32) return false
    return true
}

/** The raw line of the next push to `token` on `c`. */
function nextPush(c: TlsClient | WsClient, token: string): Promise<Line> {
    return c.response(token)
}

test("U+2028/U+2029, non-BMP and other Unicode values are stored and pushed on TLS and WebSocket as ASCII JSON that parses back to the same text", async () => {
    const tls = await TlsClient.open(s, key)
    const ws = await WsClient.open(s)
    await ws.welcome()
    try {
        for (const [c, token] of [[tls, "tls-sub"], [ws, "ws-sub"]] as const) {
            const ack = await c.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/text`, headers: { "X-ApiKey": key }, token })
            assert.equal(ack.status, 200, JSON.stringify(ack))
        }
        for (const [what, value] of ACCEPTED) {
            const w = await http(s, "PUT", `/v2/feeds/${feed}/datastreams/text`, { key, body: { current_value: value } })
            assert.equal(w.status, 200, `${what}: ${JSON.stringify(w)}`)
            for (const [c, token] of [[tls, "tls-sub"], [ws, "ws-sub"]] as const) {
                const line = await nextPush(c, token)
                assert.ok(isAscii(line.raw), `${what}: the push is printable ASCII: ${line.raw}`)
                assert.equal(JSON.parse(line.raw).body.current_value, value, `${what}: JSON.parse gives the value back`)
                // the envelope decoder every client shares (the firmware's too)
                assert.equal(decodeServerLine(line.raw).response!.body.current_value, value, `${what}: decodeServerLine gives the value back`)
            }
            const read = await http(s, "GET", `/v2/feeds/${feed}/datastreams/text`, { key })
            assert.equal(read.body.current_value, value, `${what}: stored as written`)
            const device = await tls.request({ method: "get", resource: `/feeds/${feed}/datastreams/text`, headers: { "X-ApiKey": key } })
            assert.equal(device.body.current_value, value, `${what}: read back over TLS`)
        }
    } finally {
        tls.close()
        ws.close()
    }
})

test("a value with a control character, U+FFFE or U+FFFF is refused 400 E_BAD_CHARACTER on every door and in every place, naming the field; nothing stored or pushed", async () => {
    const tls = await TlsClient.open(s, key)
    const ws = await WsClient.open(s)
    await ws.welcome()
    const sub = await TlsClient.open(s, key)
    try {
        assert.equal((await sub.request({ method: "subscribe", resource: `/feeds/${feed}`, token: "watch" })).status, 200)
        const at = Date.now() - 1000
        for (const [what, value, codePoint] of REFUSED) {
            const stream = "refused"
            const tries: [string, Promise<{ status: number; body?: any }>, string][] = [
                ["HTTP PUT a datastream", http(s, "PUT", `/v2/feeds/${feed}/datastreams/${stream}`, { key, body: { current_value: value } }), "body.current_value"],
                ["TLS PUT the feed", tls.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "ok", current_value: "1" }, { id: stream, current_value: value }] } }), "datastreams[1].current_value"],
                [
                    "TLS PUT the feed, a datapoint",
                    tls.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: stream, datapoints: [{ at, value: "1" }, { at: at + 1, value }] }] } }),
                    "datastreams[0].datapoints[1].value",
                ],
                ["WebSocket POST datapoints", ws.request({ method: "post", resource: `/feeds/${feed}/datastreams/${stream}/datapoints`, headers: { "X-ApiKey": key }, body: { datapoints: [{ at, value }] } }), "datapoints[0].value"],
                ["HTTP POST datastreams", http(s, "POST", `/v2/feeds/${feed}/datastreams`, { key, body: { datastreams: [{ id: stream, current_value: value }] } }), "datastreams[0].current_value"],
            ]
            for (const [door, answer, field] of tries) {
                const r = await answer
                assert.equal(r.status, 400, `${what}, ${door}: ${JSON.stringify(r)}`)
                assert.equal(r.body.code, "E_BAD_CHARACTER", `${what}, ${door}`)
                assert.ok(r.body.errors.startsWith(`${field} holds ${codePoint}`), `${what}, ${door}: names the field and the character: ${r.body.errors}`)
            }
            assert.equal((await http(s, "GET", `/v2/feeds/${feed}/datastreams/${stream}`, { key })).status, 404, `${what}: nothing stored`)
        }
        // no push was owed by any of them: the next is this write's
        assert.equal((await http(s, "PUT", `/v2/feeds/${feed}/datastreams/sentinel`, { key, body: { current_value: "s" } })).status, 200)
        const next = await sub.push("watch")
        assert.equal((next.body as any).id, "sentinel", JSON.stringify(next))
        assert.equal((await http(s, "GET", `/v2/feeds/${feed}/datastreams/ok`, { key })).status, 404, "a refused write is refused whole")
    } finally {
        tls.close()
        ws.close()
        sub.close()
    }
})

test("titles, labels and names with a control character or U+FFFF are refused 400 E_BAD_CHARACTER, naming the field", async () => {
    const cases: [string, () => Promise<{ status: number; body?: any }>, string][] = [
        ["a new feed's title", () => http(s, "POST", "/v2/feeds", { key, body: { title: "north\u0000field" } }), "title"],
        ["a feed's new title", () => http(s, "PUT", `/v2/feeds/${feed}`, { key, body: { title: "north\nfield" } }), "title"],
        ["a key's label", () => http(s, "POST", "/v2/keys", { key, body: { label: "dash\u001b]0;board", permissions: ["read"] } }), "label"],
        ["a product's title", () => http(s, "POST", "/v2/products", { key, body: { title: "field\u0007stations" } }), "title"],
        ["a product's sampling policy (each board that claims is handed it)", () => http(s, "POST", "/v2/products", { key, body: { title: "f", datastreams: [{ id: "t", policy: "i=10s\uffff" }] } }), "datastreams[0].policy"],
    ]
    for (const [what, send, field] of cases) {
        const r = await send()
        assert.equal(r.status, 400, `${what}: ${JSON.stringify(r)}`)
        assert.equal(r.body.code, "E_BAD_CHARACTER", what)
        assert.ok(r.body.errors.startsWith(`${field} holds U+`), `${what}: ${r.body.errors}`)
    }
    const titles = (await http(s, "GET", "/v2/feeds", { key })).body.results.map((f: { title: string }) => f.title)
    assert.ok(!titles.some((t: string) => t.includes("north")), "no feed made or renamed")
})

test("on PostgreSQL, which cannot store U+0000: one tenant's NUL is refused at the door and another tenant's write in the same moment is stored", { skip: skipUnlessInstalled("postgresql") }, async () => {
    const postgres = await startPostgres({ durable: false })
    try {
        const pg = await startTestServer({ databaseUrl: await createScratchDatabase(postgres.url, "control_characters") })
        try {
            const master = pg.credentials.masterKey
            const other = (await http(pg, "POST", "/v2/feeds", { key: master, body: { title: "other tenant" } })).body.id
            const [a, b] = [await TlsClient.open(pg, master), await TlsClient.open(pg, master)]
            try {
                // sent together, so that both are in one group commit (there, a NUL failed the commit, and with it every write in it)
                for (let round = 0; round < 5; ++round) {
                    const [nul, fine] = await Promise.all([
                        a.request({ method: "put", resource: `/feeds/${pg.credentials.feedId}`, body: { datastreams: [{ id: "poison", current_value: "x\u0000" }] } }),
                        b.request({ method: "put", resource: `/feeds/${other}`, body: { datastreams: [{ id: "temp", current_value: String(round) }] } }),
                    ])
                    assert.equal(fine.status, 200, `the other tenant's write: ${JSON.stringify(fine)}`)
                    assert.deepEqual([nul.status, (nul.body as any).code], [400, "E_BAD_CHARACTER"], JSON.stringify(nul))
                }
                assert.equal((await http(pg, "GET", `/v2/feeds/${other}/datastreams/temp`, { key: master })).body.current_value, "4")
                const title = await http(pg, "POST", "/v2/feeds", { key: master, body: { title: "a\u0000b" } })
                assert.deepEqual([title.status, title.body.code], [400, "E_BAD_CHARACTER"], JSON.stringify(title))
            } finally {
                a.close()
                b.close()
            }
        } finally {
            await pg.stop()
        }
    } finally {
        await postgres.stop()
    }
})
