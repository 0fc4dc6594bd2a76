// Settings the firmware writes itself, counted: every write wears the flash (settings live in the 256 KB
// `fstor` partition, a log of writes compacted when full). What writes, and how often: README "Reboots".
import { deleteSetting, writeSetting } from "@devicescript/settings"

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
