// Reconnect delays: exponential backoff with full jitter (AWS backoffAlgorithm), pure. Randomness and
// elapsed time are arguments, so tests need no clock and no mocks.
// Part of the client core, import-free and shared like src/protocol.ts: the firmware link, the CLI's `sub`
// and the dashboard page (served compiled as /backoff.js) wait with this same code, each with its own config.

export interface BackoffConfig {
    /** first ceiling; attempt n waits up to base·2ⁿ */
    baseMs: number
    /** no wait is longer than this, unless the server asks for more */
    capMs: number
}

/** The device's policy: the attempt counter resets only after a connection stayed up `stableMs`. */
export interface ReconnectConfig extends BackoffConfig {
    /** a connection must stay up this long before the attempt counter resets: a flapping server is not hammered */
    stableMs: number
}

/** Firmware: a field device retries at least every minute; one second stable is not proof enough. */
export const DEFAULT_BACKOFF: ReconnectConfig = { baseMs: 500, capMs: 60000, stableMs: 20000 }

/**
 * Long-lived app clients (`sub`, the dashboard page): they reset after a protocol-level success (the
 * subscription was acknowledged), and a long outage is probed at least every 30 s, so recovery is
 * noticed within half a minute.
 */
export const CLIENT_BACKOFF: BackoffConfig = { baseMs: 250, capMs: 30000 }

/** Attempts beyond this add nothing: base·2^16 exceeds any sane cap, and 2ⁿ stays exact. */
const MAX_EXPONENT = 16

/**
 * Full jitter: a uniform delay in [0, min(cap, base·2^attempt)); `rand01` is in [0, 1).
 * A server's retry hint (`retry_after_ms` of a 429/503 or a notice; 0 when none) is a floor, honoured
 * even above the cap: never come back sooner than asked.
 */
export function backoffDelayMs(cfg: BackoffConfig, attempt: number, rand01: number, retryAfterMs: number): number {
    const exp = attempt < MAX_EXPONENT ? attempt : MAX_EXPONENT
    let ceiling = cfg.baseMs * Math.pow(2, exp)
    if (ceiling > cfg.capMs) ceiling = cfg.capMs
    const delay = Math.floor(rand01 * ceiling)
    return retryAfterMs > delay ? retryAfterMs : delay
}

/** The attempt counter to use after a connection that was up for `upForMs` (0 when it never got up) ends. */
export function attemptAfterDrop(cfg: ReconnectConfig, attempt: number, upForMs: number): number {
    return upForMs >= cfg.stableMs ? 0 : attempt
}

/**
 * `random` turned by a fixed offset derived from `deviceId`. The DeviceScript simulator seeds Math.random
 * identically at every start (measured; the ESP32 seed was not checked), so a fleet rebooting together
 * after an outage would otherwise draw the same jitter and come back in lock-step. A rotation of a
 * uniform [0, 1) draw stays uniform.
 */
export function spreadByDevice(deviceId: string, random: () => number): () => number {
    let h = 7
    for (let i = 0; i < deviceId.length; ++i) h = (h * 31 + deviceId.charCodeAt(i)) % 1000003
    const offset = h / 1000003
    return () => {
        const r = random() + offset
        return r >= 1 ? r - 1 : r
    }
}
