// The client's pure parts: its backoff config, addresses, and the CLI's argument-to-request
// translations. No sockets, no sleeps.
import { test } from "node:test"
import assert from "node:assert/strict"
import tls from "node:tls"
import { backoffDelayMs, CLIENT_BACKOFF, resubscribeAfterMs, retryAfterRefusalMs } from "../../../src/backoff.ts"
import { parseAddress } from "../../../devs/client/address.ts"
import { ClientError, connectError } from "../../../devs/client/errors.ts"
import { isFatal } from "../../../devs/client/subscriber.ts"
import { StampOverlap } from "../../../devs/client/stamp-overlap.ts"
import { newestAt } from "../../../src/subscription-cursor.ts"
import { putBody, sendRetrying } from "../../../devs/client/commands/put.ts"
import { datapointsResource } from "../../../devs/client/commands/history.ts"
import { pushLines } from "../../../devs/client/commands/sub.ts"
import { csv, printable, table } from "../../../devs/client/commands/format.ts"
import { LineSplitter, secureContextTrusting } from "../../../devs/client/line-channel.ts"

// the keep-alive decision is shared with the firmware and the server: test/host/protocol/keepalive.test.ts

test("CLIENT_BACKOFF: full jitter under a doubling ceiling from 250 ms, capped at 30 s; retry_after_ms is a floor", () => {
    const ceilings: number[] = []
    for (let attempt = 0; attempt < 12; ++attempt) {
        assert.equal(backoffDelayMs(CLIENT_BACKOFF, attempt, 0, 0), 0)
        ceilings.push(backoffDelayMs(CLIENT_BACKOFF, attempt, 0.999999, 0))
    }
    assert.deepEqual(ceilings.slice(0, 4), [249, 499, 999, 1999])
    assert.equal(ceilings[11], CLIENT_BACKOFF.capMs - 1)
    assert.equal(backoffDelayMs(CLIENT_BACKOFF, 0, 0.4, 2000), 2000)
    assert.equal(backoffDelayMs(CLIENT_BACKOFF, 5, 0.5, 2000), 4000)
    assert.equal(backoffDelayMs(CLIENT_BACKOFF, 20, 0.5, 0), 15000)
})

test("TLS: one secure context per CA, reused by every connection (building one parses ~140 system roots: 15-50 ms of CPU per dial)", () => {
    const [pem, other] = tls.rootCertificates as [string, string]
    const a = secureContextTrusting(Buffer.from(pem))
    assert.equal(secureContextTrusting(Buffer.from(pem)), a, "the same CA in another Buffer: the same context")
    assert.equal(secureContextTrusting(pem), a, "the same CA as a string")
    assert.notEqual(secureContextTrusting(other), a, "another CA: another context")
})

test("parseAddress accepts the forms people paste", () => {
    assert.deepEqual(parseAddress("localhost"), { transport: "tls", host: "localhost", port: 7443, url: "tls://localhost:7443" })
    assert.deepEqual(parseAddress("tls://10.0.0.5:9000"), { transport: "tls", host: "10.0.0.5", port: 9000, url: "tls://10.0.0.5:9000" })
    assert.equal(parseAddress("ws://127.0.0.1:7080/ws").url, "ws://127.0.0.1:7080/ws")
    assert.equal(parseAddress("http://127.0.0.1:7080").url, "ws://127.0.0.1:7080/ws")
    assert.equal(parseAddress("http://127.0.0.1:7080").httpBase, "http://127.0.0.1:7080")
    assert.equal(parseAddress("https://feeds.example.org").url, "wss://feeds.example.org:443/ws")
    assert.equal(parseAddress("ws://h").port, 7080)
    for (const bad of ["", "ftp://x", "tls://"]) assert.throws(() => parseAddress(bad), (e: ClientError) => e.code === "E_USAGE")
})

