// Where the client connects: the TLS device port or the app port's WebSocket [P§1].
// Accepted forms, so people can paste what they have:
//   tls://host:7443     host:7443     (TLS device port; the default port is 7443)
//   ws://host:7080/ws   wss://host/ws (WebSocket; path defaults to /ws)
//   http://host:7080    https://host  (the app port: its WebSocket at /ws)

import { ClientError } from "./errors.ts"

export const DEFAULT_DEVICE_PORT = 7443
export const DEFAULT_APP_PORT = 7080

export interface ServerAddress {
    transport: "tls" | "ws"
    host: string
    port: number
    /** for ws: the full URL; for tls: tls://host:port */
    url: string
    /** the app port's HTTP base (REST and POST /jwt) when known from a ws/http address */
    httpBase?: string
}

export function parseAddress(text: string): ServerAddress {
    const bad = () =>
        new ClientError("E_USAGE", `cannot read server address "${text}"; use tls://host:7443, ws://host:7080/ws or http://host:7080`)
    let s = text.trim()
    if (!s) throw bad()
    if (!s.includes("://")) s = "tls://" + s
    let u: URL
    try {
        u = new URL(s)
    } catch {
        throw bad()
    }
    const host = u.hostname.replace(/^\[|\]$/g, "")
    if (!host) throw bad()
    switch (u.protocol) {
        case "tls:": {
            const port = u.port ? Number(u.port) : DEFAULT_DEVICE_PORT
            return { transport: "tls", host, port, url: `tls://${u.host.includes(":") ? u.host : u.host + ":" + port}` }
        }
        case "ws:":
        case "wss:":
        case "http:":
        case "https:": {
            const secure = u.protocol === "wss:" || u.protocol === "https:"
            // without a port: our app port for plain addresses, 443 for TLS-fronted ones (a reverse proxy)
            const port = u.port ? Number(u.port) : secure ? 443 : DEFAULT_APP_PORT
            const path = u.protocol.startsWith("http") || u.pathname === "/" || u.pathname === "" ? "/ws" : u.pathname
            const hostPort = `${u.hostname}:${port}`
            return {
                transport: "ws",
                host,
                port,
                url: `${secure ? "wss" : "ws"}://${hostPort}${path}`,
                httpBase: `${secure ? "https" : "http"}://${hostPort}`,
            }
        }
        default:
            throw bad()
    }
}
