// Protocol v1 golden vectors, Node side. The DeviceScript twin is test/firmware/protocol.test.ts.
import { test } from "node:test"
import assert from "node:assert/strict"
import { decodeRequest, decodeServerLine, encode, encodeByHand, encodeRequest, encodeResponse, encodeShortRequest, isNotice, normalizeResource, pushIsFor, quote, trimResource } from "../../../src/protocol.ts"
import { ENCODE_VECTORS, ONE_VALUE_UPDATE, ONE_VALUE_UPDATE_LINE, ONE_VALUE_UPDATE_SHORT_LINE, REQUEST_VECTORS, SERVER_LINE_VECTORS } from "../../vectors/envelope.ts"

for (const v of REQUEST_VECTORS) {
    test(`request vector: ${v.name}`, () => {
        const d = decodeRequest(v.input)
        if (v.error) {
            assert.equal(d.request, undefined)
            assert.equal(d.error?.code, v.error)
            assert.ok(d.error!.status >= 400 && d.error!.status < 500, "errors are 4xx")
            assert.ok(d.error!.reason.length > 10, "errors carry a reason a person can act on")
            assert.equal(d.error!.token, v.errorToken)
            // [P§5a] an error about a short-form request is answered in the short form
            assert.equal(d.error!.short, v.errorShort)
        } else {
            assert.equal(d.error, undefined, d.error?.reason)
            assert.equal(d.request!.short ? encodeShortRequest(d.request!) : encodeRequest(d.request!), v.expect)
        }
        // the server's shortcut for text decoded from bytes decides the same (escaped lone surrogates included)
        if ((v.input as string & { isWellFormed(): boolean }).isWellFormed()) assert.deepEqual(decodeRequest(v.input, true), d)
    })
}

for (const v of SERVER_LINE_VECTORS) {
    test(`server line vector: ${v.name}`, () => {
        const d = decodeServerLine(v.input)
        assert.equal(d.kind, v.kind)
        if (v.expect) assert.equal(encodeResponse(d.response!), v.expect)
        if (v.notice !== undefined) assert.equal(isNotice(d.response!), v.notice)
    })
}

test("encode agrees with JSON.stringify on ASCII data and escapes the rest", () => {
    const samples = [null, true, 0, -1.5, 1732250000000, "a\"b\\c\n\t", [1, "x", null], { a: { b: [] }, c: "d" }]
    for (const s of samples) assert.equal(encode(s), JSON.stringify(s))
    assert.equal(quote("é😀\u0001"), '"\\u00e9\\ud83d\\ude00\\u0001"')
    assert.equal(JSON.parse(quote("é😀\u0001")), "é😀\u0001")
    assert.equal(encode({ a: undefined, b: NaN, c: Infinity }), '{"b":null,"c":null}')
})

for (const v of ENCODE_VECTORS) {
    test(`encode vector: ${v.name}`, () => {
        assert.equal(encode(v.value), v.expect)
        assert.equal(encodeByHand(v.value), v.expect)
        if (v.native) assert.equal(JSON.stringify(v.value), v.expect)
    })
}

test("a one-datastream update encodes to one compact line", () => {
    const line = encodeRequest(ONE_VALUE_UPDATE as any)
    assert.equal(line, ONE_VALUE_UPDATE_LINE)
    assert.ok(!line.includes("\n"))
    console.log(`# one-value update: ${Buffer.byteLength(line) + 1} bytes on the wire (with its newline)`)
    const short = encodeShortRequest(ONE_VALUE_UPDATE as any)
    assert.equal(short, ONE_VALUE_UPDATE_SHORT_LINE)
    console.log(`# in the short form [P§5a]: ${Buffer.byteLength(short) + 1} bytes`)
})

test("[P§8] pushIsFor: a push is a subscription's when it names its resource, one under it, one above it (a feed's deletion) or none", () => {
    const cases: [string, string | undefined, boolean][] = [
        ["/feeds/1/datastreams/t", "/feeds/1/datastreams/t", true],
        ["/feeds/1/datastreams/t", undefined, true],
        ["/feeds/1", "/feeds/1/datastreams/t", true],
        ["/feeds/1/datastreams/t", "/feeds/1", true],
        ["/", "/feeds/5/datastreams/x", true],
        ["/feeds/1/datastreams/t", "/feeds/99/datastreams/t", false],
        ["/feeds/1", "/feeds/10/datastreams/t", false],
        ["/feeds/1/datastreams/t", "/feeds/1/datastreams/tt", false],
        ["/feeds/1/datastreams/t", "/feeds/1/datastreams/u", false],
        ["/feeds/10", "/feeds/1", false],
    ]
    for (const [subscribed, named, expected] of cases) assert.equal(pushIsFor(subscribed, named), expected, `${subscribed} <- ${named}`)
})

test("[P§5] trimResource: what normalizeResource changes in a valid path (the firmware's subscriptions make only this)", () => {
    const cases: [string, string][] = [
        ["/feeds/7/datastreams/led/", "/feeds/7/datastreams/led"],
        ["/feeds/7/datastreams/led.json", "/feeds/7/datastreams/led"],
        ["/feeds/7/datastreams/led.json/", "/feeds/7/datastreams/led"],
        ["/feeds/7/datastreams/led", "/feeds/7/datastreams/led"],
        ["/feeds/7/", "/feeds/7"],
        ["/", "/"],
        ["/a", "/a"],
    ]
    for (const [written, normal] of cases) {
        assert.equal(trimResource(written), normal, written)
        assert.equal(normalizeResource(written), normal, written)
    }
})
