// [P§4] The client's keep-alive decision, pure: time comes in as arguments, so tests need no sleeps.
// Only received bytes count as proof of life; our own sends never do (a half-open socket still accepts
// writes). The connection calls `keepaliveStep` whenever its timer fires and sleeps `nextCheckInMs`.
// Import-free: the dashboard page runs this same file (served compiled as /keepalive.js).

export interface KeepaliveContract {
    heartbeatMs: number
    faultyMs: number
    timeoutMs: number
}

/** online: traffic is flowing; degraded: silent past `faulty` (report, keep going); dead: silent past `timeout` (drop, reconnect). */
export type LinkHealth = "online" | "degraded" | "dead"

export interface KeepaliveStep {
    health: LinkHealth
    /** send a heartbeat (a blank line) now: we have been quiet for `heartbeat` ms */
    sendHeartbeat: boolean
    /** when to look again; never 0, so a broken clock cannot spin the loop */
    nextCheckInMs: number
}

const MIN_CHECK_MS = 10

export function keepaliveStep(nowMs: number, lastRxMs: number, lastTxMs: number, c: KeepaliveContract): KeepaliveStep {
    const silentMs = nowMs - lastRxMs
    const quietMs = nowMs - lastTxMs
    const health: LinkHealth = silentMs >= c.timeoutMs ? "dead" : silentMs >= c.faultyMs ? "degraded" : "online"
    const sendHeartbeat = health !== "dead" && quietMs >= c.heartbeatMs
    const txDue = sendHeartbeat ? c.heartbeatMs : c.heartbeatMs - quietMs
    const rxDue = health === "online" ? c.faultyMs - silentMs : c.timeoutMs - silentMs
    return { health, sendHeartbeat, nextCheckInMs: Math.max(MIN_CHECK_MS, Math.min(txDue, rxDue)) }
}
