// [P§5, P§9] Times on the wire: `at` is integer ms since the epoch or ISO-8601; the server writes
// ISO-8601 UTC with milliseconds. Durations are Xively's: `30seconds`, `10minutes`, `6hours`, `2days`.

const DAY_MS = 86_400_000
/** 10000-01-01T00:00:00.000Z: from there on toISOString writes a six-digit year */
const FIVE_DIGIT_YEARS_MS = 253_402_300_800_000

const two = (n: number) => (n < 10 ? "0" : "") + n

/**
 * [P§9] the server's way of writing a time: what `Date#toISOString` writes, by arithmetic. V8's
 * `toISOString` asks ICU for the local time zone first (and discards it), which pages in ICU's zone data:
 * ~0.9 MiB of resident memory in a server that only ever writes UTC (docs/performance-history.md, "Idle RSS,
 * third pass").
 */
export function isoOf(ms: number): string {
    if (!Number.isSafeInteger(ms) || ms < 0 || ms >= FIVE_DIGIT_YEARS_MS) return new Date(ms).toISOString()
    const days = Math.floor(ms / DAY_MS)
    const inDay = ms - days * DAY_MS
    // the civil date of a day count (H. Hinnant, "chrono-compatible low-level date algorithms"): 400-year eras from 0000-03-01
    const z = days + 719_468
    const era = Math.floor(z / 146_097)
    const dayOfEra = z - era * 146_097
    const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365)
    const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100))
    const mp = Math.floor((5 * dayOfYear + 2) / 153) // months from March
    const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1
    const month = mp < 10 ? mp + 3 : mp - 9
    const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    const h = Math.floor(inDay / 3_600_000)
    const min = Math.floor(inDay / 60_000) % 60
    const s = Math.floor(inDay / 1000) % 60
    const milli = inDay % 1000
    return `${String(year).padStart(4, "0")}-${two(month)}-${two(day)}T${two(h)}:${two(min)}:${two(s)}.${String(milli).padStart(3, "0")}Z`
}

/**
 * The last ms a Date can hold (+275760-09-13): a time past it has no date to write, and writing one would
 * throw (a `"at":8640000000000001` was a 500 once).
 */
export const MAX_TIME_MS = 8.64e15

/** Days in `month` (1-12) of `year`, Gregorian. */
function daysIn(year: number, month: number): number {
    if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28
    return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

/** ms since the epoch from a number of ms or an ISO-8601 string; undefined when it is neither. */
export function parseTime(v: unknown): number | undefined {
    if (typeof v === "number") return Number.isSafeInteger(v) && v >= 0 && v <= MAX_TIME_MS ? v : undefined
    if (typeof v !== "string" || v.length === 0 || v.length > 40) return undefined
    if (/^\d+$/.test(v)) return parseTime(Number(v))
    // ISO-8601 date or date-time; Date.parse alone also accepts forms like "March 7", which we do not
    const date = /^(\d{4})-(\d{2})-(\d{2})([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.exec(v)
    if (!date) return undefined
    // V8 rolls a day the month does not have into the next month (2026-02-30 is March 2): not the time that was sent
    if (Number(date[3]) > daysIn(Number(date[1]), Number(date[2]))) return undefined
    // a date-time without an offset is UTC, as every time the server writes: Date.parse would read it in the
    // server's own time zone, so the same request would store another instant on a server set to another zone
    const ms = Date.parse(date[4] !== undefined && date[5] === undefined ? v + "Z" : v)
    return Number.isNaN(ms) || ms < 0 || ms > MAX_TIME_MS ? undefined : ms
}

const UNIT_MS: Record<string, number> = {
    second: 1000,
    minute: 60_000,
    hour: 3_600_000,
    day: 86_400_000,
    week: 7 * 86_400_000,
    month: 30 * 86_400_000,
    year: 365 * 86_400_000,
}

/** Xively durations: `<n><unit>` with unit second(s), minute(s), hour(s), day(s), week(s), month(s), year(s). */
export function parseDuration(v: unknown): number | undefined {
    if (typeof v !== "string") return undefined
    const m = /^(\d{1,6})\s*(second|minute|hour|day|week|month|year)s?$/i.exec(v.trim())
    if (!m) return undefined
    const ms = Number(m[1]) * UNIT_MS[m[2].toLowerCase()]
    return ms > 0 ? ms : undefined
}
