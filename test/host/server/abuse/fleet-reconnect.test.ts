// A fleet behind one address when the server goes away and comes back (docs/RELIABILITY.md, "A fleet comes
// back"): FLEET_SIZE simulated devices (test/host/harness/fleet.ts: the firmware link's backoff with full
// jitter, retry_after_ms a floor, subscriptions renewed with `since`, an outbox resent until acknowledged)
// connected and subscribed from 127.0.0.1 to `feedline serve` in a child process, which is stopped
// (SIGTERM, then SIGKILL) and started again on the same port and data folder; then, with the server up,
// every connection cut at once by the fault proxy. Each time: every device back, subscribed and its
// outbox acknowledged; every command written meanwhile handled once by every device; every acknowledged
// write in the store; every refusal with a code and a retry_after_ms; no device refused for good.
// FEEDLINE_FLEET_SIZE / FEEDLINE_FLEET_ROUNDS make it a soak (`npm run soak:fleet`).
import { test, before, after } from "node:test"
import assert from "node:assert/strict"
import { performance } from "node:perf_hooks"
import { FeedlineConnection } from "../../../../devs/client/connection.ts"
import { startFaultProxy, type FaultProxy } from "../../../../devs/faultproxy/proxy.ts"
import type { ReconnectConfig } from "../../../../src/backoff.ts"
import { Fleet, type Loss } from "../../harness/fleet.ts"
import { until } from "../../harness/until.ts"
import { metricSum, startChildServer, stopAndReport, type ChildServer } from "./child-server.ts"

const FLEET_SIZE = Number(process.env.FEEDLINE_FLEET_SIZE ?? 200)
const ROUNDS = Number(process.env.FEEDLINE_FLEET_ROUNDS ?? 1)
/**
 * The firmware's policy (src/backoff.ts DEFAULT_BACKOFF: 500 ms, 2ⁿ, a 60 s cap, reset after 20 s up) with a
 * 4 s cap, so that the test ends in seconds: the cap bounds how long a device waits once the server is back
 * (the longest wait it may draw), not how often it dials.
 */
const BACKOFF: ReconnectConfig = { baseMs: 500, capMs: 4000, stableMs: 20_000 }
/** A bound for a hung test, not a timing assertion: every device back well within it on a loaded machine. */
const ALL_BACK_LIMIT_MS = 60_000
const PEAK_RSS_LIMIT_MIB = 500

let server: ChildServer
const startedAtMs = Date.now()
let nextAtMs = startedAtMs - 600_000
/** every device's writes get `at`s of their own: idempotent per (feed, datastream, at) */
const nextAt = () => ++nextAtMs

const serverArgs = (extra: string[] = []) => [
    // every device shares the device key, and the blip test holds the per-key and per-address caps at the fleet's size
    "--max-connections-per-key", String(FLEET_SIZE),
    "--max-connections-per-address", String(FLEET_SIZE + 2),
    ...extra,
]

before(async () => {
    server = await startChildServer(serverArgs())
})

after(() => stopAndReport(server, "fleet-reconnect", PEAK_RSS_LIMIT_MIB))

/** FLEET_SIZE devices on the device key and feed 1, dialling `port()`, subscribed to "cmd" from `since` on, writing to "w" */
function fleetOf(port: () => number, since: number, localAddresses?: string[]): Fleet {
    const { ca, credentials } = server
    return new Fleet({ size: FLEET_SIZE, port, ca, apiKey: credentials.deviceKey, feedId: credentials.feedId, backoff: BACKOFF, commandStream: "cmd", writeStream: "w", since, localAddresses })
}

/** A master-key client: writes commands, reads what was stored. */
async function operator(): Promise<FeedlineConnection> {
    return FeedlineConnection.connect({ server: `tls://127.0.0.1:${server.devicePort}`, apiKey: server.credentials.masterKey, ca: server.ca })
}

let commandsWritten = 0
/** writes the next command (values "c1", "c2", …: a value is at most 32 characters) and returns its `at` */
async function writeCommand(): Promise<string> {
    const value = `c${++commandsWritten}`
    const op = await operator()
    try {
        const r = await op.send("put", `/feeds/${server.credentials.feedId}/datastreams/cmd`, { body: { current_value: value } })
        assert.equal(r.status, 200, JSON.stringify(r.body))
        const got = await op.call("get", `/feeds/${server.credentials.feedId}/datastreams/cmd`)
        return got.at as string
    } finally {
        op.close()
    }
}

