// A server that misbehaves, case by case (the link over a recording transport, the clock moved by hand): it
// closes mid-line, sends wrong types in a valid envelope, goes silent after the welcome, answers tokens the
// device never sent, pushes for a feed it never subscribed, sends notices with absurd retry hints, drips
// one byte at a time, hands out seqs no server gives. For each: no crash, nothing queued lost (the batch
// in flight is resent with the same `at`), the next connection after the backoff, nothing kept across
// connections. Already covered elsewhere: garbage and over-long lines (subs.test.ts), a welcome's absurd
// keep-alive and time (link.test.ts), reads that drip or flood (socket.test.ts), the same against a real
// TLS server (test/e2e/firmware-hostile.test.ts).
import { describe, expect, test } from "@devicescript/test"
import { ackLast, advance, bringUp, Harness, makeLink, rx, SERVER_TIME_MS, welcomeLine } from "./netfakes"

const AT1 = "2026-11-22T05:00:01.000Z"

/** Two samples queued and the batch carrying them in flight, unanswered; returns its line (parsed). */
function batchInFlight(h: Harness): any {
    h.deferAtOnce = false // reported in one run: one batch
    h.link.report("temp", 21)
    h.link.report("humidity", 40)
    h.deferAtOnce = true
    const run = h.deferred
    h.deferred = []
    for (const fn of run) fn()
    const put = h.t.lastRequest()
    expect(put.method).toBe("put")
    expect(h.link.stats().outbox).toBe(2)
    return put
}

/** The `at`s of a batch's samples of temp and humidity, in order (a `_state` sample joins them when the link was degraded). */
function ats(put: any): string {
    const out: string[] = []
    for (const d of put.body.datastreams) if (d.id === "temp" || d.id === "humidity") for (const p of d.datapoints) out.push(d.id + "@" + p.at)
    return out.join(",")
}

/** The two samples are still queued (with, after silence, the `_state` sample). */
function expectKept(h: Harness) {
    expect(h.link.stats().outbox >= 2).toBe(true)
}

/** Subscribes to led; returns each push's current_value, in order. */
function followLed(h: Harness): string[] {
    const got: string[] = []
    h.link.subscribe("datastreams/led", (body) => {
        got.push(body.current_value)
    })
    return got
}

/** A link with the test's clock; its diagnostics left out (they would join the outbox as the clock moves). */
function linkWith(rand: number, overrides?: any): Harness {
    const o = overrides || {}
    o.diagMs = 3600000
    return makeLink(o, rand)
}

/** What a connection leaves behind once it is down: no request waiting for an answer, no batch in flight. */
function expectNothingCarried(h: Harness) {
    const l = h.link as any
    expect(l.requests.size()).toBe(0)
    expect(l.batchInFlight).toBe(0)
}

/** The connection opens: nothing of the last one's partial line is left. */
function open(h: Harness) {
    h.link.onOpen()
    expect((h.link as any).framer.parts.length).toBe(0)
}

/** Down now, not connecting again at once: the next open waits out a backoff delay, then goes out. */
async function expectBackoffThenReconnect(h: Harness, maxWaitMs: number) {
    expect(h.link.state).toBe("down")
    expectNothingCarried(h)
    const opens = h.t.opens
    h.link.tick()
    expect(h.t.opens).toBe(opens)
    await advance(h, maxWaitMs)
    expect(h.t.opens).toBe(opens + 1)
    expect(h.link.state).toBe("connecting")
}

/** The reconnection's welcome; the batch that was in flight goes out again with the same `at`s, and its ack empties the outbox. */
function expectResentAndStored(h: Harness, first: any) {
    open(h)
    rx(h, welcomeLine(SERVER_TIME_MS + 5000))
    expect(h.link.state).toBe("up")
    const again = h.t.lastRequest()
    expect(again.method).toBe("put")
    expect(ats(again)).toBe(ats(first))
    ackLast(h, 200)
    expect(h.link.stats().outbox).toBe(0)
}

/** The server closes with a notice; the next connection is up after the backoff: returns its last request (a subscribe). */
async function reconnected(h: Harness, serverTimeMs: number): Promise<any> {
    rx(h, '{"notice":true,"status":408}\n')
    await advance(h, 1000)
    open(h)
    rx(h, welcomeLine(serverTimeMs))
    return h.t.lastRequest()
}

