// What is not a request, on the stream doors (issue 11 items 13, 14): on WebSocket a message of one
// character or whitespace only is a silent heartbeat (Good Uncle's backtick), other garbage keeps its
// 400 with a reason; on the TLS line door every bad line gets exactly one 400 with a reason and the
// next line is read afresh (a typo in an openssl s_client session used to silence the lines after it).
import assert from "node:assert/strict"
import { test } from "node:test"
import { serverForThisFile, TlsClient, WsClient, type Line } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const key = s.credentials.masterKey

const isError = (l: Line) => l.kind === "response" && l.response!.status === 400

test("WebSocket: a one-character or blank message is a heartbeat: no answer, not counted as a request", async () => {
    const c = await WsClient.open(s)
    try {
        await c.welcome()
        for (const m of ["`", " ", "\n", "\t \r\n", " ` ", "x", "é", "😀", "{"]) c.sendRaw(m)
        const session = await c.request({ method: "get", resource: "/session", headers: { "X-ApiKey": key } })
        assert.equal(session.status, 200)
        assert.equal(session.body.requests, 1, "only the GET /session counted")
        assert.deepEqual(c.q.lines.filter(isError).map((l) => l.raw), [], "no 400 for heartbeats")
    } finally {
        c.close()
    }
})

test("WebSocket: other garbage still gets a 400 with a reason, one per message", async () => {
    const c = await WsClient.open(s)
    try {
        await c.welcome()
        for (const m of ["``", "ab", "hello", "[1]", '{"method":']) c.sendRaw(m)
        await c.request({ method: "get", resource: "/session", headers: { "X-ApiKey": key } })
        const errors = c.q.lines.filter(isError)
        assert.deepEqual(errors.map((l) => l.response!.body.code), ["E_BAD_JSON", "E_BAD_JSON", "E_BAD_JSON", "E_NOT_OBJECT", "E_BAD_JSON"])
        for (const e of errors) assert.ok(e.response!.body.errors.length > 20, "a reason a person can act on")
    } finally {
        c.close()
    }
})

test("TLS: every bad line gets exactly one 400 with a reason; the next line is read afresh", async () => {
    const c = await TlsClient.open(s)
    try {
        const ok = (token: string) => JSON.stringify({ method: "get", resource: "/session", headers: { "X-ApiKey": key }, token })
        c.socket.write(
            [
                "helo", // a typo
                "get /feeds/1", // a second bad line: its own 400 (it used to be skipped silently)
                ok("a"), // read afresh
                `oops ${ok("lost")}`, // a bad line: the object on it goes with it
                '{"method":"get","resource":"/session', // a string running past the end of its line
                ok("b"),
                "]]] also bad",
                "",
                ok("c"),
            ].join("\n") + "\n",
        )
        for (const t of ["a", "b", "c"]) assert.equal((await c.response(t)).response!.status, 200, t)
        const errors = c.q.lines.filter(isError)
        assert.equal(errors.length, 5, errors.map((l) => l.raw).join("\n"))
        for (const e of errors) {
            assert.equal(e.response!.body.code, "E_BAD_JSON")
            assert.equal(e.response!.token, "", "a response, not a notice")
        }
        const why = errors.map((e) => e.response!.body.errors.match(/starting with ("."|byte)|ran past/)?.[0])
        assert.deepEqual(why, ['starting with "h"', 'starting with "g"', 'starting with "o"', "ran past", 'starting with "]"'])
        assert.equal(c.q.lines.some((l) => l.response?.token === "lost"), false)
    } finally {
        c.close()
    }
})
