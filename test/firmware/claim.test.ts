// The claim step's state machine (src/net/claim.ts), driven through a recording transport and a hand-moved
// clock: one request after the welcome, what each answer leads to, and when the board asks again.
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { DEFAULT_BACKOFF } from "../../src/backoff"
import { CLAIM_ANSWER_MS, Claimer, REFUSED_RETRY_MS } from "../../src/net/claim"
import { advanceClock, RecordingTransport, SERVER_TIME_MS, welcomeLine } from "./netfakes"

interface ClaimHarness {
    c: Claimer
    t: RecordingTransport
    clock: { ms: number }
    logs: string[]
}

function makeClaimer(): ClaimHarness {
    const h: ClaimHarness = { c: undefined, t: new RecordingTransport(), clock: { ms: 1000 }, logs: [] }
    h.c = new Claimer(
        { productId: "p0a1b2c3d", code: "CODE", hardwareId: "12abdd2289421234", firmware: "0.1.0" },
        { connectTimeoutMs: 5000, backoff: DEFAULT_BACKOFF },
        {
            transport: h.t,
            now: () => h.clock.ms,
            random: () => 0.5,
            log: (m: string) => {
                h.logs.push(m)
            },
        }
    )
    return h
}

function rx(h: ClaimHarness, text: string) {
    h.c.onData(Buffer.from(text))
}

/** connect, open, welcome: the claim request is out */
function toClaiming(h: ClaimHarness) {
    h.c.tick()
    h.c.onOpen()
    rx(h, welcomeLine(SERVER_TIME_MS))
}

function answer(h: ClaimHarness, status: number, body: string) {
    rx(h, `{"token":"claim","status":${status},"resource":"/products/p0a1b2c3d/claims","body":${body}}\n`)
}

async function advance(h: ClaimHarness, ms: number) {
    const c = h.c
    await advanceClock(h.clock, () => c.tick(), ms)
}

