// subscribeForever (`feedline sub`) against a scripted TLS server: a subscribe refused "not now" (429, 5xx) is
// asked again on the same connection after retry_after_ms (else 1 s) and up to 1 s more, as the firmware's link does, not by
// dialling again (a TLS handshake per refusal, in a fleet's storm of 429s). The wait goes through the injected
// sleep, which records it and returns at once: no real waiting.
import { test } from "node:test"
import assert from "node:assert/strict"
import tls from "node:tls"
import type net from "node:net"
import { decodeRequest, encodeResponse, encodeWelcome, type Request, type Response } from "../../../src/protocol.ts"
import { makeCertificates } from "../../../devs/server/tls/devca.ts"
import { subscribeForever, type SubscriberEvent } from "../../../devs/client/subscriber.ts"

const certs = await makeCertificates({ caName: "CN=resubscribe test CA", nowMs: Date.now(), caValidMs: 86_400_000, serverValidMs: 86_400_000 })

/** A TLS server speaking the protocol's lines; `answer` gives each request's responses (by the request's number on its connection). */
async function fakeTlsServer(answer: (req: Request, conn: number, nth: number) => Response[]) {
    let handshakes = 0
    const requests: { conn: number; req: Request }[] = []
    const server = tls.createServer({ cert: certs.certPem, key: certs.keyPem }, (socket) => {
        const conn = ++handshakes
        let nth = 0
        socket.write(encodeWelcome({ welcome: "feedline/test", session: "s" + conn, time: Date.now(), heartbeat: 5000, faulty: 10_000, timeout: 30_000 }) + "\n")
        let pending = ""
        socket.setEncoding("utf8")
        socket.on("data", (chunk: string) => {
            const lines = (pending + chunk).split("\n")
            pending = lines.pop()!
            for (const line of lines) {
                if (!line.trim()) continue
                const req = decodeRequest(line).request!
                requests.push({ conn, req })
                for (const r of answer(req, conn, ++nth)) socket.write(encodeResponse(r) + "\n")
            }
        })
        socket.on("error", () => {})
    })
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
    return {
        url: `tls://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
        requests,
        handshakes: () => handshakes,
        /** resolves once every connection has ended (the client closes its own) */
        close: () => new Promise<void>((r) => server.close(() => r())),
    }
}

test("subscribeForever: a subscribe refused 429 (and 503 without a hint) is asked again on the same TLS connection after retry_after_ms (else 1 s), spread", { timeout: 30_000 }, async () => {
    const at = "2026-12-07T08:00:00.000Z"
    const srv = await fakeTlsServer((req, _conn, nth) => {
        if (nth === 1) return [{ token: req.token, status: 429, resource: req.resource, body: { code: "E_KEY_RATE_LIMITED", errors: "slow down", retry_after_ms: 2500 } }]
        if (nth === 2) return [{ token: req.token, status: 503, resource: req.resource, body: { code: "E_STORE_FAILED", errors: "try again" } }]
        return [
            { token: req.token, status: 200, resource: req.resource },
            { token: req.token, status: 200, resource: req.resource, body: { id: "cmd", current_value: "on", at } },
        ]
    })
    const waits: number[] = []
    const events: SubscriberEvent[] = []
    const got: string[] = []
    const stop = new AbortController()
    try {
        await subscribeForever({
            server: srv.url,
            apiKey: "k",
            ca: certs.caCertPem,
            resource: "/feeds/1/datastreams/cmd",
            signal: stop.signal,
            random: () => 0.5,
            sleep: async (ms) => void waits.push(ms), // the fake clock: every wait recorded, none taken
            onPush(p) {
                got.push(p.body.current_value)
                stop.abort()
            },
            onEvent: (e) => events.push(e),
        })
    } finally {
        await srv.close()
    }
    assert.deepEqual(got, ["on"])
    // one handshake: all three subscribes on the first connection
    assert.equal(srv.handshakes(), 1)
    assert.deepEqual(srv.requests.map((r) => [r.conn, r.req.method]), [[1, "subscribe"], [1, "subscribe"], [1, "subscribe"]])
    assert.deepEqual(waits, [3000, 1500]) // retry_after_ms (else 1 s) and half of the 1 s spread (random 0.5)
    assert.deepEqual(
        events.filter((e) => e.kind !== "link").map((e) => (e.kind === "refused" ? `refused ${e.error.status} ${e.delayMs}` : e.kind)),
        ["refused 429 3000", "refused 503 1500", "subscribed"],
    )
})

test("subscribeForever: a subscribe refused for good (404) ends the run on its one connection", { timeout: 30_000 }, async () => {
    const srv = await fakeTlsServer((req) => [{ token: req.token, status: 404, resource: req.resource, body: { code: "E_NOT_FOUND", errors: "no such feed" } }])
    const waits: number[] = []
    try {
        await assert.rejects(
            subscribeForever({ server: srv.url, apiKey: "k", ca: certs.caCertPem, resource: "/feeds/9", sleep: async (ms) => void waits.push(ms), onPush() {} }),
            (e: { status?: number }) => e.status === 404,
        )
    } finally {
        await srv.close()
    }
    assert.equal(srv.handshakes(), 1)
    assert.deepEqual(waits, [])
})
