// Real sensors on a board: the I2C climate chip through the driver its build carries (src/boards/<id>.ts),
// analog inputs on an ADC pin, RSSI from the Wi-Fi service. Never called in the simulator: the drivers there
// wait for an external simulator that `devs run --test` does not have (platform notes §5).
import * as ds from "@devicescript/core"
import "@devicescript/gpio"
import { BoardConfig, CHIP_QUANTITIES, QUANTITIES } from "../foundation/config"
import { ChipDriver, ClientSensor, DriverSensor, FunctionSensor, Sensor, SensorDrivers } from "./sensor"

function sensorFor(q: string, role: any, scale = 1): Sensor {
    return new ClientSensor(QUANTITIES[q].id, QUANTITIES[q].unit, role, scale)
}

/**
 * An ADC pin read as % of its range. Plain GPIO rather than startLightLevel/startSoilMoisture: those
 * take the pin as a compile-time literal, and pins here come from the board table and settings.
 */
function analogSensor(q: string, gpio: number): Sensor {
    const pin = ds.gpio(gpio)
    pin.setMode(ds.GPIOMode.AnalogIn)
    return new FunctionSensor(QUANTITIES[q].id, QUANTITIES[q].unit, () => (pin as ds.InputPin).value * 100)
}

/** Starts the climate chip through the build's driver; a chip that does not answer on I2C, or has no driver in this build, is reported and skipped. */
async function startClimate(board: BoardConfig, out: Sensor[], onError: (code: string, detail: string) => void, drivers: SensorDrivers) {
    const c = board.climate
    if (!c) return
    try {
        const sensors = drivers.climate ? await drivers.climate(c.chip, c.address) : undefined
        if (!sensors) return onError("E_SENSOR_BUILD", c.chip) // this firmware was built for another board
        out.pushRange(sensors) // the runtime appends them: no loop in bytecode
    } catch (e) {
        // DriverError: nothing answered at the address (or a wrong chip id); the rest of the board still works
        onError("E_SENSOR_INIT", c.chip)
    }
}

/** The field of a driver's reading each quantity is. */
const DRIVER_FIELDS: Record<string, string> = { temp: "temperature", humidity: "humidity", pressure: "pressure" }

/** Starts `driver` and returns a sensor per quantity the board's chip measures (CHIP_QUANTITIES). */
export async function chipSensors(driver: ChipDriver, chip: string): Promise<Sensor[]> {
    await driver.init()
    return CHIP_QUANTITIES[chip].map(q => new DriverSensor(QUANTITIES[q].id, QUANTITIES[q].unit, driver, DRIVER_FIELDS[q]))
}

export async function startHardwareSensors(board: BoardConfig, onError: (code: string, detail: string) => void, drivers: SensorDrivers): Promise<Sensor[]> {
    const out: Sensor[] = []
    await startClimate(board, out, onError, drivers)
    if (board.lightPin !== undefined) out.push(analogSensor("light", board.lightPin))
    if (board.soilPin !== undefined) out.push(analogSensor("soil", board.soilPin))
    // the Wi-Fi service's reading register is the RSSI in dBm
    if (board.rssi) out.push(sensorFor("rssi", new ds.Wifi()))
    return out
}
