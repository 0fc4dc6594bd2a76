// The whole firmware at every heap cap at once (heap-scenario.ts), with HEAP_MARGIN_BYTES held all along:
// it must run out of nothing and still handle every push. `npm run heap` measures how much more fits.
import { describe, expect, test } from "@devicescript/test"
import { readLinkConfig } from "../../src/net/config"
import { MAX_OUTBOX_BYTES } from "../../src/foundation/outbox-budget"
import { writeSetting } from "@devicescript/settings"
import { fillEverything, PROBE_NONE } from "./heap-scenario"

/** Held through the scenario; `npm run heap` measured 13 KB passing and 13.5 KB running out (docs/FIRMWARE.md "Heap budget"). */
const HEAP_MARGIN_BYTES = 8192

describe("heap budget", () => {
    test("OUTBOX_BYTES above the heap budget is clamped", async () => {
        await writeSetting("OUTBOX_BYTES", 40000)
        expect((await readLinkConfig()).outboxBytes).toBe(MAX_OUTBOX_BYTES)
        await writeSetting("OUTBOX_BYTES", 8000)
        expect((await readLinkConfig()).outboxBytes).toBe(8000)
        await writeSetting("OUTBOX_BYTES", MAX_OUTBOX_BYTES)
    })
    test("outbox, receive queue, a maximum line and a replay at their caps at once, with 8 KB to spare", async () => {
        const r = await fillEverything(HEAP_MARGIN_BYTES, PROBE_NONE)
        const s = r.link.stats()
        expect(r.link.state).toBe("up")
        expect(r.outboxBytes > MAX_OUTBOX_BYTES - 200).toBe(true)
        expect(s.badLines).toBe(0)
        expect(s.overlongLines).toBe(0)
        expect(r.io.actuators[0].state).toBe(1) // the maximum line was the last led push: "on"
    })
})
