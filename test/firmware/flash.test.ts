// The settings read-back (src/flash.ts): every write is read back, and every setting the firmware reads
// goes through it, from several fibers at boot (the link's settings, the actuators' restore, the policies).
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { flashWrites, MAX_SETTING_BYTES, readBack, saveSetting } from "../../src/flash"

const READS = 4

describe("settings read-back", () => {
    test("reads started together each get their own answer", async () => {
        for (let i = 0; i < READS; ++i) expect(await saveSetting("FT_" + i, i * 10)).toBe(true)
        const got: string[] = []
        let done = 0
        const read = async (i: number) => {
            got[i] = await readBack("FT_" + i)
            done++
        }
        // answered back to back: each reader's handler sees every report, and one leaving does not remove another
        for (let i = 0; i < READS; ++i) read.start(i)
        while (done < READS) await ds.sleep(20)
        for (let i = 0; i < READS; ++i) expect(got[i]).toBe("" + i * 10)
    })
    test("a value too long for the runtime to answer a read of is not written (E_SETTING_SIZE); the longest that fits is", async () => {
        let text = ""
        while (text.length < 225) text += "x"
        // FT_LONG, a NUL and 227 B of JSON: 235 B; the runtime aborts answering a read above 232 B, and the
        // value would stay in flash for every later read (the next boot's) to do it again
        const before = flashWrites()
        expect(await saveSetting("FT_LONG", text)).toBe(false)
        expect(flashWrites()).toBe(before)
        expect(await readBack("FT_LONG")).toBe("")
        const longest = text.slice(0, MAX_SETTING_BYTES - 1 - "FT_LONG".length - 2)
        expect(await saveSetting("FT_LONG", longest)).toBe(true)
        expect(await saveSetting("FT_LONG", longest + "x")).toBe(false)
    })
})
