// Reads the overrides of the board's wiring from the device settings (.env.defaults / .env.local, or
// written by the device itself), and keeps server-applied sampling policies across reboots.
import { readSettingValue, saveSetting } from "../flash"
import { BoardConfig, POLICY_SETTING_PREFIX } from "../foundation/config"
import { applyBoardSettings, SETTING_KEYS } from "./config-board"
import { ActuatorStore, PolicyStore, SavedState } from "../foundation/ports"

/** `board` (the build's) with every override setting applied; bad settings are logged and ignored. */
export async function loadBoardConfig(board: BoardConfig): Promise<BoardConfig> {
    const settings: Record<string, any> = {}
    for (const key of SETTING_KEYS) {
        const v = await readSettingValue(key)
        if (v !== undefined) settings[key] = v
    }
    const r = applyBoardSettings(board, settings)
    for (const e of r.errors) console.log(`feedline: setting ignored: ${e}`)
    return r.board
}

/** readSetting/writeSetting throw on longer keys (platform notes §4) */
const MAX_SETTING_KEY_CHARS = 13

/** CFG_<id> settings. Written only when the applied text changes: flash has limited write cycles. */
export class SettingsPolicyStore implements PolicyStore {
    async load(id: string): Promise<string | undefined> {
        const key = POLICY_SETTING_PREFIX + id
        if (key.length > MAX_SETTING_KEY_CHARS) return undefined
        const v = await readSettingValue(key)
        return typeof v === "string" ? v : undefined
    }

    /** Throws for an id too long to make a setting key (more than 9 characters). */
    async save(id: string, text: string) {
        const key = POLICY_SETTING_PREFIX + id
        if (key.length > MAX_SETTING_KEY_CHARS) throw new RangeError(`setting key ${key} longer than ${MAX_SETTING_KEY_CHARS}`)
        if ((await readSettingValue(key)) === text) return
        await saveSetting(key, text)
    }
}

/** `ACT_<id>`: an actuator's [state, at], written once per command applied (docs/FIRMWARE.md "Reboots"). */
export const ACTUATOR_SETTING_PREFIX = "ACT_"

/** ACT_<id> settings; an id too long for a setting key (more than 9 characters) is not kept. */
export class SettingsActuatorStore implements ActuatorStore {
    async load(id: string): Promise<SavedState | undefined> {
        const key = ACTUATOR_SETTING_PREFIX + id
        if (key.length > MAX_SETTING_KEY_CHARS) return undefined
        const v = await readSettingValue(key)
        if (!Array.isArray(v)) return undefined
        if (typeof v[0] !== "number" || typeof v[1] !== "string") return undefined
        return { state: v[0], at: v[1] }
    }

    async save(id: string, state: number, at: string) {
        const key = ACTUATOR_SETTING_PREFIX + id
        if (key.length <= MAX_SETTING_KEY_CHARS) await saveSetting(key, [state, at])
    }
}
