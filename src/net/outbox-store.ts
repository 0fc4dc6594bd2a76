// The outbox across a planned reboot: saved in chunks of setting values (one value is one Jacdac packet,
// ~236 B) right before the link's last-resort reboot, queued again at the next start and resent (the
// server stores a datapoint once per `at`, so a resend is harmless), forgotten once the outbox has emptied.
// Keys: the chunks under one of two sets, OBX0, OBX1, … or OBY0, OBY1, …, and OBX_N, written last: [how
// many chunks, which set (0 or 1), samples the full outbox had dropped]. A save writes the set OBX_N does
// not name, so a save cut short (a power cut, a reset) leaves the previous save whole: writing over the
// named set's chunks left a mix of the two, whose older chunks brought back samples already sent, and those
// taken before the clock was known at the wrong time. The drop count goes on after the start, so `_drops`
// tells what a long time offline cost, not only what it cost since the last of its planned reboots.
// A power cut still loses what is queued: the flash is written only before a planned reboot.
import { dropSetting, readBack, saveSetting } from "../flash"
import { Outbox } from "./outbox"

const COUNT_KEY = "OBX_N"
const CHUNK_SETS = ["OBX", "OBY"]
/** the set OBX_N names (an index in CHUNK_SETS): the one loadOutbox() found at boot, then the one saveOutbox() wrote */
let namedSet = 1

/**
 * Saves the queue; returns the samples saved. Yields between chunks (flash writes take a while); samples
 * queued meanwhile are saved too, and the caller reboots right after, without yielding again.
 */
export async function saveOutbox(outbox: Outbox, nowMs: number): Promise<number> {
    const set = 1 - namedSet
    let chunks = 0
    let samples = 0
    outbox.saveNext = 0
    for (;;) {
        for (let c = outbox.savedChunk(nowMs); c.length; c = outbox.savedChunk(nowMs)) {
            await saveSetting(CHUNK_SETS[set] + chunks, c)
            chunks++
            samples += c.length
        }
        // each write is read back (src/flash.ts): when this returns, everything is in flash
        await saveSetting(COUNT_KEY, [chunks, set, outbox.drops])
        namedSet = set
        if (outbox.saveNext >= outbox.depth()) return samples
    }
}

/** Queues what the last planned reboot saved; returns how many samples came back (0: nothing saved). */
export async function loadOutbox(outbox: Outbox, nowMs: number): Promise<number> {
    const saved = parseJson(await readBack(COUNT_KEY))
    if (!Array.isArray(saved)) return 0 // none, or a plain count from before the two sets: its chunks may be mixed
    const n = saved[0]
    if (typeof n !== "number" || n <= 0) return 0
    const set = saved[1] === 1 ? 1 : 0
    namedSet = set
    if (typeof saved[2] === "number") outbox.drops += saved[2]
    const before = outbox.depth()
    for (let i = 0; i < n; ++i) {
        const entries = parseJson(await readBack(CHUNK_SETS[set] + i))
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
