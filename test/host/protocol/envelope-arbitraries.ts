// fast-check generators of hostile and broken request envelopes, shared by the envelope fuzz test
// (test/host/protocol/envelope-fuzz.test.ts) and the router fuzz test (test/host/server/abuse/router-fuzz.test.ts).
import fc from "fast-check"
import { METHODS } from "../../../src/protocol.ts"
import { REQUEST_VECTORS, SERVER_LINE_VECTORS } from "../../vectors/envelope.ts"

/** The seed of this run: FUZZ_SEED to replay one, else a fresh one (printed by each test). */
export const FUZZ_SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : (Date.now() ^ (process.pid << 8)) >>> 0
/** Cases per property: a few hundred to a few thousand in `npm test`, many more with FUZZ_RUNS (npm run fuzz). */
export function fuzzRuns(dflt: number): number {
    const n = Number(process.env.FUZZ_RUNS)
    return Number.isInteger(n) && n > 0 ? n : dflt
}
export function fuzzOptions(dflt: number): fc.Parameters<unknown> {
    return { seed: FUZZ_SEED, numRuns: fuzzRuns(dflt), includeErrorInReport: true }
}

/** Characters that mean something to JSON, paths or C strings, plus some that must be escaped. */
const NASTY_CHARS = ['{', '}', '[', ']', '"', ":", ",", "\\", "/", ".", "%", "\u0000", "\n", "\r", "\t", " ", "é", "\u2028", "\ud800", "\udfff", "😀", "0", "9", "-", "e", "a", "x"]

export const nastyString = fc.oneof(
    { weight: 3, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 2, arbitrary: fc.array(fc.constantFrom(...NASTY_CHARS), { maxLength: 12 }).map((a) => a.join("")) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
    { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "X-ApiKey", "x-apikey") }
)

/** Numbers that break naive code: huge, tiny, negative zero, unsafe integers, overflowing literals. */
export const nastyNumberLiteral = fc.oneof(
    fc.integer().map(String),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
    fc.constantFrom("1e400", "-1e400", "-0", "0.0", "9007199254740993", "123456789012345678901234567890", "1e-400", "5e-324", "1.7976931348623157e308", "0e0")
)

const PATH_SEGMENTS = ["feeds", "1", "504", "datastreams", "temp", "datapoints", "keys", "session", "..", ".", "", "...", "%2F", "%2e%2e", "%00", "a\u0000b", "\\", "..\\..", "é", "x.json", ".json", "1;2", "1?a=b", "a b", "~", "led", "99999999999999999999", "-1", "0x10", "1e3"]

/** Resource paths, legal and tricky: `/feeds/1/../2`, encoded slashes, NUL, double slashes, over-long. */
export const resourceArb = fc.oneof(
    { weight: 4, arbitrary: fc.array(fc.constantFrom(...PATH_SEGMENTS), { minLength: 0, maxLength: 6 }).map((segs) => "/" + segs.join("/")) },
    {
        weight: 2,
        arbitrary: fc
            .tuple(fc.constantFrom("", "/", "//", "\\", "./"), fc.array(fc.oneof(fc.constantFrom(...PATH_SEGMENTS), nastyString), { maxLength: 5 }), fc.constantFrom("", "/", ".json", "/.json", ".json/", "//", ".json.json"))
            .map(([pre, segs, post]) => pre + segs.join("/") + post),
    },
    { weight: 1, arbitrary: fc.integer({ min: 240, max: 300 }).map((n) => "/feeds/1/datastreams/" + "a".repeat(n)) },
    { weight: 1, arbitrary: nastyString }
)

/** Any JSON value, with every kind of string (lone surrogates included). */
export const jsonValueArb = fc.jsonValue({ maxDepth: 4, stringUnit: "binary" })

/** A value of the wrong type for whatever member it lands in. */
const wrongTypeArb = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(nastyString, fc.integer(), { maxKeys: 3 }), nastyString)

/** Nesting from 1 to 600 levels, of arrays or objects, around a leaf. */
export const deepArb = fc.tuple(fc.integer({ min: 1, max: 600 }), fc.boolean()).map(([depth, arrays]) => {
    let v: unknown = 1
    for (let i = 0; i < depth; ++i) v = arrays ? [v] : { a: v }
    return v
})

const methodArb = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...METHODS) },
    { weight: 2, arbitrary: fc.constantFrom("GET", "Put", "POST", "DeLeTe", "SUBSCRIBE", "patch", "head", "options", "", " get", "get ", "g\u0000et", "ＧＥＴ", "__proto__") },
    { weight: 1, arbitrary: nastyString },
    { weight: 1, arbitrary: wrongTypeArb }
)

const tokenArb = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.integer(),
    fc.string({ minLength: 60, maxLength: 70 }),
    fc.string({ unit: "binary", maxLength: 64 }),
    wrongTypeArb
)

const paramsArb = fc.oneof(
    { weight: 4, arbitrary: fc.dictionary(nastyString, fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean(), fc.double()), { maxKeys: 4 }) },
    { weight: 1, arbitrary: fc.dictionary(nastyString, jsonValueArb, { maxKeys: 3 }) },
    { weight: 1, arbitrary: wrongTypeArb }
)

const headersArb = fc.oneof(
    { weight: 4, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom("X-ApiKey", "x-apikey", "X-APIKEY"), nastyString), fc.string({ maxLength: 40 }), { maxKeys: 3 }) },
    { weight: 1, arbitrary: wrongTypeArb }
)

