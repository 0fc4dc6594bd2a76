// TLS client sockets over a plain TCP socket we own, so the raw byte counters include TLS records.
import net from "node:net"
import tls from "node:tls"
import { readFileSync } from "node:fs"
import type { WireBytes } from "./types.ts"

/** Handshake plus first reply must fit in this; a target slower than that under load counts as a failed open. */
export const OPEN_TIMEOUT_MS = 30_000

const caCache = new Map<string, Buffer>()
function caOf(path: string): Buffer {
    let ca = caCache.get(path)
    if (!ca) caCache.set(path, (ca = readFileSync(path)))
    return ca
}

export interface CountedTls {
    raw: net.Socket
    tls: tls.TLSSocket
    bytes(): WireBytes
}

/** Starts a TLS connection; writes before the handshake completes are queued by Node. */
export function connectCountedTls(host: string, port: number, caPath: string): CountedTls {
    const raw = net.connect({ host, port, noDelay: true })
    const socket = tls.connect({ socket: raw, ca: caOf(caPath), servername: host === "127.0.0.1" ? undefined : host })
    return { raw, tls: socket, bytes: () => ({ read: raw.bytesRead, written: raw.bytesWritten }) }
}

/** Rejects after `ms` with a message naming what was being waited for. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout
    const t = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
    })
    return Promise.race([p, t]).finally(() => clearTimeout(timer))
}