test("socket errors map to codes with advice", () => {
    const untrusted = connectError(Object.assign(new Error("self-signed"), { code: "SELF_SIGNED_CERT_IN_CHAIN" }), "tls://h:1")
    assert.equal(untrusted.code, "E_UNTRUSTED_CERT")
    assert.match(untrusted.message, /--ca/)
    assert.equal(connectError(Object.assign(new Error("x"), { code: "ECONNREFUSED" }), "tls://h:1").code, "E_UNREACHABLE")
    assert.equal(isFatal(untrusted), true)
    assert.equal(isFatal(new ClientError("E_UNREACHABLE", "x")), false)
    assert.equal(isFatal(new ClientError("E_STATUS", "x", { status: 429 })), false)
    assert.equal(isFatal(new ClientError("E_STATUS", "x", { status: 404 })), true)
})

test("newestAt follows the newest point of a datastream or feed push", () => {
    assert.equal(newestAt({ id: "t", at: "2026-11-22T05:00:01.000Z" }, "2026-11-22T05:00:00.000Z"), "2026-11-22T05:00:01.000Z")
    assert.equal(newestAt({ id: "t", at: "2026-11-22T04:00:00.000Z" }, "2026-11-22T05:00:00.000Z"), "2026-11-22T05:00:00.000Z")
    assert.equal(newestAt({ datastreams: [{ at: "2026-01-01T00:00:00.000Z" }, { at: "2026-02-01T00:00:00.000Z" }] }), "2026-02-01T00:00:00.000Z")
    assert.equal(newestAt({ id: "t", deleted: true }, undefined), undefined)
})

test("put: id=value pairs become a feed update; one value a datastream update; mistakes are usage errors", () => {
    assert.deepEqual(putBody("/feeds/1", ["temp=21.5", "hum=40"], undefined), {
        version: "1.0.0",
        datastreams: [
            { id: "temp", current_value: "21.5" },
            { id: "hum", current_value: "40" },
        ],
    })
    assert.deepEqual(putBody("/feeds/1/datastreams/relay", ["1"], undefined), { current_value: "1" })
    assert.deepEqual(putBody("/feeds/1", [], '{"datastreams":[]}'), { datastreams: [] })
    for (const [r, w, b] of [
        ["/feeds/1", [], undefined],
        ["/feeds/1", ["temp"], undefined],
        ["/feeds/1", ["bad id=1"], undefined],
        ["/feeds/1", ["t=" + "x".repeat(33)], undefined],
        ["/feeds/1", [], "{nope"],
        ["/keys", ["a=1"], undefined],
    ] as const) {
        assert.throws(() => putBody(r, [...w], b), (e: ClientError) => e.code === "E_USAGE", `${r} ${w} ${b}`)
    }
})

test("put: a 429 or 503 answer is sent again after retry_after_ms and a random spread (a floor under the backoff), not taken as a refusal; other errors are final", async () => {
    const busy = { token: "c1", status: 429, resource: "/feeds/1", body: { title: "Too Many Requests", errors: "feed 1 owes …; nothing was stored", code: "E_FANOUT_BUSY", retry_after_ms: 700 } }
    const answers = [busy, { ...busy, status: 503, body: { ...busy.body, code: "E_STORE_FAILED", retry_after_ms: 0 } }, { token: "c3", status: 200, resource: "/feeds/1" }]
    const waits: number[] = []
    let sent = 0
    const body = await sendRetrying(async () => answers[sent++], "/feeds/1", { random: () => 0.5, sleep: async (ms) => void waits.push(ms) })
    assert.equal(sent, 3)
    assert.equal(body, undefined)
    assert.deepEqual(waits, [1200, 250]) // the hint and half of the 1 s spread; then the backoff of the second attempt (half of 500)
    // a server that stays busy: the last answer is the error, after PUT_ATTEMPTS sends
    sent = 0
    await assert.rejects(
        sendRetrying(async () => (sent++, busy), "/feeds/1", { attempts: 3, random: () => 0, sleep: async () => {} }),
        (e: any) => e instanceof ClientError && e.status === 429 && e.serverCode === "E_FANOUT_BUSY" && e.retryAfterMs === 700,
    )
    assert.equal(sent, 3)
    // a refusal that another attempt cannot change is not sent again
    sent = 0
    const bad = { token: "c1", status: 422, resource: "/feeds/1", body: { errors: "bad value", code: "E_BAD_VALUE" } }
    await assert.rejects(sendRetrying(async () => (sent++, bad), "/feeds/1", { sleep: async () => {} }), (e: any) => e.status === 422)
    assert.equal(sent, 1)
})

