// Simulated sensors: the signal model read directly, so they work with no bus in `devs run --test` and
// under `npm start`, and cost no Jacdac server code (the builds for boards read their chips directly too).
import { Quantity, QUANTITIES } from "../foundation/config"
import { FunctionSensor, Sensor, SensorDrivers } from "./sensor"
import { initialSignalState, nextReading, Rand01, SignalShape, SignalState } from "./signal"

/** Plausible indoor/greenhouse values per quantity. */
export const SIM_SHAPES: Record<string, SignalShape> = {
    temp: { base: 21.5, drift: 1.2, driftTauMs: 600000, noise: 0.03, stepsPerHour: 4, step: 1.5, stepTauMs: 120000, min: -40, max: 125 },
    humidity: { base: 48, drift: 5, driftTauMs: 900000, noise: 0.2, stepsPerHour: 3, step: 6, stepTauMs: 180000, min: 0, max: 100 },
    pressure: { base: 1013.25, drift: 2, driftTauMs: 3600000, noise: 0.05, stepsPerHour: 0.5, step: 1, stepTauMs: 600000, min: 300, max: 1100 },
    light: { base: 55, drift: 15, driftTauMs: 300000, noise: 0.5, stepsPerHour: 12, step: 25, stepTauMs: 60000, min: 0, max: 100 },
    soil: { base: 40, drift: 4, driftTauMs: 3600000, noise: 0.3, stepsPerHour: 0.5, step: 15, stepTauMs: 1800000, min: 0, max: 100 },
    rssi: { base: -62, drift: 4, driftTauMs: 120000, noise: 1.5, stepsPerHour: 6, step: 8, stepTauMs: 30000, min: -100, max: -20 },
}

/** A signal that advances with the clock it is read at. */
export class SimulatedSignal {
    private state: SignalState = initialSignalState()
    private lastMs: number

    constructor(private shape: SignalShape, private rand: Rand01, private clock: () => number) {
        this.lastMs = clock()
    }

    /** Reading at the current clock; readings at the same instant repeat only the noise. */
    sample(): number {
        const now = this.clock()
        const v = nextReading(this.shape, this.state, now - this.lastMs, this.rand)
        this.lastMs = now
        return v
    }
}

/**
 * A simulated sensor for `q`, read directly from its signal. (Until issue 13 each was an in-VM Jacdac
 * sensor server read through a client, as the hardware's were; the boards now read their chip drivers
 * directly too, and the servers cost 3.8 KB of the 64 KiB code window.)
 */
export function startSimulatedSensor(q: Quantity, rand: Rand01, clock: () => number): Sensor {
    const signal = new SimulatedSignal(SIM_SHAPES[q], rand, clock)
    const info = QUANTITIES[q]
    return new FunctionSensor(info.id, info.unit, () => signal.sample())
}

/** The simulator's build: every sensor simulated, no chip driver (src/main.ts, npm start, the tests). */
export const SIMULATOR_DRIVERS: SensorDrivers = { simulated: (q: string, rand: Rand01, clock: () => number) => startSimulatedSensor(q as Quantity, rand, clock) }
