// The settings that override the wiring of the board a build runs as. Pure: settings are read
// elsewhere (config-settings.ts) and passed in, so the rules are tested without flash or hardware.
import { BoardConfig, ClimateChip, CHIP_QUANTITIES, SwitchOutput } from "../foundation/config"

/**
 * Setting keys (≤ 13 characters: readSetting throws above that). Put them in .env.defaults / .env.local;
 * pins are GPIO numbers and -1 removes the sensor or output.
 */
export const SETTING_KEYS = ["SIMULATE", "CLIMATE", "I2C_ADDR", "LIGHT_PIN", "SOIL_PIN", "LED_PIN", "RELAY_PIN", "RSSI"]

export interface BoardOverride {
    board: BoardConfig
    /** "E_SETTING KEY" for each setting that was ignored because its value made no sense */
    errors: string[]
}

function copyBoard(b: BoardConfig): BoardConfig {
    return {
        id: b.id,
        simulated: b.simulated,
        climate: b.climate ? { chip: b.climate.chip, address: b.climate.address } : undefined,
        lightPin: b.lightPin,
        soilPin: b.soilPin,
        rssi: b.rssi,
        switches: b.switches.map(s => ({ id: s.id, pin: s.pin, activeLow: s.activeLow, kind: s.kind })),
        setpoints: b.setpoints,
    }
}

function isPin(v: any): boolean {
    if (typeof v !== "number") return false
    return v >= -1 && v <= 48 && Math.round(v) === v
}

/** A copy of `base` with the settings applied; `settings` maps key → value as readSetting returns it. */
export function applyBoardSettings(base: BoardConfig, settings: Record<string, any>): BoardOverride {
    const b = copyBoard(base)
    const errors: string[] = []
    const bad = (key: string) => errors.push("E_SETTING " + key)

    /** the flag setting `key`, else `now`; nonsense is named in errors */
    const flag = (key: string, now: boolean) => {
        const v = settings[key]
        if (typeof v === "boolean" || v === 0 || v === 1) return !!v
        if (v !== undefined) bad(key)
        return now
    }
    /** the pin setting `key` (-1: none), else `now`; nonsense is named in errors */
    const pin = (key: string, now: number) => {
        const v = settings[key]
        if (isPin(v)) return v < 0 ? undefined : v
        if (v !== undefined) bad(key)
        return now
    }
    b.simulated = flag("SIMULATE", b.simulated)
    const climate = settings["CLIMATE"]
    if (climate !== undefined) {
        if (climate === "none") b.climate = undefined
        else if (typeof climate === "string" && CHIP_QUANTITIES[climate])
            b.climate = { chip: climate as ClimateChip, address: b.climate ? b.climate.address : undefined }
        else bad("CLIMATE")
    }
    const addr = settings["I2C_ADDR"]
    if (addr !== undefined) {
        if (typeof addr === "number" && addr > 0 && addr < 128 && b.climate) b.climate.address = addr
        else bad("I2C_ADDR")
    }
    b.lightPin = pin("LIGHT_PIN", b.lightPin)
    b.soilPin = pin("SOIL_PIN", b.soilPin)
    b.rssi = flag("RSSI", b.rssi)
    for (const key of ["LED_PIN", "RELAY_PIN"]) {
        const pin = settings[key]
        if (pin === undefined) continue
        if (!isPin(pin)) {
            bad(key)
            continue
        }
        const id = key === "LED_PIN" ? "led" : "relay"
        const kept: SwitchOutput[] = []
        let activeLow = false
        for (const s of b.switches) {
            if (s.id !== id) kept.push(s)
            else activeLow = !!s.activeLow // a new pin keeps the board's polarity
        }
        if (pin >= 0) kept.push({ id: id, kind: id === "led" ? "light" : "relay", pin: pin, activeLow: activeLow })
        b.switches = kept
    }
    return { board: b, errors: errors }
}
