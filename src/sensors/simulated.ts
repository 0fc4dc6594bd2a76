// Simulated sensors: in-VM Jacdac sensor servers (@devicescript/server) fed by the signal model, read
// through the same clients as real hardware. They bind with no bus, so they work in `devs run --test`
// and under `npm start`. (startTemperature({simOk}) in the drivers does this but is not exported.)
import * as ds from "@devicescript/core"
import { SensorServer, startServer } from "@devicescript/server"
import { Quantity, QUANTITIES } from "../app/config"
import { ClientSensor, FunctionSensor, Sensor } from "./sensor"
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

/** A Jacdac sensor server whose reading is a simulated signal. */
export class SimulatedSensorServer extends SensorServer {
    constructor(spec: ds.ServiceSpec, private signal: SimulatedSignal, private toServiceUnit: number) {
        super(spec)
    }

    async reading() {
        return this.signal.sample() * this.toServiceUnit
    }
}

function serverSensor(q: Quantity, spec: ds.ServiceSpec, role: (name: string) => any, signal: SimulatedSignal, scale: number) {
    const info = QUANTITIES[q]
    const server = new SimulatedSensorServer(spec, signal, 1 / scale)
    return new ClientSensor(info.id, info.unit, role(startServer(server)), scale)
}

/**
 * A simulated sensor for `q`: an in-VM server and its client, except RSSI (the Wi-Fi service is not a
 * sensor server), which is computed directly. Start all of them at once: servers started after the
 * first batch has been announced never bind (measured in the simulator).
 */
export function startSimulatedSensor(q: Quantity, rand: Rand01, clock: () => number): Sensor {
    const signal = new SimulatedSignal(SIM_SHAPES[q], rand, clock)
    if (q === "temp") return serverSensor(q, ds.Temperature.spec, n => new ds.Temperature(n), signal, 1)
    if (q === "humidity") return serverSensor(q, ds.Humidity.spec, n => new ds.Humidity(n), signal, 1)
    if (q === "pressure") return serverSensor(q, ds.AirPressure.spec, n => new ds.AirPressure(n), signal, 1)
    // light and soil services report a 0..1 ratio; the datastream is in %
    if (q === "light") return serverSensor(q, ds.LightLevel.spec, n => new ds.LightLevel(n), signal, 100)
    if (q === "soil") return serverSensor(q, ds.SoilMoisture.spec, n => new ds.SoilMoisture(n), signal, 100)
    const info = QUANTITIES[q]
    return new FunctionSensor(info.id, info.unit, () => signal.sample())
}
