// A `feedline serve` of its own for one fleet schedule (fleet-schedules.test.ts, fleet-workers.test.ts), restarted in
// place on its ports and data folder, and the fleet that dials it (test/host/harness/fleet.ts).
import { Fleet, type FleetOptions } from "../../harness/fleet.ts"
import { FLEET_BACKOFF, FleetChecks, type Disruption } from "../../harness/fleet-checks.ts"
import { until } from "../../harness/until.ts"
import { metricSum, startChildServer, type ChildServer } from "./child-server.ts"

/** devices per fleet: smaller in npm test than fleet-reconnect.test.ts's 200; `npm run soak:fleet` sets 500 */
export const FLEET_SIZE = Number(process.env.FEEDLINE_FLEET_SIZE ?? 60)
export const FLEET_ROUNDS = Number(process.env.FEEDLINE_FLEET_ROUNDS ?? 1)

/** `make`'s items for each round, labelled " 1", " 2", … when there is more than one */
export const rounds = <T>(make: (suffix: string) => T[]): T[] => Array.from({ length: FLEET_ROUNDS }, (_, r) => make(FLEET_ROUNDS > 1 ? ` ${r + 1}` : "")).flat()

/** A server for one schedule, restarted in place; `args` are its flags at every start. */
export class Place {
    server!: ChildServer
    readonly checks = new FleetChecks(() => this.server)
    constructor(private readonly args: string[]) {}
    async start(): Promise<this> {
        this.server = await startChildServer(this.args)
        return this
    }
    /** SIGTERM or SIGKILL, then a new server on the same ports and data folder */
    restart(label: string, signal: NodeJS.Signals): Disruption {
        return this.restartAfter(label, async () => `exit ${await this.server.exit(signal)}`)
    }
    /** `down` ends the server (resolves with how), then a new server on the same ports and data folder */
    restartAfter(label: string, down: () => Promise<string>): Disruption {
        return {
            label,
            down,
            up: async () => {
                const { devicePort, appPort, dataDir } = this.server
                this.server = await startChildServer(this.args, { dataDir, devicePort, appPort })
            },
        }
    }
    fleet(o: Partial<FleetOptions> & Pick<FleetOptions, "address">): Fleet {
        const { ca, credentials } = this.server
        return new Fleet({ size: FLEET_SIZE, ca, apiKey: credentials.deviceKey, feedId: credentials.feedId, backoff: FLEET_BACKOFF, commandStream: "cmd", writeStream: "w", since: Date.now() - 1000, ...o })
    }
    async connectionsOpen(): Promise<number> {
        return metricSum(await this.server.metrics(), "feedline_connections_open")
    }
    async idleTimeouts(): Promise<number> {
        return idleTimeoutsIn(await this.server.metrics())
    }
    async allReleased(): Promise<void> {
        await until("the server to release every connection", async () => (await this.connectionsOpen()) === 0, 10_000, 100)
    }
}

/** connections the server closed as dead by its keep-alive [P§4], in a scrape of /metrics */
export function idleTimeoutsIn(m: Record<string, number>): number {
    return Object.entries(m).reduce((n, [k, v]) => (k.startsWith("feedline_notices_total{") && k.includes('"E_IDLE_TIMEOUT"') ? n + v : n), 0)
}

