// The Bosch BME680 driver of @devicescript/drivers 2.16.4 (src/bme680.ts, MIT, Microsoft Corporation),
// copied without its startBME680(): that wraps the chip in in-VM Jacdac sensor servers for clients to
// read, 9 KB of bytecode on the S3 build with the server core; the firmware reads the driver directly
// (src/sensors/hardware.ts). Also without the gas-resistance computation and its tables (540 B: the
// firmware publishes no gas datastream), and with the calibration read by bme680-calibration.ts instead
// of a generic unpack() (200 B). The package does not export the class. Upstream is dormant (platform
// notes §8): this copy changes only when a chip bug is found.
import { delay } from "@devicescript/core"
import { DriverError, I2CSensorDriver } from "@devicescript/drivers"
import { bme680Calibration } from "./bme680-calibration"

// based on https://github.com/adafruit/Adafruit_CircuitPython_BME680/blob/main/adafruit_bme680.py

const BME680_THROTTLE = 100

const BME680_CHIPID = 0x61

const BME680_REG_CHIPID = 0xd0
const BME680_REG_VARIANT = 0xf0
const BME680_COEFF_ADDR1 = 0x89
const BME680_COEFF_ADDR2 = 0xe1
const BME680_RES_HEAT_0 = 0x5a
const BME680_GAS_WAIT_0 = 0x64
const BME680_REG_SOFTRESET = 0xe0
const BME680_REG_CTRL_GAS = 0x71
const BME680_REG_CTRL_HUM = 0x72
const BME680_REG_STATUS = 0x73
const BME680_REG_CTRL_MEAS = 0x74
const BME680_REG_CONFIG = 0x75
const BME680_REG_MEAS_STATUS = 0x1d
const BME680_REG_PDATA = 0x1f
const BME680_REG_TDATA = 0x22
const BME680_REG_HDATA = 0x25

const BME680_RUNGAS = 0x10

function read16(arr: Buffer, off = 0) {
    return (arr[off] << 8) | arr[off + 1]
}

function read24(arr: Buffer, off = 0) {
    return (arr[off + 0] << 16) | read16(arr, off + 1)
}

