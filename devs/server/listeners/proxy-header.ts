// The PROXY protocol header a trusted proxy (HAProxy's `send-proxy` / `send-proxy-v2`) puts before a
// connection's own bytes, as haproxy's doc/proxy-protocol.txt specifies it: version 1, one line of text,
// and version 2, binary. Pure: bytes in, a decision out; the listener (proxy-front.ts) owns the socket,
// the deadline and the trust. Strict where the spec is ("any sequence which does not exactly match the
// protocol must be discarded"), bounded always: a buffer of MAX_PROXY_HEADER_BYTES or more is never
// "incomplete".
import net from "node:net"
import { MAX_PROXY_HEADER_BYTES } from "../limits.ts"

/** The 12 bytes every version 2 header starts with (a NUL at the 5th: never handle it as a C string). */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
const V1_PREFIX = Buffer.from("PROXY ", "latin1")
/** [spec §2.1] the longest version 1 line, CRLF included */
export const MAX_PROXY_V1_BYTES = 107
const V2_FIXED_BYTES = 16

/** The client's end of the connection, as the proxy announced it. */
export interface AnnouncedPeer {
    address: string
    port: number
    family: "IPv4" | "IPv6"
}

export type ProxyHeaderCode = "E_PROXY_HEADER_MISSING" | "E_PROXY_HEADER_BAD"

/**
 * What the first bytes of a trusted proxy's connection hold: not enough yet; a whole header of `length`
 * bytes (the connection's own bytes follow it), whose `peer` stands for the connection, or none: a v2
 * LOCAL (the proxy's own health check), v1 UNKNOWN, or a family we do not read (the spec: use the real
 * endpoints then); or an error (close the connection).
 */
export type ProxyHeaderStep =
    | { incomplete: true }
    | { length: number; version: 1 | 2; peer?: AnnouncedPeer; why?: string }
    | { error: { code: ProxyHeaderCode; reason: string } }

function bad(reason: string): ProxyHeaderStep {
    return { error: { code: "E_PROXY_HEADER_BAD", reason } }
}

/** `buf` starts with as much of `prefix` as it holds */
function agreesWith(buf: Buffer, prefix: Buffer): boolean {
    const n = Math.min(buf.length, prefix.length)
    return buf.subarray(0, n).equals(prefix.subarray(0, n))
}

/**
 * A whole PROXY header, version 1 or 2, at the start of `buf`. Incomplete only while `buf` is shorter than
 * `maxBytes` (and than 107 bytes for version 1).
 */
export function parseProxyHeader(buf: Buffer, maxBytes = MAX_PROXY_HEADER_BYTES): ProxyHeaderStep {
    if (buf.length === 0) return { incomplete: true }
    if (buf[0] === V1_PREFIX[0]) {
        if (!agreesWith(buf, V1_PREFIX)) return missing(buf)
        return buf.length < V1_PREFIX.length ? { incomplete: true } : parseV1(buf)
    }
    if (buf[0] === PROXY_V2_SIGNATURE[0]) {
        if (!agreesWith(buf, PROXY_V2_SIGNATURE)) return missing(buf)
        return buf.length <= PROXY_V2_SIGNATURE.length ? { incomplete: true } : parseV2(buf, maxBytes)
    }
    return missing(buf)
}

