// A TLS relay that records the protocol lines going by, for the zero-loss suite: it presents the
// server's own (dev) certificate to the device and connects on to the server, so a test can read what
// the server acknowledged, as it sent it (a device prints its view later, or never, e.g. right
// before a SIGKILL). Bytes are relayed as they come; a close or an error on one side ends the other.
import { readFileSync } from "node:fs"
import net from "node:net"
import tls from "node:tls"
import { decodeRequest, decodeServerLine } from "../../src/protocol.ts"

export interface TappedLine {
    /** Date.now() when the line passed */
    atMs: number
    /** up: device to server; down: server to device */
    dir: "up" | "down"
    /** which relayed connection (1, 2, …) */
    conn: number
    text: string
}

export interface TlsTap {
    port: number
    lines: TappedLine[]
    /** relayed connections still open */
    open(): number
    close(): Promise<void>
}

export async function startTlsTap(opts: { targetPort: number; certPath: string; keyPath: string; caCertPath: string }): Promise<TlsTap> {
    const lines: TappedLine[] = []
    const sockets = new Set<net.Socket>()
    let conns = 0
    let open = 0
    const record = (sock: net.Socket, dir: TappedLine["dir"], conn: number) => {
        let partial = ""
        sock.on("data", (d: Buffer) => {
            partial += d.toString("utf8")
            for (let nl; (nl = partial.indexOf("\n")) >= 0; partial = partial.slice(nl + 1)) {
                const text = partial.slice(0, nl)
                if (text.trim()) lines.push({ atMs: Date.now(), dir, conn, text })
            }
        })
    }
    const server = tls.createServer({ cert: readFileSync(opts.certPath), key: readFileSync(opts.keyPath) }, (device) => {
        const conn = ++conns
        open++
        const upstream = tls.connect({ host: "127.0.0.1", port: opts.targetPort, ca: readFileSync(opts.caCertPath), servername: "localhost" })
        for (const s of [device, upstream]) {
            sockets.add(s)
            s.on("error", () => {})
        }
        record(device, "up", conn)
        record(upstream, "down", conn)
        device.pipe(upstream)
        upstream.pipe(device)
        let ended = false
        const end = () => {
            if (ended) return
            ended = true
            open--
            device.destroy()
            upstream.destroy()
            sockets.delete(device)
            sockets.delete(upstream)
        }
        device.on("close", end)
        upstream.on("close", end)
    })
    server.on("tlsClientError", () => {}) // a handshake cut by the fault proxy
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    return {
        port: (server.address() as net.AddressInfo).port,
        lines,
        open: () => open,
        close: async () => {
            for (const s of sockets) s.destroy()
            await new Promise<void>((resolve) => server.close(() => resolve()))
        },
    }
}

/**
 * The values of datastream `stream` in the writes the server acknowledged (status 200) in `lines`: a
 * write is matched to its acknowledgement by connection and token.
 */
export function acknowledgedValues(lines: TappedLine[], stream: string): Set<string> {
    const written = new Map<string, string[]>()
    const acked = new Set<string>()
    // through the shared decoders, which read the long form and the short one [P§5a]
    for (const l of lines) {
        if (l.dir === "up") {
            const req = decodeRequest(l.text).request
            if (req?.method !== "put" || req.token === undefined) continue
            const values: string[] = []
            for (const ds of req.body?.datastreams ?? []) if (ds.id === stream) for (const p of ds.datapoints ?? []) values.push(String(p.value))
            written.set(`${l.conn}/${req.token}`, values)
        } else {
            const r = decodeServerLine(l.text).response
            const key = `${l.conn}/${r?.token}`
            if (r?.status !== 200 || r.token === undefined || !written.has(key)) continue
            for (const v of written.get(key)!) acked.add(v)
            written.delete(key)
        }
    }
    return acked
}
