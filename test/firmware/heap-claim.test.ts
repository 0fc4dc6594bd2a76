// The full-heap test (heap.test.ts) on a fleet board flashed without a key [fleet]: startLink() claims the
// feed, key and policies over the first connection and keeps them in settings (src/net/claim.ts), then the
// board's sensors and actuators start and the scenario goes on as on a keyed board, with HEAP_MARGIN_BYTES
// held all along. What the claim leaves behind (its answer, its closures, the settings it wrote) is on the
// heap at every later stage: a claim that kept more than the headroom runs out here, not on a keyed board.
// `npm run heap -- --claim` measures how much more fits.
import { describe, expect, test } from "@devicescript/test"
import { readSettingValue } from "../../src/flash"
import { expectEverythingHandled, fillEverything, HEAP_MARGIN_BYTES, PROBE_NONE } from "./heap-scenario"

describe("heap budget, claiming board", () => {
    test("a board that claimed its key at its first connection: outbox, receive queue, a maximum line and a replay at their caps at once, with 8 KB to spare", async () => {
        const r = await fillEverything(HEAP_MARGIN_BYTES, PROBE_NONE, true)
        expect(r.claims).toBe(1)
        expectEverythingHandled(r)
        // what the claim kept: the feed and key for the next boot, a policy of the product
        expect(await readSettingValue("FEED_ID")).toBe(7)
        expect(await readSettingValue("API_KEY")).toBe("Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3Jh")
        expect(await readSettingValue("CFG_temp")).toBe("i=10s d=0.2")
    })
})
