import { table } from "./format.ts"
import { CONNECTION_USAGE, parse, printJson, withConnection, type ClientCommand } from "./common.ts"

const USAGE = `feedline sessions [--json]
  Lists the connections the server holds (GET /sessions; needs a master key). A server without
  that resource shows this connection's own /session instead.
${CONNECTION_USAGE}`

/** GET /sessions may answer a list or {sessions:[...]}; /session answers one object. */
export function sessionsOf(body: any): any[] {
    if (Array.isArray(body)) return body
    if (Array.isArray(body?.sessions)) return body.sessions
    return body && typeof body === "object" ? [body] : []
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
        const body = await withConnection(values, io, async (c) => {
            const r = await c.send("get", "/sessions")
            if (r.status === 404 || r.status === 405) {
                io.err("note: this server does not list sessions (GET /sessions); showing this connection's own /session\n")
                return c.call("get", "/session")
            }
            return c.call("get", "/sessions")
        })
        const sessions = sessionsOf(body)
        if (values.json) return printJson(io, sessions, true)
        const cols = ["id", "transport", "remote_address", "key_id", "feeds", "since", "requests", "pushes", "subscriptions"]
        const present = cols.filter((k) => sessions.some((s) => s[k] !== undefined))
        io.out(table(present, sessions.map((s) => present.map((k) => cell(s[k])))))
    },
}
