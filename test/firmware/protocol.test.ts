// Protocol v1 golden vectors, DeviceScript side. The Node twin is test/host/protocol/envelope.test.ts.
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { decodeRequest, decodeServerLine, encode, encodeByHand, encodeRequest, encodeResponse, encodeShortRequest, isNotice } from "../../src/protocol"
import { ENCODE_VECTORS, ONE_VALUE_UPDATE, ONE_VALUE_UPDATE_LINE, REQUEST_VECTORS, SERVER_LINE_VECTORS } from "../vectors/envelope"

describe("protocol vectors", () => {
    // each vector yields: a test's steps count towards the next synchronous tests' InfiniteLoop budget (128K VM steps)
    test("request vectors decode as on the server", async () => {
        for (const v of REQUEST_VECTORS) {
            await ds.sleep(0)
            const d = decodeRequest(v.input)
            if (v.error) {
                const code = v.deviceScriptError ? v.deviceScriptError : v.error
                if (!d.error || d.error.code !== code) throw new Error(`${v.name}: expected ${code}`)
                if (d.error.token !== (v.deviceScriptError ? undefined : v.errorToken)) throw new Error(`${v.name}: token ${d.error.token}`)
                if ((d.error.short === true) !== (v.deviceScriptError ? false : v.errorShort === true)) throw new Error(`${v.name}: short ${d.error.short}`)
            } else {
                if (d.error) throw new Error(`${v.name}: ${d.error.code} ${d.error.reason}`)
                const got = d.request.short ? encodeShortRequest(d.request) : encodeRequest(d.request)
                if (got !== v.expect) throw new Error(`${v.name}: got ${got}`)
            }
        }
        console.log(`protocol: ${REQUEST_VECTORS.length} request vectors agree`)
    })
    test("server line vectors decode as on the server", async () => {
        for (const v of SERVER_LINE_VECTORS) {
            await ds.sleep(0)
            const d = decodeServerLine(v.input)
            // (a lone surrogate: the DeviceScript runtime's strings are UTF-8, its JSON.parse refuses one)
            const kind = v.deviceScriptKind ? v.deviceScriptKind : v.kind
            expect(v.name + ": " + d.kind).toBe(v.name + ": " + kind)
            if (kind === "response") if (v.expect) expect(encodeResponse(d.response)).toBe(v.expect)
            if (v.notice !== undefined) expect(v.name + ": " + isNotice(d.response)).toBe(v.name + ": " + v.notice)
        }
    })
    test("encode vectors: JSON.stringify's text where it is provably the hand-written encoder's", () => {
        for (let i = 0; i < ENCODE_VECTORS.length; ++i) {
            const v = ENCODE_VECTORS[i]
            expect(v.name + ": " + encode(v.value)).toBe(v.name + ": " + v.expect)
            expect(v.name + " (by hand): " + encodeByHand(v.value)).toBe(v.name + " (by hand): " + v.expect)
            if (v.native) expect(v.name + " (native): " + JSON.stringify(v.value)).toBe(v.name + " (native): " + v.expect)
        }
    })
    test("one-value update is one compact line", () => {
        const line = encodeRequest(ONE_VALUE_UPDATE as any)
        expect(line).toBe(ONE_VALUE_UPDATE_LINE)
        console.log(`protocol: one-value update ${line.length + 1} bytes on the wire`)
    })
})