export class BME680Driver extends I2CSensorDriver<{
    humidity: number
    temperature: number
    pressure: number
    gas: number
}> {
    private chipVariant: number
    private _pressure_oversample: number
    private _temp_oversample: number
    private _humidity_oversample: number
    private _filter: number

    private _adc_pres: number
    private _adc_temp: number
    private _adc_hum: number
    private _adc_gas: number
    private _gas_range: number
    private _t_fine: number

    private _pressure_calibration: Array<number>
    private _humidity_calibration: Array<number>
    private _temp_calibration: Array<number>

    private _heat_range: number
    private _heat_val: number


    constructor(addr: 0x77 | 0x76) {
        super(addr, { readCacheTime: BME680_THROTTLE })
    }

    override async initDriver(): Promise<void> {
        await this.writeReg(BME680_REG_SOFTRESET, 0xb6)
        await delay(5)
        const id = await this.readReg(BME680_REG_CHIPID)
        console.debug(`BME680 id=${id}`)
        if (id !== BME680_CHIPID)
            throw new DriverError(`BME680: wrong chip id (${id})`)
        this.chipVariant = await this.readReg(BME680_REG_VARIANT)
        await this.readCalibration()

        // set up heater
        await this.writeReg(BME680_RES_HEAT_0, 0x73)
        await this.writeReg(BME680_GAS_WAIT_0, 0x65)

        //Default oversampling and filter register values.
        this._pressure_oversample = 0b011
        this._temp_oversample = 0b100
        this._humidity_oversample = 0b010
        this._filter = 0b010
    }

    private async readCalibration() {
        const b0 = await this.readRegBuf(BME680_COEFF_ADDR1, 25)
        const b1 = await this.readRegBuf(BME680_COEFF_ADDR2, 16)
        const cal = bme680Calibration(b0.concat(b1).slice(1, 39))
        this._temp_calibration = cal.temp
        this._pressure_calibration = cal.pressure
        this._humidity_calibration = cal.humidity

        // flip around H1 & H2
        this._humidity_calibration[1] *= 16
        this._humidity_calibration[1] += this._humidity_calibration[0] % 16
        this._humidity_calibration[0] /= 16

        this._heat_range = ((await this.readReg(0x02)) & 0x30) / 16
        this._heat_val = await this.readReg(0x00)
    }

    private async performReading() {
        // Perform a single-shot reading from the sensor and fill internal data structure for    calculations

        // set filter
        await this.writeReg(BME680_REG_CONFIG, this._filter << 2)
        // turn on temp oversample & pressure oversample
        await this.writeReg(
            BME680_REG_CTRL_MEAS,
            (this._temp_oversample << 5) | (this._pressure_oversample << 2)
        )
        // turn on humidity oversample
        await this.writeReg(BME680_REG_CTRL_HUM, this._humidity_oversample)
        // gas measurements enabled
        if (this.chipVariant === 0x01)
            await this.writeReg(BME680_REG_CTRL_GAS, BME680_RUNGAS << 1)
        else await this.writeReg(BME680_REG_CTRL_GAS, BME680_RUNGAS)
        let ctrl = await this.readReg(BME680_REG_CTRL_MEAS)
        ctrl = (ctrl & 0xfc) | 0x01 // enable single shot!
        await this.writeReg(BME680_REG_CTRL_MEAS, ctrl)
        let new_data = false
        let data: Buffer
        while (!new_data) {
            data = await this.readRegBuf(BME680_REG_MEAS_STATUS, 17)
            new_data = (data[0] & 0x80) !== 0
            await delay(5)
        }

        this._adc_pres = read24(data, 2) / 16
        this._adc_temp = read24(data, 5) / 16

        this._adc_hum = read16(data, 8)
        if (this.chipVariant === 0x01) {
            this._adc_gas = read16(data, 15) >> 6
            this._gas_range = data[16] & 0x0f
        } else {
            this._adc_gas = read16(data, 13) >> 6
            this._gas_range = data[14] & 0x0f
        }

        const var1 = this._adc_temp / 8 - this._temp_calibration[0] * 2
        const var2 = (var1 * this._temp_calibration[1]) / 2048
        let var3 = ((var1 / 2) * (var1 / 2)) / 4096
        var3 = (var3 * this._temp_calibration[2] * 16) / 16384
        this._t_fine = Math.floor(var2 + var3)
    }

    private pressure() {
        let var1 = this._t_fine / 2 - 64000
        let var2 = ((var1 / 4) * (var1 / 4)) / 2048
        var2 = (var2 * this._pressure_calibration[5]) / 4
        var2 = var2 + var1 * this._pressure_calibration[4] * 2
        var2 = var2 / 4 + this._pressure_calibration[3] * 65536
        var1 =
            ((((var1 / 4) * (var1 / 4)) / 8192) *
                (this._pressure_calibration[2] * 32)) /
                8 +
            (this._pressure_calibration[1] * var1) / 2
        var1 = var1 / 262144
        var1 = ((32768 + var1) * this._pressure_calibration[0]) / 32768
        let calc_pres = 1048576 - this._adc_pres
        calc_pres = (calc_pres - var2 / 4096) * 3125
        calc_pres = (calc_pres / var1) * 2
        var1 =
            (this._pressure_calibration[8] *
                (((calc_pres / 8) * (calc_pres / 8)) / 8192)) /
            4096
        var2 = ((calc_pres / 4) * this._pressure_calibration[7]) / 8192
        let var3 =
            ((calc_pres / 256) ** 3 * this._pressure_calibration[9]) / 131072
        calc_pres +=
            (var1 + var2 + var3 + this._pressure_calibration[6] * 128) / 16
        return calc_pres / 100
    }

    private temperature() {
        const calc_temp = (this._t_fine * 5 + 128) / 256
        return calc_temp / 100
    }

    private humidity() {
        let temp_scaled = (this._t_fine * 5 + 128) / 256
        let var1 =
            this._adc_hum -
            this._humidity_calibration[0] * 16 -
            (temp_scaled * this._humidity_calibration[2]) / 200
        let var2 =
            (this._humidity_calibration[1] *
                ((temp_scaled * this._humidity_calibration[3]) / 100 +
                    (temp_scaled *
                        ((temp_scaled * this._humidity_calibration[4]) / 100)) /
                        64 /
                        100 +
                    16384)) /
            1024
        let var3 = var1 * var2
        let var4 = this._humidity_calibration[5] * 128
        var4 = (var4 + (temp_scaled * this._humidity_calibration[6]) / 100) / 16
        let var5 = ((var3 / 16384) * (var3 / 16384)) / 1024
        let var6 = (var4 * var5) / 2
        let calc_hum = (((var3 + var6) / 1024) * 1000) / 4096
        calc_hum /= 1000 // get back to RH
        return Math.constrain(calc_hum, 0, 100)
    }

    override async readData() {
        await this.performReading()
        // the gas resistance is measured (the heater stays as upstream sets it) but not computed: the
        // firmware publishes no gas datastream (CHIP_QUANTITIES), and its tables cost code-window bytes
        return {
            temperature: this.temperature(),
            humidity: this.humidity(),
            pressure: this.pressure(),
            gas: NaN,
        }
    }
}