test("put: a write answered 503 E_OUTCOME_UNKNOWN or E_PARTLY_WRITTEN is not sent again (its points, without `at`, were stored twice); 503 E_STORE_FAILED is", async () => {
    for (const code of ["E_OUTCOME_UNKNOWN", "E_PARTLY_WRITTEN"]) {
        let sent = 0
        const maybe = { token: "c1", status: 503, resource: "/feeds/1", body: { errors: "it may be stored", code, retry_after_ms: 100 } }
        const ok = { token: "c1", status: 200, resource: "/feeds/1" }
        await assert.rejects(
            sendRetrying(async () => (sent++ ? ok : maybe), "/feeds/1", { random: () => 0, sleep: async () => {} }),
            (e: any) => e instanceof ClientError && e.status === 503 && e.serverCode === code && /it may be stored/.test(e.message),
        )
        assert.equal(sent, 1, code)
    }
    let sent = 0
    const failed = { token: "c1", status: 503, resource: "/feeds/1", body: { errors: "nothing stored", code: "E_STORE_FAILED", retry_after_ms: 100 } }
    await sendRetrying(async () => (sent++ ? { token: "c1", status: 200, resource: "/feeds/1" } : failed), "/feeds/1", { random: () => 0, sleep: async () => {} })
    assert.equal(sent, 2)
})

test("history: the datastream argument in its three forms", () => {
    assert.equal(datapointsResource("temp", "3"), "/feeds/3/datastreams/temp/datapoints")
    assert.equal(datapointsResource("1/temp", undefined), "/feeds/1/datastreams/temp/datapoints")
    assert.equal(datapointsResource("/feeds/2/datastreams/hum", undefined), "/feeds/2/datastreams/hum/datapoints")
    assert.throws(() => datapointsResource("temp", undefined), (e: ClientError) => e.code === "E_USAGE" && /--feed/.test(e.message))
    assert.throws(() => datapointsResource("x/temp", undefined), (e: ClientError) => e.code === "E_USAGE")
})

test("sub prints one line per datapoint", () => {
    assert.deepEqual(pushLines({ status: 200, resource: "/feeds/1/datastreams/t", body: { id: "t", current_value: "2", at: "A" } }), ["A  /feeds/1/datastreams/t  2"])
    assert.deepEqual(pushLines({ status: 200, resource: "/feeds/1", body: { datastreams: [{ id: "a", current_value: "1", at: "A" }] } }), ["A  /feeds/1/datastreams/a  1"])
    assert.deepEqual(pushLines({ status: 200, resource: "/feeds/1/datastreams/t", body: { id: "t", deleted: true } }), ["/feeds/1/datastreams/t  deleted"])
})

test("what a device wrote reaches the terminal as visible escapes, never as control characters (was: ESC, BEL and CR printed raw)", () => {
    const hostile = "\u001b]0;owned\u0007\u001b[2J\rok\u202e"
    const shown = "\\u001b]0;owned\\u0007\\u001b[2J\\u000dok\\u202e"
    assert.deepEqual(pushLines({ status: 200, resource: "/feeds/1/datastreams/t", body: { id: "t", current_value: hostile, at: "A" } }), [`A  /feeds/1/datastreams/t  ${shown}`])
    assert.deepEqual(pushLines({ status: 200, resource: "/feeds/1", body: { datastreams: [{ id: "a", current_value: hostile, at: "A" }] } }), [`A  /feeds/1/datastreams/a  ${shown}`])
    assert.equal(table(["name", "firmware"], [["d1", hostile], ["d2", "0.1.0"]]), `name  firmware\nd1    ${shown}\nd2    0.1.0\n`)
    assert.equal(table(["value", "at"], [[hostile, "A"]]).split("\n")[1], `${shown}  A`) // widths count what is shown
    assert.equal(printable("21.5 °C, ok"), "21.5 °C, ok")
})

