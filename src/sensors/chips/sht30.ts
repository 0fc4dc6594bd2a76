// The Sensirion SHT30 driver of @devicescript/drivers 2.16.4 (src/sht.ts and src/sht30.ts, MIT, Microsoft
// Corporation), copied without its startSHT30(): that wraps the chip in in-VM Jacdac sensor servers for
// clients to read (docs/FIRMWARE.md "Program size"); the firmware reads the driver directly
// (src/sensors/hardware.ts). On i2c-chip.ts instead of the package's I2CSensorDriver, and with the SHT
// base class folded in (the SHT30 is its only user here). The package exports neither class. Upstream is
// dormant (platform notes §8).
import { delay } from "@devicescript/core"
import { I2CChip } from "./i2c-chip"

function shtCRC8(b: Buffer, len: number) {
    let res = 0xff
    for (let i = 0; i < len; ++i) {
        res ^= b[i]
        for (let j = 0; j < 8; ++j)
            if (res & 0x80) res = (res << 1) ^ 0x31
            else res = res << 1
        res &= 0xff
    }
    return res
}

const SHT30_MEASURE_HIGH_REP = 0x2400 // no clock stretching
//const SHT30_SOFTRESET = 0x30a2
const SHT30_STATUS = 0xf32d
const STH30_THROTTLE = 500

export class SHT30Driver extends I2CChip<{
    humidity: number
    temperature: number
}> {
    constructor(devAddr: number) {
        super(devAddr, STH30_THROTTLE)
    }

    protected async readData() {
        await this.xfer([SHT30_MEASURE_HIGH_REP >> 8, SHT30_MEASURE_HIGH_REP & 0xff], 0)
        await delay(20) // datasheet says 15.5ms
        const data = await this.xfer([], 6)
        const temp = (data[0] << 8) | data[1]
        const hum = (data[3] << 8) | data[4]
        return {
            temperature: (175 / 0x10000) * temp - 45,
            humidity: (100 / 0x10000) * hum,
        }
    }

    /** Reads the status register: a chip that answers with a good CRC is there. */
    async init() {
        await this.xfer([SHT30_STATUS >> 8, SHT30_STATUS & 0xff], 0)
        const buf = await this.xfer([], 3)
        if (shtCRC8(buf, 2) !== buf[2]) throw new Error("SHT CRC error")
    }
}
