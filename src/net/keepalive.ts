// Keep-alive decisions [P§4], pure: the link passes its clock readings in.
// Only received bytes prove the peer alive; our own sends only decide when a heartbeat is due.
import { DEFAULT_FAULTY_MS, DEFAULT_HEARTBEAT_MS, DEFAULT_TIMEOUT_MS, Welcome } from "../protocol"

export interface KeepaliveConfig {
    /** send a blank line after this long without sending */
    heartbeatMs: number
    /** silence beyond this marks the link degraded */
    faultyMs: number
    /** silence beyond this means the connection is dead */
    timeoutMs: number
}

/** What the link should do about its peer now. */
export type Liveness = "ok" | "degraded" | "dead"

/** [P§2] protocol defaults, used until a welcome announces the server's values */
export function defaultKeepalive(): KeepaliveConfig {
    return { heartbeatMs: DEFAULT_HEARTBEAT_MS, faultyMs: DEFAULT_FAULTY_MS, timeoutMs: DEFAULT_TIMEOUT_MS }
}

/**
 * Floors under a welcome's values: the link ticks every 100 ms, so shorter thresholds cannot be kept,
 * and a typo on the server (`timeout: 3`) must not make every device reconnect in a loop.
 */
const MIN_HEARTBEAT_MS = 100
const MIN_TIMEOUT_MS = 1000

/** [P§2] the contract announced by the welcome (decodeServerLine already filled in missing values) */
export function keepaliveFromWelcome(w: Welcome): KeepaliveConfig {
    const timeoutMs = w.timeout > MIN_TIMEOUT_MS ? w.timeout : MIN_TIMEOUT_MS
    const heartbeatMs = w.heartbeat > MIN_HEARTBEAT_MS ? w.heartbeat : MIN_HEARTBEAT_MS
    const faultyMs = w.faulty < timeoutMs ? w.faulty : timeoutMs
    return { heartbeatMs: heartbeatMs, faultyMs: faultyMs, timeoutMs: timeoutMs }
}

/** Silence since the last received byte decides: ok, degraded (report and keep going) or dead (reconnect). */
export function liveness(nowMs: number, lastRxMs: number, cfg: KeepaliveConfig): Liveness {
    const silentMs = nowMs - lastRxMs
    if (silentMs >= cfg.timeoutMs) return "dead"
    if (silentMs >= cfg.faultyMs) return "degraded"
    return "ok"
}

/** A blank-line heartbeat is due after `heartbeat` ms without sending anything. */
export function heartbeatDue(nowMs: number, lastTxMs: number, cfg: KeepaliveConfig): boolean {
    return nowMs - lastTxMs >= cfg.heartbeatMs
}
