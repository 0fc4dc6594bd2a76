// Property-based fuzzing of the shared envelope codec (src/protocol.ts), seeded and reproducible:
// the seed is printed; FUZZ_SEED=<seed> replays a run, FUZZ_RUNS=<n> runs more cases (npm run fuzz).
import { test } from "node:test"
import assert from "node:assert/strict"
import fc from "fast-check"
import {
    decodeRequest,
    decodeServerLine,
    encode,
    encodeRequest,
    encodeResponse,
    isDatastreamId,
    METHODS,
    MAX_DEPTH,
    MAX_RESOURCE_CHARS,
    MAX_TOKEN_BYTES,
    normalizeResource,
    type DecodedRequest,
} from "../../../src/protocol.ts"
import { keepaliveFromWelcome } from "../../../src/keepalive.ts"
import { anyRequestTextArb, deepArb, FUZZ_SEED, fuzzOptions, jsonValueArb, mutatedArb, nastyString, resourceArb, SERVER_LINE_SEEDS } from "./envelope-arbitraries.ts"

const ERROR_CODES = ["E_BAD_JSON", "E_NOT_OBJECT", "E_TOO_DEEP", "E_BAD_TOKEN", "E_NO_METHOD", "E_BAD_METHOD", "E_NO_RESOURCE", "E_BAD_RESOURCE", "E_BAD_PARAMS", "E_BAD_HEADERS", "E_BAD_UTF8", "E_BAD_FORMAT"]

console.log(`# fuzz seed ${FUZZ_SEED} (replay: FUZZ_SEED=${FUZZ_SEED} npm run fuzz)`)

function isAscii(s: string): boolean {
    for (let i = 0; i < s.length; ++i) if (s.charCodeAt(i) > 126 || s.charCodeAt(i) < 32) return false
    return true
}

/** Everything a decoded request or error must satisfy, whatever the input. */
function checkDecoded(input: string, d: DecodedRequest): void {
    assert.ok((d.request === undefined) !== (d.error === undefined), "exactly one of request and error")
    if (d.error) {
        const e = d.error
        assert.ok(ERROR_CODES.includes(e.code), `stable code, got ${e.code}`)
        assert.ok(e.status >= 400 && e.status < 500, `4xx, got ${e.status}`)
        assert.ok(typeof e.reason === "string" && e.reason.length > 10, "a reason a person can act on")
        if (e.token !== undefined) assert.ok(typeof e.token === "string" && e.token.length <= MAX_TOKEN_BYTES, "an echoed token is bounded")
        return
    }
    const r = d.request!
    assert.ok(METHODS.includes(r.method), `method ${r.method}`)
    if (r.resource !== undefined) {
        const res = r.resource
        assert.ok(res.startsWith("/") && res.length <= MAX_RESOURCE_CHARS, `resource ${JSON.stringify(res)}`)
        for (const bad of ["%", "//", "\u0000", "\\"]) assert.ok(!res.includes(bad), `resource ${JSON.stringify(res)} contains ${JSON.stringify(bad)}`)
        for (const seg of res.split("/").slice(1)) assert.ok(seg !== "." && seg !== ".." && (seg !== "" || res === "/"), `resource ${JSON.stringify(res)} has segment ${JSON.stringify(seg)}`)
        assert.ok(!res.endsWith("/") || res === "/", "no trailing slash")
        assert.ok(isAscii(res), "ASCII resource")
    } else assert.equal(r.method, "unsubscribe", "only unsubscribe may omit the resource")
    if (r.params) for (const v of Object.values(r.params)) assert.ok(["string", "number", "boolean"].includes(typeof v))
    if (r.headers) for (const v of Object.values(r.headers)) assert.equal(typeof v, "string")
    if (r.token !== undefined) assert.ok(typeof r.token === "string" && r.token.length <= MAX_TOKEN_BYTES)

    // canonical form: ASCII, one line, and a fixed point of decode ∘ encode
    const line = encodeRequest(r)
    assert.ok(isAscii(line), `canonical form is printable ASCII: ${line}`)
    const again = decodeRequest(line)
    assert.equal(again.error, undefined, `the canonical form of ${JSON.stringify(input)} decodes: ${again.error?.code}`)
    assert.equal(encodeRequest(again.request!), line, `idempotent for ${JSON.stringify(input)}`)
}

test("decodeRequest: never throws; a request in canonical form or a coded 4xx error with a reason", () => {
    fc.assert(
        fc.property(anyRequestTextArb, (text) => {
            checkDecoded(text, decodeRequest(text))
        }),
        fuzzOptions(3000)
    )
})

test("decodeRequest: tricky resources are normalised or refused with E_BAD_RESOURCE (E_BAD_UTF8 for a lone surrogate, E_BAD_FORMAT for .xml/.csv)", () => {
    fc.assert(
        fc.property(resourceArb, fc.constantFrom(...METHODS), (resource, method) => {
            const d = decodeRequest(JSON.stringify({ method, resource, token: "t" }))
            checkDecoded(resource, d)
            if (d.error) {
                const expected = /[\ud800-\udfff]/u.test(resource) ? "E_BAD_UTF8" : /\.(xml|csv)\/?$/i.test(resource) ? "E_BAD_FORMAT" : "E_BAD_RESOURCE"
                assert.equal(d.error.code, expected, `resource ${JSON.stringify(resource)}`)
                assert.equal(d.error.token, "t", "the error reaches the caller by its token")
            }
        }),
        fuzzOptions(2000)
    )
})

