// What sensors and outputs a board can have, their datastream ids and sampling policies. Import-free, so the
// Node build tool (devs/tools/build-boards.ts) reads the same tables the firmware runs with. Each board's
// wiring is a function, so a build compiles only its own board's table (a table in a constant would be
// built by every program that imports this module).
// Pins are GPIO numbers; boards/<id>.board.json names the same pins for the DeviceScript runtime.

/** What a sensor measures; each quantity is one datastream. */
export type Quantity = "temp" | "humidity" | "pressure" | "light" | "soil" | "rssi"

/** I2C climate chips with a DeviceScript driver (@devicescript/drivers). */
export type ClimateChip = "sht30" | "shtc3" | "aht20" | "bme680"

export type Outbox = "every" | "latest"

export interface QuantityInfo {
    /** datastream id [P§10] */
    id: string
    unit: string
    /** digits sent after the point: the sensor's real resolution, not what the float holds */
    decimals: number
    /** default sampling policy */
    intervalMs: number
    deadband: number
    maxSilenceMs: number
    outbox: Outbox
}

/**
 * Defaults per quantity. Resolutions: SHT30/SHTC3/AHT20 ±0.2 °C and ±2 %RH, BME680 ±0.12 hPa; light
 * and soil are 0–100 % of the ADC range; RSSI is whole dBm.
 */
export const QUANTITIES: Record<string, QuantityInfo> = {
    //                 id          unit   decimals intervalMs deadband maxSilenceMs outbox
    temp: quantityInfo("temp", "C", 2, 5000, 0.1, 60000, "every"),
    humidity: quantityInfo("humidity", "%RH", 1, 5000, 0.5, 60000, "every"),
    pressure: quantityInfo("pressure", "hPa", 2, 10000, 0.1, 300000, "every"),
    light: quantityInfo("light", "%", 1, 2000, 2, 60000, "latest"),
    soil: quantityInfo("soil", "%", 1, 30000, 1, 600000, "every"),
    rssi: quantityInfo("rssi", "dBm", 0, 10000, 3, 300000, "latest"),
}

/** One row of QUANTITIES (a call per row compiles to a third of a literal per row: docs/FIRMWARE.md "Program size"). */
function quantityInfo(id: string, unit: string, decimals: number, intervalMs: number, deadband: number, maxSilenceMs: number, outbox: Outbox): QuantityInfo {
    return { id: id, unit: unit, decimals: decimals, intervalMs: intervalMs, deadband: deadband, maxSilenceMs: maxSilenceMs, outbox: outbox }
}

/** What three of the four chips measure (one array for them: read only). */
const TEMP_HUMIDITY: Quantity[] = ["temp", "humidity"]

/**
 * Quantities each climate chip measures. The BME680's gas resistance is left out: the driver passes
 * it through the air-quality service, whose u16.16 register cannot hold the usual 50–500 kOhm.
 */
export const CHIP_QUANTITIES: Record<string, Quantity[]> = {
    sht30: TEMP_HUMIDITY,
    shtc3: TEMP_HUMIDITY,
    aht20: TEMP_HUMIDITY,
    bme680: ["temp", "humidity", "pressure"],
}

/** An on/off output (a relay, an LED). */
export interface SwitchOutput {
    /** command datastream; the applied state goes to `<id>.state` */
    id: string
    /** GPIO; absent in the simulator */
    pin?: number
    activeLow?: boolean
    /** "relay" drives a relay service, "light" a light bulb (LED) service */
    kind: "relay" | "light"
}

/** A numeric target the device keeps (a thermostat setpoint), range-checked. */
export interface SetpointOutput {
    id: string
    unit: string
    min: number
    max: number
    decimals: number
    initial: number
}

export interface BoardConfig {
    /** the board id: boards/<id>.board.json, `devs flash esp32 --board <id>` */
    id: string
    /** true: every sensor is simulated (in-VM sensor servers), outputs only log */
    simulated: boolean
    climate?: { chip: ClimateChip; address?: number }
    /** analog light level input (ADC1 pin) */
    lightPin?: number
    /** analog soil moisture input (ADC1 pin) */
    soilPin?: number
    /** report the Wi-Fi signal strength */
    rssi: boolean
    switches: SwitchOutput[]
    setpoints: SetpointOutput[]
}

/** The thermostat setpoint every board keeps. */
export const THERMOSTAT: SetpointOutput = { id: "setpoint", unit: "C", min: 5, max: 35, decimals: 1, initial: 20 }

/** The simulator: every sensor simulated, so `npm start` shows a device with no board at hand. */
export function simBoard(): BoardConfig {
    return {
        id: "sim",
        simulated: true,
        climate: { chip: "sht30" },
        lightPin: 0,
        rssi: true,
        switches: [
            { id: "led", kind: "light" },
            { id: "relay", kind: "relay" },
        ],
        setpoints: [THERMOSTAT],
    }
}

/**
 * ESP32-C3 SuperMini: SHT30 on I2C (SDA 6, SCL 7), light sensor on GPIO3 (ADC1_CH3), soil probe on
 * GPIO1 (ADC1_CH1), relay module on GPIO10, LED on GPIO5. GPIO2/8/9 are strapping pins and stay free.
 */
export function feedlineC3Board(): BoardConfig {
    return {
        id: "feedline_c3",
        simulated: false,
        climate: { chip: "sht30", address: 0x44 },
        lightPin: 3,
        soilPin: 1,
        rssi: true,
        switches: [
            { id: "led", kind: "light", pin: 5 },
            { id: "relay", kind: "relay", pin: 10 },
        ],
        setpoints: [THERMOSTAT],
    }
}

/**
 * ESP32-S3 DevKitM/C: BME680 on I2C (SDA 8, SCL 9) at 0x77 (Adafruit/Pimoroni breakouts), light
 * sensor on GPIO4 (ADC1_CH3), relay on GPIO16, LED on GPIO15. The RGB LED on GPIO48 stays the status LED.
 */
export function feedlineS3Board(): BoardConfig {
    return {
        id: "feedline_s3",
        simulated: false,
        climate: { chip: "bme680", address: 0x77 },
        lightPin: 4,
        rssi: true,
        switches: [
            { id: "led", kind: "light", pin: 15 },
            { id: "relay", kind: "relay", pin: 16, activeLow: true },
        ],
        setpoints: [THERMOSTAT],
    }
}

/** A real board running the simulator's build (src/main.ts): no wiring known, so only the Wi-Fi signal. */
export function genericBoard(): BoardConfig {
    return { id: "generic", simulated: false, rssi: true, switches: [], setpoints: [] }
}

/** Every board the firmware knows (the build tool and the tests); `npm run build` builds each one with a board file. */
export function allBoards(): BoardConfig[] {
    return [simBoard(), feedlineC3Board(), feedlineS3Board()]
}

export function boardById(id: string): BoardConfig | undefined {
    for (const b of allBoards()) if (b.id === id) return b
    return undefined
}

/** The datastream ids a board reports, in order (sensors first). */
export function sensorQuantities(board: BoardConfig): Quantity[] {
    const out: Quantity[] = []
    if (board.climate) for (const q of CHIP_QUANTITIES[board.climate.chip]) out.push(q)
    if (board.lightPin !== undefined) out.push("light")
    if (board.soilPin !== undefined) out.push("soil")
    if (board.rssi) out.push("rssi")
    return out
}

/**
 * `CFG_<id>` holds a sensor's policy text ("i=10s d=0.2"): the claim saves its product's policies there
 * (src/net/claim.ts), the device the server's changes (src/app/config-settings.ts).
 */
export const POLICY_SETTING_PREFIX = "CFG_"
