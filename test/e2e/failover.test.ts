// Several feedline processes behind HAProxy (issue 14), end to end: the real firmware link in the
// DeviceScript simulator connects through HAProxy (TCP mode, TLS passed through, the configuration
// docs/OPERATIONS.md documents, PROXY protocol included: devs/tools/haproxy-config.ts) to one of two `feedline serve` processes on one
// PostgreSQL and one Redis. The device numbers its samples and echoes every command (as in
// zero-loss.test.ts). Then:
//   - the process holding the device is SIGKILLed; commands are written through HAProxy while the
//     device is away; the device reconnects through HAProxy to the other process and resubscribes
//     with `since`;
//   - the killed process is started again, and the one now holding the device is drained (SIGTERM):
//     the device gets the 503 notice with a jittered retry_after_ms, and reconnects to the restarted one;
//   - at the end every sample is stored exactly once (nothing acknowledged lost, nothing duplicated)
//     and every command was handled and echoed exactly once, in order.
// Skipped, counted, where PostgreSQL, Redis or HAProxy is not installed (with CI=true: runs, and fails).
import assert from "node:assert/strict"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import { freePort } from "../../devs/tools/child-processes.ts"
import { haproxyConfig } from "../../devs/tools/haproxy-config.ts"
import { skipUnlessInstalled, startHaproxy, type RunningHaproxy } from "../../devs/tools/services.ts"
import { startScaleServices, type ScaleServices } from "../host/harness/scale.ts"
import { accountAfterStop, deviceSettings, genEntry, runFirmware, VM_START_MS, type FirmwareRun } from "./firmware-harness.ts"
import { SERVER_POLL_MS, until } from "../host/harness/until.ts"
import { startServerProcess, type ServerProcess } from "./server-process.ts"
import { numberedSamplesApp } from "./numbered-samples.ts"
import type { SampleAccount } from "./zero-loss-checks.ts"

const SKIP = skipUnlessInstalled("postgresql", "redis", "haproxy")
/** one sample every SAMPLE_MS: the outbox holds minutes of them, far beyond any outage here */
const SAMPLE_MS = 200
/** bounds on waiting (a reconnect, the history filling up) on a loaded machine; not measurements */
const WAIT_MS = 30_000
/** HAProxy checks each process this often (2 failures: down; 2 successes: up) */
const CHECK_INTERVAL_MS = 300

const APP = numberedSamplesApp(SAMPLE_MS)
const UP = /^link: greeting -> up/
const DOWN = /^link: (up|degraded) -> down \((.*)\)/

interface Findings {
    /** the link's `down` line when its process was SIGKILLed, and when it was drained */
    killedDown: string
    drainedDown: string
    /** ms from the kill (the drain) to the device up again through HAProxy */
    upAfterKillMs: number
    upAfterDrainMs: number
    drainExitCode: number | null
    commands: string[]
    handled: string[]
    echoes: string[]
    produced: number
    drops: number
    account: SampleAccount
    /** the process ids holding the device: first, after the kill, after the drain */
    holders: string[]
    /** requests sent again because their answer was lost with the connection (which, and why) */
    resent: string[]
}

