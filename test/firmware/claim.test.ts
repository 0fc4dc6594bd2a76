// The claim step (src/net/claim.ts) on the link (src/net/link.ts claim()), driven through a recording
// transport and a hand-moved clock: the claim after the welcome and nothing else before its answer, what
// each answer leads to, and when the board asks again.
import { describe, expect, test } from "@devicescript/test"
import { claimThrough, REFUSED_RETRY_MS } from "../../src/net/claim"
import { advance, bringUp, Harness, makeLink, rx, SERVER_TIME_MS, welcomeLine } from "./netfakes"

interface ClaimHarness {
    h: Harness
    claim: { got: any }
    logs: string[]
}

/** A link with no key (feed 1, the default) and the claim put into it; started, not connected yet. */
function makeClaiming(): ClaimHarness {
    const h = makeLink({ apiKey: "", feedId: 1, backoff: { baseMs: 1000, capMs: 60000, stableMs: 10000 } })
    const logs: string[] = []
    const claim = claimThrough(h.link, { productId: "p0a1b2c3d", code: "CODE", hardwareId: "12abdd2289421234" }, (m: string) => {
        logs.push(m)
    })
    h.link.start()
    return { h: h, claim: claim, logs: logs }
}

/** Answers the last claim request sent. */
function answer(c: ClaimHarness, status: number, body: string) {
    const req = c.h.t.lastRequest()
    expect(req.resource).toBe("/products/p0a1b2c3d/claims")
    rx(c.h, `{"token":"${req.token}","status":${status},"resource":"/products/p0a1b2c3d/claims","body":${body}}\n`)
}

/** The connection comes up again after a drop: connect, open, welcome. */
function reconnect(c: ClaimHarness) {
    c.h.link.onOpen()
    rx(c.h, welcomeLine(SERVER_TIME_MS))
}

