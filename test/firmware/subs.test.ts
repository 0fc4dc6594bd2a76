// Subscriptions and robustness against a misbehaving server (issue 6): nothing crashes, nothing queued is lost.
import { describe, expect, test } from "@devicescript/test"
import { REPLAY_LIMIT } from "../../src/net/subscriptions"
import { textAfter } from "../../src/subscription-cursor"
import { quote } from "../../src/protocol"
import { ackLast, advance, bringUp, Harness, makeLink, rx, SERVER_TIME_MS, welcomeLine } from "./netfakes"

function truncatedAck(token: string, replayed: number, nextSince: string): string {
    return '{"token":"' + token + '","status":200,"resource":"/feeds/7/datastreams/led","body":{"replayed":' + replayed + ',"truncated":true,"next_since":"' + nextSince + '"}}\n'
}

function push(token: string, at: string, value: string): string {
    // concatenation, not a template: DeviceScript's template literals turn "}}" into "}"
    return '{"token":"' + token + '","status":200,"resource":"/feeds/7/datastreams/led","body":{"id":"led","current_value":"' + value + '","at":"' + at + '"}}\n'
}

function seqAck(token: string, seq: number): string {
    return '{"token":"' + token + '","status":200,"resource":"/feeds/7/datastreams/led","body":{"seq":' + seq + "}}\n"
}

function seqPush(token: string, at: string, value: string, seq: number): string {
    return '{"token":"' + token + '","status":200,"resource":"/feeds/7/datastreams/led","body":{"id":"led","current_value":"' + value + '","at":"' + at + '","seq":' + seq + "}}\n"
}

/** A link (`h`, made by the caller) that is up and has asked for led, not answered yet; `got`: each push's current_value, in order. */
function ledSubscribing(h: Harness): { h: Harness; got: string[]; sub: any } {
    const got: string[] = []
    h.link.subscribe("datastreams/led", body => {
        got.push(body.current_value)
    })
    bringUp(h)
    return { h, got, sub: h.t.lastRequest() }
}

/** ledSubscribing, its subscribe acknowledged. */
function ledSubscribed(h: Harness = makeLink()): { h: Harness; got: string[]; sub: any } {
    const subscribed = ledSubscribing(h)
    ackLast(h, 200)
    return subscribed
}

