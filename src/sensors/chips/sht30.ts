// The Sensirion SHT30 driver of @devicescript/drivers 2.16.4 (src/sht.ts and src/sht30.ts, MIT, Microsoft
// Corporation), copied as it is without its startSHT30(): that wraps the chip in in-VM Jacdac sensor
// servers for clients to read (docs/FIRMWARE.md "Program size"); the firmware reads the driver directly
// (src/sensors/hardware.ts). The package exports neither class. Upstream is dormant (platform notes §8).
import * as ds from "@devicescript/core"
import { delay } from "@devicescript/core"
import { DriverError, I2CSensorDriver, I2CSensorDriverOptions } from "@devicescript/drivers"

abstract class SHTDriver extends I2CSensorDriver<{
    humidity: number
    temperature: number
}> {
    constructor(devAddress: number, options?: I2CSensorDriverOptions) {
        super(devAddress, options)
    }

    protected async readU16(regAddr: number, wait = 0) {
        await this.sendCmd(regAddr)
        if (wait) await ds.delay(wait)
        const buf = await this.readBuf(3)
        if (shtCRC8(buf, 2) !== buf[2]) throw new DriverError("SHT CRC error")
        return (buf[0] << 8) | buf[1]
    }

    protected async sendCmd(cmd: number) {
        await this.writeBuf(shtCmd(cmd))
    }
}

function shtCmd(cmd: number) {
    return Buffer.from([cmd >> 8, cmd & 0xff])
}

function shtCRC8(b: Buffer, len?: number) {
    if (len === undefined) len = b.length
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

export class SHT30Driver extends SHTDriver {
    constructor(devAddr: number) {
        super(devAddr, { readCacheTime: STH30_THROTTLE })
    }

    override async readData() {
        await this.sendCmd(SHT30_MEASURE_HIGH_REP)
        await delay(20) // datasheet says 15.5ms
        const data = await this.readBuf(6)
        const temp = (data[0] << 8) | data[1]
        const hum = (data[3] << 8) | data[4]
        return {
            temperature: (175 / 0x10000) * temp - 45,
            humidity: (100 / 0x10000) * hum,
        }
    }
    override async initDriver() {
        const id = await this.readU16(SHT30_STATUS)
        console.debug(`SHT30 status=${id}`)
    }
}
