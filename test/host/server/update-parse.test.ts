// The device door's fast reading of a short-form points update (devs/server/update-parse.ts) against
// JSON.parse: whatever text it reads, it reads as JSON.parse does (a numeric token as its text), and
// decodeRequest answers the same with it as without; the firmware's and the load generator's updates take
// it; anything else is left to JSON.parse. Mutations of the shape are fuzzed, seeded like the envelope fuzz.
import { test } from "node:test"
import assert from "node:assert/strict"
import fc from "fast-check"
import { decodeRequest, encodeShortRequest } from "../../../src/protocol.ts"
import { parseDeviceUpdate } from "../../../devs/server/update-parse.ts"
import { updateBody } from "../../../devs/bench/loadgen/payload.ts"
import { FUZZ_SEED, fuzzOptions } from "../protocol/envelope-arbitraries.ts"
import { ONE_VALUE_UPDATE_SHORT_LINE } from "../../vectors/envelope.ts"

/** JSON.parse's value with a numeric token as the text it was written with (what parseDeviceUpdate gives). */
function parsedAsDecoded(text: string): unknown {
    const raw = JSON.parse(text)
    const token = /,"t":(-?[0-9][0-9.eE+-]*)\}$/.exec(text)
    if (token) raw.t = token[1]
    return raw
}

/** The fast reading is JSON.parse's, and decodeRequest decodes the same with it; returns whether it read the text. */
function checkSame(text: string): boolean {
    const fast = parseDeviceUpdate(text)
    if (fast === undefined) return false
    assert.deepEqual(fast, parsedAsDecoded(text), text)
    assert.deepEqual(decodeRequest(text, true, true, fast), decodeRequest(text, true, true), text)
    return true
}

const update = (t: string, body: string) => `{"r":"/feeds/1","b":{"datastreams":[${body}]},"t":${t}}`

test("the load generator's update and the firmware's batches are read without JSON.parse, as JSON.parse reads them", () => {
    const bench = encodeShortRequest({ short: true, method: "put", resource: "/feeds/1", body: updateBody(7, 12345, 1796611458168), token: "12345" })
    assert.ok(checkSame(bench))
    // the load generator's token is a number, echoed as its text [P§5]
    assert.ok(checkSame(bench.replace('"t":"12345"', '"t":12345')))
    // the firmware's one-value update (the golden vector both runtimes check), and its batches: samples grouped
    // by datastream in queue order (src/net/outbox.ts batchBody, which the host does not compile)
    assert.ok(checkSame(ONE_VALUE_UPDATE_SHORT_LINE))
    const batch = (groups: [string, [number, string][]][]) =>
        encodeShortRequest({ short: true, method: "put", resource: "/feeds/504", token: "0x1f", body: { datastreams: groups.map(([id, points]) => ({ id, datapoints: points.map(([at, value]) => ({ at, value })) })) } })
    assert.ok(checkSame(batch([["t", [[1796611458168, "21.5"], [1796611459168, "21.6"]]]])))
    assert.ok(checkSame(batch([["t", [[1796611458168, "21.5"], [1796611459168, "21.6"]]], ["h", [[1796611458168, "40"]]]])))
    assert.ok(checkSame(batch([0, 1, 2].map((k) => ["s" + k, [0, 1, 2].map((i) => [1796611458168 + i, String(i * 1.5 + k)] as [number, string])]))))
})

test("numbers and strings read as JSON.parse reads them", () => {
    const numbers = ["0", "-0", "1", "-1", "12345678901234567890", "1.5", "-0.25", "1e3", "1E-3", "2.5e+10", "1e400", "-1e400", "9007199254740993", "0.1", "123.456e-7"]
    for (const n of numbers) {
        assert.ok(checkSame(update(n, `{"id":"d","datapoints":[{"at":${n},"value":${n}}]}`)), n)
        assert.ok(checkSame(update("1", `{"id":"d","datapoints":[{"at":"2026-12-07T01:02:03Z","value":"${n}"}]}`)), n)
    }
    // strings: anything but a quote, a backslash or a control character is its own value (DEL, non-ASCII)
    for (const s of ["", "a b", "\u007f", "é", "温度", "😀", "/", "'", "{}[],:"]) assert.ok(checkSame(update(`"${s}"`, `{"id":"${s}","datapoints":[{"at":1,"value":"${s}"}]}`)), s)
    // -0 stays -0 (deepEqual tells them apart)
    assert.ok(Object.is((parseDeviceUpdate(update("1", `{"id":"d","datapoints":[{"at":-0,"value":"x"}]}`)) as any).b.datastreams[0].datapoints[0].at, -0))
})

