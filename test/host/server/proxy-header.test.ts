// The PROXY protocol header parser (devs/server/listeners/proxy-header.ts): what HAProxy sends (v1 text,
// v2 binary with TLVs, v2 LOCAL health checks) is read exactly, however it is cut into chunks; what the
// spec calls malformed is refused with E_PROXY_HEADER_BAD, anything else than a header with
// E_PROXY_HEADER_MISSING; and for any bytes at all it never throws, never waits past its bound, and never
// changes its mind when more bytes come. Seeded like the other fuzz tests (FUZZ_SEED, FUZZ_RUNS).
import assert from "node:assert/strict"
import net from "node:net"
import { describe, test } from "node:test"
import fc from "fast-check"
import { MAX_PROXY_HEADER_BYTES } from "../../../devs/server/limits.ts"
import { looksLikeProxyHeader, MAX_PROXY_V1_BYTES, parseProxyHeader, type ProxyHeaderStep } from "../../../devs/server/listeners/proxy-header.ts"
import { FUZZ_SEED, fuzzOptions } from "../protocol/envelope-arbitraries.ts"
import { proxyV1, proxyV2, proxyV2Local, tlv, V2_SIGNATURE } from "./proxy-headers.ts"

console.log(`# PROXY header fuzz seed ${FUZZ_SEED} (replay: FUZZ_SEED=${FUZZ_SEED} npm run fuzz)`)

const text = (s: string) => Buffer.from(s, "latin1")
const TLS_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01])

function codeOf(step: ProxyHeaderStep): string | undefined {
    return "error" in step ? step.error.code : undefined
}

describe("version 1", () => {
    test("TCP4 and TCP6: the source address and port, the header's length; what follows is the connection's", () => {
        const header = proxyV1("192.168.0.1", 56324, "192.168.0.11", 443)
        const step = parseProxyHeader(Buffer.concat([header, text("GET / HTTP/1.1\r\n")]))
        assert.deepEqual(step, { length: header.length, version: 1, peer: { address: "192.168.0.1", port: 56324, family: "IPv4" } })
        // IPv6 as Node shows a peer's: compressed, lower case (so one client is one key for the limits)
        const six = text("PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 65535 7443\r\n")
        assert.deepEqual(parseProxyHeader(six), { length: six.length, version: 1, peer: { address: "2001:db8::1", port: 65535, family: "IPv6" } })
        const mapped = text("PROXY TCP6 ::FFFF:10.0.0.1 ::1 0 7443\r\n")
        assert.deepEqual(parseProxyHeader(mapped), { length: mapped.length, version: 1, peer: { address: "::ffff:10.0.0.1", port: 0, family: "IPv6" } })
    })

    test("UNKNOWN, short or with anything after it: accepted, the real endpoints stand", () => {
        for (const line of ["PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n", "PROXY UNKNOWN whatever\r\n"]) {
            const step = parseProxyHeader(text(line + "rest"))
            assert.ok("length" in step && step.length === line.length && step.peer === undefined, line)
        }
    })

    test("the longest line (107 bytes) is read; one byte more without CRLF is refused", () => {
        const longest = text(`PROXY UNKNOWN ${"ffff:".repeat(7)}ffff ${"ffff:".repeat(7)}ffff 65535 65535\r\n`)
        assert.equal(longest.length, MAX_PROXY_V1_BYTES)
        assert.equal((parseProxyHeader(longest) as { length: number }).length, 107)
        const tooLong = text(`PROXY UNKNOWN ${"x".repeat(100)}\r\n`)
        assert.equal(codeOf(parseProxyHeader(tooLong)), "E_PROXY_HEADER_BAD")
        assert.ok("incomplete" in parseProxyHeader(tooLong.subarray(0, 105)))
    })

    test("anything that does not match the spec exactly is E_PROXY_HEADER_BAD", () => {
        for (const line of [
            "PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", // leading zero (octal?)
            "PROXY TCP4 1.2.3.4 1.2.3.4 080 2\r\n",
            "PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
            "PROXY TCP4 256.2.3.4 1.2.3.4 1 2\r\n",
            "PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n", // two spaces
            "PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n",
            "PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
            "PROXY TCP4 ::1 ::1 1 2\r\n", // the family dictates the format
            "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
            "PROXY TCP6 [::1] ::1 1 2\r\n",
            "PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
            "PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n",
            "PROXY \r\n",
            "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", // a bare LF
            "PROXY TCP4 1.2.3.4\r1.2.3.4 1 2\r\n", // a CR alone
            "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\t\r\n",
            "PROXY TCP4 1.2.3.4 1.2.3.4 1 \u00e92\r\n",
        ]) {
            assert.equal(codeOf(parseProxyHeader(text(line))), "E_PROXY_HEADER_BAD", JSON.stringify(line))
        }
    })
})

