// Strict parsing of the short texts people and servers send a device: numbers, durations, and policy
// changes such as "i=5s d=0.2 s=10m". Pure and import-free. Strict on purpose: "12abc" is an error,
// not 12, so a typo is reported instead of silently applied.

/** [P§10] a datastream value is at most 32 characters; nothing longer reaches these parsers. */
export const MAX_TEXT_CHARS = 32

function isDigit(c: number): boolean {
    return c >= 48 && c <= 57
}

/** "-12.5" → -12.5. Only an optional sign, digits and one optional point; undefined otherwise. */
export function parseDecimal(text: string): number | undefined {
    if (typeof text !== "string") return undefined
    const s = text.trim()
    let i = 0
    let negative = false
    if (s.length && (s.charCodeAt(0) === 45 || s.charCodeAt(0) === 43)) {
        negative = s.charCodeAt(0) === 45
        i = 1
    }
    let whole = 0
    let digits = 0
    while (i < s.length && isDigit(s.charCodeAt(i))) {
        whole = whole * 10 + (s.charCodeAt(i) - 48)
        i++
        digits++
    }
    let frac = 0
    let scale = 1
    if (i < s.length && s.charCodeAt(i) === 46) {
        i++
        while (i < s.length && isDigit(s.charCodeAt(i))) {
            frac = frac * 10 + (s.charCodeAt(i) - 48)
            scale *= 10
            i++
            digits++
        }
    }
    if (digits === 0 || i !== s.length || digits > 15) return undefined
    const v = whole + frac / scale
    return negative ? -v : v
}

/** "250ms", "5s", "10m", "2h" or plain milliseconds "1500" → ms; undefined when not a duration. */
export function parseDuration(text: string): number | undefined {
    const s = text.trim()
    // the unit by slice, not endsWith: its library code would cost code-window bytes (docs/FIRMWARE.md "Program size")
    const last = s.slice(s.length - 1)
    let factor = 1
    let suffix = 1
    if (s.slice(s.length - 2) === "ms") suffix = 2
    else if (last === "s") factor = 1000
    else if (last === "m") factor = 60000
    else if (last === "h") factor = 3600000
    else suffix = 0
    const n = parseDecimal(s.slice(0, s.length - suffix))
    if (n === undefined || n < 0) return undefined
    return Math.round(n * factor)
}

/** The shortest exact text for a duration: 300000 → "5m", 1500 → "1500ms". */
export function formatDuration(ms: number): string {
    if (ms > 0 && ms % 3600000 === 0) return ms / 3600000 + "h"
    if (ms > 0 && ms % 60000 === 0) return ms / 60000 + "m"
    if (ms > 0 && ms % 1000 === 0) return ms / 1000 + "s"
    return ms + "ms"
}

/** A change to a sensor's sampling policy; absent fields stay as they are. */
export interface PolicyPatch {
    intervalMs?: number
    deadband?: number
    maxSilenceMs?: number
}

export interface PolicyPatchResult {
    patch?: PolicyPatch
    /** E_CFG_SYNTAX (not key=value), E_CFG_KEY (unknown key), E_CFG_VALUE (bad number/duration), E_CFG_EMPTY */
    error?: string
    /** the part of the text that was wrong, for the person reading the error */
    detail?: string
}

function fail(code: string, detail: string): PolicyPatchResult {
    return { error: code, detail: detail }
}

/**
 * "i=5s d=0.2 s=10m" (also separated by "," or ";"): i = read interval, d = deadband in sensor units,
 * s = longest silence. All or nothing: one bad item rejects the whole text, so a device never runs a
 * half-applied configuration.
 */
export function parsePolicyPatch(text: string): PolicyPatchResult {
    if (typeof text !== "string" || text.length > MAX_TEXT_CHARS) return fail("E_CFG_SYNTAX", "not a short text")
    // items between spaces, tabs, "," or ";" (by hand: String.split costs 300 B of bytecode, and this is its only user)
    const items: string[] = []
    let word = ""
    for (let i = 0; i <= text.length; i++) {
        switch (i < text.length ? text.charCodeAt(i) : 32) {
            case 32: // space
            case 44: // ,
            case 59: // ;
            case 9: // tab
                if (word.length) items.push(word)
                word = ""
                break
            default:
                word += text[i]
        }
    }
    const patch: PolicyPatch = {}
    let count = 0
    for (const item of items) {
        const eq = item.indexOf("=")
        if (eq <= 0) return fail("E_CFG_SYNTAX", item)
        const key = item.slice(0, eq)
        const value = item.slice(eq + 1)
        if (key === "i") {
            const ms = parseDuration(value)
            if (ms === undefined) return fail("E_CFG_VALUE", item)
            patch.intervalMs = ms
        } else if (key === "s") {
            const ms = parseDuration(value)
            if (ms === undefined) return fail("E_CFG_VALUE", item)
            patch.maxSilenceMs = ms
        } else if (key === "d") {
            const d = parseDecimal(value)
            if (d === undefined || d < 0) return fail("E_CFG_VALUE", item)
            patch.deadband = d
        } else return fail("E_CFG_KEY", key)
        count++
    }
    if (!count) return fail("E_CFG_EMPTY", "no i=, d= or s=")
    return { patch: patch }
}
