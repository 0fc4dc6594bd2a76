// [P§4] The server's keep-alive decision, pure: time comes in as arguments, so tests need no sleeps.
// The server sends a blank line after `heartbeatMs` without sending; it closes a connection silent for
// `timeoutMs` (only received bytes count as life). The session's timer sleeps exactly `dueInMs`.

export interface KeepAliveConfig {
    heartbeatMs: number
    timeoutMs: number
}

export type KeepAliveAction = "none" | "heartbeat" | "timeout"

export interface KeepAliveDecision {
    action: KeepAliveAction
    /** ms until the next decision is due, counted after the action is carried out */
    dueInMs: number
}

export function decideKeepAlive(nowMs: number, lastRxMs: number, lastTxMs: number, cfg: KeepAliveConfig): KeepAliveDecision {
    const silentFor = nowMs - lastRxMs
    if (silentFor >= cfg.timeoutMs) return { action: "timeout", dueInMs: 0 }
    const untilTimeout = cfg.timeoutMs - silentFor
    const idleTx = nowMs - lastTxMs
    if (idleTx >= cfg.heartbeatMs) return { action: "heartbeat", dueInMs: Math.min(cfg.heartbeatMs, untilTimeout) }
    return { action: "none", dueInMs: Math.min(cfg.heartbeatMs - idleTx, untilTimeout) }
}
