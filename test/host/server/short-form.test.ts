// [P§5a] The short form: a device on a metered link writes its requests with one-letter member names
// and is answered the same way ({"t":…}, errors with "s", their body and code); long-form requests on
// the same connection, and pushes, keep the long form. What a short write stores is what a long one does.
import assert from "node:assert/strict"
import { test } from "node:test"
import { http, startTestServer, streamDoors, TlsClient, WsClient } from "../harness/server-harness.ts"

const T0 = Date.UTC(2026, 10, 22, 5)

test("a short-form request is answered in the short form; long-form requests and pushes keep the long form", async () => {
    const s = await startTestServer()
    try {
        const key = s.credentials.deviceKey
        const sub = await TlsClient.open(s, key)
        assert.equal((await sub.request({ method: "subscribe", resource: "/feeds/1/datastreams/t", token: "sub" })).status, 200)
        const c = await TlsClient.open(s)
        const body = { datastreams: [{ id: "t", datapoints: [{ at: T0, value: "21.5" }] }] }
        c.sendRaw(JSON.stringify({ m: "put", r: "/feeds/1", h: { "X-ApiKey": key }, b: body, t: "w1" }))
        assert.equal((await c.response("w1")).raw, '{"t":"w1"}')
        // stored as a long-form write would be, and pushed to the subscriber in the long form
        const push = await sub.response("sub")
        assert.match(push.raw, /^\{"token":"sub","status":200,"resource":"\/feeds\/1\/datastreams\/t","body":/)
        assert.equal((await http(s, "GET", "/v2/feeds/1/datastreams/t", { key })).body?.current_value, "21.5")
        // "m" left out: a put [P§5a]; a 200 answer leaves out "s", a short get's answer carries its body
        c.sendRaw(JSON.stringify({ r: "/feeds/1", b: { datastreams: [{ id: "t", datapoints: [{ at: T0 + 1000, value: "22" }] }] }, t: "w3" }))
        assert.equal((await c.response("w3")).raw, '{"t":"w3"}')
        c.sendRaw(JSON.stringify({ m: "get", r: "/feeds/1/datastreams/t", t: "g2" }))
        const got = await c.response("g2")
        assert.ok(got.raw.startsWith('{"t":"g2","b":{'), got.raw)
        assert.equal(got.response!.status, 200)
        assert.equal(got.response!.body.current_value, "22")
        // an error: short, with its body and stable code
        c.sendRaw(JSON.stringify({ m: "put", r: "/feeds/999999", b: body, t: "w2" }))
        const err = await c.response("w2")
        assert.ok(err.raw.startsWith('{"t":"w2","s":'), err.raw)
        assert.equal(err.response!.short, true)
        assert.ok(err.response!.status >= 400 && typeof err.response!.body.code === "string" && err.response!.body.code.startsWith("E_"), err.raw)
        // the long form on the same connection is answered in the long form
        const long = await c.request({ method: "get", resource: "/feeds/1/datastreams/t", token: "g" })
        assert.equal(long.short, undefined)
        assert.equal(long.resource, "/feeds/1/datastreams/t")
        assert.equal(long.body.current_value, "22")
        c.close()
        sub.close()
    } finally {
        await s.stop()
    }
})

test("a short-form request that fails to decode is answered in the short form, on the TLS and WebSocket doors; one that is not a JSON object in the long form", async () => {
    const s = await startTestServer()
    const { doors, close } = await streamDoors(s)
    try {
        const refused: [string, number, string][] = [
            ['{"m":"get","r":"/feeds/1/../2","t":"e1"}', 400, "E_BAD_RESOURCE"],
            ['{"m":"patch","r":"/feeds/1","t":"e2"}', 405, "E_BAD_METHOD"],
            ['{"m":"get","r":"/feeds/1.csv","t":"e3"}', 406, "E_BAD_FORMAT"],
            ['{"m":"get","t":"e4"}', 400, "E_NO_RESOURCE"],
            ['{"r":"/feeds/1","b":{"a":[[[[[[[[[[1]]]]]]]]]]},"t":"e5"}', 400, "E_TOO_DEEP"],
            ['{"r":"/feeds/1","b":{"v":"\\ud800"},"t":"e6"}', 400, "E_BAD_UTF8"],
            ['{"m":"get","r":"/feeds/1","p":"a=1","t":"e7"}', 400, "E_BAD_PARAMS"],
            ['{"r":"/feeds/1","h":{"X-ApiKey":5},"t":"e8"}', 400, "E_BAD_HEADERS"],
        ]
        for (const [door, c] of doors) {
            for (const [line, status, code] of refused) {
                const token = JSON.parse(line).t
                c.sendRaw(line)
                const got = await c.response(token)
                assert.ok(got.raw.startsWith(`{"t":"${token}","s":${status},"b":{`), `${door}: ${line} -> ${got.raw}`)
                assert.equal(got.response!.body.code, code, `${door}: ${got.raw}`)
                assert.equal(got.response!.short, true)
            }
            // a token that cannot be read: the short answer's "t" is empty
            c.sendRaw('{"r":"/feeds/1","t":[1]}')
            const badToken = await c.response("")
            assert.ok(badToken.raw.startsWith('{"t":"","s":400,"b":{'), `${door}: ${badToken.raw}`)
            assert.equal(badToken.response!.body.code, "E_BAD_TOKEN")
            // bytes that are not UTF-8: still the short form, with the token
            const notUtf8 = Buffer.concat([Buffer.from('{"r":"/feeds/1","b":{"v":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"},"t":"e9"}')])
            if (c instanceof TlsClient) c.socket.write(Buffer.concat([notUtf8, Buffer.from("\n")]))
            else (c as WsClient).ws.send(notUtf8, { binary: true })
            const u = await c.response("e9")
            assert.ok(u.raw.startsWith('{"t":"e9","s":400,"b":{'), `${door}: ${u.raw}`)
            assert.equal(u.response!.body.code, "E_BAD_UTF8")
            // the same mistakes in the long form keep the long form
            c.sendRaw('{"method":"get","resource":"/feeds/1/../2","token":"l1"}')
            const long = await c.response("l1")
            assert.ok(long.raw.startsWith('{"token":"l1","status":400,"body":{'), `${door}: ${long.raw}`)
            assert.equal(long.response!.body.code, "E_BAD_RESOURCE")
            // not a JSON object: its form cannot be told, so the long form (token "")
            c.sendRaw('{"r":"/feeds/1","t":"x",}')
            const notJson = await c.response("")
            assert.ok(notJson.raw.startsWith('{"token":"","status":400,"body":{'), `${door}: ${notJson.raw}`)
            assert.equal(notJson.response!.body.code, "E_BAD_JSON")
        }
    } finally {
        close()
        await s.stop()
    }
})