test("decodeRequest: nesting deeper than MAX_DEPTH is refused with E_TOO_DEEP, wherever it is", () => {
    fc.assert(
        fc.property(deepArb, fc.constantFrom("body", "extra"), fc.string({ maxLength: 5 }), (deep, key, token) => {
            const d = decodeRequest(JSON.stringify({ method: "put", resource: "/feeds/1", token, [key]: deep }))
            let depth = 0
            for (let v: unknown = deep; typeof v === "object" && v !== null; v = Array.isArray(v) ? v[0] : (v as { a: unknown }).a) depth++
            if (depth + 1 > MAX_DEPTH) {
                assert.equal(d.error?.code, "E_TOO_DEEP")
                assert.equal(d.error?.token, token)
            } else checkDecoded(key, d)
        }),
        fuzzOptions(500)
    )
})

test("decodeRequest: a numeric token is echoed as written, whatever its digits, exponent and spacing, and other members named token", () => {
    const digits = fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 1, maxLength: 30 })
    const numberArb = fc
        .tuple(fc.constantFrom("", "-"), fc.oneof(fc.constant("0"), digits.map((d) => "1" + d), fc.bigInt().map((n) => (n < 0n ? -n : n).toString())), fc.option(digits.map((d) => "." + d)), fc.option(fc.tuple(fc.constantFrom("e", "E"), fc.constantFrom("", "+", "-"), digits)))
        .map(([sign, int, frac, exp]) => sign + int + (frac ?? "") + (exp ? exp.join("") : ""))
    const spaceArb = fc.constantFrom("", " ", "\n", "\r\n\t ")
    fc.assert(
        fc.property(numberArb, fc.boolean(), spaceArb, spaceArb, fc.option(jsonValueArb), (literal, short, before, after, decoy) => {
            const tokenName = short ? "t" : "token"
            const decoyMember = decoy === null ? "" : `"${tokenName}":${JSON.stringify(decoy)},`
            const head = short ? '"m":"get","r":"/feeds/1"' : '"method":"get","resource":"/feeds/1"'
            // a decoy "token" first (the later member is the one JSON.parse keeps) and one inside the body
            const text = `{${decoyMember}${head},"${short ? "b" : "body"}":{"${tokenName}":1,"x":["${tokenName}",2]},"${tokenName}"${before}:${after}${literal}${before}}`
            const d = decodeRequest(text)
            if (literal.length > MAX_TOKEN_BYTES) return assert.equal(d.error?.code, "E_BAD_TOKEN", text)
            assert.equal(d.error, undefined, `${text}: ${d.error?.code}`)
            assert.equal(d.request!.token, literal, text)
        }),
        fuzzOptions(1000)
    )
})

test("every datastream id isDatastreamId accepts can be named in a resource, and nothing else", () => {
    const idArb = fc.oneof(
        fc.array(fc.constantFrom("a", "Z", "0", "_", "-", ".", "json", ".json", "é", "/", "%", "\u0000"), { minLength: 0, maxLength: 8 }).map((a) => a.join("")),
        fc.constantFrom(".", "..", "...", "x.json", "x.JSON", ".json", "a".repeat(64), "a".repeat(65), "led")
    )
    fc.assert(
        fc.property(idArb, (id) => {
            const resource = "/feeds/1/datastreams/" + id
            const named = normalizeResource(resource) === resource
            if (isDatastreamId(id)) assert.ok(named, `${JSON.stringify(id)} is a valid id but ${resource} normalises to ${normalizeResource(resource)}`)
            else if (id.length >= 1 && id.length <= 64 && !id.includes("/") && named) assert.fail(`${JSON.stringify(id)} is refused as an id, yet a resource can name it`)
        }),
        fuzzOptions(2000)
    )
})

test("decodeServerLine: never throws; responses re-encode to a fixed point", () => {
    const lineArb = fc.oneof(
        mutatedArb(SERVER_LINE_SEEDS),
        fc.string({ unit: "binary", maxLength: 40 }),
        fc.record({ token: fc.oneof(nastyString, fc.integer()), status: fc.oneof(fc.integer(), fc.double(), nastyString), resource: nastyString, body: jsonValueArb }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
        fc.record({ welcome: nastyString, session: nastyString, time: fc.oneof(fc.double(), fc.integer()), heartbeat: fc.oneof(fc.integer(), nastyString), faulty: fc.integer(), timeout: fc.oneof(fc.integer(), fc.double()) }, { requiredKeys: [] }).map((o) => JSON.stringify(o))
    )
    fc.assert(
        fc.property(lineArb, (line) => {
            const d = decodeServerLine(line)
            assert.ok(["heartbeat", "welcome", "response", "invalid"].includes(d.kind))
            if (d.kind === "invalid") assert.equal(d.error?.code, "E_BAD_LINE")
            if (d.kind === "welcome") {
                const w = d.welcome!
                // the decoder keeps what the server announced; the contract fills in and derives the rest
                for (const v of [w.heartbeat, w.faulty, w.timeout]) assert.ok(v === undefined || (typeof v === "number" && v > 0), "keep-alive values are left out or positive numbers")
                const c = keepaliveFromWelcome(w)
                for (const v of [c.heartbeatMs, c.faultyMs, c.timeoutMs]) assert.ok(typeof v === "number" && v > 0, "the keep-alive contract's values are positive numbers")
            }
            if (d.kind === "response") {
                assert.equal(typeof d.response!.status, "number")
                const out = encodeResponse(d.response!)
                assert.ok(isAscii(out))
                const again = decodeServerLine(out)
                if (again.kind === "response") assert.equal(encodeResponse(again.response!), out)
            }
        }),
        fuzzOptions(2000)
    )
})

test("encode: ASCII-only JSON that parses back to the same value (lone surrogates included)", () => {
    fc.assert(
        fc.property(jsonValueArb, (v) => {
            const text = encode(v)
            assert.ok(isAscii(text), text)
            assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(v)))
        }),
        fuzzOptions(2000)
    )
})
