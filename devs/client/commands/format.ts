// Tables and CSV for people and spreadsheets. Plain text, no colours: the output is often piped.

/**
 * Control characters (C0, DEL, C1) and the bidirectional overrides a terminal would act on, as visible
 * `\uXXXX` escapes. What the CLI prints for people holds what devices and other keys wrote (a value, a
 * device's firmware string, a label): an ESC sequence among them would otherwise move the cursor, clear
 * the screen or retitle the operator's terminal, and a CR or RTL override would make a line lie.
 */
export function printable(text: string): string {
    return text.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"))
}

/** A left-aligned text table with a header row; every cell printable() first. */
export function table(header: string[], rows: string[][]): string {
    const safe = rows.map((r) => r.map((c) => printable(c ?? "")))
    const widths = header.map((h, i) => Math.max(h.length, ...safe.map((r) => (r[i] ?? "").length)))
    const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : (c ?? "").padEnd(widths[i]))).join("  ")
    return [line(header), ...safe.map(line)].join("\n") + "\n"
}

/** RFC 4180 CSV: fields with a comma, quote or newline are quoted. */
export function csv(header: string[], rows: string[][]): string {
    const field = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s)
    return [header, ...rows].map((r) => r.map((c) => field(c ?? "")).join(",")).join("\n") + "\n"
}
