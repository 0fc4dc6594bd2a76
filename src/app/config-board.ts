// The board a device runs as, and the settings that override its wiring. Pure: settings are read
// elsewhere (config-settings.ts) and passed in, so the rules are tested without flash or hardware.
import { BoardConfig, boardById, ClimateChip, CHIP_QUANTITIES, SIM_BOARD, SwitchOutput } from "./config"

/**
 * Setting keys (≤ 13 characters: readSetting throws above that). Put them in .env.defaults / .env.local;
 * pins are GPIO numbers and -1 removes the sensor or output.
 */
export const SETTING_KEYS = ["BOARD", "SIMULATE", "CLIMATE", "I2C_ADDR", "LIGHT_PIN", "SOIL_PIN", "LED_PIN", "RELAY_PIN", "RSSI"]
/** `CFG_<id>` holds a sensor's policy text ("i=10s d=0.2"); the device also saves server changes there. */
export const POLICY_SETTING_PREFIX = "CFG_"

/** A real board the firmware has no table entry for: no wiring known, so only the Wi-Fi signal. */
export const GENERIC_BOARD: BoardConfig = { id: "generic", simulated: false, rssi: true, switches: [], setpoints: [] }

/** BOARD setting first, then the simulator, then the id in the board configuration the runtime runs with. */
export function selectBoard(settingBoard: any, isSimulator: boolean, runtimeBoardId: string): BoardConfig {
    if (typeof settingBoard === "string" && settingBoard.length) {
        const b = boardById(settingBoard)
        if (b) return b
    }
    if (isSimulator) return SIM_BOARD
    return boardById(runtimeBoardId) || GENERIC_BOARD
}

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
    return typeof v === "number" && v >= -1 && v <= 48 && Math.round(v) === v
}

/** A copy of `base` with the settings applied; `settings` maps key → value as readSetting returns it. */
export function applyBoardSettings(base: BoardConfig, settings: Record<string, any>): BoardOverride {
    const b = copyBoard(base)
    const errors: string[] = []
    const bad = (key: string) => errors.push("E_SETTING " + key)

    const sim = settings["SIMULATE"]
    if (sim !== undefined) {
        if (typeof sim === "boolean" || sim === 0 || sim === 1) b.simulated = !!sim
        else bad("SIMULATE")
    }
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
    const light = settings["LIGHT_PIN"]
    if (light !== undefined) {
        if (isPin(light)) b.lightPin = light < 0 ? undefined : light
        else bad("LIGHT_PIN")
    }
    const soil = settings["SOIL_PIN"]
    if (soil !== undefined) {
        if (isPin(soil)) b.soilPin = soil < 0 ? undefined : soil
        else bad("SOIL_PIN")
    }
    const rssi = settings["RSSI"]
    if (rssi !== undefined) {
        if (typeof rssi === "boolean" || rssi === 0 || rssi === 1) b.rssi = !!rssi
        else bad("RSSI")
    }
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
