// Reconnect delays for long-lived clients (`sub` and the dashboard page): capped exponential backoff
// with full jitter (AWS backoffAlgorithm), randomness passed in. Reset only after a protocol-level
// success (the subscription was acknowledged), not on TCP connect, so a server that accepts and then
// drops us at once is not hammered.
// Import-free: the dashboard page runs this same file (served compiled as /backoff.js).

/** first retry waits up to this long */
export const BACKOFF_BASE_MS = 250
/** a long outage is probed at most this far apart, so recovery is noticed within half a minute */
export const BACKOFF_CAP_MS = 30_000

export interface Backoff {
    attempt: number
}

export const BACKOFF_START: Backoff = { attempt: 0 }

/** The delay before the next attempt and the state after it. `rand01` is in [0, 1). */
export function nextBackoff(state: Backoff, rand01: number): { delayMs: number; state: Backoff } {
    const ceilingMs = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(state.attempt, 16))
    return { delayMs: Math.floor(rand01 * ceilingMs), state: { attempt: state.attempt + 1 } }
}

/** A server's `retry_after_ms` (429/503 notice) is a floor: never come back sooner than asked. */
export function honourRetryAfter(delayMs: number, retryAfterMs: number | undefined): number {
    return retryAfterMs !== undefined && retryAfterMs > delayMs ? retryAfterMs : delayMs
}