describe("link subscriptions", () => {
    test("textAfter orders ISO timestamps (the runtime's string < does not)", () => {
        const a: string = JSON.parse('"2026-11-22T05:00:02.000Z"')
        const b: string = JSON.parse('"2026-11-22T05:00:01.000Z"')
        expect(textAfter(a, b)).toBe(true)
        expect(textAfter(b, a)).toBe(false)
        expect(textAfter(a, a)).toBe(false)
    })
    test("subscribed after the welcome; pushes reach the handler in order", async () => {
        const h = makeLink()
        const got: string[] = []
        h.link.subscribe("datastreams/led", (body, resource) => {
            got.push(body.current_value + "@" + resource)
        })
        bringUp(h)
        const sub = h.t.lastRequest()
        expect(sub.method).toBe("subscribe")
        expect(sub.resource).toBe("/feeds/7/datastreams/led")
        expect(sub.params.since).toBe(SERVER_TIME_MS) // replay from the first subscription on
        ackLast(h, 200)
        rx(h, push(sub.token, "2026-11-22T05:00:01.000Z", "1") + push(sub.token, "2026-11-22T05:00:02.000Z", "0"))
        expect(got.join(",")).toBe("1@/feeds/7/datastreams/led,0@/feeds/7/datastreams/led")
    })
    test("[P§8] by seq: resubscribed with after = the last push's seq; a rewrite of the last at made while away is handled, a backfill not", async () => {
        const { h, got, sub: first } = ledSubscribing(makeLink({}, 0))
        expect(first.params.after).toBe("latest")
        rx(h, seqAck(first.token, 1700000000040))
        rx(h, seqPush(first.token, "2026-11-22T05:00:02.000Z", "1", 1700000000041))
        rx(h, '{"notice":true,"status":408}\n') // server closes
        await advance(h, 100)
        bringUp(h)
        const again = h.t.lastRequest()
        expect(again.params.after).toBe(1700000000041)
        expect(again.params.since).toBe(undefined)
        rx(h, seqAck(again.token, 1700000000043))
        rx(h, seqPush(again.token, "2026-11-22T05:00:01.000Z", "backfill", 1700000000042)) // an older at: not for an actuator
        rx(h, seqPush(again.token, "2026-11-22T05:00:02.000Z", "0", 1700000000043)) // the last at, rewritten while away
        expect(got.join(",")).toBe("1,0")
    })
    test("after a reconnect: subscribed again with since = last at; a replayed duplicate is not delivered twice", async () => {
        const h = makeLink({}, 0)
        const got: string[] = []
        h.link.subscribe("/feeds/7/datastreams/led", body => {
            got.push(body.current_value)
        })
        bringUp(h)
        const first = h.t.lastRequest()
        ackLast(h, 200)
        rx(h, push(first.token, "2026-11-22T05:00:01.000Z", "1"))
        rx(h, '{"notice":true,"status":408}\n') // server closes
        await advance(h, 100)
        bringUp(h)
        const again = h.t.lastRequest()
        expect(again.method).toBe("subscribe")
        expect(again.params.since).toBe("2026-11-22T05:00:01.000Z")
        ackLast(h, 200)
        rx(h, push(again.token, "2026-11-22T05:00:01.000Z", "1")) // duplicate
        rx(h, push(again.token, "2026-11-22T05:00:03.000Z", "7")) // sent while offline
        rx(h, push(first.token, "2026-11-22T05:00:04.000Z", "9")) // old subscription's token: not ours any more
        expect(got.join(",")).toBe("1,7")
    })
    test("before any push, a resubscription replays from the first subscription's time", async () => {
        const h = makeLink({}, 0)
        h.link.subscribe("datastreams/cmd", body => {})
        bringUp(h)
        ackLast(h, 200)
        rx(h, '{"notice":true,"status":503}\n') // gone before any push
        await advance(h, 100)
        h.link.start()
        h.link.tick()
        h.link.onOpen()
        rx(h, welcomeLine(SERVER_TIME_MS + 5000))
        expect(h.t.lastRequest().params.since).toBe(SERVER_TIME_MS) // not the new welcome's time
    })
    test("the same at again with another value is that datapoint rewritten: applied, the later value wins", async () => {
        const { h, got, sub } = ledSubscribed()
        const at = "2026-11-22T05:00:01.000Z" // one datapoint written twice with an explicit at
        rx(h, push(sub.token, at, "1") + push(sub.token, at, "0") + push(sub.token, at, "0"))
        expect(got.join(",")).toBe("1,0")
    })
    test("a rewrite with the same at is delivered; an older at under a feed subscription too; since stays the newest", async () => {
        const h = makeLink({}, 0)
        const got: string[] = []
        h.link.subscribe("/feeds/7", body => {
            got.push(body.current_value)
        })
        bringUp(h)
        const sub = h.t.lastRequest()
        ackLast(h, 200)
        rx(h, push(sub.token, "2026-11-22T05:00:05.000Z", "p1"))
        rx(h, push(sub.token, "2026-11-22T05:00:05.000Z", "p2")) // same at, new value: the later write wins
        rx(h, push(sub.token, "2026-11-22T05:00:01.000Z", "old")) // another stream's explicit older at
        expect(got.join(",")).toBe("p1,p2,old")
        rx(h, '{"notice":true,"status":408}\n')
        await advance(h, 100)
        bringUp(h)
        expect(h.t.lastRequest().params.since).toBe("2026-11-22T05:00:05.000Z")
    })
    test("a cut replay is handled, then subscribed again from next_since with the same limit, until live", async () => {
        const { h, got, sub: first } = ledSubscribing(makeLink({}, 0))
        expect(first.params.limit).toBe(REPLAY_LIMIT)
        const at1 = "2026-11-22T05:00:01.000Z"
        const at2 = "2026-11-22T05:00:02.000Z"
        rx(h, truncatedAck(first.token, 2, at2) + push(first.token, at1, "1"))
        const n = h.t.requests().length
        expect(n).toBe(1) // not before the replay has been handled
        rx(h, push(first.token, at2, "2"))
        expect(h.t.requests().length).toBe(2)
        const again = h.t.lastRequest()
        expect(again.method).toBe("subscribe")
        expect(again.params.since).toBe(at2)
        expect(again.params.limit).toBe(REPLAY_LIMIT)
        expect(again.token === first.token).toBe(false)
        ackLast(h, 200) // live
        rx(h, push(again.token, at2, "2")) // across the boundary: an identical repeat is handled once
        rx(h, push(again.token, "2026-11-22T05:00:03.000Z", "3"))
        expect(got.join(",")).toBe("1,2,3")
        expect(h.t.requests().length).toBe(2) // live: nothing more asked
        expect(h.link.stats().rejected).toBe(0)
    })
    test("a connection lost in the middle of a cut replay: since = the last at handled, not next_since", async () => {
        const h = makeLink({}, 0)
        h.link.subscribe("datastreams/led", body => {})
        bringUp(h)
        const first = h.t.lastRequest()
        rx(h, truncatedAck(first.token, 3, "2026-11-22T05:00:03.000Z") + push(first.token, "2026-11-22T05:00:01.000Z", "1"))
        rx(h, '{"notice":true,"status":408}\n') // server closes before the other two
        await advance(h, 100)
        bringUp(h)
        const again = h.t.lastRequest()
        expect(again.params.since).toBe("2026-11-22T05:00:01.000Z")
        ackLast(h, 200)
        const n = h.t.requests().length
        rx(h, push(again.token, "2026-11-22T05:00:02.000Z", "2"))
        rx(h, push(again.token, "2026-11-22T05:00:03.000Z", "3"))
        expect(h.t.requests().length).toBe(n) // the old replay's count is gone with it: no extra subscribe
    })
    test("a throwing handler is counted, the link keeps going", async () => {
        const h = makeLink()
        h.link.subscribe("datastreams/led", body => {
            throw new Error("boom")
        })
        bringUp(h)
        const sub = h.t.lastRequest()
        ackLast(h, 200)
        rx(h, push(sub.token, "2026-11-22T05:00:01.000Z", "1"))
        expect(h.link.stats().handlerErrors).toBe(1)
        expect(h.link.state).toBe("up")
    })
})