function missing(buf: Buffer): ProxyHeaderStep {
    const what = buf[0] === 0x16 ? "a TLS handshake" : "bytes that are not one"
    return {
        error: {
            code: "E_PROXY_HEADER_MISSING",
            reason: `a trusted proxy's connection must start with a PROXY protocol header (v1 "PROXY ..." or v2); it started with ${what}: configure the proxy with send-proxy-v2 (or send-proxy), or remove its address from --trusted-proxies`,
        },
    }
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/
const PORT = /^(0|[1-9]\d{0,4})$/
/** hexadecimal groups and colons, with a dotted IPv4 tail at most; no zone (%eth0), no brackets */
const IPV6_CHARS = /^[0-9A-Fa-f:.]+$/

function portOf(text: string): number | undefined {
    if (!PORT.test(text)) return undefined
    const n = Number(text)
    return n <= 65535 ? n : undefined
}

/** The address as Node shows a peer's (IPv6 compressed and lower-case), so one client is one key for the limits. */
function canonicalIpv6(text: string): string | undefined {
    if (!IPV6_CHARS.test(text) || !net.isIPv6(text)) return undefined
    return new net.SocketAddress({ address: text, family: "ipv6" }).address
}

function parseV1(buf: Buffer): ProxyHeaderStep {
    // the line ends at the first CRLF, whose CR is at most at byte 105; a CR or LF alone before it is malformed
    const limit = Math.min(buf.length, MAX_PROXY_V1_BYTES - 1)
    let end = -1
    for (let i = V1_PREFIX.length; i < limit; i++) {
        const b = buf[i]
        if (b === 0x0d) {
            if (i + 1 >= buf.length) return { incomplete: true }
            if (buf[i + 1] !== 0x0a) return bad("a v1 PROXY line may hold a CR only in its closing CRLF")
            end = i
            break
        }
        if (b === 0x0a) return bad("a v1 PROXY line must end with CRLF, not a bare LF")
        if (b < 0x20 || b > 0x7e) return bad("a v1 PROXY line is printable US-ASCII")
    }
    if (end < 0) return buf.length >= MAX_PROXY_V1_BYTES - 1 ? bad(`no CRLF within the first ${MAX_PROXY_V1_BYTES} bytes of a v1 PROXY line`) : { incomplete: true }
    const length = end + 2
    const fields = buf.toString("latin1", 0, end).split(" ")
    // [spec] UNKNOWN: the rest of the line is ignored, and the real endpoints stand
    if (fields[1] === "UNKNOWN") return { length, version: 1, why: "v1 UNKNOWN" }
    if (fields[1] !== "TCP4" && fields[1] !== "TCP6") return bad(`a v1 PROXY line names TCP4, TCP6 or UNKNOWN, not ${JSON.stringify(fields[1].slice(0, 16))}`)
    if (fields.length !== 6) return bad("a v1 PROXY line is: PROXY TCP4|TCP6 <source> <destination> <source port> <destination port>, single spaces")
    const [, family, source, destination, sourcePort, destinationPort] = fields
    let address: string | undefined
    if (family === "TCP4") {
        if (!IPV4.test(source) || !IPV4.test(destination)) return bad("a v1 TCP4 line holds two IPv4 addresses in dotted decimal, without leading zeroes")
        address = source
    } else {
        address = canonicalIpv6(source)
        if (address === undefined || canonicalIpv6(destination) === undefined) return bad("a v1 TCP6 line holds two IPv6 addresses")
    }
    const port = portOf(sourcePort)
    if (port === undefined || portOf(destinationPort) === undefined) return bad("a v1 PROXY line's ports are decimal 0-65535, without leading zeroes")
    return { length, version: 1, peer: { address, port, family: family === "TCP4" ? "IPv4" : "IPv6" } }
}

function ipv6Of(bytes: Buffer): string {
    const groups: string[] = []
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16))
    return new net.SocketAddress({ address: groups.join(":"), family: "ipv6" }).address
}

function parseV2(buf: Buffer, maxBytes: number): ProxyHeaderStep {
    const versionCommand = buf[12]
    if (versionCommand >> 4 !== 2) return bad(`a v2 PROXY header's version is 2, not ${versionCommand >> 4}`)
    const command = versionCommand & 0x0f
    if (command > 1) return bad(`a v2 PROXY header's command is LOCAL (0) or PROXY (1), not ${command}`)
    if (buf.length < 14) return { incomplete: true }
    const family = buf[13] >> 4
    const transport = buf[13] & 0x0f
    if (family > 3) return bad(`a v2 PROXY header's address family is 0-3, not ${family}`)
    if (transport > 2) return bad(`a v2 PROXY header's transport is 0-2, not ${transport}`)
    if (buf.length < V2_FIXED_BYTES) return { incomplete: true }
    const length = V2_FIXED_BYTES + buf.readUInt16BE(14)
    if (length > maxBytes) return bad(`a v2 PROXY header of ${length} bytes is longer than the ${maxBytes} accepted`)
    if (buf.length < length) return { incomplete: true }
    // [spec] LOCAL: the proxy's own connection (a health check); the family is ignored, the real endpoints stand
    if (command === 0) return { length, version: 2, why: "v2 LOCAL" }
    const addressBytes = length - V2_FIXED_BYTES
    if (buf[13] === 0x11) {
        if (addressBytes < 12) return bad(`a v2 TCP over IPv4 header holds 12 address bytes, not ${addressBytes}`)
        const a = buf.subarray(16, 20)
        return { length, version: 2, peer: { address: `${a[0]}.${a[1]}.${a[2]}.${a[3]}`, port: buf.readUInt16BE(24), family: "IPv4" } }
    }
    if (buf[13] === 0x21) {
        if (addressBytes < 36) return bad(`a v2 TCP over IPv6 header holds 36 address bytes, not ${addressBytes}`)
        return { length, version: 2, peer: { address: ipv6Of(buf.subarray(16, 32)), port: buf.readUInt16BE(48), family: "IPv6" } }
    }
    // [spec] UNSPEC, UDP, UNIX: "falls back to the UNSPEC mode": the real endpoints stand
    return { length, version: 2, why: `v2 PROXY of family ${family}, transport ${transport} (not TCP): the proxy's own address stands` }
}

/**
 * Whether a connection's first bytes are a PROXY header (that start alone: "PROXY " or the whole v2
 * signature), to refuse it clearly when it comes from a peer that is not trusted to send one.
 */
export function looksLikeProxyHeader(first: Buffer): boolean {
    return (first.length >= V1_PREFIX.length && first.subarray(0, V1_PREFIX.length).equals(V1_PREFIX)) || (first.length >= PROXY_V2_SIGNATURE.length && first.subarray(0, PROXY_V2_SIGNATURE.length).equals(PROXY_V2_SIGNATURE))
}
