// Reading request bodies [P§5, P§9, P§10]: datastream lists and datapoint lists become validated points.
// A write is all or nothing: every point is checked before anything is stored.
import { controlOrUnparsableAt, isDatastreamId, MAX_VALUE_CHARS, valueText } from "../../../src/protocol.ts"
import { ApiError, badBody, unprocessable } from "../errors.ts"
import type { PointInput } from "../storage/store.ts"
import { isoOf, parseTime } from "../time.ts"

/** Times before this are refused: a device that stamps 1970 has not applied the welcome's time [P§2]. */
export const EARLIEST_AT_MS = Date.UTC(2000, 0, 1)
/** Times further ahead than this are refused: a clock gone wrong, not a sample. */
export const MAX_FUTURE_MS = 24 * 3600_000

export function isObject(v: unknown): v is Record<string, any> {
    return v !== null && typeof v === "object" && !Array.isArray(v)
}

export function objectBody(body: unknown, example: string): Record<string, any> {
    if (!isObject(body)) throw badBody(`this request needs a JSON object body, e.g. ${example}`)
    return body
}

/** A datastream id, or 422 E_BAD_ID naming its place (`where`, and `member` in it). */
export function datastreamIdOf(v: unknown, where: Place, member = ""): string {
    if (!isDatastreamId(v)) throw unprocessable("E_BAD_ID", `${placeText(where, member)} must be 1 to 64 characters of A-Za-z0-9_.-`)
    return v as string
}

/**
 * [P§10] `text` (a value, title, label or name at `where`) as it is, or 400 E_BAD_CHARACTER naming the
 * field and the character: nothing is stored that a device could not be pushed, parse and print.
 */
export function plainText(text: string, where: string): string {
    const at = controlOrUnparsableAt(text)
    if (at < 0) return text
    const c = text.charCodeAt(at)
    const what = c >= 0xfffe ? "which devices cannot parse" : "a control character"
    throw new ApiError(
        400,
        "E_BAD_CHARACTER",
        `${where} holds U+${c.toString(16).toUpperCase().padStart(4, "0")}, ${what}, at character ${at + 1}: values, titles and names are one line of text, without U+0000-U+001F, U+007F-U+009F, U+FFFE or U+FFFF. Nothing was written`,
    )
}

function valueOf(v: unknown, where: string): string {
    if (typeof v === "string") plainText(v, where)
    const text = valueText(v)
    if (text === undefined) throw unprocessable("E_BAD_VALUE", `${where} must be a string of at most ${MAX_VALUE_CHARS} characters, a number or a boolean`)
    return text
}

/** A given `at` in ms, undefined when none is given, NaN when it is refused (atOf says why). */
function atMsOf(v: unknown, nowMs: number): number | undefined {
    if (v === undefined || v === null) return undefined
    const ms = parseTime(v)
    return ms === undefined || ms < EARLIEST_AT_MS || ms > nowMs + MAX_FUTURE_MS ? NaN : ms
}

/** A given `at`, checked; undefined when none is given: the store stamps it [P§9]. */
export function atOf(v: unknown, where: string, nowMs: number): number | undefined {
    const checked = atMsOf(v, nowMs)
    if (checked === undefined || !Number.isNaN(checked)) return checked
    const ms = parseTime(v)
    if (ms === undefined) throw unprocessable("E_BAD_TIME", `${where} must be integer ms since the epoch or ISO-8601, e.g. "${isoOf(nowMs)}"`)
    if (ms < EARLIEST_AT_MS) throw unprocessable("E_BAD_TIME", `${where} is ${isoOf(ms)}, before 2000; stamp samples with the welcome's time`)
    throw unprocessable("E_BAD_TIME", `${where} is ${isoOf(ms)}, more than a day ahead of the server's clock`)
}

/**
 * Where in a request body something sits, for error messages: a path, or the index `i` of a feed update's
 * datastream (`datastreams[i]`). Made into text only when something is refused (every write passes here).
 */
export type Place = string | number

function placeText(where: Place, member = ""): string {
    return (typeof where === "number" ? `datastreams[${where}]` : where) + member
}

/** `[{"at":…,"value":…}]` of one datastream (at `where`). */
export function pointsOfDatapoints(stream: string, list: unknown, where: Place, nowMs: number): PointInput[] {
    const out = new Array<PointInput>(Array.isArray(list) ? list.length : 0)
    fillDatapoints(stream, list, where, "", nowMs, out, 0)
    return out
}

