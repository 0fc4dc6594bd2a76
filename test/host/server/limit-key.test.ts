// limitKeyOf (devs/server/limit-key.ts), the one name every per-address limit keys a client on: an IPv6
// /64 is one budget however its addresses are spelled, an IPv4 client is its IPv4 address whether it came
// in on an IPv4 or a dual-stack listener, and IPv4 clients never share a budget.
import assert from "node:assert/strict"
import net from "node:net"
import { test } from "node:test"
import fc from "fast-check"
import { limitKeyOf } from "../../../devs/server/limit-key.ts"

const hextet = fc.integer({ min: 0, max: 0xffff })
/** a /64 prefix outside ::/64 (whose ::ffff:0:0/96 is IPv4, below) */
const prefix = fc.tuple(hextet, hextet, hextet, hextet).filter((p) => p.some((h) => h !== 0))
const interfaceId = fc.tuple(hextet, hextet, hextet, hextet)

/** one of the spellings of the address with these eight groups: zero-padded or not, either case, "::" or not, a dotted tail or not */
const spelling = (groups: number[]) =>
    fc.record({ pad: fc.boolean(), upper: fc.boolean(), compress: fc.boolean(), dotted: fc.boolean() }).map(({ pad, upper, compress, dotted }) => {
        const hex = groups.map((g) => (pad ? g.toString(16).padStart(4, "0") : g.toString(16)))
        if (dotted) hex.splice(6, 2, `${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.${groups[7] & 0xff}`)
        let text = hex.join(":")
        if (compress) text = new net.SocketAddress({ address: text, family: "ipv6" }).address
        text = upper ? text.toUpperCase() : text
        assert.ok(net.isIPv6(text), text)
        return text
    })

const addressIn = (p: number[]) => interfaceId.chain((i) => spelling([...p, ...i]))

test("any two addresses of one /64, however spelled, share a key; addresses of two /64s do not", () => {
    fc.assert(
        fc.property(
            prefix.chain((p) => fc.tuple(fc.constant(p), addressIn(p), addressIn(p))),
            ([p, a, b]) => {
                assert.equal(limitKeyOf(a), limitKeyOf(b), `${a} and ${b}`)
                assert.equal(limitKeyOf(a), `${p.map((h) => h.toString(16)).join(":")}::/64`)
            },
        ),
    )
    fc.assert(
        fc.property(
            fc.tuple(prefix, prefix).filter(([p, q]) => p.join() !== q.join()).chain(([p, q]) => fc.tuple(addressIn(p), addressIn(q))),
            ([a, b]) => assert.notEqual(limitKeyOf(a), limitKeyOf(b), `${a} and ${b}`),
        ),
    )
})

test("an IPv4-mapped address is its IPv4 address, however spelled; different IPv4 addresses differ, mapped or not", () => {
    const v4 = fc.ipV4()
    const mapped = (a: string) => {
        const [w, x, y, z] = a.split(".").map(Number)
        return spelling([0, 0, 0, 0, 0, 0xffff, (w << 8) | x, (y << 8) | z])
    }
    fc.assert(
        fc.property(
            v4.chain((a) => fc.tuple(fc.constant(a), mapped(a))),
            ([a, m]) => {
                assert.equal(limitKeyOf(a), a)
                assert.equal(limitKeyOf(m), a, m)
            },
        ),
    )
    fc.assert(
        fc.property(
            fc.tuple(v4, v4).filter(([a, b]) => a !== b).chain(([a, b]) => fc.tuple(fc.constant(a), mapped(a), fc.constant(b), mapped(b))),
            ([a, ma, b, mb]) => {
                for (const x of [a, ma]) for (const y of [b, mb]) assert.notEqual(limitKeyOf(x), limitKeyOf(y), `${x} and ${y}`)
            },
        ),
    )
})

test("examples: a zone is the server's, not the client's; what is no IP address is its own key", () => {
    assert.equal(limitKeyOf("2001:db8::1"), "2001:db8:0:0::/64")
    assert.equal(limitKeyOf("2001:DB8:0:0:ffff:ffff:ffff:ffff"), "2001:db8:0:0::/64")
    assert.equal(limitKeyOf("2001:db8:0:1::1"), "2001:db8:0:1::/64")
    assert.equal(limitKeyOf("::ffff:192.0.2.7"), "192.0.2.7")
    assert.equal(limitKeyOf("::ffff:c000:207"), "192.0.2.7")
    assert.notEqual(limitKeyOf("::ffff:192.0.2.7"), limitKeyOf("::ffff:192.0.2.8"))
    assert.equal(limitKeyOf("fe80::1%eth0"), limitKeyOf("fe80::2%eth1"))
    assert.equal(limitKeyOf("fe80::1%eth0"), "fe80:0:0:0::/64")
    assert.equal(limitKeyOf("?"), "?")
    assert.equal(limitKeyOf("duplex"), "duplex")
})
