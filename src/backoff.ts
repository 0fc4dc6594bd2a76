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

/** A request (a subscribe, a batch) refused 429 or 5xx without a retry_after_ms is sent again after this long. */
export const BUSY_RETRY_MS = 1000
/**
 * ...plus up to this much, drawn uniformly: a server's retry_after_ms is the refusal's turn (PROTOCOL.md
 * §6; it spreads a crowd refused at one instant, with up to a fifth more), and clients of other limits or
 * processes told close turns would still come back together, all but a few to be refused again (500 simulated
 * devices over the WebSocket, before the server gave turns: 6,500-8,100 429 E_KEY_RATE_LIMITED per restart
 * without this).
 */
export const BUSY_SPREAD_MS = 1000

/**
 * [P§6] When a request refused "not now" (429, 5xx: nothing was done) is sent again: after the server's
 * `retryAfterMs` (0 when none; else BUSY_RETRY_MS) and a share of BUSY_SPREAD_MS (`rand01` in [0, 1)), so
 * that a fleet refused at one instant does not come back at one instant. A subscribe (resubscribeAfterMs)
 * and a write (the firmware's refused batch, the fleet harness's refused update) both wait this.
 */
export function retryAfterRefusalMs(retryAfterMs: number, rand01: number): number {
    return (retryAfterMs > 0 ? retryAfterMs : BUSY_RETRY_MS) + Math.floor(rand01 * BUSY_SPREAD_MS)
}

/**
 * [P§8] Whether and when a subscribe the server refused, or a subscription it ended, with `status` is asked
 * for again on the same connection: 408 (E_SUBSCRIPTION_ENDED) at once; 429 and 5xx (the server busy or
 * failing for now: a fleet on one key back after a server restart meets E_KEY_RATE_LIMITED) after the
 * server's `retryAfterMs` and a spread, as retryAfterRefusalMs says. Anything else: -1, not on this connection (the caller's policy: the firmware asks again after
 * 401/403 every 30 s, the CLI gives up). Dialling again instead would cost a TLS handshake per refusal (a
 * fleet's storm of 429s) and hear no command meanwhile. The firmware's link and the client library's
 * subscribeForever (`feedline sub`) both ask this.
 */
export function resubscribeAfterMs(status: number, retryAfterMs: number, rand01: number): number {
    if (status === 408) return 0
    if (status === 429 || status >= 500) return retryAfterRefusalMs(retryAfterMs, rand01)
    return -1
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