describe("HAProxy in front of two processes: a process dies, another is drained, devices move through the proxy, nothing lost or repeated", { skip: SKIP, timeout: 300_000 }, () => {
    let services: ScaleServices
    let dataDir: string
    let haproxy: RunningHaproxy
    let fw: FirmwareRun
    const servers = new Map<string, ServerProcess>()
    let devicePort = 0
    let appPort = 0
    let masterKey = ""
    let deviceKeyId = ""
    let feed = 0
    const rec = { commands: [] as string[], holders: [] as string[], resent: [] as string[] } as Findings

    const start = async (name: "a" | "b", ports?: { devicePort: number; appPort: number }) => {
        const s = await startServerProcess({ dataDir, readyFile: join(dataDir, `ready-${name}.json`), ...ports, args: serverArgs })
        servers.set(name, s)
        return s
    }
    let serverArgs: string[] = []
    /**
     * One request through HAProxy's app frontend, to whichever process it picks, on a connection of its own
     * (a kept-alive one could be bound to the process just killed). Rejects when no answer came: the
     * connection reset (`socket hang up`) or the bound passed.
     */
    const send = (method: string, path: string, body?: unknown) =>
        new Promise<{ status: number; body: any }>((resolve, reject) => {
            const data = body === undefined ? undefined : JSON.stringify(body)
            const headers = { "X-ApiKey": masterKey, ...(data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {}) }
            const req = http.request({ host: "127.0.0.1", port: appPort, method, path: `/v2${path}`, agent: false, headers }, (res) => {
                let text = ""
                res.setEncoding("utf8")
                res.on("data", (d) => (text += d))
                res.on("end", () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }))
                res.on("error", reject)
            })
            req.on("error", (err) => reject(Object.assign(new Error(`${method} ${path} through HAProxy: ${err.message}`), { code: (err as NodeJS.ErrnoException).code })))
            // HAProxy waits up to its idle timeout (300 s) for a process that took the request and went silent
            req.setTimeout(WAIT_MS, () => req.destroy(new Error(`no answer within ${WAIT_MS} ms`)))
            req.end(data)
        })
    /**
     * A request sent until it is answered, as a client behind a proxy must (docs/OPERATIONS.md): a request in
     * flight on a process that dies ends with its connection reset and no answer, and a write's outcome is then
     * unknown (HAProxy cut such requests also when it marked a dead process down while still connecting them to
     * it: `socket hang up` in 1 of 29 runs, before the app backend lost `on-marked-down shutdown-sessions`).
     * Resending is safe here because every request is one that may be repeated:
     * reads, and writes of datapoints with their own `at` (stored once, and a repeat that changes nothing is
     * not pushed again [P§9]). A write without `at` must not be resent so: it would be stored twice.
     */
    const api = (method: string, path: string, body?: unknown) => {
        let lost = ""
        return until(
            () => `${method} ${path} answered through HAProxy (the last attempt: ${lost})`,
            () =>
                send(method, path, body).catch((e: Error) => {
                    lost = e.message
                    rec.resent.push(`${method} ${path}: ${e.message}`)
                    return undefined
                }),
            WAIT_MS,
            SERVER_POLL_MS,
        )
    }
    /** every stored datapoint of a stream, oldest first, rows as the server returns them (duplicates must show) */
    const history = async (stream: string) => {
        const r = await api("GET", `/feeds/${feed}/datastreams/${stream}/datapoints?limit=1000`)
        if (r.status === 404) return []
        assert.equal(r.status, 200, `history of ${stream}: ${JSON.stringify(r.body)}`)
        assert.ok(r.body.datapoints.length < 1000, "one page holds the whole history")
        return r.body.datapoints as { at: string; value: string }[]
    }
    let lastCommandAtMs = 0
    const writeCommand = async (value: string) => {
        // its own `at`, later than the previous command's: resent after a lost answer, it is stored and pushed once
        const body = { current_value: value, at: (lastCommandAtMs = Math.max(Date.now(), lastCommandAtMs + 1)) }
        let r = await api("PUT", `/feeds/${feed}/datastreams/cmd`, body)
        // a process that began to drain as the request reached it refuses it with nothing stored: again, as a client would
        for (let i = 0; i < 5 && r.status === 503; i++) {
            await new Promise((resolve) => setTimeout(resolve, Math.min(r.body?.retry_after_ms ?? 500, 2000)))
            r = await api("PUT", `/feeds/${feed}/datastreams/cmd`, body)
        }
        assert.equal(r.status, 200, `writing cmd ${value}: ${JSON.stringify(r.body)}`)
        rec.commands.push(value)
    }
    /** which server (a or b) holds the device's connection now, from /v2/sessions on any process */
    const holderOf = async (): Promise<string | undefined> => {
        const r = await api("GET", "/sessions")
        if (r.status !== 200) return undefined
        // a dead process's entries stay in the list for up to 5 s: only live processes count
        const live = [...servers].filter(([, s]) => s.alive())
        const holders = (r.body.sessions as { key_id: string; process: string }[])
            .filter((e) => e.key_id === deviceKeyId)
            .flatMap((e) => live.filter(([, s]) => e.process.includes(`:${s.pid}:`)).map(([name]) => name))
        return holders.length === 1 ? holders[0] : undefined
    }
    const upAfter = (from: number) => fw.waitFor(UP, WAIT_MS, from)
    /** HAProxy's last word on a process in the devices backend ("UP", "DOWN"; undefined before its first change), from its output */
    const haproxySays = (name: string) => [...haproxy.output().matchAll(new RegExp(`Server feedline_devices/${name} is (UP|DOWN)`, "g"))].at(-1)?.[1]

    before(async () => {
        services = await startScaleServices()
        dataDir = mkdtempSync(join(tmpdir(), "feedline-failover-"))
        // HAProxy connects from 127.0.0.1 and sends each connection's PROXY header (the documented configuration)
        serverArgs = ["--database-url", await services.database(), "--redis-url", services.redis.url, "--trusted-proxies", "127.0.0.1"]
        // one after the other: the first provisions the shared data folder (keys, the development CA)
        const a = await start("a")
        const b = await start("b")
        masterKey = a.credentials.masterKey
        feed = a.credentials.feedId
        deviceKeyId = (a.credentials as unknown as { deviceKeyId: string }).deviceKeyId
        ;[devicePort, appPort] = [await freePort(), await freePort()]
        const config = haproxyConfig({
            bindDevices: `127.0.0.1:${devicePort}`,
            bindApp: `127.0.0.1:${appPort}`,
            appTls: false, // the processes listen on loopback: plain HTTP app ports
            proxyProtocol: true,
            checkIntervalMs: CHECK_INTERVAL_MS,
            maxConnections: 1000,
            backends: [a, b].map((s, i) => ({ name: "ab"[i], host: "127.0.0.1", devicePort: s.devicePort, appPort: s.appPort })),
        })
        haproxy = await startHaproxy(config, [devicePort, appPort])
        await until("HAProxy to see both processes up", async () => (await send("GET", `/feeds/${feed}`).catch(() => undefined))?.status === 200, WAIT_MS, SERVER_POLL_MS)

        fw = runFirmware(genEntry("failover", deviceSettings(devicePort, { feedId: feed, deviceKey: a.credentials.deviceKey }), APP), a.caCertPath, 280_000)
        await fw.waitFor(UP, VM_START_MS)
        await fw.waitFor(/^produced 5 /, WAIT_MS)
        await writeCommand("c1")
        await fw.waitFor(/^handled cmd c1$/, WAIT_MS)
        const first = await until("the device's connection in the session list", holderOf, WAIT_MS, SERVER_POLL_MS)
        rec.holders.push(first)

        // 1. the process holding the device dies
        const survivor = first === "a" ? "b" : "a"
        let from = fw.lines.length
        const killedAt = Date.now()
        await servers.get(first)!.stop("SIGKILL")
        await writeCommand("k1")
        await writeCommand("k2")
        const killedDown = await fw.waitFor(DOWN, WAIT_MS, from)
        rec.killedDown = killedDown.text
        const upAgain = await upAfter(fw.lines.indexOf(killedDown) + 1)
        rec.upAfterKillMs = upAgain.atMs - killedAt
        rec.holders.push(await until("the device's connection on the other process", async () => ((await holderOf()) === survivor ? survivor : undefined), WAIT_MS, SERVER_POLL_MS))
        await writeCommand("c2")
        await fw.waitFor(/^handled cmd c2$/, WAIT_MS)

        // 2. the killed one comes back (same ports: HAProxy's configuration stays), the survivor is drained.
        // HAProxy must have marked it down first: restarted before its second failed check, it never goes down,
        // so HAProxy never says it is up again (the wait for that line failed so, once, after 30 s)
        await until(() => `HAProxy to mark the killed process down; it said:\n${haproxy.output()}`, () => haproxySays(first) === "DOWN", WAIT_MS, SERVER_POLL_MS)
        await start(first as "a" | "b", { devicePort: servers.get(first)!.devicePort, appPort: servers.get(first)!.appPort })
        await until(() => `HAProxy to see the restarted process up; it said:\n${haproxy.output()}`, () => haproxySays(first) === "UP", WAIT_MS, SERVER_POLL_MS)
        from = fw.lines.length
        const drainedAt = Date.now()
        const draining = servers.get(survivor)!.stop("SIGTERM")
        const drainedDown = await fw.waitFor(DOWN, WAIT_MS, from)
        rec.drainedDown = drainedDown.text
        await writeCommand("d1")
        rec.drainExitCode = await draining
        const upAfterDrain = await upAfter(fw.lines.indexOf(drainedDown) + 1)
        rec.upAfterDrainMs = upAfterDrain.atMs - drainedAt
        rec.holders.push(await until("the device's connection on the restarted process", async () => ((await holderOf()) === first ? first : undefined), WAIT_MS, SERVER_POLL_MS))

        // the end: the device stops producing on command; then every sample and echo must be stored
        await writeCommand("stop")
        Object.assign(rec, await accountAfterStop(fw, history, WAIT_MS))
        await until("every command echoed", async () => (await history("cmd_echo")).length >= rec.commands.length, WAIT_MS, SERVER_POLL_MS).catch(() => {})
        rec.echoes = (await history("cmd_echo")).map((p) => p.value)
        rec.handled = fw.lines.map((l) => /^handled cmd (.*)$/.exec(l.text)?.[1]).filter((v): v is string => v !== undefined)
        console.log(
            `failover: device on ${rec.holders.join(" -> ")}; up again ${rec.upAfterKillMs} ms after the SIGKILL, ${rec.upAfterDrainMs} ms after the drain began; ` +
                `produced ${rec.produced}, stored ${rec.account.distinct} (${rec.account.stored} rows), dropped ${rec.drops}; commands ${rec.commands.length}, handled ${rec.handled.length}, echoed ${rec.echoes.length}; ` +
                `resent after a lost answer: ${rec.resent.length ? rec.resent.join("; ") : "none"}`,
        )
    })

    after(async () => {
        await fw?.stop()
        if (fw) writeFileSync(join(tmpdir(), "feedline-failover-vm.log"), fw.lines.map((l) => `${new Date(l.atMs).toISOString()} ${l.text}`).join("\n") + "\n")
        if (haproxy) writeFileSync(join(tmpdir(), "feedline-failover-haproxy.log"), haproxy.output())
        await haproxy?.stop()
        for (const s of servers.values()) await s.stop("SIGKILL")
        await services?.stop()
        if (dataDir) rmSync(dataDir, { recursive: true, force: true })
    })

    test("the device moved to the other process when its own was SIGKILLed, and to the restarted one when that one was drained", () => {
        assert.equal(new Set(rec.holders).size, 2, rec.holders.join(" -> "))
        assert.equal(rec.holders[0], rec.holders[2], "back on the restarted process after the drain")
    })

    test("a drained process tells its devices to come back later (503 notice, honoured) and exits 0", () => {
        assert.match(rec.drainedDown, /E_NOTICE_503/)
        assert.equal(rec.drainExitCode, 0)
    })

    test("every sample stored exactly once: nothing acknowledged lost, nothing duplicated", () => {
        const a = rec.account
        assert.equal(rec.drops, 0, "the outbox dropped nothing")
        assert.deepEqual(a.missing, [], `missing samples: ${a.missing.join(",")}`)
        assert.deepEqual(a.duplicated, [])
        assert.deepEqual(a.foreign, [])
        assert.deepEqual(a.sharedAts, [])
        assert.equal(a.stored, rec.produced)
    })

    test("every command handled and echoed exactly once, in order, also those written while the device was away", () => {
        assert.deepEqual(rec.handled, rec.commands)
        assert.deepEqual(rec.echoes, rec.commands)
    })
})
