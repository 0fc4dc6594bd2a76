// The outbox across a planned reboot: saved in chunks of setting values (one value is one Jacdac packet,
// ~236 B) right before the link's last-resort reboot, queued again at the next start and resent (the
// server stores a datapoint once per `at`, so a resend is harmless), forgotten once the outbox has emptied.
// Keys: OBX_N (how many chunks; written last, so a reboot half-way through saving leaves the previous set)
// and OBX0, OBX1, … A power cut still loses what is queued: the flash is written only before a planned reboot.
import { readSetting } from "@devicescript/settings"
import { dropSetting, readBack, saveSetting } from "../flash"
import { Outbox } from "./outbox"

const COUNT_KEY = "OBX_N"
const CHUNK_KEY = "OBX"

/**
 * Saves the queue; returns the samples saved. Yields between chunks (flash writes take a while); samples
 * queued meanwhile are saved too, and the caller reboots right after, without yielding again.
 */
export async function saveOutbox(outbox: Outbox, nowMs: number): Promise<number> {
    let chunks = 0
    let samples = 0
    let from = 0
    for (;;) {
        while (from < outbox.depth()) {
            const c = outbox.savedChunk(from, nowMs)
            from = c.next
            if (!c.entries.length) continue
            await saveSetting(CHUNK_KEY + chunks, c.entries)
            chunks++
            samples += c.entries.length
        }
        await saveSetting(COUNT_KEY, chunks)
        // a write is a command to the runtime's settings service, done later: reading back (answered in
        // order) waits until every write before it is in flash, so the reboot cannot cut them off
        if ((await readBack(COUNT_KEY)) !== "" + chunks) console.warn(`link: E_SAVE_OUTBOX: ${COUNT_KEY} did not read back`)
        if (from >= outbox.depth()) return samples
    }
}

/** Queues what the last planned reboot saved; returns how many samples came back (0: nothing saved). */
export async function loadOutbox(outbox: Outbox, nowMs: number): Promise<number> {
    const n = await readSetting<any>(COUNT_KEY, 0)
    if (typeof n !== "number" || n <= 0) return 0
    const before = outbox.depth()
    for (let i = 0; i < n; ++i) {
        const entries = await readSetting<any>(CHUNK_KEY + i, undefined)
        if (Array.isArray(entries)) outbox.restore(entries, nowMs)
    }
    return outbox.depth() - before
}

/** The saved queue has been sent: a later start must not load it again (the chunks stay, unread). */
export async function forgetOutbox() {
    await dropSetting(COUNT_KEY)
}
