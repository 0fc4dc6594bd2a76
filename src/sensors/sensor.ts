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

/** An I2C chip driver of @devicescript/drivers (or a copy in src/sensors/chips): read() gives every quantity at once, cached. */
export interface ChipDriver {
    init(): Promise<void>
    read(): Promise<any>
}

/** One quantity of an I2C chip, read from its driver directly (no Jacdac server in between). */
export class DriverSensor implements Sensor {
    constructor(readonly id: string, readonly unit: string, private driver: ChipDriver, private field: string) {}

    async read(): Promise<number | undefined> {
        const v = (await this.driver.read())[this.field]
        return typeof v === "number" && !isNaN(v) ? v : undefined
    }
}

/**
 * What a build can start besides GPIO and Wi-Fi, chosen by its entry so that each build compiles only
 * what it wires: src/boards/<id>.ts passes its board's chip driver, src/main.ts the simulated sensors
 * (SIMULATOR_DRIVERS).
 */
export interface SensorDrivers {
    /** the sensors of `chip` at `address`, its driver started; undefined when this build has no driver for it */
    climate?: (chip: string, address: number) => Promise<Sensor[] | undefined>
    /** a simulated sensor for quantity `q` (in-VM server and client) */
    simulated?: (q: string, rand: () => number, clock: () => number) => Sensor
}
