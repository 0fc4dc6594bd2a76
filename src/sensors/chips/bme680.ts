// The Bosch BME680 driver of @devicescript/drivers 2.16.4 (src/bme680.ts, MIT, Microsoft Corporation),
// copied without its startBME680(): that wraps the chip in in-VM Jacdac sensor servers for clients to
// read, 9 KB of bytecode on the S3 build with the server core; the firmware reads the driver directly
// (src/sensors/hardware.ts). Also without the gas measurement (the firmware publishes no gas datastream:
// its computation and tables were 540 B, the heater set-up and reads another 250 B; the heater stays off),
// with the calibration read by bme680-calibration.ts instead of a generic unpack() (200 B), and on
// i2c-chip.ts instead of the package's I2CSensorDriver. The package does not export the class. Upstream
// is dormant (platform notes §8): this copy changes only when a chip bug is found.
import { delay } from "@devicescript/core"
import { Bme680Calibration, bme680Calibration } from "./bme680-calibration"
import { I2CChip } from "./i2c-chip"

// based on https://github.com/adafruit/Adafruit_CircuitPython_BME680/blob/main/adafruit_bme680.py

const BME680_THROTTLE = 100

const BME680_CHIPID = 0x61

const BME680_REG_CHIPID = 0xd0
const BME680_COEFF_ADDR1 = 0x89
const BME680_COEFF_ADDR2 = 0xe1
const BME680_REG_SOFTRESET = 0xe0
const BME680_REG_CTRL_HUM = 0x72
const BME680_REG_CTRL_MEAS = 0x74
const BME680_REG_CONFIG = 0x75
const BME680_REG_MEAS_STATUS = 0x1d

/** upstream's defaults: oversampling temperature x8, pressure x4, humidity x2; IIR filter coefficient 3 */
const TEMP_OVERSAMPLE = 0b100
const PRESSURE_OVERSAMPLE = 0b011
const HUMIDITY_OVERSAMPLE = 0b010
const FILTER = 0b010

function read16(arr: Buffer, off: number) {
    return (arr[off] << 8) | arr[off + 1]
}

function read24(arr: Buffer, off: number) {
    return (arr[off] << 16) | read16(arr, off + 1)
}

export class BME680Driver extends I2CChip<{
    humidity: number
    temperature: number
    pressure: number
}> {
    private cal: Bme680Calibration

    constructor(addr: 0x77 | 0x76) {
        super(addr, BME680_THROTTLE)
    }

    async init(): Promise<void> {
        await this.xfer([BME680_REG_SOFTRESET, 0xb6], 0)
        await delay(5)
        const id = (await this.xfer([BME680_REG_CHIPID], 1))[0]
        if (id !== BME680_CHIPID) throw new Error(`BME680: wrong chip id (${id})`)
        const b0 = await this.xfer([BME680_COEFF_ADDR1], 25)
        const b1 = await this.xfer([BME680_COEFF_ADDR2], 16)
        // the 38 bytes after the first (registers 0x8A..0xA1, 0xE1..0xEE), without Buffer's concat (docs/FIRMWARE.md "Program size")
        const block = Buffer.alloc(38)
        block.blitAt(0, b0, 1, 24)
        block.blitAt(24, b1, 0, 14)
        const cal = bme680Calibration(block)
        // flip around H1 & H2
        const h = cal.humidity
        h[1] *= 16
        h[1] += h[0] % 16
        h[0] /= 16
        this.cal = cal
        // the gas heater stays off (its reset state): no gas datastream is published, and a heated plate
        // warms the die the temperature and humidity are measured on
    }

    /** A single-shot measurement, compensated. */
    protected async readData() {
        await this.xfer([BME680_REG_CONFIG, FILTER << 2], 0)
        await this.xfer([BME680_REG_CTRL_HUM, HUMIDITY_OVERSAMPLE], 0)
        // oversampling, and forced mode: one measurement now
        await this.xfer([BME680_REG_CTRL_MEAS, (TEMP_OVERSAMPLE << 5) | (PRESSURE_OVERSAMPLE << 2) | 0x01], 0)
        let data: Buffer
        for (;;) {
            await delay(5)
            data = await this.xfer([BME680_REG_MEAS_STATUS], 10)
            if (data[0] & 0x80) break // new data
        }
        const t = this.cal.temp
        const var1 = read24(data, 5) / 16 / 8 - t[0] * 2
        const var2 = (var1 * t[1]) / 2048
        let var3 = ((var1 / 2) * (var1 / 2)) / 4096
        var3 = (var3 * t[2] * 16) / 16384
        const tFine = Math.floor(var2 + var3)
        return {
            temperature: (tFine * 5 + 128) / 256 / 100,
            humidity: humidity(this.cal.humidity, tFine, read16(data, 8)),
            pressure: pressure(this.cal.pressure, tFine, read24(data, 2) / 16),
        }
    }
}

/** hPa from the raw pressure reading `adc`, with `tFine` from the temperature (Bosch's float formula) */
function pressure(p: number[], tFine: number, adc: number) {
    let var1 = tFine / 2 - 64000
    let var2 = ((var1 / 4) * (var1 / 4)) / 2048
    var2 = (var2 * p[5]) / 4
    var2 = var2 + var1 * p[4] * 2
    var2 = var2 / 4 + p[3] * 65536
    var1 =
        ((((var1 / 4) * (var1 / 4)) / 8192) *
            (p[2] * 32)) /
            8 +
        (p[1] * var1) / 2
    var1 = var1 / 262144
    var1 = ((32768 + var1) * p[0]) / 32768
    let calc_pres = 1048576 - adc
    calc_pres = (calc_pres - var2 / 4096) * 3125
    calc_pres = (calc_pres / var1) * 2
    var1 =
        (p[8] *
            (((calc_pres / 8) * (calc_pres / 8)) / 8192)) /
        4096
    var2 = ((calc_pres / 4) * p[7]) / 8192
    let var3 =
        ((calc_pres / 256) ** 3 * p[9]) / 131072
    calc_pres +=
        (var1 + var2 + var3 + p[6] * 128) / 16
    return calc_pres / 100
}

/** %RH from the raw humidity reading `adc`, with `tFine` from the temperature (Bosch's float formula) */
function humidity(h: number[], tFine: number, adc: number) {
    let temp_scaled = (tFine * 5 + 128) / 256
    let var1 =
        adc -
        h[0] * 16 -
        (temp_scaled * h[2]) / 200
    let var2 =
        (h[1] *
            ((temp_scaled * h[3]) / 100 +
                (temp_scaled *
                    ((temp_scaled * h[4]) / 100)) /
                    64 /
                    100 +
                16384)) /
        1024
    let var3 = var1 * var2
    let var4 = h[5] * 128
    var4 = (var4 + (temp_scaled * h[6]) / 100) / 16
    let var5 = ((var3 / 16384) * (var3 / 16384)) / 1024
    let var6 = (var4 * var5) / 2
    let calc_hum = (((var3 + var6) / 1024) * 1000) / 4096
    calc_hum /= 1000 // get back to RH
    return calc_hum < 0 ? 0 : calc_hum > 100 ? 100 : calc_hum
}
