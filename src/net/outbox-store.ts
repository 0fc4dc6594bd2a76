// The outbox across a planned reboot: saved in chunks of setting values (one value is one Jacdac packet,
// ~236 B) right before the link's last-resort reboot, queued again at the next start and resent (the
// server stores a datapoint once per `at`, so a resend is harmless), forgotten once the outbox has emptied.
// Keys: OBX_N (how many chunks; written last, so a reboot half-way through saving leaves the previous set)
// and OBX0, OBX1, … A power cut still loses what is queued: the flash is written only before a planned reboot.
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
    outbox.saveNext = 0
    for (;;) {
        for (let c = outbox.savedChunk(nowMs); c.length; c = outbox.savedChunk(nowMs)) {
            await saveSetting(CHUNK_KEY + chunks, c)
            chunks++
            samples += c.length
        }
        // each write is read back (src/flash.ts): when this returns, everything is in flash
        await saveSetting(COUNT_KEY, chunks)
        if (outbox.saveNext >= outbox.depth()) return samples
    }
}

/** Queues what the last planned reboot saved; returns how many samples came back (0: nothing saved). */
export async function loadOutbox(outbox: Outbox, nowMs: number): Promise<number> {
    const n = parseJson(await readBack(COUNT_KEY))
    if (typeof n !== "number" || n <= 0) return 0
    const before = outbox.depth()
    for (let i = 0; i < n; ++i) {
        const entries = parseJson(await readBack(CHUNK_KEY + i))
        if (Array.isArray(entries)) outbox.restore(entries, nowMs)
    }
    return outbox.depth() - before
}

function parseJson(text: string): any {
    try {
        return text ? JSON.parse(text) : undefined
    } catch (e) {
        return undefined
    }
}

/** The saved queue has been sent: a later start must not load it again (the chunks stay, unread). */
export async function forgetOutbox() {
    await dropSetting(COUNT_KEY)
}
