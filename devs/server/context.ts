// What handlers see: the request context, their result type, and the permission guards. Kept apart
// from router.ts so that handlers do not import the router that imports them.
import type { Request } from "../../src/protocol.ts"
import { permits, type BearerVerifier, type Grant, type Permission } from "./auth/grant.ts"
import type { KeyRing } from "./auth/keys.ts"
import type { ProvenKeys } from "./auth/proven-keys.ts"
import { forbidden } from "./errors.ts"
import type { Fleet } from "./fleet/fleet.ts"
import type { Later } from "./later.ts"
import type { FeedStreams } from "./feed-streams.ts"
import type { Hub, PushTarget } from "./hub/index.ts"
import type { Logger } from "./log.ts"
import type { Metrics } from "./metrics.ts"
import type { ClockedBuckets } from "./ratelimit.ts"
import type { KeyRate, SessionDirectory } from "./bus/bus.ts"
import type { Store } from "./storage/store.ts"
import type { StampLead } from "./stamp-lead.ts"

/** The door a connection came in by: a label (logs, metrics, GET /sessions), not a transport object. */
export type TransportKind = "tls" | "tcp" | "ws" | "http"

/** A connection as handlers see it (sessions implement it; HTTP requests have none); its subscriptions are the hub's. */
export interface Connection extends PushTarget {
    readonly id: string
    readonly transport: TransportKind
    readonly remoteAddress: string
    readonly connectedMs: number
    readonly requests: number
    readonly pushes: number
    /** the key remembered for the connection [P§7] */
    rememberedKey?: string
    /** what the key of the connection's latest authenticated request allows (GET /sessions shows it) */
    grant?: Grant
    /** [P§7] the router accepted `credential`: remember it (the first one) and its grant */
    authenticated(credential: string, grant: Grant): void
}

/** Who is asking. */
export interface Caller {
    transport: TransportKind
    remoteAddress: string
    connection?: Connection
}

export interface RouterDeps {
    store: Store
    keys: KeyRing
    hub: Hub
    metrics: Metrics
    log: Logger
    now: () => number
    /** time gone by, ms (monotonic): the windows that live in this process alone (proven keys) */
    elapsedMs: () => number
    authFailures: ClockedBuckets
    /** keys that authenticated from each address lately, shared with POST /jwt (ServerCore.provenKeys); default: the router's own */
    provenKeys?: ProvenKeys
    /** requests per key (Grant.keyId), over every process on the store */
    keyRate: KeyRate
    /** changes to feeds' structure per key (Grant.keyId), over every process (handlers/write.ts beginStructureChange) */
    structureRate: KeyRate
    verifyBearer?: BearerVerifier
    /** the open connections of every process on the store (GET /sessions) */
    sessions: SessionDirectory
    /** this process's name among them (Bus.processId) */
    processId: string
    /** [fleet] claim limits, which keys are devices', when each was last seen */
    fleet: Fleet
    /** [P§10] each feed's datastreams, held to MAX_DATASTREAMS_PER_FEED */
    feedStreams: FeedStreams
    /** [P§9] how far server stamps lead the clock (handlers/write.ts tells it each stamped write) */
    stampLead: StampLead
}

/** What a handler returns: the status and body of the response, and what to do once it is sent. */
export interface Result {
    status: number
    body?: unknown
    /** runs right after the response is queued (subscription replays go after their acknowledgement) */
    after?: () => void
}

export interface Ctx {
    req: Request
    /** the normalised resource */
    resource: string
    params: Record<string, string | number | boolean>
    grant: Grant
    caller: Caller
    deps: RouterDeps
    /** path parameters: feed, ds, key */
    path: Readonly<Record<string, string>>
    /** the feed id of the path, parsed */
    feed: number
    /**
     * Set when the key was checked without looking at other processes' changes (Route.writesPoints):
     * the keys' version that check relied on, which the points write passes to the store (writePoints'
     * keysAsOf). A handler that would change anything else first calls requireKeysLooked (write.ts).
     */
    keysAsOf?: number
}

/** A handler's result to come: a Later on the hot path (a points write's answer, told without a promise step: later.ts), else a promise. */
export type ResultToCome = Promise<Result> | Later<Result>
export type Handler = (ctx: Ctx) => ResultToCome
export type Routes = Partial<Record<"get" | "put" | "post" | "delete", Handler>>

/** [fleet] What a handler that needs no key sees (a claim: its credential is in its body). */
export type OpenCtx = Omit<Ctx, "grant">
export type OpenHandler = (ctx: OpenCtx) => Promise<Result>
export type OpenRoutes = Partial<Record<"get" | "put" | "post" | "delete", OpenHandler>>

/** [P§7] the permission a method needs by default */
export function permissionOf(method: string): Permission {
    switch (method) {
        case "put":
            return "update"
        case "post":
            return "create"
        case "delete":
            return "delete"
        default:
            return "read"
    }
}

/** Throws 403 unless the grant may do `permission` on `feed`; says nothing about whether the feed exists. */
export function requireFeed(ctx: Ctx, permission: Permission, feed = ctx.feed): void {
    if (!permits(ctx.grant, permission, feed)) {
        throw forbidden(`this key may not ${permission} feed ${feed}; ask for a key with "${permission}" on it`)
    }
}

export function requireMaster(ctx: Ctx, what = "manage keys"): void {
    if (!ctx.grant.master) throw forbidden(`only a master key may ${what}`)
}
