import { CONNECTION_USAGE, parse, type ClientCommand } from "./common.ts"
import { allPages, fetchAndPrintList, type ListView } from "./list.ts"

const USAGE = `feedline sessions [--json]
  Lists the connections the server holds (GET /sessions): a master key sees all; a key with read,
  those of keys scoped to its feeds. --json: one JSON array.
${CONNECTION_USAGE}`

function cell(v: unknown): string {
    if (v === undefined || v === null) return ""
    if (Array.isArray(v)) return v.map((x) => (typeof x === "object" ? x?.resource ?? JSON.stringify(x) : String(x))).join(" ")
    return typeof v === "object" ? JSON.stringify(v) : String(v)
}

const SESSION_COLUMNS = ["id", "transport", "remote_address", "key_id", "key_label", "feeds", "since", "requests", "pushes", "subscriptions"]
const SESSIONS_VIEW: ListView<any> = { columns: SESSION_COLUMNS, cells: (s) => SESSION_COLUMNS.map((k) => cell(s[k])) }

export const sessionsCommand: ClientCommand = {
    summary: "list connected devices and apps",
    usage: USAGE,
    async run(argv, io) {
        const { values } = parse(argv, { json: { type: "boolean" } }, USAGE)
        await fetchAndPrintList(values, io, (c) => allPages(c, "/sessions", "sessions"), SESSIONS_VIEW)
    },
}
