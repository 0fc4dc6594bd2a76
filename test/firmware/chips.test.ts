// The chip drivers (src/sensors/chips) over a fake I2C bus: the runtime's _i2cTransaction replaced by a
// register map, so what each driver writes, reads and computes is checked without a chip. The BME680's
// numbers are compared with upstream's compensation (@devicescript/drivers 2.16.4 src/bme680.ts, copied
// below as it was) on pseudo-random calibrations and raw readings.
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { BME680Driver } from "../../src/sensors/chips/bme680"
import { bme680Calibration } from "../../src/sensors/chips/bme680-calibration"
import { SHT30Driver } from "../../src/sensors/chips/sht30"

/** A fake bus: `answer(addr, written)` gives the bytes a read returns; every write is recorded as hex. */
class FakeBus {
    writes: string[] = []
    status = 0
    constructor(public answer: (addr: number, written: Buffer) => Buffer) {}
    install() {
        const self = this
        ;(ds as any)._i2cTransaction = async (addr: number, wr: Buffer, rd: Buffer) => {
            self.writes.push(wr.toString("hex"))
            if (self.status) return self.status
            if (rd) rd.blitAt(0, self.answer(addr, wr), 0, rd.length)
            return 0
        }
    }
}

/** upstream's compensation, as it was (its performReading's temperature part, pressure(), humidity()) */
function upstreamCompensation(cal: any, adcTemp: number, adcPres: number, adcHum: number) {
    const T = cal.temp
    const P = cal.pressure
    const H = [cal.humidity[0] / 16, cal.humidity[1] * 16 + (cal.humidity[0] % 16), cal.humidity[2], cal.humidity[3], cal.humidity[4], cal.humidity[5], cal.humidity[6]]
    const v1 = adcTemp / 8 - T[0] * 2
    const v2 = (v1 * T[1]) / 2048
    let v3 = ((v1 / 2) * (v1 / 2)) / 4096
    v3 = (v3 * T[2] * 16) / 16384
    const tFine = Math.floor(v2 + v3)

    let var1 = tFine / 2 - 64000
    let var2 = ((var1 / 4) * (var1 / 4)) / 2048
    var2 = (var2 * P[5]) / 4
    var2 = var2 + var1 * P[4] * 2
    var2 = var2 / 4 + P[3] * 65536
    var1 = ((((var1 / 4) * (var1 / 4)) / 8192) * (P[2] * 32)) / 8 + (P[1] * var1) / 2
    var1 = var1 / 262144
    var1 = ((32768 + var1) * P[0]) / 32768
    let calc_pres = 1048576 - adcPres
    calc_pres = (calc_pres - var2 / 4096) * 3125
    calc_pres = (calc_pres / var1) * 2
    var1 = (P[8] * (((calc_pres / 8) * (calc_pres / 8)) / 8192)) / 4096
    var2 = ((calc_pres / 4) * P[7]) / 8192
    let var3 = ((calc_pres / 256) ** 3 * P[9]) / 131072
    calc_pres += (var1 + var2 + var3 + P[6] * 128) / 16

    const temp_scaled = (tFine * 5 + 128) / 256
    const h1 = adcHum - H[0] * 16 - (temp_scaled * H[2]) / 200
    const h2 = (H[1] * ((temp_scaled * H[3]) / 100 + (temp_scaled * ((temp_scaled * H[4]) / 100)) / 64 / 100 + 16384)) / 1024
    const h3 = h1 * h2
    let h4 = H[5] * 128
    h4 = (h4 + (temp_scaled * H[6]) / 100) / 16
    const h5 = ((h3 / 16384) * (h3 / 16384)) / 1024
    const h6 = (h4 * h5) / 2
    const hum = (((h3 + h6) / 1024) * 1000) / 4096 / 1000
    return { temperature: temp_scaled / 100, pressure: calc_pres / 100, humidity: Math.constrain(hum, 0, 100) }
}

