// The BME680's calibration coefficients, as the upstream driver picks them from
// unpack("<hbBHhbBhhbbHhhBBBHbbbBbHhbb", block) (field i of that format at its byte offset, little-endian),
// read at those offsets directly: the generic unpack() and its index lists cost code-window bytes on the S3
// build (docs/FIRMWARE.md "Program size"). `block`: the 38 bytes after the first of registers 0x89..0xA1
// and 0xE1..0xF0 read in a row. test/firmware/bme680.test.ts checks it against upstream's unpack.

export interface Bme680Calibration {
    /** T1 T2 T3 */
    temp: number[]
    /** P1 .. P10, in the order the pressure formula indexes them */
    pressure: number[]
    /** H1/H2 as stored (the driver flips them), H3 .. H7 */
    humidity: number[]
}

export function bme680Calibration(block: Buffer): Bme680Calibration {
    const b = block
    return {
        temp: [b.getAt(32, "u16"), b.getAt(0, "i16"), b.getAt(2, "i8")],
        pressure: [b.getAt(4, "u16"), b.getAt(6, "i16"), b.getAt(8, "i8"), b.getAt(10, "i16"), b.getAt(12, "i16"), b.getAt(15, "i8"), b.getAt(14, "i8"), b.getAt(18, "i16"), b.getAt(20, "i16"), b.getAt(22, "u8")],
        humidity: [b.getAt(25, "u16"), b.getAt(24, "u8"), b.getAt(27, "i8"), b.getAt(28, "i8"), b.getAt(29, "i8"), b.getAt(30, "u8"), b.getAt(31, "i8")],
    }
}