describe("version 2", () => {
    test("TCP over IPv4 and IPv6, with TLVs after the addresses (skipped): the source address and port", () => {
        const tlvs = Buffer.concat([tlv(0x01, text("h2")), tlv(0x02, text("feeds.example.com")), tlv(0x05, Buffer.alloc(32, 7))])
        const four = proxyV2("10.1.2.3", 40001, { extra: tlvs })
        assert.deepEqual(parseProxyHeader(Buffer.concat([four, TLS_HELLO])), { length: four.length, version: 2, peer: { address: "10.1.2.3", port: 40001, family: "IPv4" } })
        const six = proxyV2("2001:db8:0:0:0:0:0:ff", 1)
        assert.deepEqual(parseProxyHeader(six), { length: six.length, version: 2, peer: { address: "2001:db8::ff", port: 1, family: "IPv6" } })
    })

    test("LOCAL (HAProxy's health checks): accepted whatever its family and length say; the real endpoints stand", () => {
        for (const header of [proxyV2Local(), proxyV2Local(tlv(0x04, Buffer.alloc(5))), proxyV2("10.0.0.1", 5, { command: 0 })]) {
            const step = parseProxyHeader(Buffer.concat([header, TLS_HELLO]))
            assert.ok("length" in step && step.length === header.length && step.peer === undefined && step.why === "v2 LOCAL", JSON.stringify(step))
        }
    })

    test("PROXY over UNSPEC, UDP or UNIX: accepted without an address (the spec's fallback); the real endpoints stand", () => {
        for (const familyByte of [0x00, 0x12, 0x22, 0x31, 0x32, 0x10, 0x01]) {
            const header = proxyV2("10.0.0.1", 5, { familyByte })
            const step = parseProxyHeader(header)
            assert.ok("length" in step && step.length === header.length && step.peer === undefined, familyByte.toString(16))
        }
    })

    test("a wrong version, command, family or transport, too few address bytes, or a header over the bound: E_PROXY_HEADER_BAD", () => {
        const good = proxyV2("10.0.0.1", 5)
        const patched = (at: number, value: number) => {
            const b = Buffer.from(good)
            b[at] = value
            return b
        }
        for (const [what, bytes] of [
            ["version 1", patched(12, 0x11)],
            ["version 3", patched(12, 0x31)],
            ["command 2", patched(12, 0x22)],
            ["family 4", patched(13, 0x41)],
            ["transport 3", patched(13, 0x13)],
            ["8 address bytes for TCP4", Buffer.concat([good.subarray(0, 14), Buffer.from([0, 8]), good.subarray(16, 24)])],
            ["30 address bytes for TCP6", Buffer.concat([good.subarray(0, 13), Buffer.from([0x21, 0, 30]), Buffer.alloc(30)])],
        ] as const) {
            assert.equal(codeOf(parseProxyHeader(bytes)), "E_PROXY_HEADER_BAD", what)
        }
        // known too long from its first 16 bytes: nothing more is waited for
        const huge = Buffer.concat([good.subarray(0, 14), Buffer.from([0xff, 0xff])])
        assert.equal(codeOf(parseProxyHeader(huge)), "E_PROXY_HEADER_BAD")
        const atBound = proxyV2("10.0.0.1", 5, { extra: tlv(0x04, Buffer.alloc(MAX_PROXY_HEADER_BYTES - 16 - 12 - 3)) })
        assert.equal(atBound.length, MAX_PROXY_HEADER_BYTES)
        assert.equal((parseProxyHeader(atBound) as { length: number }).length, MAX_PROXY_HEADER_BYTES)
        const overBound = proxyV2("10.0.0.1", 5, { extra: tlv(0x04, Buffer.alloc(MAX_PROXY_HEADER_BYTES - 16 - 12 - 2)) })
        assert.equal(codeOf(parseProxyHeader(overBound.subarray(0, 16))), "E_PROXY_HEADER_BAD")
    })
})

test("a connection that does not start with a header: E_PROXY_HEADER_MISSING, saying what it was", () => {
    const hello = parseProxyHeader(TLS_HELLO)
    assert.equal(codeOf(hello), "E_PROXY_HEADER_MISSING")
    assert.match((hello as { error: { reason: string } }).error.reason, /TLS handshake.*send-proxy-v2/)
    for (const start of ["GET / HTTP/1.1\r\n", "POST /v2", "PROXZ", "proxy TCP4", "PROXY\r\n", "\r\n\r\n\x00\r\nQUIZ\n"]) {
        assert.equal(codeOf(parseProxyHeader(text(start))), "E_PROXY_HEADER_MISSING", JSON.stringify(start))
    }
    // a start that may still become one waits
    for (const start of ["P", "PROX", "PROXY", "\r\n\r\n\x00"]) assert.ok("incomplete" in parseProxyHeader(text(start)), JSON.stringify(start))
})

test("looksLikeProxyHeader: the v1 word and its space, or the whole v2 signature", () => {
    assert.ok(looksLikeProxyHeader(proxyV1("1.2.3.4", 5)))
    assert.ok(looksLikeProxyHeader(proxyV2Local()))
    assert.ok(looksLikeProxyHeader(V2_SIGNATURE))
    for (const other of [TLS_HELLO, text("POST / HTTP/1.1"), text("PROXY"), V2_SIGNATURE.subarray(0, 11), Buffer.alloc(0)]) assert.ok(!looksLikeProxyHeader(other))
})

