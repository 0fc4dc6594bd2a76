// What an actuator drives: a GPIO on a board (relay module, LED), or in the simulator nothing (the
// actuator logs every applied value either way). Plain GPIO rather than the runtime's relay and
// light bulb servers: those take their pin as a compile-time literal, and pins here come from the
// board table and settings at run time.
import * as ds from "@devicescript/core"
import "@devicescript/gpio"
import { SwitchOutput } from "../foundation/config"

export interface Output {
    /** Drives the hardware to `value` (0/1 for a switch, a number for a setpoint); throws when it cannot. */
    apply(value: number): Promise<void>
}

/** No hardware: only remembers the value. */
export class MemoryOutput implements Output {
    value: number | undefined
    async apply(value: number) {
        this.value = value
    }
}

/** A digital output pin; `activeLow` for relay boards that switch on a low level. */
export class GpioOutput implements Output {
    private pin: ds.OutputPin
    constructor(gpio: number, private activeLow: boolean) {
        this.pin = ds.gpio(gpio)
        this.pin.setMode(ds.GPIOMode.Output)
    }
    async apply(value: number) {
        const on = value !== 0
        this.pin.write(on !== this.activeLow)
    }
}

/** The output for a switch: its GPIO, or nothing when there is no pin (or in the simulator). */
export function startSwitchOutput(cfg: SwitchOutput): Output {
    if (cfg.pin === undefined || ds.isSimulator()) return new MemoryOutput()
    return new GpioOutput(cfg.pin, !!cfg.activeLow)
}
