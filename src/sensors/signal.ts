// Plausible simulated readings, pure: a slow drift around a base value, small noise, and now and then
// a step (a door opens, a cloud passes) that fades away again. Randomness and elapsed time are
// arguments, so a seeded generator makes every run of a test identical.

export interface SignalShape {
    base: number
    /** typical size of the slow drift (standard deviation, sensor units) */
    drift: number
    /** how slowly the drift wanders (its correlation time) */
    driftTauMs: number
    /** per-reading noise (standard deviation, sensor units) */
    noise: number
    /** expected steps per hour */
    stepsPerHour: number
    /** size of a step (sign is random) */
    step: number
    /** a step fades with this time constant */
    stepTauMs: number
    min: number
    max: number
}

/** Random numbers uniform in [0, 1). */
export type Rand01 = () => number

export interface SignalState {
    drift: number
    offset: number
}

export function initialSignalState(): SignalState {
    return { drift: 0, offset: 0 }
}

/** Approximately standard normal: the sum of four uniforms, centred and scaled (Irwin–Hall). */
export function gaussian(rand: Rand01): number {
    return (rand() + rand() + rand() + rand() - 2) * 1.7320508
}

/**
 * Advances the signal by `dtMs` and returns the reading at the new time.
 * The drift is an Ornstein–Uhlenbeck walk: it wanders but keeps returning to the base, so a simulated
 * greenhouse never drifts off to 80 °C however long the simulator runs.
 */
export function nextReading(shape: SignalShape, state: SignalState, dtMs: number, rand: Rand01): number {
    const dt = dtMs > 0 ? dtMs : 0
    const keep = Math.exp(-dt / shape.driftTauMs)
    state.drift = state.drift * keep + shape.drift * Math.sqrt(1 - keep * keep) * gaussian(rand)
    state.offset = state.offset * Math.exp(-dt / shape.stepTauMs)
    if (rand() < (shape.stepsPerHour * dt) / 3600000) state.offset += rand() < 0.5 ? -shape.step : shape.step
    const v = shape.base + state.drift + state.offset + shape.noise * gaussian(rand)
    return v < shape.min ? shape.min : v > shape.max ? shape.max : v
}

/** A small deterministic generator (Numerical Recipes LCG, 32 bit) for tests and repeatable demos. */
export function seededRand(seed: number): Rand01 {
    let s = seed >>> 0
    return () => {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0
        return s / 4294967296
    }
}
