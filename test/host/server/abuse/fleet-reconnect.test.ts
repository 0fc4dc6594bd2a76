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
import { startFaultProxy, type FaultProxy } from "../../../../devs/faultproxy/proxy.ts"
import { Fleet } from "../../harness/fleet.ts"
import { coldStart, FLEET_BACKOFF, FleetChecks, throughDisruptions } from "../../harness/fleet-checks.ts"
import { until } from "../../harness/until.ts"
import { metricSum, startChildServer, stopAndReport, type ChildServer } from "./child-server.ts"

const FLEET_SIZE = Number(process.env.FEEDLINE_FLEET_SIZE ?? 200)
const ROUNDS = Number(process.env.FEEDLINE_FLEET_ROUNDS ?? 1)
const PEAK_RSS_LIMIT_MIB = 500

let server: ChildServer
const checks = new FleetChecks(() => server)

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
    return new Fleet({ size: FLEET_SIZE, address: () => `tls://127.0.0.1:${port()}`, ca, apiKey: credentials.deviceKey, feedId: credentials.feedId, backoff: FLEET_BACKOFF, commandStream: "cmd", writeStream: "w", since, localAddresses })
}

/**
 * The restart schedule: the fleet connects (the cold start is a storm too), then for each signal the server
 * ends with it and starts again on the same ports and data folder (fleet-checks.ts throughDisruptions).
 */
async function restartSchedule(where: string, signals: readonly NodeJS.Signals[], localAddresses?: string[]) {
    const fleet = fleetOf(() => server.devicePort, Date.now() - 1000, localAddresses)
    try {
        const commands = await coldStart(checks, fleet, where, { command: true })
        for (let round = 0; round < ROUNDS; round++) {
            await throughDisruptions(
                checks,
                fleet,
                commands,
                signals.map((signal) => ({
                    label: `${where}, ${signal} restart${ROUNDS > 1 ? ` ${round + 1}` : ""}`,
                    down: async () => `exit ${await server.exit(signal)}`,
                    up: async () => {
                        const { devicePort, appPort, dataDir } = server
                        server = await startChildServer(serverArgs(), { dataDir, devicePort, appPort })
                    },
                })),
            )
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
        const commands = await coldStart(checks, fleet, "blip", { command: false })
        for (let round = 0; round < ROUNDS; round++) {
            await throughDisruptions(checks, fleet, commands, [
                {
                    label: `blip${ROUNDS > 1 ? ` ${round + 1}` : ""}`,
                    down: async () => {
                        // the way is shut: every connection reset, new ones refused for a second
                        proxy.refuse({ forMs: 1000 })
                        proxy.reset()
                        return JSON.stringify(proxy.stats())
                    },
                },
            ])
        }
    } finally {
        await fleet.stop()
        await proxy.close()
    }
    await until("the server to release every connection", async () => metricSum(await server.metrics(), "feedline_connections_open") === 0, 10_000, 100)
    // every slot free: the whole fleet may connect again, at the per-key cap
    const again = fleetOf(() => server.devicePort, Date.now())
    try {
        await checks.waitAllBack(again, [], "after the blip, a fresh fleet")
        const keyRefusals = again.losses().filter((l) => l.serverCode === "E_TOO_MANY_CONNECTIONS_FOR_KEY" || l.serverCode === "E_TOO_MANY_CONNECTIONS")
        assert.deepEqual(keyRefusals, [], "a fresh fleet at the caps refused: slots still held")
    } finally {
        await again.stop()
    }
})