function finalPush(token: string, status: number, code: string): string {
    return '{"token":"' + token + '","status":' + status + ',"resource":"/feeds/7/datastreams/led","body":{"title":"Subscription ended","errors":"x","code":"' + code + '"}}\n'
}

/** The subscribe requests sent so far (diagnostics batches go out meanwhile too). */
function subscribes(h: Harness): any[] {
    const out: any[] = []
    for (const r of h.t.requests()) if (r.method === "subscribe") out.push(r)
    return out
}

function lastSubscribe(h: Harness): any {
    const all = subscribes(h)
    return all[all.length - 1]
}

/** Moves the clock by `ms` with the server's heartbeats arriving, so the link stays up. */
async function heard(h: Harness, ms: number) {
    for (let t = 0; t < ms; t += 500) {
        rx(h, "\n")
        await advance(h, 500)
    }
}

describe("subscriptions the server ends [P§8]", () => {
    test("404 E_FEED_DELETED: logged with its code, not renewed, not even after a reconnect", async () => {
        const h = makeLink({ diagMs: 3600000 }, 0)
        h.link.subscribe("datastreams/led", body => {})
        bringUp(h)
        const sub = h.t.lastRequest()
        ackLast(h, 200)
        const n = subscribes(h).length
        rx(h, finalPush(sub.token, 404, "E_FEED_DELETED"))
        expect(h.logs[h.logs.length - 1]).toBe("link: subscription /feeds/7/datastreams/led ended: 404 E_FEED_DELETED; renewed never")
        expect(h.link.stats().rejected).toBe(1)
        await heard(h, 40000)
        expect(subscribes(h).length).toBe(n)
        rx(h, '{"notice":true,"status":503}\n')
        await advance(h, 100)
        bringUp(h)
        expect(subscribes(h).length).toBe(n) // the welcome subscribed nothing
    })
    test("403 E_FORBIDDEN (key revoked): logged, asked for again every 30 s from the last at until accepted", async () => {
        const { h, got, sub } = ledSubscribed(makeLink({ diagMs: 3600000 }, 0))
        rx(h, push(sub.token, "2026-11-22T05:00:01.000Z", "1"))
        const n = subscribes(h).length
        rx(h, finalPush(sub.token, 403, "E_FORBIDDEN"))
        expect(h.logs[h.logs.length - 1]).toBe("link: subscription /feeds/7/datastreams/led ended: 403 E_FORBIDDEN; renewed in 30 s")
        rx(h, push(sub.token, "2026-11-22T05:00:02.000Z", "2")) // nothing with an ended token is handled
        await heard(h, 29000)
        expect(subscribes(h).length).toBe(n)
        await heard(h, 2000)
        const again = lastSubscribe(h)
        expect(subscribes(h).length).toBe(n + 1)
        expect(again.method).toBe("subscribe")
        expect(again.params.since).toBe("2026-11-22T05:00:01.000Z")
        rx(h, '{"token":"' + again.token + '","status":403,"resource":"/feeds/7/datastreams/led","body":{"code":"E_FORBIDDEN"}}\n')
        expect(h.logs[h.logs.length - 1]).toBe("link: subscription /feeds/7/datastreams/led refused: 403 E_FORBIDDEN; renewed in 30 s")
        await heard(h, 31000)
        expect(subscribes(h).length).toBe(n + 2)
        const third = lastSubscribe(h)
        rx(h, '{"token":"' + third.token + '","status":200,"resource":"/feeds/7/datastreams/led"}\n')
        await heard(h, 40000)
        expect(subscribes(h).length).toBe(n + 2) // accepted: nothing more asked
        expect(got.join(",")).toBe("1")
        expect(h.link.state).toBe("up")
    })
    test("408 E_SUBSCRIPTION_ENDED: subscribed again at once from the last at", async () => {
        const h = makeLink({}, 0)
        h.link.subscribe("datastreams/led", body => {})
        bringUp(h)
        const sub = h.t.lastRequest()
        ackLast(h, 200)
        rx(h, push(sub.token, "2026-11-22T05:00:01.000Z", "1"))
        rx(h, finalPush(sub.token, 408, "E_SUBSCRIPTION_ENDED"))
        const again = lastSubscribe(h)
        expect(again.method).toBe("subscribe")
        expect(again.token === sub.token).toBe(false)
        expect(again.params.since).toBe("2026-11-22T05:00:01.000Z")
    })
    test("429 E_KEY_RATE_LIMITED (a fleet on one key back after a server restart) and 5xx: asked for again after retry_after_ms on the same connection", async () => {
        const h = makeLink({ diagMs: 3600000 }, 0)
        h.link.subscribe("datastreams/led", body => {})
        bringUp(h)
        const sub = h.t.lastRequest()
        const n = subscribes(h).length
        rx(h, '{"token":"' + sub.token + '","status":429,"resource":"/feeds/7/datastreams/led","body":{"code":"E_KEY_RATE_LIMITED","retry_after_ms":2500}}\n')
        expect(h.logs[h.logs.length - 1]).toBe("link: subscription /feeds/7/datastreams/led refused: 429 E_KEY_RATE_LIMITED; renewed in 2500 ms")
        await heard(h, 2000)
        expect(subscribes(h).length).toBe(n)
        await heard(h, 1000)
        expect(subscribes(h).length).toBe(n + 1)
        // a 5xx without a hint: again after a second, as a batch
        const again = lastSubscribe(h)
        rx(h, '{"token":"' + again.token + '","status":503,"resource":"/feeds/7/datastreams/led","body":{"code":"E_STORE_FAILED"}}\n')
        expect(h.logs[h.logs.length - 1]).toBe("link: subscription /feeds/7/datastreams/led refused: 503 E_STORE_FAILED; renewed in 1000 ms")
        await heard(h, 1500)
        expect(subscribes(h).length).toBe(n + 2)
        expect(h.link.state).toBe("up")
    })
})

