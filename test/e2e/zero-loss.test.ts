// The zero-loss contract, end to end (issue 6): the real firmware link in the DeviceScript simulator,
// through the fault-injection proxy, to the real server in a child process (`feedline serve`, so it
// can be SIGKILLed and started again on the same data folder and ports).
//
// The device app numbers its samples (`seq` = 1, 2, 3, … every SAMPLE_MS, policy "every") and prints
// `produced n outbox d drops k` after each; it echoes every `cmd` push to `cmd_echo` and prints
// `handled cmd v`. One schedule of faults runs against it (the `before` below); each contract is then
// one test on what the device printed and what the server stored:
//   - every sample stored exactly once (drops only as many as the device counted: none at this rate);
//   - every command handled exactly once, also those written while the device was away, and the
//     two written in one go (usually stamped in one millisecond, each with its own `at` [P§9]; the
//     test after the suite makes the same millisecond certain with a frozen server clock);
//   - a silent (black-holed) link reported degraded, then detected within `timeout` (+ a margin for
//     a loaded machine);
//   - the reported states follow the link's state machine;
//   - what the server acknowledged before a SIGKILL is in its history after the restart: counted from
//     the acknowledgements the server sent (read by a TLS relay between the proxy and the server,
//     test/e2e/tls-tap.ts), not from the device's last print before the kill, which leaves out the
//     newest acknowledged samples, exactly those an acknowledgement sent before its commit would lose.
// Timings are printed as `# …` lines; only the detection bound is asserted. Two tests after it hold
// what the suite found on the server's side of a command: two writes the server stamps in one
// millisecond are both kept [P§9]; a device away while 400 commands were written catches up in cut
// replays it can hold, without running out of memory [P§8].
//
// Rerun: node --import tsx --test test/e2e/zero-loss.test.ts
import assert from "node:assert/strict"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import tls from "node:tls"
import { before, after, describe, test } from "node:test"
import { FaultProxy, startFaultProxy } from "../../devs/faultproxy/proxy.ts"
import { startServer } from "../../devs/server/index.ts"
import { accountAfterStop, api, genEntry, runFirmware, VM_START_MS, type FirmwareRun, type VmLine } from "./firmware-harness.ts"
import { SERVER_POLL_MS, until } from "../host/harness/until.ts"
import { numberedSamplesApp } from "./numbered-samples.ts"
import { startServerProcess, type ServerProcess } from "./server-process.ts"
import { acknowledgedValues, startTlsTap, type TlsTap } from "./tls-tap.ts"
import { ensureDevCertificate } from "../../devs/server/tls/devca.ts"
import { accountSamples, lastProduced, percentile, stateMachineErrors, transitions, type SampleAccount } from "./zero-loss-checks.ts"

/** [P§4] the keep-alive contract the server announces (its defaults, passed explicitly) */
const HEARTBEAT_MS = 300
const FAULTY_MS = 1000
const TIMEOUT_MS = 3000
/** a silent link must be declared dead within TIMEOUT_MS plus this: the link ticks every 100 ms, and a loaded 2-core machine delays the VM and its output */
const DETECT_MARGIN_MS = 2500
/** one sample every SAMPLE_MS: about 7 per second, far below what the outbox (16000 B ≈ 240 samples) holds through any outage below */
const SAMPLE_MS = 150
/** waiting for the device to come back or for the history to fill: bounds, not measurements */
const WAIT_MS = 25_000
/** a black-hole lasts until the device noticed, plus this (so commands can be written while it is away) */
const AWAY_AFTER_DETECT_MS = 700
/** how long the device runs clean between faults, producing samples */
const CALM_MS = 1200
/** slow-link and tiny-write phases last this long */
const DEGRADED_PHASE_MS = 3500

const APP = numberedSamplesApp(SAMPLE_MS)

const UP = /^link: greeting -> up/
const DOWN_FROM_UP = /^link: (up|degraded) -> down/

/** One fault of the schedule, as measured. */
interface FaultRun {
    name: string
    /** the link goes silent without closing: the keep-alive must find it */
    silent: boolean
    startMs: number
    /** the device's `up -> degraded` line between the fault and `down`, if any (silence longer than `faulty`) */
    degraded?: VmLine
    /** the device's `up|degraded -> down` line */
    down?: VmLine
    /** when the way back to the server was open again (the fault lifted, the server restarted) */
    restoredMs?: number
    /** the device's next `greeting -> up` line */
    up?: VmLine
}

