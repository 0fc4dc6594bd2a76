// The outbox across a planned reboot (src/net/outbox-store.ts): saved in settings, queued again at the next start.
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { flashWrites } from "../../src/flash"
import { Outbox } from "../../src/net/outbox"
import { forgetOutbox, loadOutbox, saveOutbox } from "../../src/net/outbox-store"

const SERVER_OFFSET_MS = 1765000000000

function queued(prefix: string, n: number): Outbox {
    const o = new Outbox(16000)
    for (let i = 0; i < n; ++i) o.add("t", prefix + i, "every", 1000 + i, SERVER_OFFSET_MS)
    return o
}

function values(o: Outbox): string[] {
    return o.takeBatch(1, 64, 1024).map(s => s.value)
}

describe("outbox across a reboot", () => {
    test("a save cut short (a power cut, a reset) leaves the save before it whole", async () => {
        // a first planned reboot saved six samples; at the next start they are queued again and the server is
        // still away, so the next planned reboot saves again: the power goes once its first chunk is in flash
        expect(await saveOutbox(queued("a", 6), 2000)).toBe(6)
        const base = flashWrites()
        const saving = saveOutbox.start(queued("b", 40), 3000)
        while (flashWrites() < base + 2) await ds.sleep(1) // the second chunk's write began: the first is in flash
        saving.terminate()
        const back = new Outbox(16000)
        expect(await loadOutbox(back, 4000)).toBe(6)
        expect(values(back).join(",")).toBe("a0,a1,a2,a3,a4,a5")
        // and a save that completes is the one the start after it loads
        expect(await saveOutbox(queued("c", 3), 5000)).toBe(3)
        const next = new Outbox(16000)
        expect(await loadOutbox(next, 6000)).toBe(3)
        expect(values(next).join(",")).toBe("c0,c1,c2")
        await forgetOutbox()
        expect(await loadOutbox(new Outbox(16000), 7000)).toBe(0)
    })
    test("samples the full outbox dropped before a planned reboot are still counted after it (_drops)", async () => {
        const full = new Outbox(600) // room for about nine samples
        for (let i = 0; i < 20; ++i) full.add("t", "d" + i, "every", 1000 + i, SERVER_OFFSET_MS)
        const dropped = full.drops
        expect(dropped > 0).toBe(true)
        expect(await saveOutbox(full, 2000)).toBe(full.depth())
        const back = new Outbox(16000)
        expect(await loadOutbox(back, 3000)).toBe(full.depth())
        expect(back.drops).toBe(dropped)
        await forgetOutbox()
    })
})