/** 16 B of pseudo-random registers a read of `n` bytes from `reg` returns, seeded */
/** The message `chip.init()` fails with ("" when it succeeds). */
async function initError(chip: { init(): Promise<void> }): Promise<string> {
    try {
        await chip.init()
    } catch (e) {
        return (e as Error).message
    }
    return ""
}

function bytes(seed: number, n: number): Buffer {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; ++i) {
        seed = (seed * 1103515245 + 12345) % 2147483648
        b[i] = Math.floor(seed / 8388608) & 255
    }
    return b
}

describe("chip drivers on a fake I2C bus", () => {
    test("BME680: soft reset, chip id, calibration, then a forced measurement compensated as upstream did it", async () => {
        const regs: Buffer[] = []
        const bus = new FakeBus((addr, wr) => (wr[0] === 0xd0 ? Buffer.from([0x61]) : wr[0] === 0x89 ? regs[0] : wr[0] === 0xe1 ? regs[1] : regs[2]))
        for (let n = 0; n < 12; ++n) {
            const c1 = bytes(1000 + n, 25)
            const c2 = bytes(2000 + n, 16)
            const meas = bytes(3000 + n, 10)
            meas[0] = 0x80 // new data
            regs[0] = c1
            regs[1] = c2
            regs[2] = meas
            bus.writes = []
            bus.install()
            const chip = new BME680Driver(0x77)
            await chip.init()
            expect(bus.writes.join(" ")).toBe("e0b6 d0 89 e1")
            const got = await chip.read()
            expect(bus.writes.slice(4).join(" ")).toBe("7508 7202 748d 1d") // filter 3, hum x2, temp x8 + pres x4 forced; status
            const cal = bme680Calibration(c1.concat(c2).slice(1, 39))
            const adcPres = ((meas[2] << 16) | (meas[3] << 8) | meas[4]) / 16
            const adcTemp = ((meas[5] << 16) | (meas[6] << 8) | meas[7]) / 16
            const want = upstreamCompensation(cal, adcTemp, adcPres, (meas[8] << 8) | meas[9])
            expect(got.temperature).toBe(want.temperature)
            expect(got.pressure).toBe(want.pressure)
            expect(got.humidity).toBe(want.humidity)
            await ds.sleep(0)
        }
    })
    test("BME680: another chip at the address (wrong id) and no answer at all fail init", async () => {
        new FakeBus(() => Buffer.from([0x60])).install()
        expect(await initError(new BME680Driver(0x76))).toBe("BME680: wrong chip id (96)")
        const silent = new FakeBus(() => Buffer.from([0x61]))
        silent.status = 3
        silent.install()
        expect(await initError(new BME680Driver(0x76))).toBe("E_I2C 3 at 118")
    })
    test("SHT30: status read with its CRC at init (a bad CRC fails); a reading converted; reads within 500 ms share one measurement", async () => {
        const bus = new FakeBus((addr, wr) => (wr.length === 0 && addr === 0x44 ? Buffer.from([0x66, 0x66, 0x93, 0x80, 0x00, 0xa2]) : Buffer.alloc(0)))
        bus.install()
        const chip = new SHT30Driver(0x44)
        await chip.init() // 0x6666 has CRC 0x93
        expect(bus.writes.join(" ")).toBe("f32d ")
        const a = await chip.read()
        const b = await chip.read()
        expect(bus.writes.length).toBe(4) // the measurement command and its read, once
        expect(bus.writes[2]).toBe("2400")
        expect(a.temperature).toBe((175 / 0x10000) * 0x6666 - 45)
        expect(a.humidity).toBe((100 / 0x10000) * 0x8000)
        expect(b.temperature).toBe(a.temperature)
        new FakeBus(() => Buffer.from([0x66, 0x66, 0x94])).install()
        expect(await initError(new SHT30Driver(0x44))).toBe("SHT CRC error")
    })
})
