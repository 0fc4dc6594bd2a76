// A server under test, running in its own process so its CPU and memory can be read from /proc.
import type { TlsFixture } from "../tls-fixture.ts"
import type { TargetAddress } from "../loadgen/types.ts"

/** feedline-pg: feedline on PostgreSQL and Redis, one process; feedline-pg-2w: the same with --workers 2 */
export type TargetName = "feedline" | "feedline-pg" | "feedline-pg-2w" | "mosquitto" | "aedes"

export interface RunningTarget {
    name: TargetName
    /** the process that does the serving (what /proc is read for); several: those and all their descendants (a server of several processes, with its database) */
    pid: number | number[]
    address: TargetAddress
    /** facts about how it was run that a reader of the figures needs */
    notes: string[]
    /** feedline: its Prometheus text on the app port (bench:hotpath reads the store's commit count there) */
    metrics?: { url: string; caPath: string }
    stop(): Promise<void>
}

/** A target that cannot run here, with the reason a person can act on. */
export interface SkippedTarget {
    name: TargetName
    skipped: string
}

export interface TargetContext {
    tls: TlsFixture
    /** scratch directory for this target (config files, data) */
    workDir: string
    /** smoke runs never install packages */
    mayInstall: boolean
    /** keep-alive for the connection-scaling phase: feedline's metered-link heartbeat, MQTT keepalive */
    meteredKeepAlive: boolean
    log(line: string): void
}

export type StartTarget = (ctx: TargetContext) => Promise<RunningTarget | SkippedTarget>

export function isSkipped(t: RunningTarget | SkippedTarget): t is SkippedTarget {
    return "skipped" in t
}

export { freePort, spawnServer, stopChild, waitForPort } from "../../tools/child-processes.ts"