/** A link up, following led: its harness, the values handled, the subscribe request (unanswered). */
function upFollowingLed(): { h: Harness; got: string[]; sub: any } {
    const h = linkWith(0.5)
    const got = followLed(h)
    bringUp(h)
    return { h: h, got: got, sub: h.t.lastRequest() }
}

/** The subscribe's answer in the short form, carrying the cursor `seq` (JSON text: a test sends ones no server gives). */
function seqAck(h: Harness, token: string, seqJson: string) {
    rx(h, '{"t":"' + token + '","s":200,"b":{"seq":' + seqJson + "}}\n")
}

function seqPushText(token: string, at: string, value: string, seqJson: string): string {
    return '{"token":"' + token + '","status":200,"resource":"/feeds/7/datastreams/led","body":{"id":"led","current_value":"' + value + '","at":"' + at + '","seq":' + seqJson + "}}\n"
}

/**
 * [P§8] After a history that went back: the subscription under `token` (live, its pushes would come twice) is ended
 * first, then asked for at once under another token by `since` up to the cursor `after`; returns that subscribe.
 */
function endedAndAskedAgain(h: Harness, token: string, since: string, after: number): any {
    const sent = h.t.requests()
    const ended = sent[sent.length - 2]
    expect(ended.method).toBe("unsubscribe")
    expect(ended.params.token).toBe(token)
    const missed = h.t.lastRequest()
    expect(missed.method).toBe("subscribe")
    expect(missed.token === token).toBe(false)
    expect(missed.params.since).toBe(since)
    expect(missed.params.after).toBe(after)
    return missed
}

/** The last request: a subscribe by `after` alone, from `after` (the rest of a bounded replay handled); returned. */
function askedByAfter(h: Harness, after: number): any {
    const live = h.t.lastRequest()
    expect(live.params.after).toBe(after)
    expect(live.params.since).toBe(undefined)
    return live
}