interface Findings {
    faults: FaultRun[]
    /** every command written over HTTP, in order, and whether the device was away when it was written */
    commands: { value: string; away: boolean }[]
    /** the samples the server acknowledged before the SIGKILL (its acks, as they passed the relay), and how many of them the restarted server had */
    ackedBeforeKill: number
    ackedFoundAfterKill: number
    /** what the device's last print before the kill counted as acknowledged (produced - outbox): printed, for comparison */
    deviceCountedBeforeKill: number
    droppedBeforeKill: number
    produced: number
    drops: number
    /** p2's stamp minus p1's (written in one go): 1 when the server stamped them in one millisecond, or across one tick */
    p1p2StampGapMs: number
    /** p1 is in the history (p2 did not replace it [P§9]) */
    p1Kept: boolean
    /** the last `_drops` diagnostic stored */
    diagDrops: number
    account: SampleAccount
    echoes: string[]
    handled: string[]
    /** disconnects during the slow-link phase and the tiny-writes phase before its reset (expected 0; printed) */
    slowLinkDrops: number
    tinyWriteDrops: number
}

/** Every stored datapoint of a stream, oldest first, rows as the server returns them (nothing merged: duplicates must show). */
async function historyRows(appPort: number, key: string, feed: number, stream: string): Promise<{ at: string; value: string }[]> {
    const rows: { at: string; value: string }[] = []
    let start = 0
    for (;;) {
        const r = await api(appPort, key, "GET", `/feeds/${feed}/datastreams/${stream}/datapoints?start=${start}&limit=1000`)
        if (r.status === 404) return rows
        assert.equal(r.status, 200, `history of ${stream}: ${JSON.stringify(r.body)}`)
        const page: { at: string; value: string }[] = r.body.datapoints ?? []
        rows.push(...page)
        if (page.length < 1000) return rows
        start = Date.parse(page[page.length - 1].at) + 1
    }
}

/**
 * Writes `values` to `stream` as pipelined requests in ONE write on one device-port connection, so the
 * server handles them in one turn, (almost always) in one millisecond.
 */
