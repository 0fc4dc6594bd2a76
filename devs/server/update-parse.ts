// The device door's most common request, read without JSON.parse: a short-form points update exactly as
// the firmware and the load generator write it [P§5a] (src/net/outbox.ts encodeBatch):
//
//   {"r":"/feeds/1","b":{"datastreams":[{"id":"t","datapoints":[{"at":1796611458168,"value":"21.5"},…]},…]},"t":"a1"}
//
// JSON.parse spent ~2 µs of the main thread's ~14 per update on this ~115-byte text (V8 looks up every
// member name in its string table and walks its map transitions for every object); sticky regular
// expressions (native code) and object literals build the same value in a fraction of that (docs/performance-history.md,
// "The main thread's request parse"). Only text of exactly this shape is read here: no whitespace, members
// in this order, strings without a backslash or a control character, numbers in JSON's grammar. Anything
// else (a first request with its "h", the long form, a reordered member, an escape) returns undefined and
// goes to JSON.parse as before, so what a request means never depends on which path read it; the test
// compares the two on the shapes and on mutations of them (test/host/server/update-parse.test.ts).

/** What JSON.parse returns for the same text (a plain object; see parseDeviceUpdate for the token). */
type Parsed = Record<string, unknown>

/** A JSON string without escapes or control characters: its text is its value. */
const STRING = String.raw`"([^"\\\u0000-\u001f]*)"`
/** A JSON number (RFC 8259 §6): Number() of this text is the double JSON.parse makes of it. */
const NUMBER = String.raw`(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)`
/** a datapoint: "at" a number or a string, "value" a string or a number (4 groups) */
const POINT_SOURCE = String.raw`\{"at":(?:${NUMBER}|${STRING}),"value":(?:${STRING}|${NUMBER})\}`
const HEAD_SOURCE = String.raw`\{"r":${STRING},"b":\{"datastreams":\[`
const STREAM_HEAD_SOURCE = String.raw`\{"id":${STRING},"datapoints":\[`
/** after the datastreams' closing bracket: the body's end, then the token, a string or a number (its text) */
const TAIL_SOURCE = String.raw`\},"t":(?:${STRING}|${NUMBER})\}`

/**
 * A device's usual update, one datastream with one point, in one match (one result array: the loop below
 * makes four). Groups: r, id, the point's four, the token's two.
 */
const ONE_POINT = new RegExp(`^${HEAD_SOURCE}${STREAM_HEAD_SOURCE}${POINT_SOURCE}\\]\\}\\]${TAIL_SOURCE}$`)
const HEAD = new RegExp(HEAD_SOURCE, "y")
const STREAM_HEAD = new RegExp(STREAM_HEAD_SOURCE, "y")
const POINT = new RegExp(POINT_SOURCE, "y")
const TAIL = new RegExp(TAIL_SOURCE, "y")

const COMMA = 44
const CLOSE_BRACKET = 93
const CLOSE_BRACE = 125

/**
 * The value JSON.parse(text) would return, when `text` is a short-form points update of the shape above,
 * except that a numeric token is given as the text it was written with (what decodeRequest takes of a
 * numeric token anyway [P§5]: it would otherwise scan the text again for it); undefined otherwise (the
 * caller parses it as before). Never throws.
 */
export function parseDeviceUpdate(text: string): Parsed | undefined {
    const one = ONE_POINT.exec(text)
    if (one !== null) {
        const datapoints = [pointOf(one, 3)]
        return { r: one[1], b: { datastreams: [{ id: one[2], datapoints }] }, t: one[7] !== undefined ? one[7] : one[8] }
    }
    // several points or datastreams (a batch)
    const head = matchAt(HEAD, text, 0)
    if (head === null) return undefined
    let at = head[0].length
    const datastreams: Parsed[] = []
    for (;;) {
        const stream = matchAt(STREAM_HEAD, text, at)
        if (stream === null) return undefined
        at += stream[0].length
        const datapoints: Parsed[] = []
        for (;;) {
            const p = matchAt(POINT, text, at)
            if (p === null) return undefined
            at += p[0].length
            datapoints.push(pointOf(p, 1))
            const c = text.charCodeAt(at++)
            if (c === CLOSE_BRACKET) break
            if (c !== COMMA) return undefined
        }
        if (text.charCodeAt(at++) !== CLOSE_BRACE) return undefined
        datastreams.push({ id: stream[1], datapoints })
        const c = text.charCodeAt(at++)
        if (c === CLOSE_BRACKET) break
        if (c !== COMMA) return undefined
    }
    const tail = matchAt(TAIL, text, at)
    if (tail === null || at + tail[0].length !== text.length) return undefined
    return { r: head[1], b: { datastreams }, t: tail[1] !== undefined ? tail[1] : tail[2] }
}

/** The datapoint of POINT_SOURCE's four groups from `first` on. */
function pointOf(m: RegExpExecArray, first: number): Parsed {
    return { at: m[first] !== undefined ? Number(m[first]) : m[first + 1], value: m[first + 2] !== undefined ? m[first + 2] : Number(m[first + 3]) }
}

/** The sticky expression `re` matched at `at` of `text`, or null. */
function matchAt(re: RegExp, text: string, at: number): RegExpExecArray | null {
    re.lastIndex = at
    return re.exec(text)
}
