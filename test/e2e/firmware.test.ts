// End to end: the real firmware link in the DeviceScript simulator, through a fault-injection proxy,
// to the real server over TLS with its dev CA. One simulator run goes through every phase in order
// (starting the simulator costs seconds); the checks are made on the server side, over HTTP.
// Timings (dead-link detection, reconnect) are printed, and asserted only with wide margins.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import { startServer, type RunningServer } from "../../devs/server/index.ts"
import { FaultProxy } from "../../devs/faultproxy/proxy.ts"
import { api, counterAndEchoApp, datapoints, deviceSettings, genEntry, runFirmware, VM_START_MS, type FirmwareRun } from "./firmware-harness.ts"
import { SERVER_POLL_MS, until } from "../host/harness/until.ts"

/** [P§4] the keep-alive contract the server announces in tests: a dead link must be noticed within TIMEOUT_MS */
const TIMEOUT_MS = 3000
/** generous bounds: a loaded 2-core machine runs the simulator slowly */
const SLACK_MS = 5000
const SAMPLE_PERIOD_MS = 100

const APP = counterAndEchoApp(SAMPLE_PERIOD_MS)

describe("firmware end to end (simulator, TLS, real server)", { timeout: 240_000 }, () => {
    let dataDir: string
    let server: RunningServer
    let proxy: FaultProxy
    let fw: FirmwareRun
    let key: string
    let feed: number
    let startedMs: number

    const appPort = () => server.appPort
    const upLine = /^link: greeting -> up/
    const downLine = /^link: (up|degraded) -> down/

    async function echoes(): Promise<string[]> {
        return (await datapoints(appPort(), key, feed, "cmd_echo")).map((p) => p.value)
    }

    before(async () => {
        dataDir = mkdtempSync(join(tmpdir(), "feedline-fw-e2e-"))
        server = await startServer({ dataDir, devicePort: 0, appPort: 0, logLevel: "silent", timeoutMs: TIMEOUT_MS })
        key = server.credentials.masterKey
        feed = server.credentials.feedId
        proxy = await new FaultProxy({ target: { port: server.devicePort } }).start()
        const entry = genEntry("e2e", deviceSettings(proxy.port, server.credentials, { DIAG_S: 2 }), APP)
        startedMs = Date.now()
        fw = runFirmware(entry, server.caCertPath, 220_000)
        await fw.waitFor(upLine, VM_START_MS)
    })

    after(async () => {
        await fw?.stop()
        await proxy?.close()
        await server?.close()
        if (dataDir) rmSync(dataDir, { recursive: true, force: true })
    })

    test("datapoints arrive with sane timestamps, in order, one per sample", async () => {
        const points = await until("10 seq datapoints", async () => {
            const p = await datapoints(appPort(), key, feed, "seq")
            return p.length >= 10 ? p : undefined
        }, 15_000, SERVER_POLL_MS)
        const now = Date.now()
        let prev = 0
        points.forEach((p, i) => {
            const at = Date.parse(p.at)
            assert.ok(at >= startedMs - 1000 && at <= now + 1000, `at ${p.at} is outside the test's run`)
            assert.ok(at > prev, "ats increase")
            prev = at
            assert.equal(p.value, String(i), "values are the counter, none missing")
        })
        // about SAMPLE_PERIOD_MS apart: the device clock maps onto the server clock
        const spanMs = Date.parse(points[9].at) - Date.parse(points[0].at)
        assert.ok(spanMs >= 9 * SAMPLE_PERIOD_MS * 0.5 && spanMs <= 9 * SAMPLE_PERIOD_MS * 10, `9 periods took ${spanMs} ms`)
    })

    test("a value written over HTTP reaches the device's handler", async () => {
        const r = await api(appPort(), key, "PUT", `/feeds/${feed}/datastreams/cmd`, { current_value: "42" })
        assert.ok(r.status < 300, JSON.stringify(r))
        await until("cmd_echo 42", async () => (await echoes()).includes("42"), 10_000, SERVER_POLL_MS)
    })

    test(`a server that goes silent without closing is detected within timeout (${TIMEOUT_MS} ms) + ${SLACK_MS} ms for a loaded machine, and the device reconnects`, async () => {
        const from = fw.lines.length
        const t0 = Date.now()
        proxy.blackhole({ scope: "existing" }) // established connections swallow everything; new ones pass
        const down = await fw.waitFor(downLine, TIMEOUT_MS + SLACK_MS, from)
        const detectMs = down.atMs - t0
        assert.match(down.text, /E_SILENT|E_ACK_TIMEOUT/)
        const up = await fw.waitFor(upLine, 15_000, from)
        const reconnectMs = up.atMs - down.atMs
        console.log(`# e2e: dead link detected after ${detectMs} ms (timeout ${TIMEOUT_MS} ms); reconnected ${reconnectMs} ms later`)
        // the exact thresholds are checked in the VM tests with a hand-moved clock; here only the bound above
        proxy.clear()
    })

    test("pushes sent while the device was offline arrive after the reconnect, once", async () => {
        const from = fw.lines.length
        proxy.refuse()
        proxy.reset()
        await fw.waitFor(/-> down/, TIMEOUT_MS + SLACK_MS, from)
        for (const v of ["43", "44"]) {
            const r = await api(appPort(), key, "PUT", `/feeds/${feed}/datastreams/cmd`, { current_value: v })
            assert.ok(r.status < 300, JSON.stringify(r))
        }
        await new Promise((r) => setTimeout(r, 500))
        assert.ok(!(await echoes()).includes("43"), "the device cannot have seen 43 yet")
        proxy.accept()
        await fw.waitFor(upLine, 15_000, from)
        await until("cmd_echo 43 and 44", async () => {
            const e = await echoes()
            return e.includes("43") && e.includes("44")
        }, 10_000, SERVER_POLL_MS)
        await new Promise((r) => setTimeout(r, 500))
        assert.deepEqual(await echoes(), ["42", "43", "44"], "each command handled once, in order")
    })

    test("a slow, jittery, fragmented network: the link stays up and samples keep arriving", async () => {
        const from = fw.lines.length
        const before = (await datapoints(appPort(), key, feed, "seq")).length
        const t0 = Date.now()
        proxy.latency(150, { jitterMs: 50 })
        proxy.split(7, { gapMs: 1 })
        // until 20 more samples are stored through it (2 s of samples), however long a loaded machine takes
        const arrived = await until("20 samples through the slow network", async () => {
            const n = (await datapoints(appPort(), key, feed, "seq")).length - before
            return n >= 20 ? n : undefined
        }, 30_000, SERVER_POLL_MS).finally(() => proxy.clear())
        const drops = fw.lines.slice(from).filter((l) => downLine.test(l.text)).map((l) => l.text)
        console.log(`# e2e: slow network: ${arrived} samples stored in ${Date.now() - t0} ms, disconnects: ${drops.length ? drops.join("; ") : "none"}`)
        assert.deepEqual(drops, [], "the link stayed up")
        // nothing lost or doubled: checked over the whole run by the last test
    })

    test("killing the server for 2 s and restarting it on the same data dir loses no sample and duplicates none", async () => {
        const devicePort = server.devicePort
        const port = server.appPort
        const from = fw.lines.length
        await server.close()
        await fw.waitFor(/-> down/, TIMEOUT_MS + SLACK_MS, from)
        await new Promise((r) => setTimeout(r, 2000))
        server = await startServer({ dataDir, devicePort, appPort: port, logLevel: "silent", timeoutMs: TIMEOUT_MS })
        await fw.waitFor(upLine, 15_000, from)
        // once the outbox drained, every counter value up to the highest stored is there once: wait for
        // that (or the deadline), then check it
        const counter = async () => (await datapoints(appPort(), key, feed, "seq")).map((p) => Number(p.value))
        const contiguous = (v: number[]) => v.length === Math.max(...v) + 1
        const values = await until("the outbox to drain", async () => {
            const v = await counter()
            return contiguous(v) ? v : undefined
        }, 20_000, SERVER_POLL_MS).catch(counter)
        const max = Math.max(...values)
        assert.ok(max > 40, `the counter reached ${max}`)
        assert.equal(values.length, max + 1, `${max + 1 - values.length} samples lost or doubled`)
        values.forEach((v, i) => assert.equal(v, i))
        const reconnects = await datapoints(appPort(), key, feed, "_reconnects")
        assert.ok(reconnects.length > 0, "diagnostics datastreams are published")
    })

    // a test of its own, not an `after` check: node:test does not count a failing hook of a describe
    test("the VM went through every phase without a panic or running out of memory", async () => {
        const code = await fw.stop() // all of its output is in
        assert.ok(!/PANIC|OutOfMemory|InfiniteLoop/.test(fw.output()), `the VM failed (exit ${code}):\n${fw.output().slice(-3000)}`)
    })
})

test("a server certificate the device does not trust: a clear reason, and the link keeps retrying", { timeout: 150_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-fw-cert-"))
    const server = await startServer({ dataDir, devicePort: 0, appPort: 0, logLevel: "silent" })
    const entry = genEntry("untrusted", deviceSettings(server.devicePort, server.credentials, { BACKOFF_MS: 100, BACKOFF_MAX_S: 0.2 }), "")
    const fw = runFirmware(entry, undefined, 140_000)
    try {
        const down = await fw.waitFor(/-> down \(E_SOCKET/, VM_START_MS)
        console.log(`# e2e: ${down.text}`)
        assert.match(down.text, /certificate/, "the reason names the certificate problem")
        await fw.waitFor(/attempt 3 /, 15_000)
    } finally {
        await fw.stop()
        await server.close()
        rmSync(dataDir, { recursive: true, force: true })
    }
})
