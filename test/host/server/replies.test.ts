// Reply shapes [P§6] (issue 11 item 12): a reply to a request without a token is a response (no
// `notice` member) and the connection stays; a connection notice is marked `"notice":true`. On the TLS
// and WebSocket doors (HTTP has no notices).
import assert from "node:assert/strict"
import { test } from "node:test"
import { isNotice } from "../../../src/protocol.ts"
import { startTestServer, streamDoors } from "../harness/server-harness.ts"

test("replies: a request without token gets a response without `notice`, and the connection stays open", async () => {
    const s = await startTestServer()
    const { doors, close } = await streamDoors(s)
    try {
        for (const [door, c] of doors) {
            c.sendRaw(JSON.stringify({ method: "get", resource: `/feeds/${s.credentials.feedId}`, headers: { "X-ApiKey": s.credentials.deviceKey } }))
            const ok = await c.q.next((l) => l.kind === "response")
            assert.equal(ok.response!.status, 200, door)
            assert.ok(!("notice" in JSON.parse(ok.raw)), `${door}: ${ok.raw}`)
            assert.equal(isNotice(ok.response!), false)
            // an error reply without token: a response too, not a goodbye
            c.sendRaw(JSON.stringify({ method: "get", resource: "/feeds/999999" }))
            const err = await c.q.next((l) => l.kind === "response" && l.response!.status !== 200)
            assert.equal(err.response!.status, 403, `${door}: ${err.raw}`)
            assert.equal(isNotice(err.response!), false, door)
            // still served afterwards
            assert.equal((await c.request({ method: "get", resource: "/session" })).status, 200, door)
            assert.equal(c.q.closed, false, door)
        }
    } finally {
        close()
        await s.stop()
    }
})

test("replies: connection notices carry \"notice\":true and no token", async () => {
    const s = await startTestServer()
    const { doors } = await streamDoors(s)
    const stopped = s.stop()
    for (const [door, c] of doors) {
        const line = await c.q.next((l) => l.kind === "response" && l.response!.status === 503)
        assert.match(line.raw, /^\{"notice":true,"status":503,"body":\{/, door)
        assert.equal(line.response!.token, undefined, door)
        assert.equal(line.response!.body.code, "E_SHUTTING_DOWN", door)
    }
    await stopped
})

test("replies: a numeric token is echoed as it was written (beyond a double's exact integers, exponent form, -0), in both forms, on the TLS and WebSocket doors", async () => {
    const s = await startTestServer()
    const { doors, close } = await streamDoors(s)
    try {
        const key = s.credentials.deviceKey
        for (const [door, c] of doors) {
            for (const token of ["12345678901234567890", "1e3", "-0", "1.50", "-9007199254740993"]) {
                c.sendRaw(`{"method":"get","resource":"/session","headers":{"X-ApiKey":"${key}"},"token":${token}}`)
                const long = await c.response(token)
                assert.equal(long.response!.status, 200, `${door}: ${long.raw}`)
                assert.ok(long.raw.startsWith(`{"token":"${token}","status":200,`), `${door}: ${long.raw}`)
                c.sendRaw(`{"m":"get","r":"/session","t":${token}}`)
                const short = await c.response(token)
                assert.ok(short.raw.startsWith(`{"t":"${token}","b":{`), `${door}: ${short.raw}`)
            }
            // an error reaches its caller by the token as written too
            c.sendRaw('{"m":"patch","r":"/session","t":18446744073709551615}')
            const err = await c.response("18446744073709551615")
            assert.equal(err.response!.status, 405, `${door}: ${err.raw}`)
        }
    } finally {
        close()
        await s.stop()
    }
})
