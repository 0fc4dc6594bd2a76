// Which budget a client address spends: every per-address limit (connections, unauthenticated ones,
// pending handshakes, HTTP connections and requests, failed keys and the keys proven past their lockout,
// claims, POST /jwt) keys on limitKeyOf(address), never on the address itself. An IPv6 host gets a /64
// from its ISP (often more) and may pick any address in it for each connection, so keyed on its full
// address it had ~2^64 budgets; an IPv6 /64 counts as one address, like a NAT'd office. IPv4 clients on a
// dual-stack listener (`--host ::`) appear as IPv4-mapped addresses (::ffff:1.2.3.4): each is its IPv4
// address, the same as on an IPv4 listener, and they do not share one /64 (::ffff:0:0/96 is all of IPv4).
// Logs and /v2/sessions show the full address; only the limits use the key.
import net from "node:net"

/** The per-address limits' name for `address` (a socket's or a trusted proxy's announced remoteAddress). */
export function limitKeyOf(address: string): string {
    if (net.isIPv4(address)) return address
    // a zone (fe80::1%eth0) names the server's interface, not the client: one link is one budget
    const zoneless = address.includes("%") ? address.slice(0, address.indexOf("%")) : address
    // anything else ("?" for a socket that closed before it was read, a Duplex's label): as it is
    if (!net.isIPv6(zoneless)) return address
    const h = hextetsOf(zoneless)
    if (h[0] === 0 && h[1] === 0 && h[2] === 0 && h[3] === 0 && h[4] === 0 && h[5] === 0xffff) {
        return `${h[6] >> 8}.${h[6] & 0xff}.${h[7] >> 8}.${h[7] & 0xff}`
    }
    // one spelling per /64 whatever the address's (case, zeros, "::", an embedded dotted quad)
    return `${h[0].toString(16)}:${h[1].toString(16)}:${h[2].toString(16)}:${h[3].toString(16)}::/64`
}

/** The eight 16-bit groups of a valid IPv6 address (net.isIPv6), "::" expanded, a trailing dotted quad as two groups. */
function hextetsOf(address: string): number[] {
    const groupsOf = (part: string): number[] => {
        if (part === "") return []
        return part.split(":").flatMap((g) => {
            if (!g.includes(".")) return [parseInt(g, 16)]
            const [a, b, c, d] = g.split(".").map(Number)
            return [(a << 8) | b, (c << 8) | d]
        })
    }
    const gap = address.indexOf("::")
    if (gap < 0) return groupsOf(address)
    const head = groupsOf(address.slice(0, gap))
    const tail = groupsOf(address.slice(gap + 2))
    return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
}
