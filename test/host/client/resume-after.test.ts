// subscribeForever resumes with `after` (the server's write order) [P§8]: a device that backfills while the
// subscriber is away (its outbox sent after a reconnect: points with their own `at`, older than the last one
// the subscriber handled) has them delivered once, in the order they were written. A resume with `since`
// (by `at`) leaves them out. The first subscribe asks for history from a time (`since` with "after":"latest").
import { test } from "node:test"
import assert from "node:assert/strict"
import { startFaultProxy } from "../../../devs/faultproxy/proxy.ts"
import { subscribeForever } from "../../../devs/client/subscriber.ts"
import type { Response } from "../../../src/protocol.ts"
import { startTestServer } from "../harness/server-harness.ts"
import { until } from "../harness/until.ts"

test("subscribeForever: a backfill written while the subscriber was away is delivered once, in write order, after history from --since", { timeout: 30_000 }, async () => {
    const server = await startTestServer({ heartbeatMs: 5000, faultyMs: 10_000, timeoutMs: 20_000 })
    const proxy = await startFaultProxy({ target: { port: server.appPort } })
    const { masterKey, feedId } = server.credentials
    const T0 = Date.now() - 3_600_000
    const write = (stream: string, atMs: number, value: string) =>
        fetch(`http://127.0.0.1:${server.appPort}/v2/feeds/${feedId}`, {
            method: "PUT",
            headers: { "X-ApiKey": masterKey, "content-type": "application/json" },
            body: JSON.stringify({ datastreams: [{ id: stream, datapoints: [{ at: atMs, value }] }] }),
        }).then(async (r) => assert.ok(r.status < 300, `write: ${r.status} ${await r.text()}`))

    await write("t", T0 - 1, "before since")
    await write("t", T0 + 1, "h1")
    await write("u", T0 + 2, "h2")

    const got: Response[] = []
    let subscribed = 0
    let lost = 0
    /** the subscriber stays away until this is resolved */
    let comeBack!: () => void
    const away = new Promise<void>((resolve) => (comeBack = resolve))
    const abort = new AbortController()
    const run = subscribeForever({
        server: `ws://127.0.0.1:${proxy.port}/ws`,
        apiKey: masterKey,
        resource: `/feeds/${feedId}`,
        since: new Date(T0).toISOString(),
        onPush: (p) => got.push(p),
        onEvent: (e) => {
            if (e.kind === "subscribed") subscribed++
            if (e.kind === "lost") lost++
        },
        random: () => 0.5,
        sleep: () => away,
        signal: abort.signal,
    })
    const values = () => got.map((p) => p.body?.current_value)
    try {
        await until("the history from since", () => subscribed === 1 && got.length === 2)
        await write("t", T0 + 10, "live")
        await until("the live push", () => got.length === 3)

        proxy.reset() // the subscriber is away...
        await until("the loss", () => lost === 1)
        // ...while a device sends its outbox: a point older than the last one handled, then a newer one
        await write("u", T0 + 5, "backfill")
        await write("t", T0 + 20, "newer")
        comeBack()
        await until("the resume", () => subscribed === 2)
        await write("t", T0 + 30, "end")
        await until("the write after the resume", () => values().includes("end"))

        assert.deepEqual(values(), ["h1", "h2", "live", "backfill", "newer", "end"], "every point once, the backfill in write order")
        const seqs = got.slice(2).map((p) => p.body?.seq)
        assert.ok(seqs.every((s, i) => typeof s === "number" && (i === 0 || s > seqs[i - 1])), `pushes after the history carry increasing seqs: ${seqs}`)
    } finally {
        abort.abort()
        comeBack()
        await run
        await proxy.close()
        await server.stop()
    }
})
