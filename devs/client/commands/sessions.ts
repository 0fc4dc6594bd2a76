import type { FeedlineConnection } from "../connection.ts"
import { table } from "./format.ts"
import { CONNECTION_USAGE, parse, printJson, withConnection, type ClientCommand } from "./common.ts"

const USAGE = `feedline sessions [--json]
  Lists the connections the server holds (GET /sessions): a master key sees all; a key with read,
  those of keys scoped to its feeds. --json: one JSON array.
${CONNECTION_USAGE}`

/** GET /sessions answers pages of {totalResults, page, sessions}; this reads them all. */
async function allSessions(c: FeedlineConnection): Promise<any[]> {
    const sessions: any[] = []
    for (let page = 1; ; page++) {
        const body = await c.call("get", "/sessions", { params: { page } })
        sessions.push(...body.sessions)
        if (body.sessions.length === 0 || sessions.length >= body.totalResults) return sessions
    }
}

function cell(v: unknown): string {
    if (v === undefined || v === null) return ""
    if (Array.isArray(v)) return v.map((x) => (typeof x === "object" ? x?.resource ?? JSON.stringify(x) : String(x))).join(" ")
    return typeof v === "object" ? JSON.stringify(v) : String(v)
}

export const sessionsCommand: ClientCommand = {
    summary: "list connected devices and apps",
    usage: USAGE,
    async run(argv, io) {
        const { values } = parse(argv, { json: { type: "boolean" } }, USAGE)
        const sessions = await withConnection(values, io, allSessions)
        if (values.json) return printJson(io, sessions, true)
        const cols = ["id", "transport", "remote_address", "key_id", "key_label", "feeds", "since", "requests", "pushes", "subscriptions"]
        io.out(table(cols, sessions.map((s) => cols.map((k) => cell(s[k])))))
    },
}