test("table and csv", () => {
    assert.equal(table(["at", "value"], [["2026", "1"], ["x", "22"]]), "at    value\n2026  1\nx     22\n")
    assert.equal(csv(["at", "value"], [["a,b", 'say "hi"']]), 'at,value\n"a,b","say ""hi"""\n')
})

test("LineSplitter joins split chunks and refuses an endless line", () => {
    const s = new LineSplitter(10)
    assert.deepEqual(s.push('{"a"'), [])
    assert.deepEqual(s.push(':1}\n\n{"b":2}\r\n'), ['{"a":1}', "", '{"b":2}'])
    assert.throws(() => s.push("x".repeat(11)))
})

test("StampOverlap: resumes 1 ms before the last `at` handled, drops only what was handled at it [P§8]", () => {
    const o = new StampOverlap()
    const T = "2026-11-22T05:00:01.000Z"
    assert.deepEqual(o.resume({ since: T, limit: 16 }, false), { since: T, limit: 16 }, "nothing handled: the cursor's since (a user's --since is exclusive)")
    assert.equal(o.fresh({ id: "a", current_value: "1", at: "2026-11-22T05:00:00.000Z" }), true)
    assert.equal(o.fresh({ id: "a", current_value: "2", at: T }), true)
    assert.deepEqual(o.resume({ since: T, limit: 16 }, false), { since: "2026-11-22T05:00:00.999Z", limit: 16 })
    assert.deepEqual(o.resume({ since: T }, true), { since: T }, "following a cut replay: next_since itself")
    assert.equal(o.fresh({ id: "a", current_value: "2", at: T }), false, "handled at the last `at`: the overlap")
    assert.equal(o.fresh({ id: "b", current_value: "2", at: T }), true, "the rest of that write")
    assert.equal(o.fresh({ id: "a", current_value: "3", at: T }), true, "written again with another value")
    assert.equal(o.fresh({ id: "a", current_value: "1", at: "2026-11-22T05:00:00.000Z" }), true, "older: not remembered, not dropped")
    assert.equal(o.fresh({ id: 1, deleted: true }), true, "no `at`: always handed on")
})

test("resubscribeAfterMs: 408 at once, 429/5xx after retry_after_ms (else 1 s) and up to 1 s more, on the same connection; any other refusal not on it", () => {
    assert.equal(resubscribeAfterMs(408, 0, 0.5), 0)
    assert.equal(resubscribeAfterMs(429, 2500, 0), 2500)
    assert.equal(resubscribeAfterMs(429, 2500, 0.5), 3000)
    assert.equal(resubscribeAfterMs(429, 2, 0.999), 1001) // a limiter's next token in 2 ms: a fleet spread over a second
    assert.equal(resubscribeAfterMs(429, 0, 0), 1000)
    assert.equal(resubscribeAfterMs(503, 0, 0.25), 1250)
    assert.equal(resubscribeAfterMs(500, 700, 0), 700)
    for (const status of [400, 401, 403, 404, 409, 422]) assert.equal(resubscribeAfterMs(status, 2500, 0.5), -1, String(status))
})

test("retryAfterRefusalMs: a write refused 429/5xx waits retry_after_ms (else 1 s) and up to 1 s more at random, like a refused subscribe", () => {
    assert.equal(retryAfterRefusalMs(800, 0), 800)
    assert.equal(retryAfterRefusalMs(800, 0.5), 1300)
    assert.equal(retryAfterRefusalMs(0, 0.999), 1999)
    // 500 devices refused at one instant with one hint come back over a second, not at one ms
    const draws = Array.from({ length: 500 }, (_, i) => retryAfterRefusalMs(5, i / 500))
    assert.equal(Math.min(...draws), 5)
    assert.equal(Math.max(...draws), 1003)
    assert.ok(new Set(draws).size >= 400)
    for (const [status, hint, r] of [[429, 2500, 0.3], [503, 0, 0.7], [500, 700, 0.1]] as const) assert.equal(resubscribeAfterMs(status, hint, r), retryAfterRefusalMs(hint, r))
})
