// Real sensors on a board: I2C climate chips through @devicescript/drivers, analog inputs on an ADC
// pin, RSSI from the Wi-Fi service. Never called in the simulator: the drivers there wait for an
// external simulator that `devs run --test` does not have (platform notes §5).
import * as ds from "@devicescript/core"
import { startAHT20, startBME680, startSHT30, startSHTC3 } from "@devicescript/drivers"
import "@devicescript/gpio"
import { BoardConfig, QUANTITIES } from "../app/config"
import { ClientSensor, FunctionSensor, Sensor } from "./sensor"

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

/** Starts the climate chip; a chip that does not answer on I2C is reported and skipped. */
async function startClimate(board: BoardConfig, out: Sensor[], onError: (code: string, detail: string) => void) {
    const c = board.climate
    if (!c) return
    try {
        if (c.chip === "bme680") {
            const r = await startBME680({ address: c.address === 0x77 ? 0x77 : 0x76 })
            out.push(sensorFor("temp", r.temperature))
            out.push(sensorFor("humidity", r.humidity))
            out.push(sensorFor("pressure", r.pressure))
            return
        }
        let r: { temperature: ds.Temperature; humidity: ds.Humidity }
        if (c.chip === "sht30") r = await startSHT30({ address: c.address === 0x45 ? 0x45 : 0x44 })
        else if (c.chip === "shtc3") r = await startSHTC3()
        else r = await startAHT20()
        out.push(sensorFor("temp", r.temperature))
        out.push(sensorFor("humidity", r.humidity))
    } catch (e) {
        // DriverError: nothing answered at the address; the rest of the board still works
        onError("E_SENSOR_INIT", c.chip)
    }
}

export async function startHardwareSensors(board: BoardConfig, onError: (code: string, detail: string) => void): Promise<Sensor[]> {
    const out: Sensor[] = []
    await startClimate(board, out, onError)
    if (board.lightPin !== undefined) out.push(analogSensor("light", board.lightPin))
    if (board.soilPin !== undefined) out.push(analogSensor("soil", board.soilPin))
    // the Wi-Fi service's reading register is the RSSI in dBm
    if (board.rssi) out.push(sensorFor("rssi", new ds.Wifi()))
    return out
}