/** the `at`s (ms) stored on the devices' write datastream */
async function storedWrites(): Promise<Set<number>> {
    const op = await operator()
    const out = new Set<number>()
    try {
        let start = new Date(startedAtMs - 700_000).toISOString()
        for (;;) {
            const r = await op.send("get", `/feeds/${server.credentials.feedId}/datastreams/w`, { params: { start, limit: 1000 } })
            if (r.status === 404) return out // nothing written yet
            assert.equal(r.status, 200, JSON.stringify(r.body))
            const body = r.body as { datapoints?: { at: string }[] }
            const points = (body.datapoints ?? []) as { at: string }[]
            for (const p of points) out.add(Date.parse(p.at))
            if (points.length < 1000) return out
            start = new Date(Date.parse(points[points.length - 1]!.at) + 1).toISOString()
        }
    } finally {
        op.close()
    }
}

function summarize(losses: Loss[]): string {
    const by = new Map<string, number>()
    for (const l of losses) {
        const k = l.serverCode ?? l.code
        by.set(k, (by.get(k) ?? 0) + 1)
    }
    return [...by].map(([k, n]) => `${k} ${n}`).join(", ") || "none"
}

/** every device current and holding every command in `commands`, each once */
function fleetCaughtUp(fleet: Fleet, commands: string[]): boolean {
    return fleet.devices.every((d) => d.current && commands.every((at) => d.handled.has(at)))
}

async function waitAllBack(fleet: Fleet, commands: string[], what: string): Promise<number> {
    const t0 = performance.now()
    await until(
        () => `${what}: ${fleet.current()}/${FLEET_SIZE} devices current, ${fleet.devices.filter((d) => commands.every((at) => d.handled.has(at))).length} holding every command; losses ${summarize(fleet.losses())}; ${server.stderr().slice(-500)}`,
        () => fleetCaughtUp(fleet, commands),
        ALL_BACK_LIMIT_MS,
        50,
    )
    return performance.now() - t0
}

/** What every schedule checks once the fleet is back. */
async function checkFleet(fleet: Fleet, commands: string[], label: string, sinceMs: number) {
    const losses = fleet.losses().filter((l) => l.atMs >= sinceMs)
    // every refusal the server sent (a notice or a refused request) named a code and said when to come back
    const refusals = losses.filter((l) => l.serverCode !== undefined)
    const withoutHint = refusals.filter((l) => !(typeof l.retryAfterMs === "number" && l.retryAfterMs > 0))
    assert.deepEqual(withoutHint, [], `${label}: refusals without retry_after_ms`)
    // commands: each once, on every device
    for (const d of fleet.devices) {
        for (const at of commands) assert.equal(d.handled.get(at), 1, `${label}: device ${d.index} handled command ${at} ${d.handled.get(at) ?? 0} times`)
        const twice = [...d.handled].filter(([, n]) => n > 1)
        assert.deepEqual(twice, [], `${label}: device ${d.index} handled commands twice`)
    }
    // every acknowledged write stored
    const stored = await storedWrites()
    const lost = fleet.devices.flatMap((d) => d.acked.filter((at) => !stored.has(at)))
    assert.deepEqual(lost, [], `${label}: acknowledged writes missing from the store`)
    const attempts = fleet.devices.map((d) => d.attempts)
    return { losses, refusals, stored: stored.size, maxAttempts: Math.max(...attempts) }
}

/**
 * The restart schedule: the fleet connects (the cold start is a storm too), then for each signal the server
 * ends with it and starts again on the same ports and data folder, while a write waits in every outbox and a
 * command is written before the stop and right after the start.
 */
