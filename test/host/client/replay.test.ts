// The reconnecting subscriber (`feedline sub`, the dashboard's twin) catches up a backlog longer than
// one replay [P§8]: a truncated acknowledgement is followed from next_since until a live one.
import { test } from "node:test"
import assert from "node:assert/strict"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { startServer } from "../../../devs/server/index.ts"
import { subscribeForever } from "../../../devs/client/subscriber.ts"
import type { Response } from "../../../src/protocol.ts"

test("subscribeForever: 40 missed points in replays of 16, each once and in order, then live", { timeout: 30_000 }, async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "feedline-replay-"))
    // a keep-alive a loaded machine cannot miss by accident: this test is about replay, not timing
    const server = await startServer({ dataDir, devicePort: 0, appPort: 0, logLevel: "silent", heartbeatMs: 1000, faultyMs: 5000, timeoutMs: 15_000 })
    const { masterKey, feedId } = server.credentials
    const put = (value: string, at?: number) =>
        fetch(`http://127.0.0.1:${server.appPort}/v2/feeds/${feedId}/datastreams/cmd/datapoints`, {
            method: "POST",
            headers: { "X-ApiKey": masterKey, "content-type": "application/json" },
            body: JSON.stringify({ datapoints: [{ at: at === undefined ? undefined : new Date(at).toISOString(), value }] }),
        }).then((r) => assert.ok(r.status < 300, `write ${value}: ${r.status}`))
    const start = Date.parse("2026-01-01T00:00:00.000Z")
    for (let i = 1; i <= 40; i++) await put(String(i), start + i * 1000)

    const seen: string[] = []
    const abort = new AbortController()
    let live: () => void
    const gotLive = new Promise<void>((r) => (live = r))
    const run = subscribeForever({
        server: `ws://127.0.0.1:${server.appPort}/ws`,
        apiKey: masterKey,
        resource: `/feeds/${feedId}/datastreams/cmd`,
        since: new Date(start).toISOString(),
        params: { limit: 16 },
        onPush: (p: Response) => {
            seen.push(String(p.body?.current_value))
            if (p.body?.current_value === "live") live()
        },
        signal: abort.signal,
    })
    try {
        const deadline = Date.now() + 15_000
        while (seen.length < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
        assert.equal(seen.length, 40, `caught up ${seen.length} of 40 missed points`)
        await put("live")
        await gotLive
        assert.deepEqual(seen, [...Array.from({ length: 40 }, (_, i) => String(i + 1)), "live"])
    } finally {
        abort.abort()
        await run
        await server.close()
        fs.rmSync(dataDir, { recursive: true, force: true })
    }
})
