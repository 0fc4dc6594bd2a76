// [P§5, P§9] Times on the wire: `at` is integer ms since the epoch or ISO-8601; the server writes
// ISO-8601 UTC with milliseconds. Durations are Xively's: `30seconds`, `10minutes`, `6hours`, `2days`.

/** [P§9] the server's way of writing a time */
export function isoOf(ms: number): string {
    return new Date(ms).toISOString()
}

/** ms since the epoch from a number of ms or an ISO-8601 string; undefined when it is neither. */
export function parseTime(v: unknown): number | undefined {
    if (typeof v === "number") return Number.isSafeInteger(v) && v >= 0 ? v : undefined
    if (typeof v !== "string" || v.length === 0 || v.length > 40) return undefined
    if (/^\d+$/.test(v)) return parseTime(Number(v))
    // ISO-8601 date or date-time; Date.parse alone also accepts forms like "March 7", which we do not
    if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) return undefined
    const ms = Date.parse(v)
    return Number.isNaN(ms) || ms < 0 ? undefined : ms
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