describe("claim step", () => {
    test("the claim is the first request after the welcome, without a key; samples wait; a 201 gives the feed and the key, and the samples leave with them on the same connection", async () => {
        const c = makeClaiming()
        const h = c.h
        h.link.report("temp", "21.5")
        h.link.tick()
        expect(h.t.opens).toBe(1)
        h.link.onOpen()
        expect(h.t.requests().length).toBe(0) // nothing before the welcome
        rx(h, welcomeLine(SERVER_TIME_MS))
        expect(h.t.requests().length).toBe(1) // the claim, and no batch
        const req = h.t.lastRequest()
        expect(req.method).toBe("post")
        expect(req.resource).toBe("/products/p0a1b2c3d/claims")
        expect(req.headers).toBe(undefined)
        expect(req.body.hardware_id).toBe("12abdd2289421234")
        expect(req.body.code).toBe("CODE")
        expect(req.body.firmware).toBe("0.1.0")
        h.link.report("humidity", "40")
        await advance(h, 500) // heartbeats meanwhile, still no batch
        expect(h.t.requests().length).toBe(1)
        answer(c, 201, `{"device":"d1","feed":42,"key":"K3Y","resource":"/feeds/42","policies":{"temp":"i=10s d=0.2"}}`)
        expect(c.claim.got["feed"]).toBe(42)
        expect(c.claim.got["key"]).toBe("K3Y")
        expect(c.claim.got["policies"]["temp"]).toBe("i=10s d=0.2")
        const batch = h.t.lastRequest()
        expect(batch.resource).toBe("/feeds/42")
        expect(batch.headers["X-ApiKey"]).toBe("K3Y")
        expect(batch.body.datastreams.length).toBe(2)
        expect(h.t.closes).toBe(0) // the same connection goes on
        expect(h.t.opens).toBe(1)
        let logged = false
        for (let i = 0; i < c.logs.length; ++i) if (c.logs[i] === "claim: claimed device d1, feed 42 (new)") logged = true
        expect(logged).toBe(true)
        // a reconnect later sends no claim
        h.link.onClosed("E_CLOSED_BY_SERVER")
        await advance(h, 2000)
        reconnect(c)
        let claims = 0
        for (const r of h.t.requests()) if (r.resource === "/products/p0a1b2c3d/claims") claims++
        expect(claims).toBe(1)
    })
    test("a claim put in after the welcome (startLink reads its settings after link.start()) is sent at once, not only after the next welcome", async () => {
        const h = makeLink({ apiKey: "", feedId: 1, backoff: { baseMs: 1000, capMs: 60000, stableMs: 10000 } })
        h.link.start()
        h.link.tick()
        h.link.onOpen()
        rx(h, welcomeLine(SERVER_TIME_MS))
        expect(h.t.requests().length).toBe(0)
        const c: ClaimHarness = { h: h, claim: claimThrough(h.link, { productId: "p0a1b2c3d", code: "CODE", hardwareId: "12abdd2289421234" }, (m: string) => {}), logs: [] }
        expect(h.t.requests().length).toBe(1)
        answer(c, 201, `{"device":"d1","feed":42,"key":"K3Y","resource":"/feeds/42","policies":{}}`)
        expect(c.claim.got["feed"]).toBe(42)
        expect(h.t.opens).toBe(1)
    })
    test("a refusal only the operator can undo (409 E_ALREADY_CLAIMED): its reason logged, the connection left, asked again after REFUSED_RETRY_MS, not before", async () => {
        const c = makeClaiming()
        const h = c.h
        bringUp(h)
        answer(c, 409, `{"title":"Conflict","errors":"re-arm it: feedline devices rearm d1","code":"E_ALREADY_CLAIMED","retry_after_ms":0}`)
        expect(h.link.state).toBe("down")
        expect(h.link.stats().lastDisconnect).toBe("E_CLAIM 409 E_ALREADY_CLAIMED")
        expect(h.t.closes).toBe(1)
        let logged = false
        for (let i = 0; i < c.logs.length; ++i) if (c.logs[i].indexOf("feedline devices rearm d1") >= 0) logged = true
        expect(logged).toBe(true)
        await advance(h, REFUSED_RETRY_MS - 100)
        expect(h.t.opens).toBe(1)
        await advance(h, 100)
        expect(h.t.opens).toBe(2)
        reconnect(c)
        answer(c, 200, `{"device":"d1","feed":42,"key":"NEW","policies":{}}`)
        expect(c.claim.got["key"]).toBe("NEW")
    })
    test("429 E_CLAIM_RATE_LIMITED: again after retry_after_ms; 409 E_CLAIM_CONFLICT and 503: soon, by the backoff", async () => {
        const c = makeClaiming()
        const h = c.h
        bringUp(h)
        answer(c, 429, `{"code":"E_CLAIM_RATE_LIMITED","retry_after_ms":2000}`)
        expect(h.link.stats().lastDisconnect).toBe("E_CLAIM 429 E_CLAIM_RATE_LIMITED")
        await advance(h, 1900)
        expect(h.t.opens).toBe(1)
        await advance(h, 100)
        expect(h.t.opens).toBe(2)
        reconnect(c)
        answer(c, 409, `{"code":"E_CLAIM_CONFLICT","retry_after_ms":0}`)
        expect(h.link.stats().lastDisconnect).toBe("E_CLAIM 409 E_CLAIM_CONFLICT")
        await advance(h, 1000) // the backoff: under 2 s at attempt 2 with random 0.5
        expect(h.t.opens).toBe(3)
        reconnect(c)
        answer(c, 503, `{"code":"E_STORE_FAILED"}`)
        await advance(h, 4000)
        expect(h.t.opens).toBe(4)
        expect(c.claim.got).toBe(undefined)
    })
    test("no answer, a lost connection, a notice, an answer without a key: each ends the attempt, and the claim is sent again after the next welcome", async () => {
        const c = makeClaiming()
        const h = c.h
        bringUp(h)
        await advance(h, 3000) // the welcome's timeout: the claim's answer is overdue
        expect(h.link.state).toBe("down")
        await advance(h, 2000)
        expect(h.t.opens).toBe(2)
        reconnect(c)
        expect(h.t.requests().length).toBe(2) // the claim again
        h.link.onClosed("E_CLOSED_BY_SERVER")
        expect(h.link.stats().lastDisconnect).toBe("E_CLOSED_BY_SERVER")
        await advance(h, 4000)
        expect(h.t.opens).toBe(3)
        reconnect(c)
        rx(h, `{"notice":true,"status":503,"body":{"code":"E_SHUTTING_DOWN","retry_after_ms":3000}}\n`)
        expect(h.link.stats().lastDisconnect).toBe("E_NOTICE_503")
        await advance(h, 2900)
        expect(h.t.opens).toBe(3)
        await advance(h, 5000)
        expect(h.t.opens).toBe(4)
        reconnect(c)
        answer(c, 201, `{"device":"d1","feed":42}`)
        expect(h.link.stats().lastDisconnect).toBe("E_CLAIM 201 ")
        expect(c.claim.got).toBe(undefined)
        expect(h.t.requests().length).toBe(4) // four claims, no batch
    })
})
