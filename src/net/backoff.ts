// Reconnect delays: exponential backoff with full jitter (AWS backoffAlgorithm), pure.
// Randomness and elapsed time are arguments, so tests need no clock and no mocks.

export interface BackoffConfig {
    /** first ceiling; attempt n waits up to base·2ⁿ */
    baseMs: number
    /** no wait is longer than this (a field device should retry at least every few minutes) */
    capMs: number
    /** a connection must stay up this long before the attempt counter resets: a flapping server is not hammered */
    stableMs: number
}

export const DEFAULT_BACKOFF: BackoffConfig = { baseMs: 500, capMs: 60000, stableMs: 20000 }

/** Attempts beyond this add nothing: base·2^16 exceeds any sane cap, and 2ⁿ stays exact. */
const MAX_EXPONENT = 16

/**
 * Full jitter: a uniform delay in [0, min(cap, base·2^attempt)).
 * A server's retry hint (`retry_after_ms` of a 429/503) is a floor, honoured even above the cap.
 */
export function backoffDelayMs(cfg: BackoffConfig, attempt: number, rand01: number, retryAfterMs: number): number {
    const exp = attempt < MAX_EXPONENT ? attempt : MAX_EXPONENT
    let ceiling = cfg.baseMs * Math.pow(2, exp)
    if (ceiling > cfg.capMs) ceiling = cfg.capMs
    const delay = Math.floor(rand01 * ceiling)
    return retryAfterMs > delay ? retryAfterMs : delay
}

/** The attempt counter to use after a connection that was up for `upForMs` (0 when it never got up) ends. */
export function attemptAfterDrop(cfg: BackoffConfig, attempt: number, upForMs: number): number {
    return upForMs >= cfg.stableMs ? 0 : attempt
}
