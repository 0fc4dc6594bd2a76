// The BME680's calibration read at fixed offsets (src/sensors/chips/bme680-calibration.ts) gives what the
// upstream driver's unpack() and index lists gave, on any coefficient block.
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { bme680Calibration } from "../../src/sensors/chips/bme680-calibration"

/** upstream @devicescript/drivers 2.16.4 src/bme680.ts, as it was */
function unpack(fmt: string, buf: Buffer) {
    let off = 0
    let res: number[] = []
    for (let i = 0; i < fmt.length; ++i) {
        switch (fmt[i]) {
            case "<":
                break
            case "h":
                res.push(buf.getAt(off, "i16"))
                off += 2
                break
            case "H":
                res.push(buf.getAt(off, "u16"))
                off += 2
                break
            case "B":
                res.push(buf.getAt(off, "u8"))
                off += 1
                break
            case "b":
                res.push(buf.getAt(off, "i8"))
                off += 1
                break
        }
    }
    return res
}

function upstream(block: Buffer) {
    const coeff = unpack("<hbBHhbBhhbbHhhBBBHbbbBbHhbb", block)
    const getIdx = (idx: number[]) => idx.map(i => coeff[i])
    return { temp: getIdx([23, 0, 1]), pressure: getIdx([3, 4, 5, 7, 8, 10, 9, 12, 13, 14]), humidity: getIdx([17, 16, 18, 19, 20, 21, 22]) }
}

describe("bme680 calibration", () => {
    test("the same coefficients as upstream's unpack, on 50 pseudo-random blocks and the extremes", async () => {
        let seed = 12345
        for (let n = 0; n < 52; ++n) {
            await ds.sleep(0) // the VM's step budget without yielding
            const block = Buffer.alloc(38)
            for (let i = 0; i < 38; ++i) {
                seed = (seed * 1103515245 + 12345) % 2147483648
                block[i] = n === 50 ? 0 : n === 51 ? 255 : Math.floor(seed / 8388608) & 255
            }
            const a = upstream(block)
            const b = bme680Calibration(block)
            expect(b.temp.join(",")).toBe(a.temp.join(","))
            expect(b.pressure.join(",")).toBe(a.pressure.join(","))
            expect(b.humidity.join(",")).toBe(a.humidity.join(","))
        }
    })
})
