// A client that goes on sending once refused: requests over its connection's rate, bad lines, objects that are no
// request. The session answers those itself (no route, so no rate spent anything on them): each was answered at
// line rate, some 70,000 a second on one connection of `x\n` or `{}\n` lines, a core of the server for one client's
// bandwidth. Now they spend a budget of REFUSAL_BURSTS request bursts at the request rate; past it the connection
// gets the notice 429 E_TOO_MANY_REFUSALS and is closed, on both stream doors; over HTTP (per address, as its rate) the
// answer 429 E_TOO_MANY_REFUSALS closes the connection, and what was pipelined behind it is not taken. The clock stands still unless a test
// moves it, so no bucket refills behind a test's back.
import { test } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import { encodeRequest } from "../../../../src/protocol.ts"
import { MONITORING_BURST, RATE_BURST, RATE_PER_SECOND, REFUSAL_BURSTS } from "../../../../devs/server/limits.ts"
import { serverForThisFile, TlsClient, WsClient, type Line } from "../../harness/server-harness.ts"

let clockMs = 1_000_000
const server = await serverForThisFile({ ratePerSecond: RATE_PER_SECOND, rateBurst: RATE_BURST, elapsedMs: () => clockMs })
const key = server.credentials.deviceKey
const REFUSALS = RATE_BURST * REFUSAL_BURSTS

const answers = (lines: Line[]) => lines.filter((l) => l.kind === "response" && l.response!.notice !== true)
const noticeOf = (lines: Line[]) => lines.find((l) => l.kind === "response" && l.response!.notice === true)?.response

/** `n` requests for /session, one line each, tokens r0… */
const sessionReads = (n: number, from = 0) => Array.from({ length: n }, (_, i) => encodeRequest({ method: "get", resource: "/session", token: `r${from + i}` })).join("\n")

test("requests over the rate: REFUSAL_BURSTS bursts answered 429 E_RATE_LIMITED, then notice 429 E_TOO_MANY_REFUSALS and the close (was: every one answered, at line rate)", async () => {
    const c = await TlsClient.open(server, key) // one request: RATE_BURST - 1 left
    const sent = RATE_BURST - 1 + REFUSALS + 500
    c.sendRaw(sessionReads(sent))
    await c.q.untilClosed(20_000)
    const got = answers(c.q.lines)
    // reads are taken one at a time: those still waiting when the connection closes are not answered
    assert.ok(got.filter((l) => l.response!.status === 200).length <= RATE_BURST)
    const refused = got.filter((l) => l.response!.status === 429)
    assert.equal(refused.length, REFUSALS, `${sent} sent: the budget's refusals answered, no more`)
    assert.ok(refused.every((l) => l.response!.body.code === "E_RATE_LIMITED"))
    const notice = noticeOf(c.q.lines)!
    assert.deepEqual([notice.status, notice.body.code], [429, "E_TOO_MANY_REFUSALS"])
    assert.match(notice.body.errors, /wait retry_after_ms after each 429/)
    assert.ok(notice.body.retry_after_ms > 0)
})

test("bad lines and objects that are no request spend the same budget, before a key too", async () => {
    for (const [what, line] of [
        ["bad lines", "x"],
        ["empty objects (E_NO_METHOD)", "{}"],
        ["lone surrogates (E_BAD_UTF8)", '{"method":"get","resource":"/session","token":"\\ud800"}'],
    ] as const) {
        const c = await TlsClient.open(server) // no key: the auth deadline (5 s) does not pass, the clock stands still
        c.sendRaw(Array.from({ length: REFUSALS + 300 }, () => line).join("\n"))
        await c.q.untilClosed(20_000)
        assert.equal(answers(c.q.lines).filter((l) => l.response!.status === 400).length, REFUSALS, what)
        assert.equal(noticeOf(c.q.lines)?.body.code, "E_TOO_MANY_REFUSALS", what)
    }
})