describe("link robustness (misbehaving server)", () => {
    test("garbage, non-objects, over-long lines: counted, never fatal, samples kept", async () => {
        const h = makeLink()
        bringUp(h)
        h.link.report("temp", 1)
        h.link.report("temp", 2)
        rx(h, "hello\n[1,2]\n{\"no\":\"status\"}\n{broken\n")
        const big = Buffer.alloc(2000)
        big.fillAt(0, big.length, 65)
        for (let i = 0; i < 5; ++i) h.link.onData(big)
        rx(h, "\n")
        const s = h.link.stats()
        expect(s.badLines).toBe(4)
        expect(s.overlongLines).toBe(1)
        expect(h.link.state).toBe("up")
        expect(s.outbox).toBe(2)
        ackLast(h, 200)
        expect(h.link.stats().outbox).toBe(1) // the first batch held sample 1; sample 2 follows
        ackLast(h, 200)
        expect(h.link.stats().outbox).toBe(0)
    })
    test("duplicate, unknown-token and out-of-order responses", async () => {
        const h = makeLink()
        h.link.subscribe("datastreams/a", body => {})
        h.link.subscribe("datastreams/b", body => {})
        h.link.report("temp", 1)
        bringUp(h)
        const reqs = h.t.requests() // subscribe a, subscribe b, put
        expect(reqs.length).toBe(3)
        rx(h, `{"token":"${reqs[2].token}","status":200}\n`) // the put first
        rx(h, `{"token":"${reqs[1].token}","status":200}\n`)
        rx(h, `{"token":"${reqs[0].token}","status":200}\n`)
        rx(h, `{"token":"${reqs[2].token}","status":200}\n`) // duplicate ack
        rx(h, `{"token":"zz9","status":200}\n`) // nobody asked
        const s = h.link.stats()
        expect(s.unknownTokens).toBe(2)
        expect(s.outbox).toBe(0)
        expect(h.link.state).toBe("up")
    })
    test("a repeated acknowledgement of a cut replay is no push: every replayed push is handled, none lost", async () => {
        const h = makeLink()
        const got: string[] = []
        h.link.subscribe("datastreams/led", body => {
            got.push(body ? body.current_value : "?")
        })
        bringUp(h)
        const sub = h.t.lastRequest()
        const ack = truncatedAck(sub.token, 2, "2026-11-22T05:00:02.000Z")
        rx(h, ack + ack)
        rx(h, push(sub.token, "2026-11-22T05:00:01.000Z", "a"))
        rx(h, push(sub.token, "2026-11-22T05:00:02.000Z", "b")) // was under a token given up early: lost
        expect(got.join(",")).toBe("a,b")
        expect(h.link.stats().unknownTokens).toBe(1)
        expect(h.t.lastRequest().params.since).toBe("2026-11-22T05:00:02.000Z")
    })
    test("a push that comes before its subscribe's answer is a push, not the answer", async () => {
        const { h, got, sub } = ledSubscribing(makeLink())
        rx(h, push(sub.token, "2026-11-22T05:00:01.000Z", "1"))
        ackLast(h, 200)
        rx(h, push(sub.token, "2026-11-22T05:00:02.000Z", "0"))
        expect(got.join(",")).toBe("1,0")
        expect(h.link.stats().unknownTokens).toBe(0)
    })
    test("a server that ignores since and replays older points: none is handled again (a toggle flips once)", async () => {
        const { h, got, sub: first } = ledSubscribed(makeLink({}, 0))
        rx(h, push(first.token, "2026-11-22T05:00:01.000Z", "toggle") + push(first.token, "2026-11-22T05:00:02.000Z", "on"))
        rx(h, '{"notice":true,"status":408}\n')
        await advance(h, 100)
        bringUp(h)
        const again = h.t.lastRequest()
        expect(again.params.since).toBe("2026-11-22T05:00:02.000Z")
        ackLast(h, 200)
        // everything from the start, as if since were not there
        rx(h, push(again.token, "2026-11-22T05:00:01.000Z", "toggle") + push(again.token, "2026-11-22T05:00:02.000Z", "on") + push(again.token, "2026-11-22T05:00:03.000Z", "toggle"))
        expect(got.join(",")).toBe("toggle,on,toggle")
    })
    test("after a reboot (since = the saved at), a replay of that point and older ones is not handled again", async () => {
        const h = makeLink()
        const got: string[] = []
        h.link.subscribe("datastreams/led", body => {
            got.push(body.current_value)
        }, "2026-11-22T05:00:02.000Z")
        bringUp(h)
        const sub = h.t.lastRequest()
        ackLast(h, 200)
        rx(h, push(sub.token, "2026-11-22T05:00:01.000Z", "toggle") + push(sub.token, "2026-11-22T05:00:02.000Z", "toggle") + push(sub.token, "2026-11-22T05:00:03.000Z", "off"))
        expect(got.join(",")).toBe("off")
    })
    test("a cut replay that brings fewer pushes than it announced is taken as handled after `timeout`: the rest from next_since", async () => {
        const h = makeLink()
        const got: string[] = []
        h.link.subscribe("datastreams/led", body => {
            got.push(body.current_value)
        })
        bringUp(h)
        const sub = h.t.lastRequest()
        rx(h, truncatedAck(sub.token, 3, "2026-11-22T05:00:03.000Z") + push(sub.token, "2026-11-22T05:00:01.000Z", "a"))
        const subscribes = () => h.t.requests().filter(q => q.method === "subscribe")
        for (let i = 0; i < 29; ++i) {
            rx(h, "\n") // the server stays audible
            await advance(h, 100)
        }
        expect(subscribes().length).toBe(1) // the other two pushes may still come
        rx(h, "\n")
        await advance(h, 200) // `timeout` (3 s) after the acknowledgement
        expect(subscribes().length).toBe(2)
        const again = subscribes()[1]
        expect(again.params.since).toBe("2026-11-22T05:00:03.000Z")
        expect(got.join(",")).toBe("a")
        expect(h.link.state).toBe("up")
    })
    test("the unreadable last point of a replay bounded by a cursor (\\uFFFE: a bad line) is skipped after `timeout`; the subscription goes on by after and goes live", async () => {
        const { h, got, sub } = ledSubscribing(makeLink())
        const subscribes = () => h.t.requests().filter(q => q.method === "subscribe")
        const ack = (token: string, body: string) => rx(h, '{"token":"' + token + '","status":200,"resource":"/feeds/7/datastreams/led","body":' + body + "}\n")
        ack(sub.token, '{"replayed":2,"truncated":true,"next_since":"2026-11-22T05:00:02.000Z","next_after":50}')
        rx(h, push(sub.token, "2026-11-22T05:00:01.000Z", "a") + push(sub.token, "2026-11-22T05:00:02.000Z", "b"))
        const rest = subscribes()[1]
        expect(rest.params.since).toBe("2026-11-22T05:00:02.000Z")
        expect(rest.params.after).toBe(50)
        // the rest of it: one point, stored before \uFFFE was refused, which this runtime cannot parse
        ack(rest.token, '{"seq":50,"replayed":1,"truncated":true,"next_after":50}')
        rx(h, seqPush(rest.token, "2026-11-22T05:00:03.000Z", "\\uFFFE", 44))
        expect(h.link.stats().badLines).toBe(1)
        for (let i = 0; i < 32; ++i) {
            rx(h, "\n")
            await advance(h, 100)
        }
        // before: asked for again by since from 02, the same page of that one point, short again, every `timeout`
        expect(subscribes().length).toBe(3)
        const live = subscribes()[2]
        expect(live.params.since).toBe(undefined)
        expect(live.params.after).toBe(50)
        rx(h, seqAck(live.token, 50) + seqPush(live.token, "2026-11-22T05:00:05.000Z", "c", 51))
        for (let i = 0; i < 32; ++i) {
            rx(h, "\n")
            await advance(h, 100)
        }
        expect(subscribes().length).toBe(3)
        expect(got.join(",")).toBe("a,b,c")
        expect(h.link.stats().badLines).toBe(1)
        expect(h.link.state).toBe("up")
    })
    test("a second welcome is ignored", async () => {
        const h = makeLink()
        bringUp(h)
        rx(h, '{"welcome":"x","session":"s2","time":5}\n')
        expect(h.link.state).toBe("up")
        expect(h.link.stats().badLines).toBe(1)
    })
})

