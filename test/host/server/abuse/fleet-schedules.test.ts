// More fault schedules for a fleet (docs/RELIABILITY.md, "A fleet comes back"), each on a `feedline serve` of
// its own in a child process, each checking what fleet-reconnect.test.ts checks (test/host/harness/fleet-checks.ts):
// every device back, subscribed and its outbox acknowledged; every command handled once by every device; every
// acknowledged write in the store; every refusal with a code and a retry_after_ms; no slot left held.
//  - the WebSocket door: the fleet on the app port's /ws instead of the TLS device port, through SIGTERM and SIGKILL;
//  - a claimed fleet: boards flashed with a product and their activation codes, no key (docs/FLEET.md); each
//    claims its own feed and key, and comes back after SIGKILL with that key (never claiming again);
//  - a lost NAT mapping: every open connection goes silent for good (nothing forwarded, nothing closed); the
//    server frees each one's slot when its keep-alive finds it dead (new connections are held off until then).
// `--workers` through a worker's and the whole server's SIGKILL: fleet-workers.test.ts (needs PostgreSQL and Redis).
// FEEDLINE_FLEET_SIZE / FEEDLINE_FLEET_ROUNDS make them a soak (`npm run soak:fleet`); npm test runs smaller fleets.
import { test } from "node:test"
import assert from "node:assert/strict"
import { performance } from "node:perf_hooks"
import { startFaultProxy } from "../../../../devs/faultproxy/proxy.ts"
import { activationCode, parseProductSecret } from "../../../../devs/server/fleet/claim-codes.ts"
import { ALL_BACK_LIMIT_MS, coldStart, throughDisruptions } from "../../harness/fleet-checks.ts"
import { until } from "../../harness/until.ts"
import { metricSum, stopAndReport } from "./child-server.ts"
import { FLEET_ROUNDS as ROUNDS, FLEET_SIZE, idleTimeoutsIn, Place, rounds } from "./fleet-place.ts"

const PEAK_RSS_LIMIT_MIB = 500

/** every device on the shared device key: the per-key and per-address caps at the fleet's size */
const atTheCaps = ["--max-connections-per-key", String(FLEET_SIZE), "--max-connections-per-address", String(FLEET_SIZE + 2)]

test(`the WebSocket door: a fleet of ${FLEET_SIZE} devices on /ws comes back after the server restarts (SIGTERM, SIGKILL)`, { timeout: 240_000 * ROUNDS }, async () => {
    const place = await new Place(atTheCaps).start()
    try {
        const fleet = place.fleet({ address: () => `ws://127.0.0.1:${place.server.appPort}/ws` })
        try {
            const commands = await coldStart(place.checks, fleet, "WebSocket", { command: true })
            await throughDisruptions(place.checks, fleet, commands, rounds((n) => [place.restart(`WebSocket, SIGTERM restart${n}`, "SIGTERM"), place.restart(`WebSocket, SIGKILL restart${n}`, "SIGKILL")]))
        } finally {
            await fleet.stop()
        }
        await place.allReleased()
    } finally {
        await stopAndReport(place.server, "fleet over WebSocket", PEAK_RSS_LIMIT_MIB)
    }
})

