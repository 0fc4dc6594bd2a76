// What crosses processes when several servers share one store: committed changes for the hubs of the
// others, the session list, and the per-key request budget. One process needs none of it to cross
// anything (local.ts); several share a Redis (redis.ts). The wiring (wiring.ts) picks one and connects
// the hub, the router and the sessions to it, so none of them knows which is in use.
// Key revocations and sign-outs do not travel here: they are the store's (Store.keysVersion moves when
// another process changed keys, PostgreSQL's NOTIFY, SQLite's data_version), which also covers the
// `feedline keys` CLI, which talks to the database only.
import type { Grant } from "../auth/grant.ts"
import type { TransportKind } from "../context.ts"
import type { HubMessage } from "../hub/index.ts"
import type { BucketConfig, Take } from "../ratelimit.ts"

/** One open connection as GET /sessions lists it (before the asker's view of its feeds is applied). */
export interface SessionEntry {
    id: string
    /** the process holding the connection (Bus.processId) */
    process: string
    transport: TransportKind
    remoteAddress: string
    connectedMs: number
    requests: number
    pushes: number
    /** what the connection's key allows; undefined until it authenticated */
    grant?: Grant
    subscriptions: { resource: string; token: string; state: string }[]
}

/** The open connections of every process. */
export interface SessionDirectory {
    /**
     * this process's as they are now, the others' as they last announced them; with `viewer`, this
     * process's may leave out those it may not see (open-sessions.ts)
     */
    list(viewer?: Grant): Promise<SessionEntry[]>
    /** stops announcing and withdraws this process's entries (shutdown) */
    close(): Promise<void>
}

/** The request budget per key over every process [limits.ts KEY_RATE_PER_SECOND]. */
export interface KeyRate {
    readonly config: BucketConfig
    /**
     * `elapsedMs`: the server's monotonic clock (ServerOptions.elapsedMs), never the wall clock: in memory the
     * bucket runs on it, so a step of the wall clock neither refills nor freezes a budget (Redis's budget
     * runs on Redis's TIME; this process only pauses its questions by it).
     */
    take(keyId: string, elapsedMs: number): Take | Promise<Take>
}

export interface Bus {
    /** this process's name on the bus: "host:pid:random" */
    readonly processId: string
    /** "local" (one process) or "redis" */
    readonly kind: "local" | "redis"
    /** hands this process's committed changes to every other process (its own hub has them already) */
    publish(message: HubMessage): void
    /** messages published by other processes */
    onMessage(handler: (message: HubMessage) => void): void
    /**
     * The link to the other processes broke, is still down, or came back, or another process's changes
     * did not arrive: changes may have been missed. The hub catches the feeds subscribed here up from the
     * store (wiring.ts, hub/catch-up.ts).
     */
    onInterrupted(handler: (why: string) => void): void
    /** the session list, made of `local` (this process's entries, read when needed: those `viewer` may see, or all) and the others' */
    sessionDirectory(local: (viewer?: Grant) => SessionEntry[]): SessionDirectory
    keyRate(config: BucketConfig): KeyRate
    /** waits for what was published to be sent, then disconnects */
    close(): Promise<void>
}
