// Property-based fuzzing of the server's byte framer (devs/server/framer.ts) with hostile streams:
// mutated and broken envelopes, garbage runs, raw newlines in strings, invalid UTF-8, oversized objects.
// However the stream is cut into chunks, the framer reports the same events as for the whole stream,
// and it never holds more than its limit. Seeded like the envelope fuzz (FUZZ_SEED, FUZZ_RUNS).
import { test } from "node:test"
import assert from "node:assert/strict"
import fc from "fast-check"
import { jsonDepthExceeds, MAX_DEPTH } from "../../../src/protocol.ts"
import { ObjectFramer, type FramerEvent } from "../../../devs/server/framer.ts"
import { anyRequestTextArb, FUZZ_SEED, fuzzOptions } from "../protocol/envelope-arbitraries.ts"

/** Small enough that generated streams cross it now and then. */
const MAX_OBJECT_BYTES_IN_TEST = 1024

console.log(`# framer fuzz seed ${FUZZ_SEED} (replay: FUZZ_SEED=${FUZZ_SEED} npm run fuzz)`)

/** A stream of requests with what a client really sends between them, as bytes (some not UTF-8). */
const streamArb = fc
    .array(
        fc.oneof(
            { weight: 6, arbitrary: anyRequestTextArb.map((t) => Buffer.from(t, "utf8")) },
            { weight: 2, arbitrary: fc.constantFrom("\n", "\r\n", " ", "\t", "hello", "}", "]]]", '"', "\\", "{", "{\"a\":\"\n", "\n\n").map((t) => Buffer.from(t)) },
            { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 8 }).map((a) => Buffer.from(a)) },
            { weight: 1, arbitrary: fc.integer({ min: 900, max: 1200 }).map((n) => Buffer.from(`{"body":"${"x".repeat(n)}"}`)) }
        ),
        { minLength: 1, maxLength: 8 }
    )
    .map((parts) => Buffer.concat(parts))

/** Cut sizes, cycled over the stream: small ones, and large ones up to the framer's limit. */
const cutsArb: fc.Arbitrary<number[]> = fc.oneof(
    fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 12 }),
    fc.array(fc.integer({ min: 1, max: MAX_OBJECT_BYTES_IN_TEST }), { minLength: 1, maxLength: 4 })
)

function feedInChunks(stream: Buffer, cuts: number[]): { events: FramerEvent[]; maxPending: number } {
    const framer = new ObjectFramer(MAX_OBJECT_BYTES_IN_TEST)
    const events: FramerEvent[] = []
    let maxPending = 0
    for (let at = 0, i = 0; at < stream.length; ++i) {
        const n = cuts[i % cuts.length]
        // a fresh copy per chunk, then scribbled over: the framer must not keep references into it
        const chunk = Buffer.from(stream.subarray(at, at + n))
        events.push(...framer.feed(chunk))
        chunk.fill(0x41)
        maxPending = Math.max(maxPending, framer.pendingBytes)
        at += n
    }
    return { events, maxPending }
}

test("framer: any chunking of a hostile stream gives the events of a byte-by-byte feed, within its memory limit", () => {
    let objects = 0
    let garbage = 0
    let oversize = 0
    fc.assert(
        fc.property(streamArb, cutsArb, (stream, cuts) => {
            const whole = feedInChunks(stream, [1]).events
            const chunked = feedInChunks(stream, cuts)
            assert.deepEqual(chunked.events, whole)
            assert.ok(chunked.maxPending <= MAX_OBJECT_BYTES_IN_TEST, `held ${chunked.maxPending} bytes`)
            for (const e of whole) {
                if (e.kind === "object") {
                    objects++
                    assert.ok(e.bytes <= MAX_OBJECT_BYTES_IN_TEST, `an object of ${e.bytes} bytes`)
                    // braces and brackets count alike: a stray "]" may end a broken object (JSON.parse refuses it)
                    assert.ok(e.text.startsWith("{") && (e.text.endsWith("}") || e.text.endsWith("]")), `object text ${JSON.stringify(e.text.slice(0, 40))}`)
                } else if (e.kind === "garbage") garbage++
                else oversize++
            }
            assert.ok(whole.filter((e) => e.kind === "oversize").length <= 1, "oversize is final")
            if (whole.some((e) => e.kind === "oversize")) assert.equal(whole[whole.length - 1].kind, "oversize", "nothing after an oversize")
        }),
        fuzzOptions(500)
    )
    console.log(`# framer fuzz: ${objects} objects, ${garbage} garbage runs, ${oversize} oversize cut out of the streams`)
})

// A raw newline inside a string resets the framer (the object is broken), but the size check that
// follows in the same loop turn still runs, with the object's start already cleared: it computes
// (offset in chunk + 2) as the object's size. Past MAX_OBJECT_BYTES into one chunk (a 20 kB read on
// the plain TCP port, or many requests arriving at once) that is a bogus 413 and a closed connection.
test("framer: a raw newline in a string far into a large chunk is garbage, not an oversize object", () => {
    // [P§3] the broken object's tail (b"}) is a bad line of its own; the line after it is read afresh
    const stream = Buffer.from(" ".repeat(20_000) + '{"method":"get","token":"a\nb"}\n{"method":"get","resource":"/session","token":"ok"}')
    const framer = new ObjectFramer()
    const events = framer.feed(stream).map((e) => e.kind)
    assert.deepEqual(events, ["garbage", "garbage", "object"])
})

// The session skips decodeRequest's own depth measurement when the framer says an object is shallow
// (issue 15): the two must agree on every object, however it was cut and whatever its strings hold.
test("framer: its depth verdict on each object is jsonDepthExceeds' on the object's text", () => {
    const nestedArb = fc
        .tuple(fc.integer({ min: 0, max: MAX_DEPTH + 3 }), fc.constantFrom("[", "{\"k\":"), fc.constantFrom("", '"[[{\\"', "\"]}\\\\\""))
        .map(([levels, open, str]) => {
            const close = open === "[" ? "]" : "}"
            return Buffer.from(`{"t":"${levels}","b":${open.repeat(levels)}${str || "1"}${close.repeat(levels)}}\n`)
        })
    const stream = fc.array(fc.oneof(nestedArb, anyRequestTextArb.map((t) => Buffer.from(t, "utf8"))), { minLength: 1, maxLength: 6 }).map((parts) => Buffer.concat(parts))
    let deep = 0
    fc.assert(
        fc.property(stream, cutsArb, (bytes, cuts) => {
            const framer = new ObjectFramer(MAX_OBJECT_BYTES_IN_TEST)
            const seen: { text: string; shallow: boolean }[] = []
            const sink = { framedObject: (text: string, _b: number, _u: boolean, shallow: boolean) => void seen.push({ text, shallow }), framedGarbage() {}, framedOversize() {} }
            for (let at = 0, i = 0; at < bytes.length; at += cuts[i++ % cuts.length]) framer.feedTo(Buffer.from(bytes.subarray(at, at + cuts[i % cuts.length])), sink)
            for (const o of seen) {
                assert.equal(o.shallow, !jsonDepthExceeds(o.text, MAX_DEPTH), o.text.slice(0, 80))
                if (!o.shallow) deep++
            }
        }),
        fuzzOptions(300)
    )
    assert.ok(deep > 0, "some objects were too deep")
})
