// The whole firmware at every heap cap at once (heap-scenario.ts), with HEAP_MARGIN_BYTES held all along:
// it must run out of nothing and still handle every push. `npm run heap` measures how much more fits.
// The same on a board that claims its key first: heap-claim.test.ts (a program of its own: one link per program).
import { describe, expect, test } from "@devicescript/test"
import { readLinkConfig } from "../../src/net/config"
import { MAX_OUTBOX_BYTES } from "../../src/foundation/outbox-budget"
import { writeSetting } from "@devicescript/settings"
import { expectEverythingHandled, fillEverything, HEAP_MARGIN_BYTES, PROBE_NONE } from "./heap-scenario"

describe("heap budget", () => {
    test("OUTBOX_BYTES above the heap budget is clamped", async () => {
        await writeSetting("OUTBOX_BYTES", 40000)
        expect((await readLinkConfig()).outboxBytes).toBe(MAX_OUTBOX_BYTES)
        await writeSetting("OUTBOX_BYTES", 8000)
        expect((await readLinkConfig()).outboxBytes).toBe(8000)
        await writeSetting("OUTBOX_BYTES", MAX_OUTBOX_BYTES)
    })
    test("outbox, receive queue, a maximum line and a replay at their caps at once, with the most subscriptions, with 8 KB to spare", async () => {
        // with the most subscriptions and sensors settings allow (nine: heap-scenario.ts LARGEST_IO_SUBSCRIPTIONS)
        const r = await fillEverything(HEAP_MARGIN_BYTES, PROBE_NONE, false, true)
        expect(r.claims).toBe(0)
        expectEverythingHandled(r)
    })
})
