// The proxy's control interfaces for people and scripts: one text command per stdin line, and a
// small HTTP port (loopback by default): `curl -d 'blackhole for=5000' 127.0.0.1:7445`.
// Both go through runControl, so they answer the same way.

import http from "node:http"
import { checkCommand, FaultProxyError, parseCommand } from "./faults.ts"
import type { FaultProxy, FaultProxyStats } from "./proxy.ts"

export type ControlReply = { ok: true; faults: string[]; stats: FaultProxyStats } | { ok: false; code: string; error: string }

/** A control command is larger than this only by mistake (or abuse): refuse it unread. */
const MAX_CONTROL_BODY_BYTES = 4096

/** Applies one command (text, or JSON text of a command object) and reports the proxy's state. */
export function runControl(proxy: FaultProxy, text: string): ControlReply {
    try {
        const trimmed = text.trim()
        const cmd = trimmed.startsWith("{") ? checkCommand(JSON.parse(trimmed)) : parseCommand(trimmed)
        if (cmd.fault !== "status") proxy.apply(cmd)
        return { ok: true, faults: proxy.activeFaults(), stats: proxy.stats() }
    } catch (e) {
        if (e instanceof FaultProxyError) return { ok: false, code: e.code, error: e.message }
        if (e instanceof SyntaxError) return { ok: false, code: "E_BAD_COMMAND", error: `not JSON: ${e.message}` }
        throw e
    }
}

/**
 * HTTP control: `GET /` answers the status; `POST /` with a command as the body applies it.
 * Answers JSON (a ControlReply), 400 for a bad command.
 */
export async function startControlServer(proxy: FaultProxy, host: string, port: number): Promise<http.Server> {
    const server = http.createServer((req, res) => {
        const reply = (status: number, body: ControlReply) => {
            res.writeHead(status, { "content-type": "application/json" })
            res.end(JSON.stringify(body) + "\n")
        }
        if (req.method === "GET") return reply(200, runControl(proxy, "status"))
        if (req.method !== "POST") return reply(405, { ok: false, code: "E_BAD_COMMAND", error: "use GET for the status or POST a command" })
        let body = ""
        req.setEncoding("utf8")
        req.on("data", (chunk: string) => {
            body += chunk
            if (body.length > MAX_CONTROL_BODY_BYTES) {
                reply(413, { ok: false, code: "E_BAD_COMMAND", error: `a command is at most ${MAX_CONTROL_BODY_BYTES} bytes` })
                req.destroy()
            }
        })
        req.on("end", () => {
            if (res.headersSent) return
            const r = runControl(proxy, body)
            reply(r.ok ? 200 : 400, r)
        })
    })
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject)
        server.listen({ host, port }, () => resolve())
    })
    return server
}
