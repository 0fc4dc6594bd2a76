// The one interface every sensor sits behind, real or simulated.
import * as ds from "@devicescript/core"

export interface Sensor {
    /** datastream id the readings go to [P§10] */
    readonly id: string
    readonly unit: string
    /**
     * The current reading in `unit`. undefined: no reading yet (driver not bound, sensor warming up);
     * the sampler retries soon. Throws when the sensor failed; the sampler reports it and carries on.
     */
    read(): Promise<number | undefined>
}

/** Any Jacdac sensor client: ds.Temperature, ds.Humidity, ds.LightLevel, ds.Wifi (reading = RSSI)… */
export interface ReadingRole {
    readonly isBound: boolean
    readonly reading: ds.Register<number>
}

/**
 * A sensor read through its Jacdac client, the same way for hardware drivers and in-VM simulated
 * servers. `scale` converts the service's unit to the datastream's (a 0..1 light ratio → %).
 */
export class ClientSensor implements Sensor {
    constructor(readonly id: string, readonly unit: string, private role: ReadingRole, private scale = 1) {}

    async read(): Promise<number | undefined> {
        // an unbound role would block read() until a server appears; a missing sensor must not stall the others
        if (!this.role.isBound) return undefined
        const v = await this.role.reading.read()
        if (typeof v !== "number" || isNaN(v)) return undefined
        return v * this.scale
    }
}

/** A sensor computed in the VM (a simulated value without a matching Jacdac service). */
export class FunctionSensor implements Sensor {
    constructor(readonly id: string, readonly unit: string, private fn: () => number | undefined) {}

    async read(): Promise<number | undefined> {
        return this.fn()
    }
}
