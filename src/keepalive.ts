// [P§4] Keep-alive: one decision for every peer (the firmware link, the CLI and client library, the
// dashboard page, the load generator and the server). Pure: callers pass their clock readings.
// Import-free and shared like src/protocol.ts (DeviceScript and Node; the page gets it as /keepalive.js).

/** [P§4] keep-alive defaults, from the design documents: heartbeat 300 ms, faulty after 1 s, dead after 3 s. */
export const DEFAULT_HEARTBEAT_MS = 300
export const DEFAULT_FAULTY_MS = 1000
export const DEFAULT_TIMEOUT_MS = 3000

/** [P§2] the keep-alive values of a welcome line, as decodeServerLine read them (a structural subset of Welcome) */
export interface WelcomeKeepalive {
    heartbeat?: number
    faulty?: number
    timeout?: number
}

/** [P§4] the keep-alive contract of a connection, in ms (the welcome's heartbeat / faulty / timeout) */
export interface KeepaliveContract {
    /** send a blank line after this long without sending */
    heartbeatMs: number
    /** silence beyond this marks the link degraded */
    faultyMs: number
    /** silence beyond this means the connection is dead */
    timeoutMs: number
}

/** ok: the peer was heard lately; degraded: silent past `faulty` (report, keep going); dead: silent past `timeout` (drop, reconnect). */
export type LinkHealth = "ok" | "degraded" | "dead"

export interface KeepaliveStep {
    health: LinkHealth
    /** send a heartbeat (a blank line) now: we have been quiet for `heartbeat` ms; never on a dead link */
    sendHeartbeat: boolean
    /** when this decision changes next, counted after the heartbeat is sent; never below 10 ms, so a clock jump cannot spin a timer */
    nextCheckInMs: number
}

/** Bounds a receiver puts on a welcome's values (see keepaliveFromWelcome). */
export interface KeepaliveBounds {
    heartbeatMs: number
    timeoutMs: number
    /** ceiling on `timeout` (1e400 reads as Infinity); `heartbeat` is then kept to half of it at most */
    maxTimeoutMs: number
}

const MIN_KEEPALIVE_CHECK_MS = 10

/** [P§2] the protocol defaults, in force until a welcome announces the server's values */
export function defaultKeepalive(): KeepaliveContract {
    return { heartbeatMs: DEFAULT_HEARTBEAT_MS, faultyMs: DEFAULT_FAULTY_MS, timeoutMs: DEFAULT_TIMEOUT_MS }
}

/**
 * [P§4] `faulty` when none is given: three heartbeats missed, at least DEFAULT_FAULTY_MS (the design
 * documents' 1 s for the 300 ms heartbeat), and at most halfway from heartbeat to timeout, so that a
 * link is reported degraded well before it is dead. 300/3000 -> 1000; 25000/60000 -> 42500.
 */
export function deriveFaultyMs(heartbeatMs: number, timeoutMs: number): number {
    let faultyMs = 3 * heartbeatMs
    if (faultyMs < DEFAULT_FAULTY_MS) faultyMs = DEFAULT_FAULTY_MS
    const capMs = Math.floor((heartbeatMs + timeoutMs) / 2)
    if (capMs < 1) return timeoutMs // a welcome with a sub-ms timeout: faulty stays positive, at the timeout
    return faultyMs < capMs ? faultyMs : capMs
}

export interface KeepaliveSettings {
    contract?: KeepaliveContract
    /** why the values cannot work together, naming them */
    error?: string
}

function isWholeMs(v: number): boolean {
    return v > 0 && v - Math.floor(v) === 0
}

/**
 * [P§4] The contract a server announces, from its settings: a missing value takes the protocol default,
 * a missing `faulty` is derived (deriveFaultyMs). Refused unless heartbeat < faulty < timeout and
 * timeout >= 2 x heartbeat (a peer heartbeating on time must be heard before it is declared dead).
 */