test("any other text is left to JSON.parse", () => {
    const good = update("7", `{"id":"d","datapoints":[{"at":1,"value":"x"}]}`)
    assert.ok(parseDeviceUpdate(good))
    const others = [
        good.replace("{", "{ "), // whitespace
        good + " ",
        good.replace('"x"', '"\\u0078"'), // an escape
        good.replace('"x"', '"a\tb"'), // a control character (JSON.parse refuses it)
        good.replace('"r":"/feeds/1",', '"r":"/feeds/1","h":{"X-ApiKey":"k"},'), // a first request's key
        good.replace('{"r"', '{"m":"get","r"'),
        `{"b":{"datastreams":[{"id":"d","datapoints":[{"at":1,"value":"x"}]}]},"r":"/feeds/1","t":7}`, // reordered
        good.replace('"value":"x"', '"value":"x","extra":1'),
        good.replace('"value":"x"', '"value":true'),
        good.replace('"value":"x"', '"value":null'),
        good.replace('"value":"x"', '"value":{"a":1}'),
        good.replace('"at":1', '"at":01'),
        good.replace('"at":1', '"at":1.'),
        good.replace('"at":1', '"at":.5'),
        good.replace('"at":1', '"at":+1'),
        good.replace('"at":1', '"at":1e'),
        update("7", ""), // no datastream
        update("7", `{"id":"d","datapoints":[]}`),
        good.slice(0, -1),
        good + "}",
        `{"method":"put","resource":"/feeds/1","body":{"datastreams":[{"id":"d","datapoints":[{"at":1,"value":"x"}]}]},"token":"7"}`,
    ]
    for (const t of others) assert.equal(parseDeviceUpdate(t), undefined, t)
})

test("mutated updates: whatever the fast reading takes, it reads as JSON.parse does", () => {
    console.log(`# update-parse fuzz seed ${FUZZ_SEED} (replay: FUZZ_SEED=${FUZZ_SEED})`)
    const seeds = [
        update("12345", `{"id":"d3","datapoints":[{"at":1796611458168,"value":"12345"}]}`),
        update('"a1"', `{"id":"t","datapoints":[{"at":1,"value":"2"},{"at":-3.5e2,"value":4}]},{"id":"h","datapoints":[{"at":"x","value":"y"}]}`),
    ]
    const pieces = ['"', "\\", ",", ":", "{", "}", "[", "]", " ", "0", "1", "-", ".", "e", "+", "x", "\u0001", "null", '"t":', '"id":', "é"]
    const mutation = fc.record({
        seed: fc.constantFrom(...seeds),
        edits: fc.array(fc.record({ at: fc.nat(), cut: fc.integer({ min: 0, max: 3 }), piece: fc.constantFrom("", ...pieces) }), { minLength: 1, maxLength: 3 }),
    })
    let read = 0
    fc.assert(
        fc.property(mutation, ({ seed, edits }) => {
            let text = seed
            for (const e of edits) {
                const at = e.at % (text.length + 1)
                text = text.slice(0, at) + e.piece + text.slice(at + e.cut)
            }
            const fast = parseDeviceUpdate(text)
            if (fast === undefined) return
            read++
            // it never takes what JSON.parse refuses
            assert.doesNotThrow(() => JSON.parse(text), text)
            checkSame(text)
        }),
        fuzzOptions(3000),
    )
    // the fuzz reached texts the fast reading takes (edits inside strings and numbers), not only refusals
    assert.ok(read > 50, `only ${read} mutated texts were read`)
})
