// ObjectFramer [P§3]: the same stream cut into 1-byte, split and coalesced chunks yields the same objects.
import assert from "node:assert/strict"
import { test } from "node:test"
import { ObjectFramer, type FramerEvent } from "../../../devs/server/framer.ts"
import { REQUEST_VECTORS } from "../../vectors/envelope.ts"

const PRETTY = REQUEST_VECTORS[0].input // the Xively documentation's multi-line example
const COMPACT = '{"method":"get","resource":"/feeds/1","token":"a\\"}{"}'
const UTF8 = '{"method":"put","resource":"/feeds/1/datastreams/t","body":{"current_value":"café ℃ 😀"}}'
const STREAM = `${PRETTY}\n\n  ${COMPACT}${UTF8}\r\n`

function feedAll(chunks: Buffer[], framer = new ObjectFramer()): FramerEvent[] {
    return chunks.flatMap((c) => framer.feed(c))
}

function texts(events: FramerEvent[]): string[] {
    return events.map((e) => (e.kind === "object" ? e.text : e.kind))
}

const bytes = Buffer.from(STREAM, "utf8")
const expected = [PRETTY, COMPACT, UTF8]

test("framer: one chunk with three objects (coalesced)", () => {
    assert.deepEqual(texts(feedAll([bytes])), expected)
})

test("framer: one byte at a time, including inside multi-byte UTF-8 characters", () => {
    const chunks = [...bytes].map((b) => Buffer.from([b]))
    assert.deepEqual(texts(feedAll(chunks)), expected)
})

test("framer: every split point of the stream into two chunks", () => {
    for (let i = 0; i <= bytes.length; ++i) {
        assert.deepEqual(texts(feedAll([bytes.subarray(0, i), bytes.subarray(i)])), expected, `split at ${i}`)
    }
})

test("framer: the caller may reuse its chunk buffer", () => {
    const framer = new ObjectFramer()
    const buf = Buffer.alloc(8)
    const out: FramerEvent[] = []
    for (let i = 0; i < bytes.length; i += 8) {
        const n = bytes.copy(buf, 0, i, Math.min(i + 8, bytes.length))
        out.push(...framer.feed(buf.subarray(0, n)))
        buf.fill(0x21) // scribble over it
    }
    assert.deepEqual(texts(out), expected)
})

test("framer: a bad line is reported once and skipped to its end; the next line is read afresh (issue 11 item 14)", () => {
    const ev = feedAll([Buffer.from('hello world {"a":1} ] oops\n{"b":2} ] oops {"c":3}\nhelo\r\nget /feeds/1\n\n  {"d":4}')])
    assert.deepEqual(texts(ev), ["garbage", '{"b":2}', "garbage", "garbage", "garbage", '{"d":4}'])
    const reasons = ev.flatMap((e) => (e.kind === "garbage" ? [e.reason] : []))
    assert.match(reasons[0], /not a line starting with "h"; the rest of this line was skipped/)
    assert.match(reasons[1], /not a line starting with "\]"/)
    assert.match(reasons[3], /not a line starting with "g"/)
})

test("framer: a bad line's report does not depend on how the stream was cut", () => {
    const stream = Buffer.from('oops {"a":1}\n{"b":2}\n\xff\n')
    const whole = feedAll([stream])
    for (let i = 0; i <= stream.length; ++i) assert.deepEqual(feedAll([stream.subarray(0, i), stream.subarray(i)]), whole, `split at ${i}`)
    assert.match((whole[2] as { reason: string }).reason, /byte 0xc3|byte 0xff/)
})

test("framer: a raw newline inside a string breaks that object; its tail is a bad line; the next line is read afresh", () => {
    const ev = feedAll([Buffer.from('{"a":"x\n"}\n{"b":2}')])
    assert.deepEqual(texts(ev), ["garbage", "garbage", '{"b":2}'])
    assert.match((ev[0] as { reason: string }).reason, /ran past the end of its line/)
})