export function keepaliveContractOf(heartbeatMs?: number, faultyMs?: number, timeoutMs?: number): KeepaliveSettings {
    const h = heartbeatMs === undefined ? DEFAULT_HEARTBEAT_MS : heartbeatMs
    const t = timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : timeoutMs
    const named = (what: string, v: number, given: boolean) => what + " (" + v + " ms" + (given ? "" : ", the default") + ")"
    const hb = named("heartbeat", h, heartbeatMs !== undefined)
    const to = named("timeout", t, timeoutMs !== undefined)
    if (!isWholeMs(h) || !isWholeMs(t) || (faultyMs !== undefined && !isWholeMs(faultyMs))) {
        return { error: "heartbeat, faulty and timeout must be whole numbers of ms above 0" }
    }
    if (t < 2 * h) return { error: to + " must be at least twice " + hb + ", or connections that heartbeat on time would be closed" }
    const f = faultyMs === undefined ? deriveFaultyMs(h, t) : faultyMs
    const fa = named("faulty", f, faultyMs !== undefined)
    if (f <= h) return { error: fa + " must be above " + hb + ", or every healthy link would be reported degraded" }
    if (f >= t) return { error: fa + " must be below " + to + ", or a link would be dead before it is degraded" }
    return { contract: { heartbeatMs: h, faultyMs: f, timeoutMs: t } }
}

/**
 * [P§2] The contract a welcome announces: a value it leaves out takes the protocol default, a missing
 * `faulty` is derived as the server derives it (deriveFaultyMs, from the announced values). `faulty` never
 * exceeds `timeout`. A device passes bounds: it cannot keep thresholds shorter than its tick, a typo on
 * the server (`timeout: 3`) must not make every device reconnect in a loop, and an absurdly long one
 * (`60000000`, `1e400`) must not switch its watchdog or its heartbeat off.
 */
export function keepaliveFromWelcome(w: WelcomeKeepalive, floors?: KeepaliveBounds): KeepaliveContract {
    let timeoutMs = w.timeout !== undefined ? w.timeout : DEFAULT_TIMEOUT_MS
    let heartbeatMs = w.heartbeat !== undefined ? w.heartbeat : DEFAULT_HEARTBEAT_MS
    const announcedFaultyMs = w.faulty !== undefined ? w.faulty : deriveFaultyMs(heartbeatMs, timeoutMs)
    if (floors !== undefined) {
        if (timeoutMs < floors.timeoutMs) timeoutMs = floors.timeoutMs
        if (timeoutMs > floors.maxTimeoutMs) timeoutMs = floors.maxTimeoutMs
        if (heartbeatMs < floors.heartbeatMs) heartbeatMs = floors.heartbeatMs
        // [P§4] timeout >= 2 x heartbeat: a heartbeat too slow for the timeout (1e400) would have the peer close us as silent
        if (heartbeatMs > timeoutMs / 2) heartbeatMs = Math.floor(timeoutMs / 2)
    }
    const faultyMs = announcedFaultyMs < timeoutMs ? announcedFaultyMs : timeoutMs
    return { heartbeatMs: heartbeatMs, faultyMs: faultyMs, timeoutMs: timeoutMs }
}

/**
 * [P§4] What a peer does about the connection now, pure: the caller passes its clock readings. Only
 * received bytes prove the peer alive (a half-open socket still accepts writes); our own sends only decide
 * when a heartbeat is due. A peer that does not report "degraded" (the server) passes faulty = timeout.
 */
export function keepaliveStep(nowMs: number, lastRxMs: number, lastTxMs: number, c: KeepaliveContract): KeepaliveStep {
    const silentMs = nowMs - lastRxMs
    const quietMs = nowMs - lastTxMs
    let health: LinkHealth = "ok"
    if (silentMs >= c.timeoutMs) health = "dead"
    else if (silentMs >= c.faultyMs) health = "degraded"
    const sendHeartbeat = health !== "dead" && quietMs >= c.heartbeatMs
    const txDueMs = sendHeartbeat ? c.heartbeatMs : c.heartbeatMs - quietMs
    const rxDueMs = health === "ok" ? c.faultyMs - silentMs : c.timeoutMs - silentMs
    const dueMs = txDueMs < rxDueMs ? txDueMs : rxDueMs
    return { health: health, sendHeartbeat: sendHeartbeat, nextCheckInMs: dueMs > MIN_KEEPALIVE_CHECK_MS ? dueMs : MIN_KEEPALIVE_CHECK_MS }
}