describe("pushed text [P§10]", () => {
    test("U+2028/U+2029, a character outside the BMP and other Unicode text reach the handler as the server escaped them", async () => {
        const { h, got, sub } = ledSubscribed()
        // as the server's quote() writes them: the wire is ASCII, every other character a \u escape
        const wire = ["a\\u2028b\\u2029c", "\\ud83d\\ude00x", "\\u00e9\\u4e2d", "\\ufeff\\ufdd0"]
        for (let i = 0; i < wire.length; ++i) rx(h, push(sub.token, "2026-11-22T05:00:0" + (i + 1) + ".000Z", wire[i]))
        expect(got.length).toBe(wire.length)
        for (let i = 0; i < wire.length; ++i) expect(quote(got[i])).toBe('"' + wire[i] + '"')
        expect(got[0]).toBe("a\u2028b\u2029c")
        expect(h.link.state).toBe("up")
        expect(h.link.stats().badLines).toBe(0)
    })
    test("a push holding \\uFFFF or \\uFFFE (the runtime's JSON.parse panics on them) is a bad line, not a reboot; the next push arrives", async () => {
        const { h, got, sub } = ledSubscribed()
        rx(h, push(sub.token, "2026-11-22T05:00:01.000Z", "1\\uffff"))
        rx(h, push(sub.token, "2026-11-22T05:00:02.000Z", "\\uFFFE"))
        // a backslash, then the text "uffff": no escape, delivered
        rx(h, push(sub.token, "2026-11-22T05:00:03.000Z", "\\\\uffff"))
        // control characters an older server stored: parsed, delivered (this server refuses them at the door)
        rx(h, push(sub.token, "2026-11-22T05:00:04.000Z", "a\\u0000b"))
        expect(h.link.stats().badLines).toBe(2)
        expect(h.link.state).toBe("up")
        expect(got.length).toBe(2)
        expect(got[0]).toBe("\\uffff")
        expect(got[1].length).toBe(3)
    })
    test("a value with a control character is refused on the device, as the server would refuse it", async () => {
        const h = makeLink()
        bringUp(h)
        expect(h.link.report("cmd_echo", "a\u0000b")).toBe(false)
        expect(h.link.report("cmd_echo", "\u001b[2J")).toBe(false)
        expect(h.link.report("cmd_echo", "1\u0085")).toBe(false)
        // (U+FFFE and U+FFFF cannot be made here: the compiler refuses them in a literal, JSON.parse panics)
        expect(h.link.stats().rejected).toBe(3)
        expect(h.link.report("cmd_echo", "a\u2028\u00e9")).toBe(true)
    })
})