test("framer: an object that is not UTF-8 is cut as usual and marked (issue 11 item 8)", () => {
    const bad = Buffer.concat([Buffer.from('{"v":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}{"w":"\u00e9"}')])
    const ev = feedAll([bad])
    assert.deepEqual(ev.map((e) => e.kind === "object" && e.badUtf8 === true), [true, false])
    // a UTF-8-encoded surrogate (CESU-8) is not UTF-8 either
    assert.equal((feedAll([Buffer.concat([Buffer.from('{"v":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])])[0] as { badUtf8?: true }).badUtf8, true)
})

test("framer: a byte above 0x7f is seen wherever it sits (escaped, outside strings, in a later chunk), not only in plain string text", () => {
    // the ASCII path decodes without a UTF-8 check: every non-ASCII byte must send an object down the checked path
    for (const [before, after] of [['{"v":"\\', '"}'], ['{"v":', "}"], ['{"v":"x', '"}']]) {
        const bad = Buffer.concat([Buffer.from(before), Buffer.from([0xff]), Buffer.from(after)])
        for (let i = 0; i <= bad.length; ++i) {
            const ev = feedAll([bad.subarray(0, i), bad.subarray(i)])
            assert.equal(ev.length, 1, `${before} split at ${i}`)
            assert.equal(ev[0].kind === "object" && ev[0].badUtf8, true, `${before} split at ${i}`)
        }
    }
    // an ASCII object after a non-ASCII one is not marked
    const ev = feedAll([Buffer.concat([Buffer.from('{"v":"'), Buffer.from([0xff]), Buffer.from('"}{"a":1}')])])
    assert.deepEqual(ev[1], { kind: "object", text: '{"a":1}', bytes: 7 })
})

test("framer: an object over the limit is reported as soon as it passes it, then nothing more", () => {
    const framer = new ObjectFramer(64)
    const big = Buffer.from(`{"v":"${"x".repeat(100)}"}{"a":1}`)
    const ev = feedAll([big.subarray(0, 30), big.subarray(30, 70), big.subarray(70)], framer)
    assert.equal(ev.length, 1)
    assert.equal(ev[0].kind, "oversize")
    assert.deepEqual(framer.feed(Buffer.from('{"a":1}')), [])
})

test("framer: an object of exactly the limit passes; one byte more does not", () => {
    const exact = `{"v":"${"x".repeat(64 - 8)}"}`
    assert.equal(Buffer.byteLength(exact), 64)
    assert.deepEqual(texts(feedAll([Buffer.from(exact)], new ObjectFramer(64))), [exact])
    assert.equal(feedAll([Buffer.from(exact.replace("x", "xx"))], new ObjectFramer(64))[0].kind, "oversize")
})

test("framer: holds only the unfinished object's bytes", () => {
    const framer = new ObjectFramer()
    framer.feed(Buffer.from('{"a":1}{"b":'))
    assert.equal(framer.pendingBytes, 5)
})

test("framer (property): any objects, pretty or compact, cut anywhere, come out whole and in order", async () => {
    const fc = (await import("fast-check")).default
    const objects = fc.array(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })), { minLength: 1, maxLength: 5 })
    fc.assert(
        fc.property(objects, fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }), fc.boolean(), (objs, cuts, pretty) => {
            const text = objs.map((o) => (pretty ? JSON.stringify(o, null, 2) : JSON.stringify(o))).join(pretty ? "\n\n" : "")
            const bytes = Buffer.from(text, "utf8")
            const chunks: Buffer[] = []
            for (let at = 0, i = 0; at < bytes.length; ++i) {
                const n = cuts[i % cuts.length]
                chunks.push(bytes.subarray(at, at + n))
                at += n
            }
            const out = feedAll(chunks, new ObjectFramer(1 << 20))
            assert.deepEqual(
                out.map((e) => (e.kind === "object" ? JSON.parse(e.text) : e.kind)),
                objs.map((o) => JSON.parse(JSON.stringify(o))),
            )
        }),
        { numRuns: 300, seed: 20261122 },
    )
})

test("framer: a UTF-8 byte order mark at the start of the stream is skipped, however cut; a partial one, or one later, is a bad line as before", () => {
    const BOM = Buffer.from([0xef, 0xbb, 0xbf])
    const withBom = Buffer.concat([BOM, bytes])
    for (let i = 0; i <= withBom.length; ++i) {
        assert.deepEqual(texts(feedAll([withBom.subarray(0, i), withBom.subarray(i)])), expected, `split at ${i}`)
    }
    assert.deepEqual(texts(feedAll([...withBom].map((b) => Buffer.from([b])))), expected)
    const garbage = (stream: Buffer) => feedAll([...stream].map((b) => Buffer.from([b]))).map((e) => (e.kind === "garbage" ? e.reason : e.kind === "object" ? e.text : e.kind))
    const bad = "expected a JSON object starting with {, not a line starting with byte 0xef; the rest of this line was skipped"
    // two bytes of it, then the object on the same line: that line is bad, the next is read
    assert.deepEqual(garbage(Buffer.concat([BOM.subarray(0, 2), Buffer.from(`${COMPACT}\n${COMPACT}`)])), [bad, COMPACT])
    // after the first object, a BOM is what it always was: a bad line
    assert.deepEqual(garbage(Buffer.concat([Buffer.from(`${COMPACT}\n`), BOM, Buffer.from(`${COMPACT}\n${COMPACT}`)])), [COMPACT, bad, COMPACT])
})
