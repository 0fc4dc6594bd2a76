// The settings read-back (src/flash.ts): every write is read back, and every setting the firmware reads
// goes through it, from several fibers at boot (the link's settings, the actuators' restore, the policies).
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { readBack, saveSetting } from "../../src/flash"

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
})
