// A whole-feed subscriber whose link drops between the pushes of one write [P§8, P§9]: that write's
// datastreams share one server stamp and `since` replays strictly after it, so resuming from that `at`
// would lose the rest of the write. subscribeForever resumes one ms earlier and drops what it handled.
import { test } from "node:test"
import assert from "node:assert/strict"
import { startFaultProxy } from "../../../devs/faultproxy/proxy.ts"
import { subscribeForever } from "../../../devs/client/subscriber.ts"
import type { Response } from "../../../src/protocol.ts"
import { startTestServer } from "../harness/server-harness.ts"
import { until } from "../harness/until.ts"

/** the other datastreams' pushes are this much longer than the first one's (ids and values at their longest) */
const LONG_ID = (c: string) => c.repeat(64)
const LONG_VALUE = "x".repeat(32)
/** how far into the second push the cut falls: past the first push and a heartbeat or two, before the second ends */
const CUT_MARGIN_BYTES = 40

test("subscribeForever on a whole feed: a drop after the first push of a write, every datastream of it once", { timeout: 30_000 }, async () => {
    // keep-alive a loaded machine cannot miss by accident: this test is about the replay, not timing
    const server = await startTestServer({ heartbeatMs: 5000, faultyMs: 10_000, timeoutMs: 20_000 })
    const proxy = await startFaultProxy({ target: { port: server.appPort } })
    const { masterKey, feedId } = server.credentials
    const put = (datastreams: { id: string; current_value: string }[]) =>
        fetch(`http://127.0.0.1:${server.appPort}/v2/feeds/${feedId}`, {
            method: "PUT",
            headers: { "X-ApiKey": masterKey, "content-type": "application/json" },
            body: JSON.stringify({ datastreams }),
        }).then(async (r) => assert.ok(r.status < 300, `write: ${r.status} ${await r.text()}`))

    const got: Response[] = []
    let subscribed = 0
    /** pushes handed on when the link was lost */
    let gotAtLoss: number | undefined
    const abort = new AbortController()
    const run = subscribeForever({
        server: `ws://127.0.0.1:${proxy.port}/ws`,
        apiKey: masterKey,
        resource: `/feeds/${feedId}`,
        onPush: (p) => got.push(p),
        onEvent: (e) => {
            if (e.kind === "subscribed") subscribed++
            if (e.kind === "lost") gotAtLoss ??= got.length
        },
        random: () => 0.5,
        sleep: async () => {}, // reconnect at once: the backoff is tested in pure.test.ts
        signal: abort.signal,
    })
    try {
        await until("the subscription", () => subscribed === 1)
        // how long the first push of the write below is on the wire: one of the same length, measured
        const before = proxy.stats().bytesDown
        await put([{ id: "a", current_value: "0" }])
        await until("the measuring push", () => got.length === 1)
        const firstPushBytes = proxy.stats().bytesDown - before
        proxy.cut(firstPushBytes + CUT_MARGIN_BYTES, { frame: "raw", dir: "down" }) // one connection, then it disarms
        // one write, one server stamp for all three datastreams, pushed in the body's order
        await put([
            { id: "a", current_value: "1" },
            { id: LONG_ID("b"), current_value: LONG_VALUE },
            { id: LONG_ID("c"), current_value: LONG_VALUE },
        ])
        await until("the reconnect", () => subscribed === 2)
        assert.equal(proxy.stats().cuts, 1)
        await put([{ id: "done", current_value: "1" }])
        await until("the write after the reconnect", () => got.some((p) => p.body?.id === "done"))
        const write = got.slice(1, -1)
        assert.equal(gotAtLoss, 2, "the link was cut after the write's first push")
        assert.equal(write[0]?.body?.id, "a")
        assert.deepEqual(write.map((p) => p.body?.id).sort(), ["a", LONG_ID("b"), LONG_ID("c")], "every datastream of the cut write, once")
        assert.equal(new Set(write.map((p) => p.body?.at)).size, 1, "the write's datastreams share one stamp")
    } finally {
        abort.abort()
        await run
        await proxy.close()
        await server.stop()
    }
})
