// Subscribers of a flooded feed, in a process of their own (forked by test/host/server/abuse/fanout.test.ts),
// so that reading a flood of pushes does not slow the test's own event loop, which times the quiet
// feed's pushes. Each connection subscribes once (token "f") and counts the datapoints it receives per
// (datastream, value); pushes are matched by a regex, not decoded, to keep up with the flood.
// IPC in: {op:"open", port, caPath, key, resource, count} → "opened"; {op:"report"} → the counts; {op:"close"}.
import { readFileSync } from "node:fs"
import tls from "node:tls"
import { decodeServerLine, encodeRequest } from "../../src/protocol.ts"

/** a blank line this often keeps the connections alive [P§4] */
const HEARTBEAT_MS = 500
const PUSH = /^\{"token":"f","status":200,"resource":"[^"]*","body":\{"id":"([^"]+)","current_value":"([^"]*)"/

export interface FloodOpen {
    op: "open"
    port: number
    caPath: string
    key: string
    resource: string
    count: number
}

export interface FloodReport {
    /** per subscriber: [datastream.value, datapoints received] */
    counts: [string, number][][]
    /** subscribers whose connection closed */
    closed: number
    /** lines that were neither a push nor the subscribe acknowledgement */
    strays: string[]
}

interface Sub {
    socket: tls.TLSSocket
    counts: Map<string, number>
    closed: boolean
}

const subs: Sub[] = []
const strays: string[] = []
let heartbeat: NodeJS.Timeout | undefined

function open(o: FloodOpen, ca: Buffer): Promise<Sub> {
    return new Promise((resolve, reject) => {
        const socket = tls.connect({ host: "127.0.0.1", port: o.port, ca, servername: "localhost" })
        const sub: Sub = { socket, counts: new Map(), closed: false }
        let partial = ""
        let stage: "welcome" | "ack" | "live" = "welcome"
        socket.setEncoding("utf8")
        socket.on("error", (e) => (stage === "live" ? undefined : reject(e)))
        socket.on("close", () => {
            sub.closed = true
            if (stage !== "live") reject(new Error("closed before the subscription was acknowledged"))
        })
        socket.on("data", (chunk: string) => {
            const text = partial + chunk
            let start = 0
            for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
                const line = text.slice(start, nl)
                start = nl + 1
                if (line === "") continue
                const m = stage === "live" ? PUSH.exec(line) : null
                if (m) {
                    const k = `${m[1]}.${m[2]}`
                    sub.counts.set(k, (sub.counts.get(k) ?? 0) + 1)
                } else if (stage === "welcome") {
                    stage = "ack"
                    socket.write(encodeRequest({ method: "subscribe", resource: o.resource, headers: { "X-ApiKey": o.key }, token: "f" }) + "\n")
                } else if (stage === "ack") {
                    const r = decodeServerLine(line).response
                    if (r?.token !== "f" || r.status !== 200) return reject(new Error(`subscribe refused: ${line}`))
                    stage = "live"
                    resolve(sub)
                } else strays.push(line)
            }
            partial = text.slice(start)
        })
    })
}

process.on("message", async (m: FloodOpen | { op: "report" } | { op: "close" }) => {
    if (m.op === "open") {
        try {
            const ca = readFileSync(m.caPath)
            for (let i = 0; i < m.count; ++i) subs.push(await open(m, ca))
            heartbeat = setInterval(() => subs.forEach((s) => s.socket.write("\n")), HEARTBEAT_MS)
            process.send!({ op: "opened" })
        } catch (e) {
            process.send!({ op: "error", error: String(e) })
        }
    } else if (m.op === "report") {
        const report: FloodReport = { counts: subs.map((s) => [...s.counts]), closed: subs.filter((s) => s.closed).length, strays }
        process.send!({ op: "report", report })
    } else {
        clearInterval(heartbeat)
        for (const s of subs) s.socket.destroy()
        process.disconnect()
    }
})
process.on("disconnect", () => process.exit(0))
