// Tables and CSV for people and spreadsheets. Plain text, no colours: the output is often piped.

/** A left-aligned text table with a header row. */
export function table(header: string[], rows: string[][]): string {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
    const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : (c ?? "").padEnd(widths[i]))).join("  ")
    return [line(header), ...rows.map(line)].join("\n") + "\n"
}

/** RFC 4180 CSV: fields with a comma, quote or newline are quoted. */
export function csv(header: string[], rows: string[][]): string {
    const field = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s)
    return [header, ...rows].map((r) => r.map((c) => field(c ?? "")).join(",")).join("\n") + "\n"
}
