// Command parsing, pure: the text a server wrote to a command datastream → the value to apply, or a
// stable error code. Nothing here throws; a bad command becomes an `_errors` report upstream.
import { parseDecimal } from "../foundation/config-text"

export interface ParsedCommand {
    /** the value to apply: 0/1 for a switch, the number for a setpoint */
    value?: number
    /** E_CMD_EMPTY, E_CMD_VALUE (not understood), E_CMD_RANGE (number outside the allowed range) */
    error?: string
}

const SWITCH_ON = ["1", "on", "true", "yes"]
const SWITCH_OFF = ["0", "off", "false", "no"]

/** "1"/"on"/"true"/"yes" → 1, "0"/"off"/"false"/"no" → 0 (any case), "toggle" → the opposite of `current`. */
export function parseSwitchCommand(text: string, current: number): ParsedCommand {
    const t = text.trim().toLowerCase()
    if (!t.length) return { error: "E_CMD_EMPTY" }
    if (SWITCH_ON.indexOf(t) >= 0) return { value: 1 }
    if (SWITCH_OFF.indexOf(t) >= 0) return { value: 0 }
    if (t === "toggle") return { value: current ? 0 : 1 }
    return { error: "E_CMD_VALUE" }
}

/** A number within [min, max], rounded to `decimals` ("21.26" with 1 decimal → 21.3). */
export function parseSetpointCommand(text: string, min: number, max: number, decimals: number): ParsedCommand {
    if (!text.trim().length) return { error: "E_CMD_EMPTY" }
    const n = parseDecimal(text)
    if (n === undefined) return { error: "E_CMD_VALUE" }
    const scale = Math.pow(10, decimals)
    const v = Math.round(n * scale) / scale
    if (v < min || v > max) return { error: "E_CMD_RANGE" }
    return { value: v }
}

/**
 * The command text inside a pushed body [P§8]: {"id":"led","current_value":"on","at":…}. A deleted
 * datastream ({"deleted":true}) is not a command: undefined with no error.
 */
export function commandText(body: any): { text?: string; error?: string } {
    if (!body || typeof body !== "object") return { error: "E_CMD_BODY" }
    if (body["deleted"] === true) return {}
    const v = body["current_value"]
    if (typeof v === "string") return { text: v }
    if (typeof v === "number") return { text: "" + v }
    if (typeof v === "boolean") return { text: v ? "1" : "0" }
    return { error: "E_CMD_BODY" }
}