async function restartSchedule(where: string, signals: readonly NodeJS.Signals[], localAddresses?: string[]) {
    const fleet = fleetOf(() => server.devicePort, Date.now() - 1000, localAddresses)
    try {
        const coldStartMs = performance.now()
        const commands = [await writeCommand()]
        await waitAllBack(fleet, commands, `${where}: cold start`)
        const coldMs = performance.now() - coldStartMs
        const cold = await checkFleet(fleet, commands, `${where}: cold start`, coldStartMs)
        console.log(`# ${where}, cold start: ${FLEET_SIZE} devices current in ${(coldMs / 1000).toFixed(1)} s; losses ${summarize(cold.losses)}`)

        for (let round = 0; round < ROUNDS; round++) {
            for (const signal of signals) {
                const label = `${where}, ${signal} restart${ROUNDS > 1 ? ` ${round + 1}` : ""}`
                const roundStartMs = performance.now()
                // a write in every outbox while the server is up: acknowledged or resent after the restart
                for (const d of fleet.devices) d.queueWrite(nextAt())
                commands.push(await writeCommand())
                const how = await server.exit(signal)
                // a write queued while the server is away: sent after it is back
                for (const d of fleet.devices) d.queueWrite(nextAt())
                const { devicePort, appPort, dataDir } = server
                server = await startChildServer(serverArgs(), { dataDir, devicePort, appPort })
                const backAt = performance.now()
                // a command written while devices are still away: their renewed subscriptions replay it
                commands.push(await writeCommand())
                await waitAllBack(fleet, commands, label)
                const allBackMs = performance.now() - backAt
                const r = await checkFleet(fleet, commands, label, roundStartMs)
                console.log(
                    `# ${label} (exit ${how}): ${FLEET_SIZE} devices current ${(allBackMs / 1000).toFixed(1)} s after the server was ready; ` +
                        `losses ${summarize(r.losses)}; at most ${r.maxAttempts} attempts by one device since the start; ${r.stored} writes stored`,
                )
            }
        }
    } finally {
        await fleet.stop()
    }
    await until("the server to release every connection", async () => metricSum(await server.metrics(), "feedline_connections_open") === 0, 10_000, 100)
}

test(`a fleet of ${FLEET_SIZE} devices behind one address comes back after the server restarts (SIGTERM, SIGKILL)`, { timeout: 240_000 * ROUNDS }, async () => {
    await restartSchedule("one address", ["SIGTERM", "SIGKILL"])
})

// 127.0.0.0/8 is all loopback on Linux: each device dials from one of four of its addresses
test(`a fleet of ${FLEET_SIZE} devices on four addresses comes back after the server is killed (SIGKILL)`, { timeout: 240_000 * ROUNDS }, async () => {
    await restartSchedule("four addresses", ["SIGKILL"], ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"])
})

test(`a network blip cuts every connection of ${FLEET_SIZE} devices at once: all back, no slot leaked`, { timeout: 120_000 * ROUNDS }, async () => {
    const proxy: FaultProxy = await startFaultProxy({ target: { port: server.devicePort } })
    const fleet = fleetOf(() => proxy.port, Date.now())
    try {
        const commands: string[] = []
        await waitAllBack(fleet, commands, "blip: first connect")
        for (let round = 0; round < ROUNDS; round++) {
            const label = `blip${ROUNDS > 1 ? ` ${round + 1}` : ""}`
            const roundStartMs = performance.now()
            for (const d of fleet.devices) d.queueWrite(nextAt())
            // the way is shut: every connection reset, new ones refused for a second
            proxy.refuse({ forMs: 1000 })
            proxy.reset()
            commands.push(await writeCommand())
            const t0 = performance.now()
            await waitAllBack(fleet, commands, label)
            const allBackMs = performance.now() - t0
            const r = await checkFleet(fleet, commands, label, roundStartMs)
            // at the caps (per key: the fleet's size): a slot an old connection still held would keep a device out for good
            console.log(`# ${label}: ${FLEET_SIZE} devices current ${(allBackMs / 1000).toFixed(1)} s after the cut; losses ${summarize(r.losses)}; ${JSON.stringify(proxy.stats())}`)
        }
    } finally {
        await fleet.stop()
        await proxy.close()
    }
    await until("the server to release every connection", async () => metricSum(await server.metrics(), "feedline_connections_open") === 0, 10_000, 100)
    // every slot free: the whole fleet may connect again, at the per-key cap
    const again = fleetOf(() => server.devicePort, Date.now())
    try {
        await waitAllBack(again, [], "after the blip, a fresh fleet")
        const keyRefusals = again.losses().filter((l) => l.serverCode === "E_TOO_MANY_CONNECTIONS_FOR_KEY" || l.serverCode === "E_TOO_MANY_CONNECTIONS")
        assert.deepEqual(keyRefusals, [], "a fresh fleet at the caps refused: slots still held")
    } finally {
        await again.stop()
    }
})
