// A fleet on `feedline serve --workers 2` (docs/OPERATIONS.md "Running more than one process": the workers share
// the machine's ports, one PostgreSQL and one Redis) through a SIGKILL of one worker (the primary starts
// another; its devices reconnect to whichever worker the port hands them) and of the whole server (the primary
// and every worker at once, then `serve` again on the same ports, data folder and database). Each time what
// every fleet schedule checks (test/host/harness/fleet-checks.ts): every device back, subscribed and its outbox
// acknowledged; every command handled once by every device; every acknowledged write stored; every refusal with
// a code and a retry_after_ms; and at the end no connection left in any process's session list. Skipped,
// counted, where PostgreSQL or Redis is not installed.
import { after, before, test } from "node:test"
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { coldStart, throughDisruptions } from "../../harness/fleet-checks.ts"
import { SCALE_SKIP, startScaleServices, type ScaleServices } from "../../harness/scale.ts"
import { until } from "../../harness/until.ts"
import { stopAndReport } from "./child-server.ts"
import { FLEET_ROUNDS, FLEET_SIZE, Place, rounds } from "./fleet-place.ts"

const WORKERS = 2
const PEAK_RSS_LIMIT_MIB = 500

let services: ScaleServices | undefined
before(async () => {
    if (!SCALE_SKIP) services = await startScaleServices()
})
after(async () => {
    await services?.stop()
})

/** the primary's worker processes now (a replaced worker has a new pid) */
function workersOf(primaryPid: number): number[] {
    const text = readFileSync(`/proc/${primaryPid}/task/${primaryPid}/children`, "utf8").trim()
    return text ? text.split(/\s+/).map(Number) : []
}

const alive = (pid: number) => {
    try {
        process.kill(pid, 0)
        return true
    } catch {
        return false
    }
}

test(`--workers ${WORKERS}: a fleet of ${FLEET_SIZE} devices comes back after one worker is killed, and after the whole server is (SIGKILL)`, { skip: SCALE_SKIP, timeout: 300_000 * FLEET_ROUNDS }, async () => {
    const place = await new Place([
        "--workers", String(WORKERS),
        "--database-url", await services!.database(),
        "--redis-url", services!.redis.url,
        // each process counts its own connections with one key: the whole fleet may land on one
        "--max-connections-per-key", String(FLEET_SIZE),
        // a soak may give the key a smaller budget, so that the fleet meets it whatever the machine's load spreads (RELIABILITY.md)
        ...(process.env.FEEDLINE_FLEET_KEY_RATE ? ["--key-rate", process.env.FEEDLINE_FLEET_KEY_RATE] : []),
    ]).start()
    const workersAtStart = (JSON.parse(readFileSync(join(place.server.dataDir, "ready.json"), "utf8")) as { workers: number[] }).workers
    assert.equal(workersAtStart.length, WORKERS)
    try {
        const fleet = place.fleet({ address: () => `tls://127.0.0.1:${place.server.devicePort}` })
        try {
            const commands = await coldStart(place.checks, fleet, "workers", { command: true })
            await throughDisruptions(
                place.checks,
                fleet,
                commands,
                rounds((n) => [
                    {
                        label: `workers, one worker SIGKILL${n}`,
                        down: async () => {
                            const [victim] = workersOf(place.server.pid)
                            process.kill(victim!, "SIGKILL")
                            // the primary starts another in its place
                            await until("a worker in the killed one's place", () => !alive(victim!) && workersOf(place.server.pid).length === WORKERS, 30_000, 50)
                            return `worker ${victim} killed and replaced`
                        },
                    },
                    place.restartAfter(`workers, whole server SIGKILL${n}`, async () => {
                        // the primary and every worker at once: a SIGKILLed primary leaves its workers running
                        const pids = [place.server.pid, ...workersOf(place.server.pid)]
                        for (const pid of pids) process.kill(pid, "SIGKILL")
                        await until("every process of the server gone", () => pids.every((p) => !alive(p)), 10_000, 20)
                        return `${pids.length} processes killed`
                    }),
                ]),
            )
        } finally {
            await fleet.stop()
        }
        // every process's connections gone from the session list (a dead process's leave within 5 s)
        const sessionsOpen = async () => {
            const r = await fetch(`http://127.0.0.1:${place.server.appPort}/v2/sessions`, { headers: { "X-ApiKey": place.server.credentials.masterKey } })
            return ((await r.json()) as { totalResults: number }).totalResults
        }
        await until("every process to release every connection", async () => (await sessionsOpen()) === 0, 20_000, 200)
    } finally {
        await stopAndReport(place.server, `fleet on --workers ${WORKERS}`, PEAK_RSS_LIMIT_MIB)
    }
})