async function writeInOneGo(devicePort: number, caCertPath: string, key: string, feed: number, stream: string, values: string[]): Promise<void> {
    const sock = tls.connect({ host: "127.0.0.1", port: devicePort, ca: readFileSync(caCertPath) })
    const responses: any[] = []
    let buf = ""
    try {
        await new Promise<void>((resolve, reject) => {
            sock.on("error", reject)
            sock.on("data", (d) => {
                buf += d
                for (let nl; (nl = buf.indexOf("\n")) >= 0; buf = buf.slice(nl + 1)) {
                    const line = buf.slice(0, nl)
                    if (!line) continue
                    const o = JSON.parse(line)
                    if (o.welcome) {
                        const req = (v: string, i: number) => JSON.stringify({ method: "put", resource: `/feeds/${feed}/datastreams/${stream}`, headers: { "X-ApiKey": key }, body: { current_value: v }, token: `w${i}` })
                        sock.write(values.map(req).join("\n") + "\n")
                    } else if (o.token) responses.push(o)
                    if (responses.length === values.length) resolve()
                }
            })
        })
    } finally {
        sock.destroy()
    }
    for (const r of responses) assert.equal(r.status, 200, JSON.stringify(r))
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const fmt = (ms: number) => (Number.isNaN(ms) ? "-" : `${Math.round(ms)} ms`)

describe("zero loss end to end: firmware (simulator) -> fault proxy -> server (child process)", { timeout: 240_000 }, () => {
    let dataDir: string
    let server: ServerProcess
    let proxy: FaultProxy
    let tap: TlsTap
    /** the `seq` values the server acknowledged before the SIGKILL */
    let acknowledged = new Set<string>()
    let fw: FirmwareRun
    let key = ""
    let feed = 0
    const rec = { faults: [], commands: [] } as unknown as Findings

    const serverArgs = ["--heartbeat-ms", String(HEARTBEAT_MS), "--faulty-ms", String(FAULTY_MS), "--timeout-ms", String(TIMEOUT_MS)]
    const restartServer = async () => {
        server = await startServerProcess({ dataDir, devicePort: server.devicePort, appPort: server.appPort, args: serverArgs })
    }
    /** the device's state as its last transition line says */
    const deviceState = () => transitions(fw.lines).pop()?.to ?? "offline"
    const deviceAway = () => !["up", "degraded"].includes(deviceState())
    const awaitUpAfter = async (from: number) => fw.waitFor(UP, WAIT_MS, from)
    const ensureUp = async () => {
        if (deviceAway()) await awaitUpAfter(fw.lines.length)
    }
    /** `away`: the caller knows the device cannot hear the server now (its link is black-holed); else its last reported state decides */
    const writeCommand = async (value: string, away = deviceAway()) => {
        const r = await api(server.appPort, key, "PUT", `/feeds/${feed}/datastreams/cmd`, { current_value: value })
        assert.equal(r.status, 200, `writing cmd ${value}: ${JSON.stringify(r.body)}`)
        rec.commands.push({ value, away })
    }

    /**
     * Runs one fault that takes the device away: `begin` starts it, `whileAway` runs once the device
     * noticed (down line), then `restore` lifts it. Measures detection and reconnect.
     */
    const runFault = async (name: string, silent: boolean, steps: { begin(): Promise<void> | void; whileAway?(): Promise<void>; restore?(): Promise<void> | void }) => {
        await ensureUp()
        await sleep(CALM_MS)
        await ensureUp()
        const from = fw.lines.length
        const f: FaultRun = { name, silent, startMs: Date.now() }
        rec.faults.push(f)
        await steps.begin()
        f.down = await fw.waitFor(DOWN_FROM_UP, WAIT_MS, from)
        f.degraded = fw.lines.slice(from, fw.lines.indexOf(f.down)).find((l) => /^link: up -> degraded/.test(l.text))
        if (steps.whileAway) await steps.whileAway()
        if (steps.restore) await steps.restore()
        f.restoredMs = Date.now()
        f.up = await awaitUpAfter(fw.lines.indexOf(f.down) + 1)
    }

    before(async () => {
        dataDir = mkdtempSync(join(tmpdir(), "feedline-zero-loss-"))
        server = await startServerProcess({ dataDir, args: serverArgs })
        key = server.credentials.masterKey
        feed = server.credentials.feedId
        // device -> fault proxy -> TLS relay (records the server's acknowledgements) -> server
        const cert = await ensureDevCertificate(dataDir)
        tap = await startTlsTap({ targetPort: server.devicePort, certPath: cert.certPath, keyPath: cert.keyPath, caCertPath: cert.caCertPath })
        proxy = await startFaultProxy({ target: { port: tap.port } })
        const entry = genEntry(
            "zero-loss",
            {
                SRV_HOST: "localhost",
                SRV_PORT: proxy.port,
                FEED_ID: feed,
                API_KEY: server.credentials.deviceKey,
                DIAG_S: 2,
                BACKOFF_MS: 200,
                BACKOFF_MAX_S: 1,
                CONNECT_S: 5,
                REBOOT_MIN: 0, // the simulator cannot reboot
            },
            APP
        )
        const t0 = Date.now()
        fw = runFirmware(entry, server.caCertPath, 220_000)
        await fw.waitFor(UP, VM_START_MS)
        console.log(`zero-loss: simulator up ${Date.now() - t0} ms after start`)

        // the first command ever is written while the device is away: its subscription has seen no
        // push yet, and must still catch up after the reconnect
        await runFault("reset, server unreachable", false, {
            begin: () => {
                proxy.refuse()
                proxy.reset()
            },
            whileAway: () => writeCommand("c0"),
            restore: () => proxy.accept(),
        })
        await writeCommand("c1") // the device is up: handled live
        // two commands in one go: handled by the server in one millisecond, each gets its own stamp
        // [P§9], so both are pushed and the device must handle both, in order
        await ensureUp()
        await sleep(CALM_MS) // the subscription is live by now: this is about live pushes
        await writeInOneGo(server.devicePort, server.caCertPath, key, feed, "cmd", ["p1", "p2"])
        rec.commands.push({ value: "p1", away: false }, { value: "p2", away: false })
        const cmdRows = await historyRows(server.appPort, key, feed, "cmd")
        rec.p1Kept = cmdRows.some((p) => p.value === "p1")
        const stampOf = (v: string) => Date.parse(cmdRows.find((p) => p.value === v)?.at ?? "")
        rec.p1p2StampGapMs = stampOf("p2") - stampOf("p1")

        // a reset (RST both ways), as when a NAT box or the server's host drops the connection
        await runFault("reset", false, { begin: () => proxy.reset() })

        // a Wi-Fi drop: nothing passes, nothing closes (also not new connections), longer than `timeout`
        await runFault("black-hole (Wi-Fi drop)", true, {
            begin: async () => {
                proxy.blackhole()
                await writeCommand("b1", true) // pushed into the void: must come back through since
            },
            whileAway: async () => {
                await writeCommand("b2")
                await sleep(AWAY_AFTER_DETECT_MS)
            },
            restore: () => proxy.clear(),
        })

        // a lost NAT mapping: the open connection goes silent for good, new connections work
        await runFault("black-hole (lost NAT mapping)", true, {
            begin: async () => {
                proxy.blackhole({ scope: "existing" })
                await writeCommand("n1", true)
            },
            restore: () => proxy.clear(),
        })

        // the server dies (SIGKILL) and comes back on the same data folder; the proxy refuses the
        // device meanwhile, so the history can be checked and commands written while it is away
        await runFault("server SIGKILL + restart", false, {
            begin: async () => {
                const killMs = Date.now()
                await server.stop("SIGKILL")
                proxy.refuse()
                // every acknowledgement the killed server sent has passed the relay once its connections closed
                await until("the relay's connections to the killed server to close", async () => tap.open() === 0, WAIT_MS, SERVER_POLL_MS)
                acknowledged = acknowledgedValues(tap.lines, "seq")
                rec.ackedBeforeKill = acknowledged.size
                const last = lastProduced(fw.lines, killMs)
                assert.ok(last, "the device printed its sample count before the kill")
                rec.deviceCountedBeforeKill = last.produced - last.outbox
                rec.droppedBeforeKill = last.drops
            },
            whileAway: async () => {
                await restartServer()
                const stored = new Set((await historyRows(server.appPort, key, feed, "seq")).map((p) => p.value))
                rec.ackedFoundAfterKill = [...acknowledged].filter((v) => stored.has(v)).length
                await writeCommand("k1")
                await writeCommand("k2")
            },
            restore: () => proxy.accept(),
        })

        // a graceful restart: the server's 503 notice, then the same folder and ports again
        await runFault("server SIGTERM + restart", false, {
            begin: async () => {
                await server.stop("SIGTERM")
            },
            whileAway: async () => {
                proxy.refuse()
                await restartServer()
                await writeCommand("g1")
            },
            restore: () => proxy.accept(),
        })

        // a slow link: latency with jitter and a bandwidth limit; the link should keep working through it
        await ensureUp()
        let from = fw.lines.length
        proxy.latency(150, { jitterMs: 100, forMs: DEGRADED_PHASE_MS })
        proxy.throttle(4000, { forMs: DEGRADED_PHASE_MS })
        await writeCommand("s1")
        await sleep(DEGRADED_PHASE_MS)
        rec.slowLinkDrops = fw.lines.slice(from).filter((l) => DOWN_FROM_UP.test(l.text)).length

        // tiny writes: every write in 8-byte pieces, also through a reconnect (the TLS handshake in
        // pieces). The pieces end on their own, so a handshake too slow for a loaded machine cannot stall the run.
        from = fw.lines.length
        proxy.split(8, { gapMs: 1, forMs: 3 * DEGRADED_PHASE_MS })
        await writeCommand("t1")
        await sleep(DEGRADED_PHASE_MS / 2)
        rec.tinyWriteDrops = fw.lines.slice(from).filter((l) => DOWN_FROM_UP.test(l.text)).length
        await runFault("reset during tiny writes", false, { begin: () => proxy.reset() })
        proxy.clear()

        // a connection cut in the middle of a TLS record going up: the relay gets a partial record and
        // closes towards the server (the server's side of a cut record: test/host/faultproxy/with-server.test.ts)
        await runFault("cut mid-record", false, { begin: () => proxy.cut(60, { frame: "tls", dir: "up" }) })

        // the end: the device stops producing on command; then its history must fill up
        await ensureUp()
        await writeCommand("stop")
        Object.assign(rec, await accountAfterStop(fw, (stream) => historyRows(server.appPort, key, feed, stream), WAIT_MS))
        rec.echoes = await until("every command echoed", async () => {
            const e = (await historyRows(server.appPort, key, feed, "cmd_echo")).map((p) => p.value)
            return e.length >= rec.commands.length ? e : undefined
        }, WAIT_MS, SERVER_POLL_MS).catch(async () => (await historyRows(server.appPort, key, feed, "cmd_echo")).map((p) => p.value))
        await sleep(500) // a late duplicate would show now
        rec.echoes = (await historyRows(server.appPort, key, feed, "cmd_echo")).map((p) => p.value)
        // the device's own diagnostics must tell the same count of drops (DIAG_S: at most 2 s late)
        rec.diagDrops = await until("_drops to match the device's count", async () => {
            const v = (await historyRows(server.appPort, key, feed, "_drops")).pop()?.value
            return v !== undefined && Number(v) === rec.drops ? Number(v) : undefined
        }, WAIT_MS, SERVER_POLL_MS).catch(async () => Number((await historyRows(server.appPort, key, feed, "_drops")).pop()?.value ?? NaN))
        rec.handled = fw.lines.map((l) => /^handled cmd (.*)$/.exec(l.text)?.[1]).filter((v): v is string => v !== undefined)
        report()
    })

    function report() {
        for (const f of rec.faults) {
            const detect = f.down ? f.down.atMs - f.startMs : NaN
            const reconnect = f.up && f.down ? f.up.atMs - Math.max(f.down.atMs, f.restoredMs ?? 0) : NaN
            const reason = f.down ? /\((.*?)[;)]/.exec(f.down.text)?.[1] : "-"
            const degraded = f.degraded ? `degraded after ${fmt(f.degraded.atMs - f.startMs)}, ` : ""
            console.log(`zero-loss: ${f.name}: ${degraded}down after ${fmt(detect)} (${reason}), up again ${fmt(reconnect)} after the way was clear`)
        }
        const a = rec.account
        const { detect, reconnect } = timings()
        console.log(
            `zero-loss: produced ${rec.produced}, stored ${a.distinct}, dropped (counted) ${rec.drops}, lost ${a.lost}, duplicated ${a.stored - a.distinct}, ` +
                `silent-link detection p50 ${fmt(percentile(detect, 50))} max ${fmt(Math.max(...detect))} (timeout ${TIMEOUT_MS} ms), ` +
                `reconnect p50 ${fmt(percentile(reconnect, 50))} max ${fmt(Math.max(...reconnect))}`
        )
        console.log(`zero-loss: ${rec.commands.length} commands (${rec.commands.filter((c) => c.away).length} written while the device was away; p1 and p2 in one go, stamped ${rec.p1p2StampGapMs} ms apart), ${rec.handled.length} handled, ${rec.echoes.length} echoed`)
        console.log(`zero-loss: disconnects while the link was slow: ${rec.slowLinkDrops}; while writes went in 8-byte pieces: ${rec.tinyWriteDrops}`)
        console.log(
            `zero-loss: ${rec.ackedBeforeKill} samples acknowledged by the server before the SIGKILL (the device's last print counted ${rec.deviceCountedBeforeKill}), ` +
                `${rec.ackedFoundAfterKill} of them in the restarted server's history`
        )
    }

    function timings() {
        const detect = rec.faults.filter((f) => f.silent && f.down).map((f) => f.down!.atMs - f.startMs)
        const reconnect = rec.faults.filter((f) => f.up && f.down).map((f) => f.up!.atMs - Math.max(f.down!.atMs, f.restoredMs ?? 0))
        return { detect, reconnect }
    }

    after(async () => {
        await fw?.stop()
        if (fw) {
            // what the device printed, with the host's clock, for reading a failure
            const log = join(tmpdir(), "feedline-zero-loss-vm.log")
            writeFileSync(log, fw.lines.map((l) => `${new Date(l.atMs).toISOString()} ${l.text}`).join("\n") + "\n")
            console.log(`zero-loss: the device's output is in ${log}`)
        }
        await proxy?.close()
        await tap?.close()
        if (server?.alive()) await server.stop("SIGTERM")
        if (dataDir) rmSync(dataDir, { recursive: true, force: true })
    })

    test("every sample the device produced is stored exactly once", () => {
        const a = rec.account
        assert.ok(rec.produced > 100, `the device produced ${rec.produced} samples`)
        assert.deepEqual(a.foreign, [], "values that are no produced sample")
        assert.deepEqual(a.sharedAts, [], "two datapoints with one `at`")
        assert.deepEqual(a.duplicated, [], "samples stored twice")
        assert.equal(a.lost, 0, `samples lost without being counted as dropped: ${a.missing.slice(0, 50).join(",")}`)
        assert.equal(rec.diagDrops, rec.drops, "the _drops datastream tells the device's count")
        assert.equal(rec.drops, 0, `the outbox dropped ${rec.drops} samples: at ${SAMPLE_MS} ms per sample it must hold every outage of this schedule`)
        assert.equal(a.distinct, rec.produced)
    })

    test("every command is handled exactly once, also those written while the device was away", () => {
        const written = rec.commands.map((c) => c.value)
        assert.ok(rec.commands.filter((c) => c.away).length >= 4, `commands written while away: ${JSON.stringify(rec.commands)}`)
        // p1 and p2 were written in one go: the server gave each its own `at` [P§9], in order
        assert.ok(rec.p1Kept, "p1 is in the history next to p2")
        assert.ok(rec.p1p2StampGapMs >= 1, `p2 stamped ${rec.p1p2StampGapMs} ms after p1`)
        assert.deepEqual(rec.handled, written, "the device's handler ran once per command, in order")
        assert.deepEqual(rec.echoes, written, "each echo stored once, in order")
    })

    test(`a silent link is reported degraded, then detected within timeout (${TIMEOUT_MS} ms) + ${DETECT_MARGIN_MS} ms`, () => {
        const silent = rec.faults.filter((f) => f.silent)
        assert.equal(silent.length, 2)
        for (const f of silent) {
            const ms = f.down!.atMs - f.startMs
            assert.match(f.down!.text, /E_SILENT|E_ACK_TIMEOUT/, `${f.name}: ${f.down!.text}`)
            assert.ok(ms <= TIMEOUT_MS + DETECT_MARGIN_MS, `${f.name}: detected after ${ms} ms`)
            // [P§4] silence longer than `faulty` is reported as degraded before it is declared dead
            assert.ok(f.degraded, `${f.name}: no "up -> degraded" before "${f.down!.text}"`)
        }
        for (const f of rec.faults) assert.ok(f.up, `${f.name}: the device came back`)
    })

    test("the device's reported states follow the link's state machine", () => {
        const ts = transitions(fw.lines)
        assert.deepEqual(stateMachineErrors(ts), [])
        assert.equal(ts[0]?.from, "offline")
        const downs = ts.filter((t) => t.to === "down" && (t.from === "up" || t.from === "degraded")).length
        assert.ok(downs >= rec.faults.length, `${downs} drops from up for ${rec.faults.length} faults`)
    })

    test("what the server acknowledged before a SIGKILL survives it", () => {
        assert.ok(rec.ackedBeforeKill > 0, "samples were acknowledged before the kill")
        assert.equal(rec.droppedBeforeKill, 0)
        assert.equal(rec.ackedFoundAfterKill, rec.ackedBeforeKill, "acknowledged samples missing after the SIGKILL")
    })

    // a test of its own, not an `after` check: node:test does not count a failing hook of a describe
    test("the VM ran the whole schedule without a panic or running out of memory", async () => {
        const code = await fw.stop() // all of its output is in
        assert.ok(!/PANIC|OutOfMemory|InfiniteLoop|E_INTERNAL/.test(fw.output()), `the VM failed (exit ${code}):\n${fw.output().slice(-3000)}`)
    })
})

// Server side of the same millisecond: two different writes the server stamped itself are two
// datapoints (its stamps increase per datastream [P§9]), so the history, a live subscriber, and a device
// that was away and gets only the replay, see both commands. The server's clock stands still here, so
// the two writes are stamped in one millisecond for certain.
test("two writes of one datastream that the server stamps in the same millisecond are both kept and both pushed", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-same-ms-"))
    const frozenMs = Date.now()
    const server = await startServer({ dataDir, devicePort: 0, appPort: 0, logLevel: "silent", now: () => frozenMs })
    const sub = tls.connect({ host: "127.0.0.1", port: server.devicePort, ca: readFileSync(server.caCertPath) })
    try {
        const { masterKey, feedId } = server.credentials
        const pushes: { at: string; current_value: string }[] = []
        let subscribed!: () => void
        const acked = new Promise<void>((r) => (subscribed = r))
        let got2!: () => void
        const both = new Promise<void>((r) => (got2 = r))
        let buf = ""
        sub.on("data", (d) => {
            buf += d
            for (let nl; (nl = buf.indexOf("\n")) >= 0; buf = buf.slice(nl + 1)) {
                const o = buf.slice(0, nl) ? JSON.parse(buf.slice(0, nl)) : {}
                if (o.welcome) sub.write(JSON.stringify({ method: "subscribe", resource: `/feeds/${feedId}/datastreams/cmd`, headers: { "X-ApiKey": masterKey }, token: "s" }) + "\n")
                else if (o.token === "s" && o.body?.current_value === undefined) subscribed()
                else if (o.token === "s") pushes.push(o.body) === 2 && got2()
            }
        })
        await acked
        await writeInOneGo(server.devicePort, server.caCertPath, masterKey, feedId, "cmd", ["on", "off"])
        const rows = await historyRows(server.appPort, masterKey, feedId, "cmd")
        assert.deepEqual(rows.map((p) => p.value), ["on", "off"])
        assert.deepEqual(rows.map((p) => Date.parse(p.at)), [frozenMs, frozenMs + 1], "one millisecond: the second stamp goes one ahead")
        await both
        assert.deepEqual(pushes.map((p) => [p.current_value, p.at]), rows.map((p) => [p.value, p.at]), "both pushed, in order")
    } finally {
        sub.destroy()
        await server.close()
        rmSync(dataDir, { recursive: true, force: true })
    }
})