test("the WebSocket door: the same budget, then the notice and close code 1013 (try again later)", async () => {
    const ws = await WsClient.open(server)
    await ws.welcome()
    let closeCode: number | undefined
    ws.ws.once("close", (code) => (closeCode = code))
    for (let i = 0; i < REFUSALS + 100; ++i) ws.sendRaw("{}")
    await ws.q.untilClosed(20_000)
    assert.equal(closeCode, 1013)
    assert.equal(answers(ws.q.lines).length, REFUSALS)
    assert.equal(noticeOf(ws.q.lines)?.body.code, "E_TOO_MANY_REFUSALS")
})

test("a client that waits as it is told is never closed: the budget refills at the request rate", async () => {
    const c = await TlsClient.open(server, key)
    let token = 0
    for (let round = 0; round < 3; ++round) {
        // a whole burst served, the whole refusal budget answered: the connection stays
        const n = RATE_BURST + REFUSALS - (round === 0 ? 1 : 0)
        c.sendRaw(sessionReads(n, token))
        const last = await c.response(`r${token + n - 1}`, 20_000)
        token += n
        assert.equal(last.response!.status, 429)
        assert.equal(c.q.closed, false)
        assert.equal(noticeOf(c.q.lines), undefined)
        // what the bigger budget needs to refill (the request burst's is within it)
        clockMs += (REFUSALS / RATE_PER_SECOND) * 1000
    }
    assert.equal((await c.request({ method: "get", resource: "/session" })).status, 200)
    c.close()
})

/** What `requests` (HTTP/1.1 request text) pipelined on one connection from `localAddress` are answered, in order, once the server closes it or `expected` answers came. */
async function pipelined(localAddress: string, requests: string, expected: number): Promise<{ status: number; code?: string; close: boolean }[]> {
    const socket = net.connect({ port: server.appPort, host: "127.0.0.1", localAddress })
    let raw = ""
    socket.setEncoding("latin1")
    socket.on("error", () => {})
    const answers = () => raw.split("HTTP/1.1 ").slice(1).map((a) => ({ status: Number(a.slice(0, 3)), code: /"code":"(\w+)"/.exec(a)?.[1], close: /\r\nconnection: close\r\n/i.test(a) }))
    await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${answers().length} answers, not closed`)), 20_000)
        const done = () => (clearTimeout(timer), resolve())
        socket.on("data", (d: string) => {
            raw += d
            // the last answer whole: its body ends the text (each is one JSON object or metrics text with a final newline)
            if (answers().length >= expected && /\}$|\n$/.test(raw)) done()
        })
        socket.once("close", done)
        socket.write(requests)
    })
    socket.destroy()
    return answers()
}

test("HTTP: GET /healthz and /metrics have a budget of their own per address (was: none; one connection had /metrics rendered ~24,000 times a second, no key needed)", async () => {
    const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`
    const got = await pipelined("127.0.0.2", get("/healthz").repeat(MONITORING_BURST - 1) + get("/metrics") + get("/metrics"), MONITORING_BURST + 1)
    assert.equal(got.length, MONITORING_BURST + 1)
    assert.ok(got.slice(0, MONITORING_BURST).every((a) => a.status === 200))
    assert.deepEqual(got[MONITORING_BURST], { status: 429, code: "E_RATE_LIMITED", close: false })
    // the REST budget is another: this address still has its burst there
    const rest = await pipelined("127.0.0.2", `GET /v2/session HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${key}\r\n\r\n`, 1)
    assert.equal(rest[0].status, 200)
})

test("HTTP: an address past its refusals gets 429 E_TOO_MANY_REFUSALS with Connection: close, and what it pipelined behind is not taken (was: every request answered 429, ~33,000 a second)", async () => {
    const sent = RATE_BURST + REFUSALS + 300
    // Infinity: until the server closes the connection
    const answers = await pipelined("127.0.0.1", `GET /v2/session HTTP/1.1\r\nHost: x\r\nX-ApiKey: ${key}\r\n\r\n`.repeat(sent), Infinity)
    assert.equal(answers.filter((a) => a.status === 200).length, RATE_BURST)
    assert.equal(answers.filter((a) => a.code === "E_RATE_LIMITED").length, REFUSALS)
    assert.deepEqual(answers.slice(RATE_BURST + REFUSALS), [{ status: 429, code: "E_TOO_MANY_REFUSALS", close: true }], `${sent} pipelined: nothing answered after the close`)
})