/** One datastream object: `{"id":…, "current_value":…, "at":…, "datapoints":[…]}` (id given by the path or the object). */
export function pointsOfDatastream(ds: Record<string, any>, stream: string, where: Place, nowMs: number): PointInput[] {
    const out = new Array<PointInput>(pointCountOf(ds))
    fillDatastream(ds, stream, where, nowMs, out, 0)
    return out
}

/** `"datastreams":[…]` of a feed update: the points to write, and the ids named (created even without a value). */
export function pointsOfDatastreams(list: unknown, nowMs: number): { points: PointInput[]; ids: string[] } {
    if (!Array.isArray(list)) throw badBody('"datastreams" must be a list such as [{"id":"temp","current_value":"21.5"}]')
    let count = 0
    for (let i = 0; i < list.length; ++i) if (isObject(list[i])) count += pointCountOf(list[i])
    // lists made at their size: one grown by push from empty holds 17 slots (a device's update has one point)
    const points = new Array<PointInput>(count)
    const ids = new Array<string>(list.length)
    for (let i = 0, at = 0; i < list.length; ++i) {
        const ds = list[i]
        if (!isObject(ds)) throw badBody(`datastreams[${i}] must be an object such as {"id":"temp","current_value":"21.5"}`)
        const id = datastreamIdOf(ds.id, i, ".id")
        ids[i] = id
        at = fillDatastream(ds, id, i, nowMs, points, at)
    }
    return { points, ids }
}

/** How many points a datastream object gives when it is valid (one that is not is refused before this matters). */
function pointCountOf(ds: Record<string, any>): number {
    return (Array.isArray(ds.datapoints) ? ds.datapoints.length : 0) + (ds.current_value !== undefined ? 1 : 0)
}

/**
 * A datastream's value under another name: unknown members are ignored [P§5], so these would create the
 * datastream and drop its value without a word. A datapoint's value is `value`; a datastream's is not.
 */
const MISNAMED_CURRENT_VALUE = ["value", "currentValue", "current-value", "currentvalue", "CurrentValue"] as const

function refuseMisnamedValue(ds: Record<string, any>, where: Place): void {
    for (const name of MISNAMED_CURRENT_VALUE) {
        if (ds[name] === undefined) continue
        throw unprocessable("E_MISNAMED_VALUE", `${placeText(where, "." + name)}: a datastream's value goes in "current_value" (a datapoint's in "value"); e.g. {"id":"temp","current_value":"21.5"}. Nothing was written`)
    }
}

/** pointsOfDatastream() into `out` from index `at`; returns the index after the last point. */
function fillDatastream(ds: Record<string, any>, stream: string, where: Place, nowMs: number, out: PointInput[], at: number): number {
    refuseMisnamedValue(ds, where)
    if (ds.datapoints !== undefined) at = fillDatapoints(stream, ds.datapoints, where, ".datapoints", nowMs, out, at)
    if (ds.current_value !== undefined) {
        const atMs = atMsOf(ds.at, nowMs)
        const value = valueText(ds.current_value)
        if (value === undefined || Number.isNaN(atMs)) {
            // refused: the place is named for the error only
            atOf(ds.at, placeText(where, ".at"), nowMs)
            valueOf(ds.current_value, placeText(where, ".current_value"))
        }
        out[at++] = { stream, atMs, value: value! }
    }
    return at
}

/** pointsOfDatapoints() (at `where`, and `member` in it) into `out` from index `at`; returns the index after the last point. */
function fillDatapoints(stream: string, list: unknown, where: Place, member: string, nowMs: number, out: PointInput[], at: number): number {
    if (!Array.isArray(list)) throw badBody(`${placeText(where, member)} must be a list such as [{"at":"${isoOf(nowMs)}","value":"1"}]`)
    for (let i = 0; i < list.length; ++i) {
        const dp = list[i]
        if (!isObject(dp)) throw badBody(`${placeText(where, member)}[${i}] must be an object such as {"at":"${isoOf(nowMs)}","value":"1"}`)
        const atMs = atMsOf(dp.at, nowMs)
        const value = valueText(dp.value)
        if (value === undefined || Number.isNaN(atMs)) {
            // refused: the place is named for the error only
            const w = `${placeText(where, member)}[${i}]`
            atOf(dp.at, `${w}.at`, nowMs)
            valueOf(dp.value, `${w}.value`)
        }
        out[at++] = { stream, atMs, value: value! }
    }
    return at
}
