// Durability [#18 item 7]: an acknowledgement promises the write survives a power cut. Two things
// make that true and each is asserted here, since a SIGKILL cannot show either missing (the page
// cache survives a killed process):
//   - the default store, as `feedline serve` opens it, commits with synchronous=FULL (the test harness
//     opens its stores with NORMAL for speed, so the other suites cannot see this);
//   - no acknowledgement leaves before its commit returned: the store's commit is held open (CommitGate)
//     and the acknowledgement must wait for it, on every door.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import { startServerProcess } from "../../../e2e/server-process.ts"
import { CommitGate } from "../../harness/commit-gate.ts"
import { http, startTestServer, TlsClient, WsClient, type TestServer } from "../../harness/server-harness.ts"

test("the default store commits with synchronous=FULL (WAL), as `feedline serve` opens it", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-durability-"))
    try {
        // the server logs what SQLite reports for its connection when it starts listening
        const server = await startServerProcess({ dataDir, args: ["--log-level", "info"] })
        await server.stop("SIGTERM")
        const listening = server
            .output()
            .split("\n")
            .filter((l) => l.startsWith("{"))
            .map((l) => JSON.parse(l))
            .find((o) => o.msg === "feedline server listening")
        assert.ok(listening, `no "feedline server listening" line in:\n${server.output()}`)
        assert.deepEqual(listening.store, { journalMode: "wal", synchronous: "FULL" })
        // the check can fail: a store asked for NORMAL reports NORMAL
        const normal = new SqliteStore({ path: join(dataDir, "normal.db"), synchronous: "NORMAL" })
        assert.equal(normal.durability().synchronous, "NORMAL")
        await normal.close()
        const byDefault = new SqliteStore({ path: join(dataDir, "default.db") })
        assert.equal(byDefault.durability().synchronous, "FULL")
        await byDefault.close()
    } finally {
        rmSync(dataDir, { recursive: true, force: true })
    }
})

const WRITE = (token: string, stream: string) => ({ method: "put", resource: "/feeds/1", body: { datastreams: [{ id: stream, current_value: "1" }] }, token })
/** answered at once, without the store and without waiting for the connection's writes: proof that lines sent before it have arrived */
const PROBE = JSON.stringify({ method: "fly", resource: "/feeds/1", token: "probe" })

async function withGatedServer(body: (s: TestServer, gate: CommitGate) => Promise<void>) {
    const gate = new CommitGate()
    const s = await startTestServer({ wrapStore: gate.wrap })
    try {
        await body(s, gate)
    } finally {
        gate.release()
        await s.stop()
    }
}

async function stored(s: TestServer, stream: string): Promise<string | undefined> {
    return (await http(s, "GET", `/v2/feeds/1/datastreams/${stream}`, { key: s.credentials.deviceKey })).body?.current_value
}

for (const door of ["TLS", "WebSocket"] as const) {
    test(`no acknowledgement leaves before its commit returned (${door})`, async () => {
        await withGatedServer(async (s, gate) => {
            const c = door === "TLS" ? await TlsClient.open(s, s.credentials.deviceKey) : await WsClient.open(s)
            if (door === "WebSocket") {
                await c.welcome()
                assert.equal((await c.request({ method: "get", resource: "/session", headers: { "X-ApiKey": s.credentials.deviceKey } })).status, 200)
            }
            gate.hold()
            c.sendRaw(JSON.stringify(WRITE("w", "held")))
            await gate.reached(gate.entered + 1) // the server handed the write to the store, which holds its commit
            c.sendRaw(PROBE)
            const probe = await c.response("probe")
            assert.equal(probe.response!.body.code, "E_BAD_METHOD", probe.raw)
            const ackIndex = c.q.lines.findIndex((l) => l.response?.token === "w")
            assert.equal(ackIndex, -1, "the write was acknowledged while its commit was held open")
            assert.equal(gate.committed, 0)
            gate.release()
            const ack = await c.response("w")
            assert.equal(ack.response!.status, 200)
            assert.equal(gate.committed, 1, "the commit returned before the acknowledgement arrived")
            assert.equal(await stored(s, "held"), "1")
            c.close()
        })
    })
}

test("no acknowledgement leaves before its commit returned (HTTP)", async () => {
    await withGatedServer(async (s, gate) => {
        gate.hold()
        let answered = false
        const put = http(s, "PUT", "/v2/feeds/1", { key: s.credentials.deviceKey, body: { datastreams: [{ id: "held", current_value: "1" }] } }).finally(() => (answered = true))
        await gate.reached(gate.entered + 1)
        // a round trip on another connection: an answer the server sent on receipt would have come by now
        assert.equal((await http(s, "GET", "/healthz")).status, 200)
        assert.equal(answered, false, "the PUT was answered while its commit was held open")
        gate.release()
        assert.equal((await put).status, 200)
        assert.equal(gate.committed, 1)
        assert.equal(await stored(s, "held"), "1")
    })
})
