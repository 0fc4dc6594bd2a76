// Settings the firmware writes itself, counted: every write wears the flash (settings live in the 256 KB
// `fstor` partition, a log of writes compacted when full). What writes, and how often: README "Reboots".
import * as ds from "@devicescript/core"
import { deleteSetting, settings, writeSetting } from "@devicescript/settings"

const count = { writes: 0 }

/** Setting writes and deletes since boot. */
export function flashWrites(): number {
    return count.writes
}

export async function saveSetting(key: string, value: any) {
    count.writes++
    await writeSetting(key, value)
}

export async function dropSetting(key: string) {
    count.writes++
    await deleteSetting(key)
}

/** How long readBack() waits for the settings service to answer. */
const READ_BACK_MS = 5000

/**
 * The JSON text the settings service holds for `key` ("" when none), or undefined when it did not answer.
 * A write is a command the service carries out later, in order: an answer to this read means every write
 * before it is in flash. (readSetting() cannot serve here: it resumes its fiber from the report handler,
 * and a report that arrives before the fiber suspends throws "fiber not suspended", which happened here
 * under load right after a series of writes.)
 */
export async function readBack(key: string): Promise<string | undefined> {
    const code = settings.spec.lookup("get").code
    let got: string = undefined
    const unsub = settings.report().subscribe(pkt => {
        if (pkt.serviceCommand !== code) return
        const d = pkt.decode()
        if (d[0] === key) got = d[1] ? d[1].toString() : ""
    })
    await settings.get(key)
    const deadline = ds.millis() + READ_BACK_MS
    while (got === undefined && ds.millis() < deadline) await ds.sleep(10)
    unsub()
    return got
}
