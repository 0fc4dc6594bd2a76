// The sixth audit, black-box: what docs/PROTOCOL.md promises a client written from it alone, over the device port
// (TLS) and the WebSocket alike, asserted on status and code (the client: ./client.ts, nothing of src/protocol.ts).
import assert from "node:assert/strict"
import { randomBytes } from "node:crypto"
import net from "node:net"
import { test } from "node:test"
import { WebSocket } from "ws"
import { serverForThisFile } from "../harness/server-harness.ts"
import { Door, rawHttp } from "./client.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey

/** Both doors, each with the master key remembered [P§7]. */
async function signedIn(): Promise<[string, Door][]> {
    const doors = await Door.both(s)
    for (const [door, d] of doors) assert.equal((await d.ask({ method: "get", resource: "/session", headers: { "X-ApiKey": master }, token: "in" })).status, 200, door)
    return doors
}

const codeOf = (answer: any) => [answer.status ?? answer.s ?? 200, (answer.body ?? answer.b)?.code]

test("§2, §4: the welcome comes first, with the keep-alive each door announces", async () => {
    const [tls, ws] = [await Door.tls(s), await Door.ws(s)]
    const [tw, ww] = [await tls.next(), await ws.next()]
    for (const w of [tw, ww]) {
        assert.match(w.welcome, /^feedline\//)
        assert.equal(typeof w.session, "string")
        assert.ok(Math.abs(w.time - Date.now()) < 60_000)
    }
    assert.deepEqual([tw.heartbeat, tw.faulty, tw.timeout], [20000, 30000, 60000]) // the `field` profile
    assert.deepEqual([ww.heartbeat, ww.faulty, ww.timeout], [300, 1000, 3000])
    tls.close()
    ws.close()
})

test("§7: no key is 401; the first key that succeeds is remembered for the connection", async () => {
    for (const [door, d] of await Door.both(s)) {
        assert.deepEqual(codeOf(await d.ask({ method: "get", resource: "/feeds/1", token: "a" })), [401, "E_UNAUTHORIZED"], door)
        assert.deepEqual(codeOf(await d.ask({ method: "get", resource: "/feeds/1", headers: { "X-ApiKey": "not-a-key-at-all" }, token: "b" })), [401, "E_UNAUTHORIZED"], door)
        assert.equal((await d.ask({ method: "GET", resource: "/feeds/1", headers: { "x-apikey": master }, token: "c" })).status, 200, door)
        assert.equal((await d.ask({ method: "Get", resource: "/feeds/1", token: "d" })).status, 200, `${door}: remembered`)
        d.close()
    }
})

test("§5: token echo: strings, numbers as written, null as absent, other types 400 E_BAD_TOKEN with an empty token", async () => {
    for (const [door, d] of await signedIn()) {
        const echo = async (tokenJson: string, expected: string) => {
            d.send(`{"method":"get","resource":"/feeds/1","token":${tokenJson}}`)
            const a = await d.answer(expected)
            assert.equal(a.status, 200, `${door} ${tokenJson}`)
        }
        for (const [written, echoed] of [
            ["12345678901234567890", "12345678901234567890"],
            ["1e3", "1e3"],
            ["1.50", "1.50"],
            ["-0", "-0"],
            ["1e21", "1e21"],
            ['"é"', "é"],
            [JSON.stringify("b".repeat(64)), "b".repeat(64)],
            [JSON.stringify("😀".repeat(16)), "😀".repeat(16)],
        ]) {
            await echo(written, echoed)
        }
        d.send({ method: "get", resource: "/feeds/1", token: null })
        const none = await d.next((o) => o.status === 200 && o.resource === "/feeds/1")
        assert.equal("token" in none, false, door)
        for (const bad of ["{}", "[]", "true", JSON.stringify("a".repeat(65)), JSON.stringify("😀".repeat(17)), "1" + "0".repeat(64)]) {
            d.send(`{"method":"get","resource":"/feeds/1","token":${bad}}`)
            const a = await d.next((o) => o.status === 400)
            assert.deepEqual([a.token, a.body.code], ["", "E_BAD_TOKEN"], `${door} ${bad.slice(0, 20)}`)
        }
        d.close()
    }
})

test("§5: methods and resources: each refusal with its status and code", async () => {
    for (const [door, d] of await signedIn()) {
        const cases: [Record<string, unknown>, number, string | undefined][] = [
            [{ resource: "/feeds/1" }, 400, "E_NO_METHOD"],
            [{ method: "patch", resource: "/feeds/1" }, 405, "E_BAD_METHOD"],
            [{ method: 5, resource: "/feeds/1" }, 405, "E_BAD_METHOD"],
            [{ method: "post", resource: "/feeds/1" }, 405, "E_NOT_ALLOWED"],
            [{ method: "get" }, 400, "E_NO_RESOURCE"],
            [{ method: "get", resource: "/feeds/1.json" }, 200, undefined],
            [{ method: "get", resource: "/feeds/1/" }, 200, undefined],
            [{ method: "get", resource: "/feeds/1.json/" }, 200, undefined],
            [{ method: "get", resource: "/feeds/1.XML" }, 406, "E_BAD_FORMAT"],
            [{ method: "get", resource: "/feeds/1.csv" }, 406, "E_BAD_FORMAT"],
            [{ method: "get", resource: "/feeds/1.json.json" }, 400, "E_BAD_RESOURCE"],
            [{ method: "get", resource: "//feeds/1" }, 400, "E_BAD_RESOURCE"],
            [{ method: "get", resource: "/feeds//1" }, 400, "E_BAD_RESOURCE"],
            [{ method: "get", resource: "/feeds/2/../1" }, 400, "E_BAD_RESOURCE"],
            [{ method: "get", resource: "/feeds/%31" }, 400, "E_BAD_RESOURCE"],
            [{ method: "get", resource: "/feeds/%2e%2e/1" }, 400, "E_BAD_RESOURCE"],
            [{ method: "get", resource: "/feeds\\1" }, 400, "E_BAD_RESOURCE"],
            [{ method: "get", resource: "/feeds/1\u0000" }, 400, "E_BAD_RESOURCE"],
            [{ method: "get", resource: "/feeds/１" }, 400, "E_BAD_RESOURCE"],
            [{ method: "get", resource: "feeds/1" }, 400, "E_BAD_RESOURCE"],
            [{ method: "get", resource: "/feeds/" + "1".repeat(256) }, 400, "E_BAD_RESOURCE"],
            [{ method: "get", resource: "/feeds/1", params: [] }, 400, "E_BAD_PARAMS"],
            [{ method: "get", resource: "/feeds/1", params: { a: {} } }, 400, "E_BAD_PARAMS"],
            [{ method: "get", resource: "/feeds/1", headers: { "X-ApiKey": 5 } }, 400, "E_BAD_HEADERS"],
            [{ method: "get", resource: "/feeds/999999" }, 404, "E_NOT_FOUND"],
            [{ method: "put", resource: "/feeds/1", body: { datastreams: [{ id: "t", value: "1" }] } }, 422, "E_MISNAMED_VALUE"],
            [{ method: "put", resource: "/feeds/1/datastreams/t", body: { current_value: "a".repeat(33) } }, 422, "E_BAD_VALUE"],
            [{ method: "put", resource: "/feeds/1/datastreams/t", body: { current_value: "😀".repeat(17) } }, 422, "E_BAD_VALUE"],
            [{ method: "put", resource: "/feeds/1/datastreams/t", body: { current_value: "a\u0085" } }, 400, "E_BAD_CHARACTER"],
            [{ method: "put", resource: "/feeds/1/datastreams/t", body: { current_value: "a\ufffe" } }, 400, "E_BAD_CHARACTER"],
            [{ method: "put", resource: "/feeds/1", body: { title: "a\u001b[2J" } }, 400, "E_BAD_CHARACTER"],
            [{ method: "put", resource: "/feeds/1", body: { datastreams: [{ id: "x", datapoints: [{ at: 900_000_000_000, value: "1" }] }] } }, 422, "E_BAD_TIME"],
            [{ method: "put", resource: "/feeds/1", body: { datastreams: [{ id: "x", datapoints: [{ at: "2026-02-30T00:00:00Z", value: "1" }] }] } }, 422, "E_BAD_TIME"],
            [{ method: "get", resource: "/feeds/1/datastreams/none/datapoints" }, 404, "E_NOT_FOUND"],
            [{ method: "get", resource: "/feeds/1/datastreams/t/datapoints", params: { limit: 1001 } }, 422, "E_LIMIT"],
            [{ method: "get", resource: "/feeds/1/datastreams/t/datapoints", params: { limit: 0 } }, 422, "E_BAD_PARAM"],
            [{ method: "put", resource: "/feeds/1" }, 400, "E_BAD_BODY"],
            [{ method: "put", resource: "/feeds/1", body: [] }, 400, "E_BAD_BODY"],
            [{ method: "get", resource: "/feeds/1/datastreams/t/datapoints", params: { sort: "up" } }, 422, "E_BAD_PARAM"],
            [{ method: "get", resource: "/feeds", params: { page: 0 } }, 422, "E_BAD_PARAM"],
            [{ method: "delete", resource: "/feeds/1/datastreams/t/datapoints" }, 422, "E_BAD_PARAM"],
        ]
        await d.ask({ method: "put", resource: "/feeds/1/datastreams/t", body: { current_value: "1" }, token: "made" })
        let n = 0
        for (const [request, status, code] of cases) {
            const a = await d.ask({ ...request, token: `m${++n}` })
            assert.equal(a.status, status, `${door} ${JSON.stringify(request)}: ${JSON.stringify(a)}`)
            if (code) assert.equal(a.body.code, code, `${door} ${JSON.stringify(request)}`)
            if (status >= 400) assert.equal(typeof a.body.errors, "string")
        }
        d.close()
    }
})

test("§5: nesting: 8 levels pass, 9 are 400 E_TOO_DEEP; over HTTP the body may nest 7", async () => {
    const nest = (levels: number) => '{"a":'.repeat(levels) + "1" + "}".repeat(levels)
    for (const [door, d] of await signedIn()) {
        d.send(`{"method":"get","resource":"/feeds/1","body":${nest(7)},"token":"d8"}`)
        assert.equal((await d.answer("d8")).status, 200, door)
        d.send(`{"method":"get","resource":"/feeds/1","body":${nest(8)},"token":"d9"}`)
        assert.deepEqual(codeOf(await d.answer("d9")), [400, "E_TOO_DEEP"], door)
        d.close()
    }
    assert.equal((await rawHttp(s, `GET /v2/feeds/1 HTTP/1.1\r\nX-ApiKey: ${master}`, nest(7))).status, 200)
    const deep = await rawHttp(s, `PUT /v2/feeds/1 HTTP/1.1\r\nX-ApiKey: ${master}`, nest(8))
    assert.deepEqual([deep.status, deep.body.code], [400, "E_TOO_DEEP"])
})

test("§10: numbers are stored as the number read, printed again; strings as written", async () => {
    for (const [door, d] of await signedIn()) {
        for (const [written, stored] of [
            ["-0", "0"],
            ["21.50", "21.5"],
            ["1e3", "1000"],
            ["1e21", "1e+21"],
            ["12345678901234567890", "12345678901234567000"],
            ["true", "1"],
            ['"NaN"', "NaN"],
            ['"-0"', "-0"],
        ]) {
            d.send(`{"method":"put","resource":"/feeds/1/datastreams/n","body":{"current_value":${written}},"token":"w"}`)
            assert.equal((await d.answer("w")).status, 200, `${door} ${written}`)
            const got = await d.ask({ method: "get", resource: "/feeds/1/datastreams/n", token: "r" })
            assert.equal(got.body.current_value, stored, `${door} ${written}`)
        }
        d.send('{"method":"put","resource":"/feeds/1/datastreams/n","body":{"current_value":1e400},"token":"inf"}')
        assert.deepEqual(codeOf(await d.answer("inf")), [422, "E_BAD_VALUE"], door)
        d.close()
    }
})

test("§10: datastream ids: .json, .xml, .csv endings refused as a resource could not name them; .JSON is a name", async () => {
    for (const [door, d] of await signedIn()) {
        for (const id of ["x.json", "x.xml", "x.CSV", "x.Xml", ".", "..", "é", "a".repeat(65)]) {
            const a = await d.ask({ method: "put", resource: "/feeds/1", body: { datastreams: [{ id, current_value: "1" }] }, token: "i" })
            assert.deepEqual(codeOf(a), [422, "E_BAD_ID"], `${door} ${id}`)
        }
        // ".json" is removed from a resource in lower case alone, so an id ending in ".JSON" is named by its resource
        assert.equal((await d.ask({ method: "put", resource: "/feeds/1", body: { datastreams: [{ id: "up.JSON", current_value: "7" }] }, token: "J" })).status, 200)
        assert.equal((await d.ask({ method: "get", resource: "/feeds/1/datastreams/up.JSON", token: "g" })).body.current_value, "7", door)
        d.close()
    }
})

test("§5a: the short form: answered short, 200 without s, refusals with their code, not-an-object in the long form", async () => {
    for (const [door, d] of await signedIn()) {
        d.send({ r: "/feeds/1", b: { datastreams: [{ id: "s", current_value: "1" }] }, t: "a1" })
        assert.deepEqual(await d.answer("a1"), { t: "a1" }, door)
        d.send({ m: "get", r: "/feeds/1/datastreams/s", t: "g1" })
        const g = await d.answer("g1")
        assert.deepEqual([g.s, g.b.current_value, "resource" in g, "r" in g], [undefined, "1", false, false], door)
        d.send({ m: "get", r: "/feeds/999999", t: "a2" })
        assert.deepEqual(await d.answer("a2").then((a) => [a.s, a.b.code]), [404, "E_NOT_FOUND"], door)
        d.send({ m: "get", r: "feeds", t: "a3" })
        assert.deepEqual(await d.answer("a3").then((a) => [a.s, a.b.code]), [400, "E_BAD_RESOURCE"], door)
        d.send('{"m":"get","r":"/feeds/1","t":7}')
        assert.equal((await d.next((o) => o.t === "7")).b.id, 1, door)
        d.send("[1]")
        const notObject = await d.next((o) => o.status === 400)
        assert.equal(notObject.token, "", door)
        assert.ok(["E_BAD_JSON", "E_NOT_OBJECT"].includes(notObject.body.code), door)
        d.close()
    }
})

test("§8: subscribe needs a token; replays since and after; limits; timeouts; unsubscribe", async () => {
    for (const [door, d] of await signedIn()) {
        const feed = (await d.ask({ method: "post", resource: "/feeds", body: { title: "sub" }, token: "f" })).body.id as number
        const R = `/feeds/${feed}`
        await d.ask({ method: "put", resource: R, body: { datastreams: [{ id: "t", current_value: "1" }] }, token: "w1" })
        d.send({ method: "subscribe", resource: R })
        assert.deepEqual(codeOf(await d.next((o) => o.status === 400)), [400, "E_BAD_TOKEN"], door)
        assert.equal((await d.ask({ method: "subscribe", resource: R, params: { since: 0 }, token: "s1" })).status, 200)
        assert.equal((await d.answer("s1")).body.current_value, "1", `${door}: the replay`)
        const after = await d.ask({ method: "subscribe", resource: R, params: { after: "latest" }, token: "s2" })
        assert.equal(typeof after.body.seq, "number", door)
        for (const [params, code] of [
            [{ after: -1 }, "E_BAD_PARAM"],
            [{ after: 1.5 }, "E_BAD_PARAM"],
            [{ since: "yesterday" }, "E_BAD_PARAM"],
            [{ since: 0, limit: 0 }, "E_BAD_PARAM"],
            [{ since: 0, limit: 1001 }, "E_BAD_PARAM"],
            [{ timeout: 0 }, "E_BAD_PARAM"],
            [{ timeout: 86_400_001 }, "E_BAD_PARAM"],
        ] as const) {
            assert.deepEqual(codeOf(await d.ask({ method: "subscribe", resource: R, params, token: "bad" })), [422, code], `${door} ${JSON.stringify(params)}`)
        }
        assert.deepEqual(codeOf(await d.ask({ method: "subscribe", resource: "/feeds", token: "x" })), [405, "E_NOT_ALLOWED"], door)
        assert.deepEqual(codeOf(await d.ask({ method: "subscribe", resource: "/feeds/999999", token: "x" })), [404, "E_NOT_FOUND"], door)
        // a write is pushed to both, each under its own token
        await d.ask({ method: "put", resource: `${R}/datastreams/t`, body: { current_value: "2" }, token: "w2" })
        assert.equal((await d.answer("s1")).body.current_value, "2", door)
        const pushed = await d.answer("s2")
        assert.deepEqual([pushed.body.current_value, pushed.body.seq > after.body.seq], ["2", true], door)
        // 8 to one resource, spelled any way
        for (let i = 3; i <= 8; i++) assert.equal((await d.ask({ method: "subscribe", resource: R, token: `s${i}` })).status, 200)
        for (const spelling of [R, `${R}.json`, `${R}/`]) {
            assert.deepEqual(codeOf(await d.ask({ method: "subscribe", resource: spelling, token: "s9" })), [422, "E_TOO_MANY_SUBSCRIPTIONS"], `${door} ${spelling}`)
        }
        // a numeric token names the subscription it prints as
        d.send(`{"method":"unsubscribe","params":{"token":"s8"},"token":"u1"}`)
        assert.deepEqual((await d.answer("u1")).body, { removed: 1 }, door)
        d.send(`{"method":"subscribe","resource":"${R}","token":5}`)
        assert.equal((await d.answer("5")).status, 200, door)
        d.send(`{"method":"unsubscribe","params":{"token":5},"token":"u2"}`)
        assert.deepEqual((await d.answer("u2")).body, { removed: 1 }, door)
        assert.deepEqual(codeOf(await d.ask({ method: "unsubscribe", params: { token: "s8" }, token: "u3" })), [404, "E_NOT_FOUND"], door)
        const ends = await d.ask({ method: "subscribe", resource: `${R}/datastreams/t`, params: { timeout: 200 }, token: "st" })
        assert.equal(ends.status, 200)
        assert.deepEqual(codeOf(await d.answer("st")), [408, "E_SUBSCRIPTION_ENDED"], door)
        assert.deepEqual((await d.ask({ method: "unsubscribe", token: "u4" })).body, { removed: 7 }, door)
        assert.deepEqual((await d.ask({ method: "unsubscribe", token: "u5" })).body, { removed: 0 }, door)
        d.close()
    }
})

test("§3: an object over 16384 bytes: the 413 notice, then the close (WebSocket: 1009 with the code as its reason)", async () => {
    const big = JSON.stringify({ method: "get", resource: "/feeds/1", body: "a".repeat(17_000), token: "big" })
    for (const [door, d] of await Door.both(s)) {
        d.send(big)
        const notice = await d.next()
        assert.deepEqual([notice.notice, notice.status, notice.body.code, "token" in notice], [true, 413, "E_TOO_LARGE", false], door)
        await d.untilClosed()
        if (door === "ws") assert.deepEqual(d.closeFrame, { code: 1009, reason: "E_TOO_LARGE" })
    }
})

test("§3: WebSocket: a one-character message is a heartbeat; a binary message that is not UTF-8 is 400 E_BAD_UTF8", async () => {
    const ws = await Door.ws(s)
    await ws.next()
    ws.send("`")
    ws.send("5")
    ws.write(Buffer.from([0xc3, 0x28]))
    const a = await ws.next()
    assert.deepEqual([a.token, a.status, a.body.code], ["", 400, "E_BAD_UTF8"], "the first answer is the binary message's: the heartbeats got none")
    ws.close()
})

test("§3: a WebSocket handshake with a Sec-WebSocket-Version other than 13 is 400 E_BAD_WEBSOCKET (was: 101 for version 8)", async () => {
    const key = randomBytes(16).toString("base64")
    for (const version of ["8", "12", "14", "13, 8"]) {
        const r = await rawHttp(s, `GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: ${version}`)
        assert.deepEqual([r.status, r.body?.code], [400, "E_BAD_WEBSOCKET"], version)
    }
    const post = await rawHttp(s, `POST /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 8`)
    assert.deepEqual([post.status, post.body?.code], [405, "E_BAD_WEBSOCKET"])
    // no subprotocol is agreed to
    const ws = new WebSocket(`ws://127.0.0.1:${s.appPort}/ws`, ["mqtt"])
    const outcome = await new Promise<string>((resolve) => {
        ws.once("open", () => resolve(`open with ${ws.protocol}`))
        ws.once("error", (e) => resolve(e.message))
    })
    ws.terminate()
    assert.match(outcome, /no subprotocol/)
})

test("§3, §4: a WebSocket message fragmented for longer than the timeout ends the connection (408 E_IDLE_TIMEOUT, 1008)", async () => {
    // [P§4] on the WebSocket a whole message or a pong is proof of life, not the fragments of one that never ends
    const socket = net.connect(s.appPort, "127.0.0.1")
    let received = ""
    let closed = false
    socket.on("data", (d) => (received += d.toString("latin1")))
    socket.on("close", () => (closed = true))
    socket.on("error", () => {})
    await new Promise((r) => socket.once("connect", r))
    socket.write(`GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    const frame = (opcode: number, fin: boolean, payload: string) => {
        const mask = randomBytes(4)
        const p = Buffer.from(payload)
        for (let i = 0; i < p.length; i++) p[i] ^= mask[i % 4]
        return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | p.length]), mask, p])
    }
    socket.write(frame(1, true, JSON.stringify({ method: "get", resource: "/session", headers: { "X-ApiKey": master }, token: "in" })))
    socket.write(frame(1, false, "{"))
    const deadline = Date.now() + 30_000
    while (!closed && Date.now() < deadline) {
        socket.write(frame(0, false, " ")) // a continuation, never the last
        await new Promise((r) => setTimeout(r, 100))
    }
    socket.destroy()
    assert.ok(closed, "closed")
    assert.match(received, /"code":"E_IDLE_TIMEOUT"/)
})

test("§3, §1: over HTTP too, a client that half-closes after its request (printf … | nc -N) gets its answer, /jwt included", async () => {
    // was: Node ended the socket at the client's FIN (httpAllowHalfOpen off), so an answer that took an I/O turn
    // or more (POST /jwt minting its token) was never sent; /v2 answers were sent when they came soon enough
    const exchange = (request: string) =>
        new Promise<string>((resolve, reject) => {
            const socket = net.connect(s.appPort, "127.0.0.1")
            let text = ""
            socket.setEncoding("latin1")
            socket.on("data", (d: string) => (text += d))
            socket.on("error", reject)
            socket.on("close", () => resolve(text))
            socket.end(request) // the request, then FIN
        })
    const minted = await exchange(`POST /jwt HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`)
    assert.match(minted, /^HTTP\/1\.1 200 /)
    assert.match(minted, /"token":"/)
    const put = await exchange(`PUT /v2/feeds/1/datastreams/hc HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${master}\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n{"current_value":"1"}`)
    assert.match(put, /^HTTP\/1\.1 200 /)
})