// A device away while many commands were written: after the reconnect the server replays them. In one
// burst (up to 1000 pushes, ~150 B each) 400 (~60 KB) ran the 64 KB VM heap out of memory within 20 ms
// of the welcome (on a board: a restart that loses the outbox and the commands). The device asks for
// replays of REPLAY_LIMIT and subscribes again after each cut one [P§8]: all 400 once, in order, then live. A receive queue capped at 12 KB that drops the connection
// when full does not help (tried on a copy of src/net: the same replay overflowed it 68 times in 90 s
// before a single push was handled, then OutOfMemory): the burst itself must be smaller.
const MANY_COMMANDS = 400

/** Waits for a VM line, but gives up at once when the VM panicked (its process may linger after that). Leaves no timer behind. */
async function lineOrPanic(fw: FirmwareRun, pattern: RegExp, from: number): Promise<void> {
    const deadline = Date.now() + WAIT_MS
    for (;;) {
        const lines = fw.lines.slice(from)
        if (lines.some((l) => pattern.test(l.text))) return
        const panic = lines.find((l) => /^PANIC|^Exception/.test(l.text))
        if (panic) throw new Error(`the VM failed: ${panic.text}`)
        if (Date.now() > deadline) throw new Error(`no VM line matching ${pattern} within ${WAIT_MS} ms`)
        await sleep(50)
    }
}
test(
    `a device away while ${MANY_COMMANDS} commands were written catches up without running out of memory`,
    { timeout: 180_000 },
    async () => {
        const dataDir = mkdtempSync(join(tmpdir(), "feedline-replay-"))
        const server = await startServer({ dataDir, devicePort: 0, appPort: 0, logLevel: "silent" })
        const proxy = await startFaultProxy({ target: { port: server.devicePort } })
        const { feedId, deviceKey, masterKey } = server.credentials
        const entry = genEntry(
            "zero-loss-replay",
            { SRV_HOST: "localhost", SRV_PORT: proxy.port, FEED_ID: feedId, API_KEY: deviceKey, BACKOFF_MS: 200, BACKOFF_MAX_S: 1, REBOOT_MIN: 0 },
            `let handled = 0
link.subscribe("datastreams/many", (body) => {
    const v = body["current_value"]
    if (v === "warm") {
        console.log("many warm") // the test's sign that the subscription is live; not counted
        return
    }
    handled++
    if (v !== "live" && v !== "m" + (handled - 1)) console.log("many out of order " + handled + " " + v)
    if (handled % 50 === 0 || v === "live") console.log("many " + handled + " " + v)
})`
        )
        const fw = runFirmware(entry, server.caCertPath, 170_000)
        try {
            await fw.waitFor(UP, VM_START_MS)
            // subscribed once a value written arrives (a fixed 500 ms after "up" could be missed on a loaded
            // machine, and then none of the commands below would be owed to the device)
            await until("the device's subscription to many to be live", async () => {
                if (fw.lines.some((l) => l.text === "many warm")) return true
                const r = await api(server.appPort, masterKey, "PUT", `/feeds/${feedId}/datastreams/many`, { current_value: "warm" })
                assert.ok(r.status < 300, JSON.stringify(r))
                return false
            }, WAIT_MS, 500)
            proxy.refuse()
            proxy.reset()
            const from = fw.lines.length
            await fw.waitFor(DOWN_FROM_UP, WAIT_MS, from)
            const t0 = Date.now() // ats after the subscription was made: all of them are owed
            for (let i = 0; i < MANY_COMMANDS; i += 200) {
                const datapoints = Array.from({ length: Math.min(200, MANY_COMMANDS - i) }, (_, k) => ({ at: t0 + i + k, value: `m${i + k}` }))
                const r = await api(server.appPort, masterKey, "POST", `/feeds/${feedId}/datastreams/many/datapoints`, { datapoints })
                assert.equal(r.status, 200, JSON.stringify(r.body))
            }
            proxy.accept()
            const acceptedMs = Date.now()
            await lineOrPanic(fw, new RegExp(`^many ${MANY_COMMANDS} `), from)
            console.log(`zero-loss replay: ${MANY_COMMANDS} commands handled ${Date.now() - acceptedMs} ms after the way was clear (replays of REPLAY_LIMIT, the reconnect included)`)
            await api(server.appPort, masterKey, "PUT", `/feeds/${feedId}/datastreams/many`, { current_value: "live" })
            await lineOrPanic(fw, new RegExp(`^many ${MANY_COMMANDS + 1} live$`), from)
            assert.deepEqual(fw.lines.filter((l) => /^many out of order/.test(l.text)).map((l) => l.text).slice(0, 5), [], "each command once, in order")
        } finally {
            await fw.stop()
            await proxy.close()
            await server.close()
            rmSync(dataDir, { recursive: true, force: true })
            writeFileSync(join(tmpdir(), "feedline-zero-loss-replay-vm.log"), fw.output())
            assert.ok(!/OutOfMemory|PANIC/.test(fw.output()), fw.output().split("\n").filter((l) => /Exception|PANIC|^many/.test(l)).join("\n"))
        }
    }
)