test(`a claimed fleet: ${FLEET_SIZE} boards with no key claim their own feed and key, and come back with it after SIGKILL`, { timeout: 240_000 * ROUNDS }, async () => {
    // the claims come from one address: its budget (1/s, bursts of 100) would make a soak's fleet wait minutes
    const place = await new Place(["--claim-rate", String(FLEET_SIZE), "--product-claim-rate", String(FLEET_SIZE), "--rate", "1000"]).start()
    try {
        const made = await fetch(`http://127.0.0.1:${place.server.appPort}/v2/products`, {
            method: "POST",
            headers: { "X-ApiKey": place.server.credentials.masterKey, "content-type": "application/json" },
            body: JSON.stringify({ title: "fleet", datastreams: [{ id: "cmd" }, { id: "w" }] }),
        })
        const product = (await made.json()) as { id: string; secret: string }
        assert.equal(made.status, 201, JSON.stringify(product))
        const { signingKey, productId } = parseProductSecret(product.secret)!
        const fleet = place.fleet({
            address: () => `tls://127.0.0.1:${place.server.devicePort}`,
            apiKey: undefined,
            feedId: undefined,
            claim: { productId, code: (hw) => activationCode(signingKey, productId, hw) },
        })
        try {
            const commands = await coldStart(place.checks, fleet, "claimed fleet", { command: false })
            const keys = new Map(fleet.devices.map((d) => [d.index, d.apiKey!]))
            assert.equal(new Set(keys.values()).size, FLEET_SIZE, "every board a key of its own")
            assert.equal(new Set(fleet.devices.map((d) => d.feedId)).size, FLEET_SIZE, "every board a feed of its own")
            await throughDisruptions(place.checks, fleet, commands, rounds((n) => [place.restart(`claimed fleet, SIGKILL restart${n}`, "SIGKILL")]))
            // back with its own key: not one claim more, the same key, and the server knows each device as claimed
            assert.deepEqual(fleet.devices.filter((d) => d.claims !== 1 || d.apiKey !== keys.get(d.index)).map((d) => d.index), [], "boards that claimed again")
            const listed = await fetch(`http://127.0.0.1:${place.server.appPort}/v2/devices?product=${productId}`, { headers: { "X-ApiKey": place.server.credentials.masterKey } })
            const devices = ((await listed.json()) as { devices?: { hardware_id: string; feed: number; state: string }[] }).devices ?? []
            const feedOf = new Map(fleet.devices.map((d) => [d.hardwareId, d.feedId]))
            assert.equal(devices.length, FLEET_SIZE)
            for (const d of devices) assert.equal(d.feed, feedOf.get(d.hardware_id), `device ${d.hardware_id} listed with another feed`)
        } finally {
            await fleet.stop()
        }
        await place.allReleased()
    } finally {
        await stopAndReport(place.server, "claimed fleet", PEAK_RSS_LIMIT_MIB)
    }
})

test(`a lost NAT mapping: ${FLEET_SIZE} devices' connections go silent for good; each dead connection's slot is freed when its keep-alive says so`, { timeout: 120_000 * ROUNDS }, async () => {
    // the seed keep-alive (dead after 3 s) on the device port, so that the schedule takes seconds; at the caps, a
    // slot a dead connection still held would keep its device out
    const place = await new Place([...atTheCaps, "--keepalive", "seed"]).start()
    const proxy = await startFaultProxy({ target: { port: place.server.devicePort } })
    try {
        const fleet = place.fleet({ address: () => `tls://127.0.0.1:${proxy.port}` })
        try {
            const commands = await coldStart(place.checks, fleet, "lost NAT", { command: true })
            for (const round of rounds((n) => [n])) {
                const idleBefore = await place.idleTimeouts()
                await throughDisruptions(place.checks, fleet, commands, [
                    {
                        label: `lost NAT${round}`,
                        down: async () => {
                            // nothing of the open connections is forwarded any more and their closes are not passed
                            // on; new connections are refused until the server has found every old one dead
                            proxy.refuse()
                            proxy.blackhole({ scope: "existing" })
                            const cutAtMs = performance.now()
                            let m: Record<string, number> = {}
                            await until(
                                () => `the server to close ${FLEET_SIZE} dead connections by its keep-alive: ${idleTimeoutsIn(m) - idleBefore} closed`,
                                async () => idleTimeoutsIn((m = await place.server.metrics())) - idleBefore >= FLEET_SIZE,
                                ALL_BACK_LIMIT_MS,
                                50,
                            )
                            // In the scrape that counts the last of them closed as dead (408 E_IDLE_TIMEOUT: silent past
                            // the announced `timeout`), none of their slots is held any more: freed when found dead
                            assert.equal(idleTimeoutsIn(m) - idleBefore, FLEET_SIZE, "dead connections closed by the server's keep-alive")
                            assert.equal(metricSum(m, "feedline_key_connections_most"), 0, "connections the device key still holds once all are found dead")
                            const foundMs = performance.now() - cutAtMs
                            proxy.accept()
                            return `blackhole scope=existing; all found dead by the server ${(foundMs / 1000).toFixed(1)} s after the cut`
                        },
                    },
                ])
                // every slot was free before any device could come back: none refused at the per-key cap
                const atTheCap = fleet.losses().filter((l) => l.serverCode === "E_TOO_MANY_CONNECTIONS_FOR_KEY")
                assert.deepEqual(atTheCap, [], "devices refused at the per-key cap: a dead connection's slot still held")
                assert.equal(await place.connectionsOpen(), FLEET_SIZE, "connections the server counts: every device's new one, no dead one")
            }
        } finally {
            await fleet.stop()
        }
        await place.allReleased()
    } finally {
        await proxy.close()
        await stopAndReport(place.server, "lost NAT", PEAK_RSS_LIMIT_MIB)
    }
})