describe("a server that misbehaves", () => {
    test("closes in the middle of a line: the rest is not glued to the next connection's welcome; the batch is resent", async () => {
        const h = linkWith(0.5)
        bringUp(h)
        const put = batchInFlight(h)
        rx(h, '{"t":"' + put.token + '","s":20') // the ack, cut
        h.link.onClosed("E_CLOSED_BY_SERVER")
        expectKept(h)
        await expectBackoffThenReconnect(h, 1000)
        expectResentAndStored(h, put)
        expect(h.link.stats().badLines).toBe(0)
    })

    test("a valid envelope with wrong types (status as text, a token as a number) is a bad line or a stranger, never an ack; the batch is resent after the ack deadline", async () => {
        const h = linkWith(0.5)
        bringUp(h)
        const put = batchInFlight(h)
        rx(h, '{"t":"' + put.token + '","s":"200"}\n')
        rx(h, '{"token":"' + put.token + '","status":"200"}\n')
        rx(h, '{"token":' + put.token.charCodeAt(0) + ',"status":200}\n')
        rx(h, '{"token":null,"status":200,"notice":"yes","body":[1e400,-1e400]}\n')
        const s = h.link.stats()
        expect(s.badLines).toBe(2)
        expect(s.unknownTokens).toBe(2)
        expect(s.outbox).toBe(2)
        expect(h.link.state).toBe("up")
        for (let i = 0; i < 31; ++i) {
            rx(h, "\n") // audible, so the cause is the missing ack, not silence
            await advance(h, 100)
        }
        expect(h.link.stats().lastDisconnect).toBe("E_ACK_TIMEOUT")
        await expectBackoffThenReconnect(h, 1000)
        expectResentAndStored(h, put)
    })

    test("a status no server sends (negative, 1e400, 2e9) on a batch: kept and resent, never taken as stored", async () => {
        const h = linkWith(0)
        bringUp(h)
        const put = batchInFlight(h)
        const statuses = ["-1", "1e400", "2000000000", "-1e400"]
        let last = put
        for (let i = 0; i < statuses.length; ++i) {
            rx(h, '{"t":"' + last.token + '","s":' + statuses[i] + "}\n")
            expectKept(h)
            await advance(h, 500) // the refusal's wait (no hint: 1 s, no spread with random 0), the server audible
            rx(h, "\n")
            await advance(h, 600)
            const again = h.t.lastRequest()
            expect(again.token === last.token).toBe(false)
            expect(ats(again)).toBe(ats(put))
            last = again
        }
        expect(h.link.stats().rejected).toBe(0)
        ackLast(h, 200)
        expect(h.link.stats().outbox).toBe(0)
    })

    test("silent after the welcome: declared dead after `timeout`, the batch kept, the next connection after the backoff", async () => {
        const h = linkWith(0.5)
        bringUp(h)
        const put = batchInFlight(h)
        await advance(h, 3000)
        expect(h.link.stats().lastDisconnect).toBe("E_SILENT")
        expectKept(h)
        await expectBackoffThenReconnect(h, 1000)
        expectResentAndStored(h, put)
    })

    test("answers a token never sent, and pushes for a feed never subscribed: counted, not handled, the batch still waits for its own ack", async () => {
        const h = linkWith(0.5)
        const got = followLed(h)
        bringUp(h)
        ackLast(h, 200)
        const put = batchInFlight(h)
        rx(h, '{"t":"zz9","s":200}\n')
        rx(h, '{"token":"zz8","status":200,"resource":"/feeds/99/datastreams/led","body":{"id":"led","current_value":"on","at":"' + AT1 + '"}}\n')
        rx(h, '{"token":"zz8","status":404,"resource":"/feeds/99/datastreams/led","body":{"code":"E_FEED_DELETED"}}\n')
        expect(got.length).toBe(0)
        expect(h.link.stats().unknownTokens).toBe(3)
        expect(h.link.stats().rejected).toBe(0) // the device's own subscription was not ended
        expectKept(h)
        rx(h, '{"t":"' + put.token + '","s":200}\n')
        expect(h.link.stats().outbox).toBe(0)
    })

    test("503 notices with absurd retry hints: 0 and negative leave the backoff, 1e12 ms waits 10 min, not 31 years; the batch is kept", async () => {
        const h = linkWith(0.5)
        bringUp(h)
        const put = batchInFlight(h)
        const hints = ["0", "-5000", "-1e400"]
        for (let i = 0; i < hints.length; ++i) {
            rx(h, '{"notice":true,"status":503,"body":{"retry_after_ms":' + hints[i] + "}}\n")
            expect(h.link.stats().lastDisconnect).toBe("E_NOTICE_503")
            expectKept(h)
            await expectBackoffThenReconnect(h, 500 * Math.pow(2, i + 1))
            open(h)
            rx(h, welcomeLine(SERVER_TIME_MS))
            expect(ats(h.t.lastRequest())).toBe(ats(put))
        }
        rx(h, '{"notice":true,"status":503,"body":{"retry_after_ms":1000000000000}}\n')
        h.clock.ms += 599000
        h.link.tick()
        expect(h.link.state).toBe("down")
        h.clock.ms += 1100
        h.link.tick()
        expect(h.link.state).toBe("connecting")
        expectResentAndStored(h, put)
    })

    test("drips one byte at a time: welcome, pushes and acks all taken, nothing held in more than a few pieces", async () => {
        const h = linkWith(0.5)
        const got = followLed(h)
        h.link.start()
        h.link.tick()
        h.link.onOpen()
        const drip = async (text: string) => {
            const b = Buffer.from(text)
            for (let i = 0; i < b.length; ++i) {
                h.link.onData(b.slice(i, i + 1))
                expect((h.link as any).framer.parts.length <= 9).toBe(true)
            }
            await advance(h, 100)
        }
        await drip(welcomeLine(SERVER_TIME_MS))
        expect(h.link.state).toBe("up")
        const sub = h.t.lastRequest()
        await drip('{"t":"' + sub.token + '","s":200}\n')
        await drip('{"token":"' + sub.token + '","status":200,"resource":"/feeds/7/datastreams/led","body":{"id":"led","current_value":"on","at":"' + AT1 + '"}}\n')
        expect(got.join(",")).toBe("on")
        const put = batchInFlight(h)
        await drip('{"t":"' + put.token + '","s":200}\n')
        expect(h.link.stats().outbox).toBe(0)
        expect(h.link.stats().badLines).toBe(0)
        expect(h.link.state).toBe("up")
    })

    test("[P§8] seqs no server gives (negative, fractional, 1e400, text) are not the cursor: pushes are handled by their at, the device resumes after the last real seq", async () => {
        const { h, got, sub } = upFollowingLed()
        seqAck(h, sub.token, "-5")
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:01.000Z", "a", "1e400"))
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:02.000Z", "b", "-1"))
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:03.000Z", "c", "7.5"))
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:04.000Z", "d", '"8"'))
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:05.000Z", "e", "9"))
        expect(got.join(",")).toBe("a,b,c,d,e")
        const again = await reconnected(h, SERVER_TIME_MS)
        expect(again.params.after).toBe(9) // not -5, null (Infinity) or -1: the server refuses those (422), on every connection
        seqAck(h, again.token, "1e400")
        rx(h, seqPushText(again.token, "2026-11-22T05:00:06.000Z", "f", "10"))
        expect(got.join(",")).toBe("a,b,c,d,e,f")
        expect(h.link.stats().badLines).toBe(0)
    })

    test("[P§8] the server's seqs go back (another store, a restored backup, a reset database): what it got before answering is asked for by since up to its head, once; then its seqs are followed; the operator told", async () => {
        const { h, got, sub } = upFollowingLed()
        seqAck(h, sub.token, "100")
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:01.000Z", "a", "101"))
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:02.000Z", "b", "102"))
        const again = await reconnected(h, SERVER_TIME_MS + 5000) // the server that answers next keeps another history
        expect(again.params.after).toBe(102)
        seqAck(h, again.token, "3") // an `after` past its head is answered with the head; seq 3, a command, came after the reset
        const missed = endedAndAskedAgain(h, again.token, "2026-11-22T05:00:02.000Z", 3)
        rx(h, seqPushText(again.token, "2026-11-22T05:00:07.000Z", "c", "4")) // on the wire before the unsubscribe: not this cursor's any more
        rx(h, '{"t":"' + again.token + '","b":{"removed":1}}\n')
        rx(h, '{"t":"' + missed.token + '","s":200,"b":{"seq":3,"replayed":1,"truncated":true,"next_after":3}}\n')
        rx(h, seqPushText(missed.token, "2026-11-22T05:00:06.000Z", "x", "3"))
        const live = askedByAfter(h, 3)
        seqAck(h, live.token, "5")
        rx(h, seqPushText(live.token, "2026-11-22T05:00:07.000Z", "c", "4"))
        rx(h, seqPushText(live.token, "2026-11-22T05:00:08.000Z", "d", "5"))
        expect(h.link.stats().unknownTokens).toBe(2) // c under the old token, and the unsubscribe's answer
        expect(got.join(",")).toBe("a,b,x,c,d") // without the replay by since: x never, c and d dropped as handled (not above 102) until a reboot
        let told = 0
        for (const m of h.logs) if (m.indexOf("seq 3 is below 102, the last handled") >= 0) told++
        expect(told).toBe(1)
        const third = await reconnected(h, SERVER_TIME_MS + 9000)
        expect(third.params.after).toBe(5)
        seqAck(h, third.token, "5")
        rx(h, seqPushText(third.token, "2026-11-22T05:00:08.000Z", "d", "5")) // still on the wire from before: handled once
        rx(h, seqPushText(third.token, "2026-11-22T05:00:09.000Z", "e", "6"))
        expect(got.join(",")).toBe("a,b,x,c,d,e")
    })

    test("[P§10] \\u escapes: a lone surrogate (a 400 E_BAD_UTF8 echoing one as its token, a pushed value) is a bad line: no panic, no token of the device matched, no reconnect, no cursor moved; a pair, \\u0000 and \\u00e9 are read", async () => {
        const { h, got, sub } = upFollowingLed()
        seqAck(h, sub.token, "10")
        const put = batchInFlight(h)
        // the lone surrogate whose low byte is the token's first character (a parser keeping that byte would match it)
        const hex = "0123456789abcdef"
        const c = put.token.charCodeAt(0)
        const lone = "\\ud8" + hex.charAt(c >> 4) + hex.charAt(c & 15)
        rx(h, '{"t":"\\ud800","s":400,"b":{"code":"E_BAD_UTF8"}}\n')
        rx(h, '{"t":"' + lone + '","s":400,"b":{"code":"E_BAD_UTF8"}}\n')
        rx(h, '{"t":"' + put.token + '\\udc00","s":400,"b":{"code":"E_BAD_UTF8"}}\n')
        rx(h, '{"t":"' + put.token + '\\u12","s":400}\n')
        rx(h, seqPushText(sub.token, AT1, "\\ud800", "11"))
        rx(h, seqPushText(sub.token, AT1, "1\\ud800\\u0031", "12"))
        let s = h.link.stats()
        expect(s.badLines).toBe(6)
        expect(s.unknownTokens).toBe(0)
        expect(s.outbox).toBe(2) // the batch is neither refused nor dropped: its answer is still to come
        expect(got.length).toBe(0)
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:02.000Z", "a\\u0000\\u00e9\\ud83d\\ude00", "13"))
        expect(got.length).toBe(1)
        expect(got[0].length).toBe(4) // a, NUL, e acute, one character outside the BMP (a DeviceScript string counts code points)
        expect(got[0].charCodeAt(1)).toBe(0)
        ackLast(h, 200)
        s = h.link.stats()
        expect(s.outbox).toBe(0)
        expect(s.rejected).toBe(0)
        expect(h.link.state).toBe("up")
        expect((await reconnected(h, SERVER_TIME_MS + 5000)).params.after).toBe(13)
    })

    test("[P§8] the server's seqs go back while the connection stays up (its store failed over to a restored replica, its process stayed): the first push newer than every at handled is not dropped as a repeat; the subscription is ended and asked for again by since up to just below it, then by after; the operator told", async () => {
        const { h, got, sub } = upFollowingLed()
        seqAck(h, sub.token, "100")
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:01.000Z", "a", "101"))
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:02.000Z", "b", "102"))
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:02.000Z", "b", "102")) // a repeat: dropped, nothing asked
        const before = h.t.requests().length
        // the restored history: seq 4 with an `at` already handled (a repeat to the device), then seq 5, a command
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:01.000Z", "a", "4"))
        expect(h.t.requests().length).toBe(before)
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:06.000Z", "x", "5"))
        const missed = endedAndAskedAgain(h, sub.token, "2026-11-22T05:00:02.000Z", 4)
        rx(h, seqPushText(sub.token, "2026-11-22T05:00:07.000Z", "y", "6")) // on the wire before the unsubscribe: not this cursor's any more
        rx(h, '{"t":"' + missed.token + '","s":200,"b":{"seq":4,"replayed":0,"truncated":true,"next_after":4}}\n')
        const live = askedByAfter(h, 4)
        seqAck(h, live.token, "6")
        rx(h, seqPushText(live.token, "2026-11-22T05:00:06.000Z", "x", "5"))
        rx(h, seqPushText(live.token, "2026-11-22T05:00:07.000Z", "y", "6"))
        expect(got.join(",")).toBe("a,b,x,y") // before: a,b (x and y dropped as handled, not above 102, until the next connection)
        let told = 0
        for (const m of h.logs) if (m.indexOf("is below 102, the last handled") >= 0) told++
        expect(told).toBe(1)
        expect(h.link.state).toBe("up")
        expect((await reconnected(h, SERVER_TIME_MS + 9000)).params.after).toBe(6)
    })

    test("[P§8] a push under one of the device's tokens that names another feed or datastream: not handled, not the cursor, not the subscribe's answer, no end of the subscription; counted, logged once", async () => {
        const h = linkWith(0.5)
        const got: string[] = []
        h.link.subscribe("datastreams/led", (body, resource) => {
            got.push(resource + "=" + body.current_value)
        })
        bringUp(h)
        const sub = h.t.lastRequest()
        const push = (resource: string, body: string) => rx(h, '{"token":"' + sub.token + '","status":200,"resource":"' + resource + '","body":' + body + "}\n")
        // before the subscribe's answer: another feed's datastream of the same name, with a seq far ahead
        push("/feeds/99/datastreams/led", '{"id":"led","current_value":"on","at":"' + AT1 + '","seq":900}')
        seqAck(h, sub.token, "10")
        push("/feeds/7/datastreams/relay", '{"id":"relay","current_value":"on","at":"2026-11-22T05:00:02.000Z","seq":11}')
        push("/feeds/70/datastreams/led", '{"id":"led","current_value":"on","at":"2026-11-22T05:00:03.000Z","seq":12}')
        push("/feeds/7/datastreams/led", '{"id":"led","current_value":"off","at":"2026-11-22T05:00:04.000Z","seq":13}')
        rx(h, '{"token":"' + sub.token + '","status":404,"resource":"/feeds/99","body":{"code":"E_FEED_DELETED"}}\n')
        push("/feeds/7", '{"id":7,"deleted":true}') // the feed's own deletion names the feed: this subscription's
        expect(got.join(",")).toBe("/feeds/7/datastreams/led=off,/feeds/7=undefined")
        const s = h.link.stats()
        expect(s.foreignPushes).toBe(4)
        expect(s.rejected).toBe(0) // the device's subscription was not ended
        expect(s.unknownTokens).toBe(0)
        let logged = 0
        for (const m of h.logs) if (m.indexOf("E_FOREIGN_PUSH") >= 0) logged++
        expect(logged).toBe(1)
        expect((await reconnected(h, SERVER_TIME_MS)).params.after).toBe(13) // not 900
    })

    test("[P§8] a subscription written with a trailing / or .json gets its pushes, which name the resource as the server normalised it", async () => {
        const h = linkWith(0.5)
        const got: string[] = []
        h.link.subscribe("/feeds/7/datastreams/led/", (body, resource) => {
            got.push(resource + "=" + body.current_value)
        })
        h.link.subscribe("datastreams/relay.json", (body, resource) => {
            got.push(resource + "=" + body.current_value)
        })
        bringUp(h)
        const reqs = h.t.requests()
        const led = reqs[reqs.length - 2]
        const relay = reqs[reqs.length - 1]
        seqAck(h, led.token, "10")
        seqAck(h, relay.token, "10")
        rx(h, '{"token":"' + led.token + '","status":200,"resource":"/feeds/7/datastreams/led","body":{"id":"led","current_value":"on","at":"' + AT1 + '","seq":11}}\n')
        rx(h, '{"token":"' + relay.token + '","status":200,"resource":"/feeds/7/datastreams/relay","body":{"id":"relay","current_value":"off","at":"' + AT1 + '","seq":12}}\n')
        expect(got.join(",")).toBe("/feeds/7/datastreams/led=on,/feeds/7/datastreams/relay=off")
        expect(h.link.stats().foreignPushes).toBe(0)
        expect(led.resource + " " + relay.resource).toBe("/feeds/7/datastreams/led /feeds/7/datastreams/relay")
    })

    test("forty connections, each ended by one of these faults: the outbox whole, nothing carried from one to the next, the backoff growing to its cap", async () => {
        const h = linkWith(0.99, { backoff: { baseMs: 500, capMs: 4000, stableMs: 20000 } })
        followLed(h)
        bringUp(h)
        ackLast(h, 200)
        const put = batchInFlight(h)
        let longest = 0
        for (let i = 0; i < 40; ++i) {
            h.t.sent = h.t.sent.slice(h.t.sent.length - 4) // the recording, not the link, would fill the heap
            const token = h.t.lastRequest().token // the batch, never answered
            const fault = i % 5
            if (fault === 0) {
                rx(h, '{"t":"' + token + '","s":2')
                h.link.onClosed("E_CLOSED_BY_SERVER")
            } else if (fault === 1) rx(h, '{"notice":true,"status":503,"body":{"retry_after_ms":-1}}\n')
            else if (fault === 2) await advance(h, 3000) // silent
            else if (fault === 3) {
                rx(h, '{"t":"' + token + '","s":"200"}\n{"t":"zz1","s":200}\n')
                h.link.onClosed("E_SOCKET reset")
            } else {
                const chunk = Buffer.from('{"t":"x","b":"' + i + "...")
                for (let k = 0; k < chunk.length; ++k) h.link.onData(chunk.slice(k, k + 1))
                h.link.onClosed("E_CLOSED_BY_SERVER")
            }
            expect(h.link.state).toBe("down")
            expectNothingCarried(h)
            expectKept(h)
            const from = h.clock.ms
            while (h.link.state === "down") await advance(h, 100)
            if (h.clock.ms - from > longest) longest = h.clock.ms - from
            open(h)
            rx(h, welcomeLine(SERVER_TIME_MS))
            expect(h.link.state).toBe("up")
            const reqs = h.t.requests()
            const sub = reqs[reqs.length - 2]
            expect(sub.method).toBe("subscribe")
            expect(ats(reqs[reqs.length - 1])).toBe(ats(put))
            rx(h, '{"t":"' + sub.token + '","s":200}\n')
        }
        expect(longest >= 3900).toBe(true) // the cap: a connection this short never resets the attempt counter
        expect(h.link.stats().reconnects).toBe(40)
        ackLast(h, 200)
        expect(h.link.stats().outbox).toBe(0)
    })
})