describe("claim step", () => {
    test("one request after the welcome, without a key; a 201 gives the feed, the key and the policies, and the connection is left", async () => {
        const h = makeClaimer()
        h.c.tick()
        expect(h.t.opens).toBe(1)
        expect(h.c.phase).toBe("connecting")
        h.c.onOpen()
        expect(h.c.phase).toBe("greeting")
        expect(h.t.requests().length).toBe(0) // nothing before the welcome
        rx(h, welcomeLine(SERVER_TIME_MS))
        expect(h.c.phase).toBe("claiming")
        const req = h.t.lastRequest()
        expect(req.method).toBe("post")
        expect(req.resource).toBe("/products/p0a1b2c3d/claims")
        expect(req.headers).toBe(undefined)
        expect(req.body.hardware_id).toBe("12abdd2289421234")
        expect(req.body.code).toBe("CODE")
        expect(req.body.firmware).toBe("0.1.0")
        rx(h, "\n") // a heartbeat meanwhile changes nothing
        answer(h, 201, `{"device":"d1","feed":42,"key":"K3Y","resource":"/feeds/42","policies":{"temp":"i=10s d=0.2"}}`)
        expect(h.c.phase).toBe("claimed")
        expect(h.c.result.feedId).toBe(42)
        expect(h.c.result.apiKey).toBe("K3Y")
        expect(h.c.result.device).toBe("d1")
        expect(h.c.result.policies["temp"]).toBe("i=10s d=0.2")
        expect(h.t.closes).toBe(1)
        await advance(h, 10000)
        expect(h.t.opens).toBe(1) // claimed: never again
    })
    test("a refusal only the operator can undo (409 E_ALREADY_CLAIMED): its reason logged, asked again after REFUSED_RETRY_MS, not before", async () => {
        const h = makeClaimer()
        toClaiming(h)
        answer(h, 409, `{"title":"Conflict","errors":"re-arm it: feedline devices rearm d1","code":"E_ALREADY_CLAIMED"}`)
        expect(h.c.phase).toBe("waiting")
        expect(h.c.lastError).toBe("E_CLAIM 409 E_ALREADY_CLAIMED")
        expect(h.t.closes).toBe(1)
        let logged = false
        for (let i = 0; i < h.logs.length; ++i) if (h.logs[i].indexOf("feedline devices rearm d1") >= 0) logged = true
        expect(logged).toBe(true)
        await advance(h, REFUSED_RETRY_MS - 100)
        expect(h.t.opens).toBe(1)
        await advance(h, 100)
        expect(h.t.opens).toBe(2)
        toClaiming(h)
        answer(h, 200, `{"device":"d1","feed":42,"key":"NEW","policies":{}}`)
        expect(h.c.phase).toBe("claimed")
        expect(h.c.result.apiKey).toBe("NEW")
    })
    test("429 E_CLAIM_RATE_LIMITED: again after retry_after_ms; 409 E_CLAIM_CONFLICT and 503: soon, by the backoff", async () => {
        const h = makeClaimer()
        toClaiming(h)
        answer(h, 429, `{"code":"E_CLAIM_RATE_LIMITED","retry_after_ms":2000}`)
        await advance(h, 1900)
        expect(h.t.opens).toBe(1)
        await advance(h, 100)
        expect(h.t.opens).toBe(2)
        h.c.onOpen()
        rx(h, welcomeLine(SERVER_TIME_MS))
        answer(h, 409, `{"code":"E_CLAIM_CONFLICT"}`)
        expect(h.c.lastError).toBe("E_CLAIM 409 E_CLAIM_CONFLICT")
        await advance(h, 1000) // attempt 1: 0.5 x 1000 ms
        expect(h.t.opens).toBe(3)
        h.c.onOpen()
        rx(h, welcomeLine(SERVER_TIME_MS))
        answer(h, 503, `{"code":"E_STORE_FAILED"}`)
        await advance(h, 2000)
        expect(h.t.opens).toBe(4)
    })
    test("no welcome, no answer, a lost connection, a notice, an answer without a key: each ends the attempt, which is made again", async () => {
        const h = makeClaimer()
        h.c.tick()
        h.c.onOpen()
        await advance(h, CLAIM_ANSWER_MS)
        expect(h.c.lastError).toBe("E_NO_WELCOME")
        await advance(h, 1000)
        expect(h.t.opens).toBe(2)
        h.c.onOpen()
        rx(h, welcomeLine(SERVER_TIME_MS))
        await advance(h, CLAIM_ANSWER_MS)
        expect(h.c.lastError).toBe("E_NO_CLAIM_ANSWER")
        await advance(h, 2000)
        expect(h.t.opens).toBe(3)
        h.c.onClosed("E_CLOSED_BY_SERVER")
        expect(h.c.lastError).toBe("E_CLOSED_BY_SERVER")
        await advance(h, 4000)
        expect(h.t.opens).toBe(4)
        h.c.onOpen() // a notice before the welcome (the server is shutting down)
        rx(h, `{"notice":true,"status":503,"body":{"code":"E_SHUTTING_DOWN","retry_after_ms":3000}}\n`)
        expect(h.c.lastError).toBe("E_NOTICE_503")
        await advance(h, 2900)
        expect(h.t.opens).toBe(4)
        await advance(h, 5000)
        expect(h.t.opens).toBe(5)
        h.c.onOpen()
        rx(h, welcomeLine(SERVER_TIME_MS))
        answer(h, 201, `{"device":"d1","feed":42}`)
        expect(h.c.phase).toBe("waiting")
        expect(h.c.lastError).toBe("E_BAD_CLAIM_ANSWER")
    })
    test("a connect that never completes: E_CONNECT_TIMEOUT; an open refused at once (no network): asked again", async () => {
        const h = makeClaimer()
        h.c.tick()
        await advance(h, 5000)
        expect(h.c.lastError).toBe("E_CONNECT_TIMEOUT")
        h.t.openResult = "E_NO_NETWORK"
        await advance(h, 1000)
        expect(h.c.lastError).toBe("E_NO_NETWORK")
        expect(h.c.phase).toBe("waiting")
        h.t.openResult = ""
        for (let i = 0; i < 600 && h.c.phase === "waiting"; ++i) await advance(h, 100)
        expect(h.c.phase).toBe("connecting")
    })
})
