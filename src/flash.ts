// Settings the firmware writes itself: verified and counted. Every write wears the flash (settings live in
// the 256 KB `fstor` partition, a log of writes compacted when full); what writes, and how often: docs/FIRMWARE.md
// "Reboots". A setting write is a command to the runtime's settings service, sent without an answer and
// carried out later; under load in the simulator some of a quick series never arrived (13 samples of a
// saved outbox were missing after the reboot). So each write is read back, and written again if it did
// not land.
import * as ds from "@devicescript/core"
import { settings } from "@devicescript/settings"

const count = { writes: 0 }
/** How long readBack() waits for the settings service to answer. */
const READ_BACK_MS = 5000
/** Writes of one value before saveSetting() gives up. */
const WRITE_ATTEMPTS = 3
/**
 * Longest setting, in bytes of key, NUL and the value's JSON, that the runtime can answer a read of: the
 * settings service answers in one Jacdac packet. Measured in the simulator (2026-12-07): 231 B read back; at
 * 233 B the service's answer did not fit its frame and the runtime aborted (jd_panic: on an ESP32 a chip
 * reset). The write itself is taken, so the value sits in flash and every read of it (at every boot) does
 * the same: a reset loop until the settings are cleared over USB. Kept below with a margin.
 */
export const MAX_SETTING_BYTES = 224

/** Setting writes and deletes since boot (each attempt counts). */
export function flashWrites(): number {
    return count.writes
}

/**
 * Writes `value` (as JSON) and reads it back; false when it did not land after WRITE_ATTEMPTS, or when it is
 * too long to be read back (MAX_SETTING_BYTES: then nothing is written).
 */
export async function saveSetting(key: string, value: any): Promise<boolean> {
    const json = JSON.stringify(value)
    const bytes = Buffer.from(json)
    if (key.length + 1 + bytes.length > MAX_SETTING_BYTES) {
        console.warn(`feedline: E_SETTING_SIZE ${key} is ${bytes.length} B, not written (at most ${MAX_SETTING_BYTES - 1 - key.length} B)`)
        return false
    }
    for (let i = 0; i < WRITE_ATTEMPTS; ++i) {
        count.writes++
        // the settings service's command as writeSetting() sends it, without its key check (every key here is
        // a constant or length-checked by its caller) and without stringifying again: 168 B of code window
        await settings.set(key, bytes)
        if ((await readBack(key)) === json) return true
    }
    console.warn(`feedline: E_FLASH_WRITE ${key} did not read back`)
    return false
}

export async function dropSetting(key: string) {
    count.writes++
    await settings.delete(key) // as deleteSetting() does, without its key check (above)
}

/**
 * The value of setting `key` (its JSON parsed), or undefined when it has none, holds no JSON or the
 * settings service did not answer. Every setting the firmware reads goes through here rather than
 * readSetting(), for readBack()'s reason below (a read that can hang under load), and because the image
 * then carries one settings reader instead of two (about 290 B of code).
 */
export async function readSettingValue(key: string): Promise<any> {
    const json = await readBack(key)
    if (!json) return undefined
    try {
        return JSON.parse(json)
    } catch (e) {
        return undefined
    }
}

/**
 * The settings client's report emitter as @devicescript/core 2.16.4 (pinned) builds it (src/events.ts): its
 * `emit` calls each of `handlers` in turn, at once, with every report. readBack() adds its handler there
 * itself rather than through `.subscribe()`: a `subscribe` call on a Subscriber compiles into the image every
 * method that implements Subscriber's `subscribe` (GPIO's pin one, with its 100 ms change poller) and the
 * emitter's own handler wrapper, which runs a handler in a fiber of its own: 188 B of code window on the S3
 * (docs/FIRMWARE.md "Program size").
 */
interface ReportEmitter {
    handlers: ((pkt: ds.Packet) => void)[]
}

/**
 * The JSON text the settings service holds for `key` ("" when none), or undefined when it did not answer.
 * The service answers in order: an answer means every write before it is in flash. (readSetting() cannot
 * serve here: it resumes its fiber from the report handler, and a report that arrives before the fiber
 * suspends throws "fiber not suspended", which happened under load right after a series of writes.)
 */
export async function readBack(key: string): Promise<string | undefined> {
    const code = settings.spec.lookup("get").code
    let got: string = undefined
    const reports = settings.report() as any as ReportEmitter
    if (!reports.handlers) reports.handlers = []
    const onReport = (pkt: ds.Packet) => {
        if (pkt.serviceCommand !== code) return
        const d = pkt.decode()
        if (d[0] === key) got = d[1] ? d[1].toString() : ""
    }
    reports.handlers.push(onReport)
    await settings.get(key)
    const deadline = ds.millis() + READ_BACK_MS
    while (got === undefined && ds.millis() < deadline) await ds.sleep(10)
    reports.handlers.insert(reports.handlers.indexOf(onReport), -1)
    return got
}