// The checks above must be able to fail: each rule on a made-up record that breaks it.
describe("zero-loss checks (pure)", () => {
    const line = (text: string, atMs = 0): VmLine => ({ atMs, text })
    const rows = (...values: number[]) => values.map((v, i) => ({ at: new Date(1_000_000 + i).toISOString(), value: String(v) }))

    test("samples: a lost, a doubled, a foreign value and a shared `at` are each found; counted drops are not losses", () => {
        assert.deepEqual(accountSamples(3, 0, rows(1, 2, 3)), { produced: 3, stored: 3, distinct: 3, missing: [], lost: 0, duplicated: [], foreign: [], sharedAts: [] })
        assert.equal(accountSamples(3, 0, rows(1, 3)).lost, 1)
        assert.equal(accountSamples(3, 1, rows(1, 3)).lost, 0, "one missing, one counted drop")
        assert.deepEqual(accountSamples(3, 0, rows(1, 2, 2, 3)).duplicated, [2])
        assert.deepEqual(accountSamples(3, 0, rows(1, 2, 3, 4)).foreign, ["4"])
        const shared = [...rows(1, 2), { at: rows(1)[0].at, value: "3" }]
        assert.deepEqual(accountSamples(3, 0, shared).sharedAts, [shared[0].at])
    })

    test("states: illegal steps and steps that do not start where the last one ended are found", () => {
        const ok = ["offline -> connecting (a)", "connecting -> greeting (b)", "greeting -> up (c)", "up -> degraded (d)", "degraded -> down (E_SILENT)", "down -> connecting (e)"]
        assert.deepEqual(stateMachineErrors(transitions(ok.map((t) => line(`link: ${t}`)))), [])
        assert.equal(stateMachineErrors(transitions([line("link: offline -> up (x)")])).length, 1)
        assert.equal(stateMachineErrors(transitions([line("link: offline -> connecting (x)"), line("link: greeting -> up (y)")])).length, 1)
        assert.equal(stateMachineErrors(transitions([line("link: offline -> flying (x)")])).length, 1)
    })

    test("acknowledged before a moment: the last count printed before it", () => {
        const lines = [line("produced 5 outbox 1 drops 0", 10), line("produced 6 outbox 2 drops 0", 20)]
        assert.deepEqual(lastProduced(lines, 15), { produced: 5, outbox: 1, drops: 0, atMs: 10 })
        assert.equal(lastProduced(lines, 5), undefined)
        assert.equal(percentile([3, 1, 2], 50), 2)
    })
})
