// Sampling policy, pure: when to read a sensor, which readings to send, and the text they are sent as.
// Time is an argument; nothing here reads a clock, so tests need no sleeps.

/** every: the server keeps each sample (a time series); latest: only the newest one matters. */
export type OutboxPolicy = "every" | "latest"

export interface SamplingPolicy {
    /** read the sensor this often */
    intervalMs: number
    /** send a reading only when it moved more than this from the last one sent (sensor units; 0 = any change) */
    deadband: number
    /** ...or when nothing was sent for this long; 0 sends every reading */
    maxSilenceMs: number
    /** digits after the decimal point that are sent: the precision the sensor really has */
    decimals: number
    outbox: OutboxPolicy
}

/** Faster reads only add radio time and heap churn; a field sensor changes on a scale of seconds. */
export const MIN_INTERVAL_MS = 500
/** One reading a day is the slowest schedule that still proves the sensor alive. */
export const MAX_INTERVAL_MS = 86400000
/** DeviceScript prints numbers with 7 significant digits; more decimals would be noise or lost. */
export const MAX_DECIMALS = 6

/** What the sampler remembers per sensor between readings. */
export interface SamplingState {
    /** next read is due at this time (ms, the sampler's clock) */
    nextReadAtMs: number
    /** last value sent, in units of the last decimal (an integer, so comparisons are exact) */
    lastSentUnits: number
    /** when the last value was sent; meaningless until `sent` */
    lastSentAtMs: number
    sent: boolean
}

export type SendReason = "first" | "moved" | "silence" | "skip"

export function initialSamplingState(nowMs: number): SamplingState {
    return { nextReadAtMs: nowMs, lastSentUnits: 0, lastSentAtMs: 0, sent: false }
}

export function readDue(state: SamplingState, nowMs: number): boolean {
    return nowMs >= state.nextReadAtMs
}

/** Milliseconds until the next read (0 when due). */
export function msUntilRead(state: SamplingState, nowMs: number): number {
    const left = state.nextReadAtMs - nowMs
    return left > 0 ? left : 0
}

/** Schedule the read after one taken at `readAtMs`. A new, shorter interval takes effect at once. */
export function scheduleNextRead(state: SamplingState, policy: SamplingPolicy, readAtMs: number) {
    state.nextReadAtMs = readAtMs + policy.intervalMs
}

/** After a policy change: the pending read moves so the new interval counts from the previous read. */
export function reschedule(state: SamplingState, oldPolicy: SamplingPolicy, newPolicy: SamplingPolicy) {
    state.nextReadAtMs = state.nextReadAtMs - oldPolicy.intervalMs + newPolicy.intervalMs
}

function unitsPerOne(decimals: number): number {
    return Math.pow(10, decimals)
}

/** A reading in integer units of its last sent decimal (21.456 with 1 decimal → 215). */
export function toUnits(value: number, decimals: number): number {
    return Math.round(value * unitsPerOne(decimals))
}

/**
 * Whether the reading `value` (taken at `nowMs`) is sent. Compares the *rounded* reading with the
 * last one sent, so a deadband of 0 sends each change that shows in the text and never a repeat.
 */
export function decideSend(policy: SamplingPolicy, state: SamplingState, value: number, nowMs: number): SendReason {
    if (!state.sent) return "first"
    if (nowMs - state.lastSentAtMs >= policy.maxSilenceMs) return "silence"
    const movedUnits = Math.abs(toUnits(value, policy.decimals) - state.lastSentUnits)
    // the deadband in the same integer units; the tiny slack absorbs binary rounding of e.g. 0.1·10
    if (movedUnits > policy.deadband * unitsPerOne(policy.decimals) + 1e-6) return "moved"
    return "skip"
}

export function markSent(state: SamplingState, policy: SamplingPolicy, value: number, nowMs: number) {
    state.sent = true
    state.lastSentAtMs = nowMs
    state.lastSentUnits = toUnits(value, policy.decimals)
}

/** Beyond this the integer arithmetic below is no longer exact (2^53). */
const MAX_EXACT = 9007199254740991

/**
 * `value` as text with exactly `decimals` digits after the point (21.456, 1 → "21.5"; 3, 2 → "3.00").
 * DeviceScript would print 7 significant digits and binary noise; the sensor's precision is the intent.
 * Non-finite values give undefined: they are never sent.
 */
export function formatReading(value: number, decimals: number): string | undefined {
    if (typeof value !== "number" || !(value - value === 0)) return undefined
    const units = Math.round(Math.abs(value) * unitsPerOne(decimals))
    if (units > MAX_EXACT) return undefined
    const sign = units > 0 && value < 0 ? "-" : ""
    if (decimals <= 0) return sign + units
    const scale = unitsPerOne(decimals)
    const whole = Math.floor(units / scale)
    let frac = "" + (units - whole * scale)
    while (frac.length < decimals) frac = "0" + frac
    return sign + whole + "." + frac
}