/** A Xively-shaped body, mostly right, sometimes not. */
export const bodyArb = fc.oneof(
    {
        weight: 4,
        arbitrary: fc.record(
            {
                version: fc.constant("1.0.0"),
                datastreams: fc.array(
                    fc.record(
                        {
                            id: fc.oneof(fc.constantFrom("temp", "0", "led", "_rtt_ms", "a".repeat(65), ""), nastyString, wrongTypeArb),
                            current_value: fc.oneof(fc.string({ maxLength: 40 }), fc.double(), fc.boolean(), wrongTypeArb),
                            datapoints: fc.array(fc.record({ at: fc.oneof(fc.integer(), fc.string({ maxLength: 30 }), fc.constant(1732250000000)), value: fc.oneof(fc.string({ maxLength: 40 }), fc.double()) }, { requiredKeys: [] }), { maxLength: 3 }),
                        },
                        { requiredKeys: [] }
                    ),
                    { maxLength: 3 }
                ),
            },
            { requiredKeys: [] }
        ),
    },
    { weight: 1, arbitrary: jsonValueArb },
    { weight: 1, arbitrary: deepArb }
)

/** An envelope object (members may be missing, of the wrong type, or unknown). */
export const envelopeObjectArb = fc
    .record(
        {
            method: methodArb,
            resource: fc.oneof({ weight: 5, arbitrary: resourceArb }, { weight: 1, arbitrary: wrongTypeArb }),
            params: paramsArb,
            headers: headersArb,
            body: bodyArb,
            token: tokenArb,
        },
        { requiredKeys: [] }
    )
    .chain((o) => fc.dictionary(nastyString, jsonValueArb, { maxKeys: 2 }).map((extra) => ({ ...extra, ...o })))

/** JSON text of an envelope: compact, pretty-printed (as pasted into openssl s_client) or with numbers swapped for nasty literals. */
export const envelopeTextArb = fc.oneof(
    { weight: 4, arbitrary: envelopeObjectArb.map((o) => JSON.stringify(o)) },
    { weight: 1, arbitrary: envelopeObjectArb.map((o) => JSON.stringify(o, null, 2).replace(/\n/g, "\r\n")) },
    {
        weight: 2,
        arbitrary: fc.tuple(envelopeObjectArb, fc.array(nastyNumberLiteral, { minLength: 1, maxLength: 4 })).map(([o, nums]) => {
            let i = 0
            return JSON.stringify(o).replace(/(?<=[:\[,])-?\d+(\.\d+)?([eE][+-]?\d+)?/g, (m) => nums[i++ % nums.length] ?? m)
        }),
    }
)

/** A text mutated by a few random edits: delete, insert, duplicate or replace a span. */
export function mutatedArb(seeds: string[]): fc.Arbitrary<string> {
    const edit = fc.tuple(fc.nat(), fc.nat({ max: 8 }), fc.constantFrom("delete", "insert", "duplicate", "replace", "truncate"), fc.array(fc.constantFrom(...NASTY_CHARS), { minLength: 1, maxLength: 4 }))
    return fc.tuple(fc.constantFrom(...seeds), fc.array(edit, { minLength: 1, maxLength: 4 })).map(([text, edits]) => {
        let s = text
        for (const [pos, len, kind, chars] of edits) {
            const at = s.length ? pos % s.length : 0
            const ins = chars.join("")
            if (kind === "delete") s = s.slice(0, at) + s.slice(at + len)
            else if (kind === "insert") s = s.slice(0, at) + ins + s.slice(at)
            else if (kind === "duplicate") s = s.slice(0, at + len) + s.slice(at, at + len) + s.slice(at + len)
            else if (kind === "replace") s = s.slice(0, at) + ins + s.slice(at + ins.length)
            else s = s.slice(0, at)
        }
        return s
    })
}

/** Golden request inputs, and the same mutated. */
export const REQUEST_SEEDS = REQUEST_VECTORS.map((v) => v.input)
export const SERVER_LINE_SEEDS = SERVER_LINE_VECTORS.map((v) => v.input).filter((s) => s.length > 0)

/** Bytes that are often not UTF-8 at all, decoded as the server's framer decodes them (Buffer.toString). */
export const invalidUtf8Arb = fc
    .tuple(fc.constantFrom(...REQUEST_SEEDS), fc.uint8Array({ maxLength: 12 }), fc.nat(), fc.constantFrom(0x80, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xf8, 0xfe, 0xff))
    .map(([seed, noise, pos, lead]) => {
        const base = Buffer.from(seed, "utf8")
        const at = pos % (base.length + 1)
        return Buffer.concat([base.subarray(0, at), Buffer.from([lead]), Buffer.from(noise), base.subarray(at)]).toString("utf8")
    })

/** Everything above, for properties that must hold for any input. */
export const anyRequestTextArb = fc.oneof(
    { weight: 4, arbitrary: envelopeTextArb },
    { weight: 3, arbitrary: mutatedArb(REQUEST_SEEDS) },
    { weight: 1, arbitrary: invalidUtf8Arb },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 64 }) },
    { weight: 1, arbitrary: fc.tuple(deepArb, fc.constantFrom("body", "params", "headers", "token", "method", "resource")).map(([deep, key]) => JSON.stringify({ method: "put", resource: "/feeds/1", [key]: deep })) }
)