// ---- properties ----

const ipv4Arb = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join("."))
/** any 128 bits, written in full (the server shows them as Node does: compressed) */
const ipv6Arb = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(":"))
const canonical6 = (a: string) => new net.SocketAddress({ address: a, family: "ipv6" }).address
const tlvsArb = fc.array(fc.tuple(fc.nat(255), fc.uint8Array({ maxLength: 80 })), { maxLength: 5 }).map((ts) => Buffer.concat(ts.map(([t, v]) => tlv(t, Buffer.from(v)))))

/** a header HAProxy could send, the peer it announces, and the connection's bytes after it */
const headerArb = fc
    .record({
        version: fc.constantFrom(1, 2),
        six: fc.boolean(),
        four: ipv4Arb,
        sixAddress: ipv6Arb,
        upper: fc.boolean(),
        port: fc.nat(65535),
        tlvs: tlvsArb,
        after: fc.uint8Array({ maxLength: 64 }),
    })
    .map(({ version, six, four, sixAddress, upper, port, tlvs, after }) => {
        const address = six ? canonical6(sixAddress) : four
        const written = six ? (version === 1 ? (upper ? sixAddress.toUpperCase() : canonical6(sixAddress)) : sixAddress) : four
        const header = version === 1 ? proxyV1(written, port) : proxyV2(written, port, { extra: tlvs })
        return { header, after: Buffer.from(after), peer: { address, port, family: six ? "IPv6" : "IPv4" } }
    })

function feedInChunks(bytes: Buffer, cuts: number[]): ProxyHeaderStep {
    // as the front does: the bytes so far, parsed again at each chunk, until a decision
    let at = 0
    for (let i = 0; ; i++) {
        at = Math.min(bytes.length, at + cuts[i % cuts.length])
        const step = parseProxyHeader(bytes.subarray(0, at))
        if (!("incomplete" in step) || at === bytes.length) return step
    }
}

test("property: a header as HAProxy sends it, cut anywhere, announces its peer; what follows it is left alone", () => {
    fc.assert(
        fc.property(headerArb, fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 6 }), ({ header, after, peer }, cuts) => {
            const bytes = Buffer.concat([header, after])
            for (let n = 0; n < header.length; n++) assert.ok("incomplete" in parseProxyHeader(bytes.subarray(0, n)), `prefix of ${n}`)
            const step = feedInChunks(bytes, cuts)
            assert.deepEqual(step, { length: header.length, version: header[0] === 0x50 ? 1 : 2, peer })
        }),
        fuzzOptions(500),
    )
})

/** bytes that start like a header more often than chance: hostile and broken ones */
const hostileArb = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc.tuple(fc.constantFrom("PROXY ", "PROXY TCP4 ", "PROXY TCP6 ", "PROXY UNKNOWN"), fc.uint8Array({ maxLength: 200 })).map(([p, b]) => Buffer.concat([text(p), Buffer.from(b)])),
    fc.tuple(fc.uint8Array({ maxLength: 4 }), fc.uint8Array({ maxLength: 200 })).map(([h, b]) => Buffer.concat([V2_SIGNATURE, Buffer.from(h), Buffer.from(b)])),
    // a valid header with bytes changed
    fc.tuple(headerArb, fc.array(fc.tuple(fc.nat(200), fc.nat(255)), { minLength: 1, maxLength: 4 })).map(([{ header, after }, edits]) => {
        const b = Buffer.concat([header, after])
        for (const [at, value] of edits) b[at % b.length] = value
        return b
    }),
)

test("property: any bytes: no throw, incomplete only under the bound, a decision never changes with more bytes", () => {
    fc.assert(
        fc.property(hostileArb, fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes, more) => {
            const step = parseProxyHeader(bytes)
            if ("incomplete" in step) {
                // a socket waiting for its header holds less than this
                assert.ok(bytes.length < MAX_PROXY_HEADER_BYTES)
                if (bytes[0] === 0x50) assert.ok(bytes.length < MAX_PROXY_V1_BYTES)
                return
            }
            if ("length" in step) assert.ok(step.length >= 15 && step.length <= bytes.length && step.length <= MAX_PROXY_HEADER_BYTES)
            else assert.match(step.error.code, /^E_PROXY_HEADER_(BAD|MISSING)$/)
            assert.deepEqual(parseProxyHeader(Buffer.concat([bytes, Buffer.from(more)])), step)
        }),
        fuzzOptions(2000),
    )
})

test("property: a stream of any length never makes the parser wait past MAX_PROXY_HEADER_BYTES", () => {
    fc.assert(
        fc.property(fc.constantFrom(text("PROXY "), V2_SIGNATURE, Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11])])), fc.nat(255), (start, fill) => {
            const bytes = Buffer.concat([start, Buffer.alloc(MAX_PROXY_HEADER_BYTES, fill)])
            assert.ok(!("incomplete" in parseProxyHeader(bytes)))
        }),
        fuzzOptions(200),
    )
})
