// Answers larger than a connection's queue bound, and clients that pipeline them or half-close: found by
// black-box clients on the device port. A client that reads as fast as it can is never a slow consumer
// (the bound is checked before each output, and a connection's reads are taken one at a time while its
// queue is short, and while too many wait the connection is not read from), and one that half-closes
// after its requests still gets their answers [P§3].
import assert from "node:assert/strict"
import { test } from "node:test"
import { encodeRequest } from "../../../src/protocol.ts"
import { CONGESTED_QUEUE_BYTES, MAX_QUEUE_BYTES, MAX_REPLAY_POINTS, MAX_WAITING_REQUEST_CHARS } from "../../../devs/server/limits.ts"
import type { Wire } from "../../../devs/server/session.ts"
import { serverForThisFile, TlsClient } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const feed = s.credentials.feedId
/** the longest id and token a request may carry, and the longest value: every push of the replay is as long as one can be */
const STREAM = "d".repeat(64)
const TOKEN = "T".repeat(62)
const AT0 = Date.now() - 3_600_000

/** MAX_REPLAY_POINTS datapoints of STREAM, written once for the tests below. */
async function writeFullReplay(c: TlsClient): Promise<void> {
    const perWrite = 250 // ~12 KB of JSON, under MAX_OBJECT_BYTES
    for (let i = 0; i < MAX_REPLAY_POINTS; i += perWrite) {
        const datapoints = Array.from({ length: perWrite }, (_, j) => ({ at: AT0 + i + j, value: "v".repeat(32) }))
        const r = await c.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: STREAM, datapoints }] } })
        assert.equal(r.status, 200, JSON.stringify(r.body))
    }
}

const writer = await TlsClient.open(s, s.credentials.deviceKey)
await writeFullReplay(writer)
writer.close()

const pushesOf = (c: TlsClient, token: string) => c.q.lines.filter((l) => l.kind === "response" && l.response!.token === token && l.response!.body?.id === STREAM)

test("a replay larger than the queue bound goes out whole, and its subscriber stays connected", async () => {
    const c = await TlsClient.open(s, s.credentials.deviceKey)
    try {
        const ack = await c.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/${STREAM}`, params: { since: 0 }, token: TOKEN })
        assert.equal(ack.status, 200, JSON.stringify(ack))
        const session = await c.request({ method: "get", resource: "/session" }) // answered after the replay: the read waited for it
        assert.equal(session.status, 200, JSON.stringify(session))
        const pushes = pushesOf(c, TOKEN)
        const bytes = pushes.reduce((n, l) => n + l.raw.length + 1, 0)
        assert.ok(bytes > MAX_QUEUE_BYTES, `the replay is ${bytes} bytes; it must be over ${MAX_QUEUE_BYTES} to show anything`)
        assert.equal(pushes.length, MAX_REPLAY_POINTS)
        assert.equal(c.q.closed, false)
        assert.equal(c.q.lines.filter((l) => l.kind === "response" && l.response!.token === undefined).length, 0, "no notice")
    } finally {
        c.close()
    }
})

test("eight subscribes with since, pipelined in one write, each replaying a full replay: every push arrives, the connection stays", async () => {
    const c = await TlsClient.open(s, s.credentials.deviceKey)
    try {
        const tokens = Array.from({ length: 8 }, (_, i) => `s${i}`)
        c.socket.write(tokens.map((token) => encodeRequest({ method: "subscribe", resource: `/feeds/${feed}/datastreams/${STREAM}`, params: { since: 0 }, token }) + "\n").join(""))
        for (const token of tokens) assert.equal((await c.push(token, 20_000)).status, 200)
        const session = await c.request({ method: "get", resource: "/session" }, 20_000)
        assert.equal(session.status, 200, JSON.stringify(session))
        assert.deepEqual(
            tokens.map((t) => pushesOf(c, t).length),
            tokens.map(() => MAX_REPLAY_POINTS),
        )
        assert.equal(c.q.closed, false)
        assert.equal(c.q.lines.filter((l) => l.kind === "response" && l.response!.token === undefined).length, 0, "no notice")
    } finally {
        c.close()
    }
})

test("a client that half-closes after its requests gets every answer, then the server closes", async () => {
    const c = await TlsClient.open(s, s.credentials.deviceKey)
    try {
        const put = encodeRequest({ method: "put", resource: `/feeds/${feed}`, token: "p", body: { datastreams: [{ id: "half", current_value: "42" }] } })
        const get = encodeRequest({ method: "get", resource: `/feeds/${feed}/datastreams/half`, token: "g" })
        c.socket.end(put + "\n" + get + "\n") // TLS close_notify, then FIN: nothing more will come
        await c.q.untilClosed()
        const answers = c.q.lines.filter((l) => l.kind === "response" && ["p", "g"].includes(l.response!.token!)).map((l) => [l.response!.token, l.response!.status, l.response!.body?.current_value])
        assert.deepEqual(answers, [
            ["p", 200, undefined],
            ["g", 200, "42"],
        ])
    } finally {
        c.close()
    }
})

test("reads sent faster than their answers are read wait, bounded: the connection is not read from while they hold more than MAX_WAITING_REQUEST_CHARS", async () => {
    let paused = 0
    let resumed = 0
    const lines: string[] = []
    // a wire whose peer never reads: everything stays queued
    const stuck: Wire = {
        transport: "tcp",
        remoteAddress: "test",
        send: (batch) => void lines.push(...batch),
        heartbeat: () => {},
        bufferedBytes: () => CONGESTED_QUEUE_BYTES + 1,
        end: () => {},
        pause: () => void paused++,
        resume: () => void resumed++,
    }
    const session = s.attachWire(stuck)
    try {
        await new Promise((r) => setImmediate(r))
        const read = (i: number) => JSON.stringify({ method: "get", resource: `/feeds/${feed}`, headers: { "X-ApiKey": s.credentials.deviceKey }, token: `r${i}`, pad: "p".repeat(1000) })
        let sent = 0
        for (; sent < 1000 && paused === 0; ++sent) session.receiveObject(read(sent))
        assert.equal(paused, 1, "paused once the waiting reads passed the bound")
        assert.ok(sent * read(0).length > MAX_WAITING_REQUEST_CHARS && (sent - 1) * read(0).length <= MAX_WAITING_REQUEST_CHARS, `paused after ${sent} reads`)
        // nothing was taken while the queue stayed congested: no answers piled up behind the welcome
        assert.equal(lines.filter((l) => l.includes('"token":"r')).length, 0)
        assert.equal(resumed, 0)
    } finally {
        session.closed()
    }
})
