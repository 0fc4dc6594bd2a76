// PROXY protocol headers as HAProxy sends them (haproxy doc/proxy-protocol.txt), written here from the
// spec and not with the server's parser, for the parser's tests and for "proxies" in the server's tests.
import net from "node:net"

export const V2_SIGNATURE = Buffer.from("0d0a0d0a000d0a515549540a", "hex")

/** version 1: "PROXY TCP4|TCP6 <source> <destination> <source port> <destination port>\r\n" */
export function proxyV1(source: string, sourcePort: number, destination = net.isIPv6(source) ? "::1" : "127.0.0.1", destinationPort = 443): Buffer {
    return Buffer.from(`PROXY ${net.isIPv6(source) ? "TCP6" : "TCP4"} ${source} ${destination} ${sourcePort} ${destinationPort}\r\n`, "latin1")
}

function addressBytes(address: string): Buffer {
    if (net.isIPv4(address)) return Buffer.from(address.split(".").map(Number))
    // expand "::" then write the eight groups
    const [head, tail] = address.includes("::") ? address.split("::") : [address, undefined]
    const h = head ? head.split(":") : []
    const t = tail === undefined ? [] : tail ? tail.split(":") : []
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t]
    const out = Buffer.alloc(16)
    groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 2 * i))
    return out
}

export interface V2Options {
    /** 0 LOCAL, 1 PROXY (default) */
    command?: number
    /** the family/transport byte: default 0x11 (TCP over IPv4) or 0x21 (TCP over IPv6) by the source */
    familyByte?: number
    /** TLVs or padding after the addresses */
    extra?: Buffer
    destination?: string
    destinationPort?: number
}

/** version 2, binary: signature, version 2 and command, family, length, addresses, ports, then `extra` */
export function proxyV2(source: string, sourcePort: number, o: V2Options = {}): Buffer {
    const six = net.isIPv6(source)
    const destination = o.destination ?? (six ? "::1" : "127.0.0.1")
    const ports = Buffer.alloc(4)
    ports.writeUInt16BE(sourcePort, 0)
    ports.writeUInt16BE(o.destinationPort ?? 443, 2)
    const body = Buffer.concat([addressBytes(source), addressBytes(destination), ports, o.extra ?? Buffer.alloc(0)])
    const fixed = Buffer.alloc(4)
    fixed[0] = 0x20 | (o.command ?? 1)
    fixed[1] = o.familyByte ?? (six ? 0x21 : 0x11)
    fixed.writeUInt16BE(body.length, 2)
    return Buffer.concat([V2_SIGNATURE, fixed, body])
}

/** HAProxy's health check with send-proxy-v2 + check-send-proxy: a LOCAL command, no addresses */
export function proxyV2Local(extra: Buffer = Buffer.alloc(0)): Buffer {
    const fixed = Buffer.from([0x20, 0x00, 0, 0])
    fixed.writeUInt16BE(extra.length, 2)
    return Buffer.concat([V2_SIGNATURE, fixed, extra])
}

/** a TLV (type, 16-bit length, value), as HAProxy adds after the addresses */
export function tlv(type: number, value: Buffer): Buffer {
    const head = Buffer.from([type, 0, 0])
    head.writeUInt16BE(value.length, 1)
    return Buffer.concat([head, value])
}
