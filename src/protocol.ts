// Protocol v1: the string-level envelope codec, shared by the firmware (DeviceScript compiler, TS 4.9,
// no regex/Map/Set/enum, `rec["key"]` on index signatures) and the Node server (imported as
// "../../src/protocol.ts"). This file must stay import-free. Byte framing lives in each side's framer.
// Reference: docs/PROTOCOL.md (section numbers cited as [P§n]).

export const PROTOCOL_VERSION = 1

/** [P§3] one JSON object on the wire; bigger ones are answered 413 and the connection is closed. */
export const MAX_OBJECT_BYTES = 16384
/** [P§3] ESP32 TLS asserts (reboots) on one send of 4096 bytes or more; devices keep each send under this. */
export const DEVICE_MAX_SEND_BYTES = 2048
/**
 * [P§5] the token is echoed back as sent; longer ones are refused so a client cannot make us echo kilobytes.
 * Counted in bytes of UTF-8, the size a runtime holds it in (a DeviceScript string is UTF-8) and the same in
 * every runtime (was: characters, which Node counts in UTF-16 units and DeviceScript in code points).
 */
export const MAX_TOKEN_BYTES = 64
/** [P§5] resource paths are short; the longest legal one is /feeds/<id>/datastreams/<64 chars>/datapoints. */
export const MAX_RESOURCE_CHARS = 256
/** [P§10] Xively's limit on current_value. */
export const MAX_VALUE_CHARS = 32
/** [P§10] datastream ids: 1..64 chars of A-Za-z0-9_.- */
export const MAX_DATASTREAM_ID_CHARS = 64
/** [P§5] nesting deeper than this in a request is refused (Xively bodies are 4 levels deep). */
export const MAX_DEPTH = 8

export type Method = "get" | "put" | "post" | "delete" | "subscribe" | "unsubscribe"
export const METHODS: Method[] = ["get", "put", "post", "delete", "subscribe", "unsubscribe"]

export type Json = any

/** [P§5] a request as both sides see it after decoding; `method` is lower case, `resource` normalised. */
export interface Request {
    method: Method
    resource?: string
    params?: Record<string, string | number | boolean>
    headers?: Record<string, string>
    body?: Json
    token?: string
    /** [P§5a] written in the short form (and answered in it) */
    short?: boolean
}

/**
 * [P§6] a response (the request's token; none when the request had none), a push (same shape, token of
 * a subscription) or a connection notice (`"notice":true`, no token: the server closes next).
 */
export interface Response {
    /** [P§6] only on connection notices; they are told apart by this, never by a missing token */
    notice?: boolean
    token?: string
    status: number
    resource?: string
    body?: Json
    /** [P§5a] the answer to a short-form request: written in the short form, without the resource */
    short?: boolean
}

/**
 * [P§2] the first line the server sends on every connection. The keep-alive values are as the server sent
 * them (positive numbers, else left out); keepaliveFromWelcome (src/keepalive.ts) fills in and derives.
 */
export interface Welcome {
    welcome: string
    session: string
    time: number
    heartbeat?: number
    faulty?: number
    timeout?: number
}

/** Stable error codes; tests assert on these, never on message text. */
export type ErrorCode =
    | "E_BAD_JSON"
    | "E_NOT_OBJECT"
    | "E_TOO_DEEP"
    | "E_BAD_TOKEN"
    | "E_NO_METHOD"
    | "E_BAD_METHOD"
    | "E_NO_RESOURCE"
    | "E_BAD_RESOURCE"
    | "E_BAD_PARAMS"
    | "E_BAD_HEADERS"
    | "E_BAD_LINE"
    | "E_BAD_UTF8"
    | "E_BAD_FORMAT"

export interface ProtocolError {
    code: ErrorCode
    status: number
    /** a reason a person can act on */
    reason: string
    /** the request's token when it could be read, so the error reaches the right caller */
    token?: string
    /** [P§5a] the request was in the short form, so its error is answered in the short form too */
    short?: boolean
}

export interface DecodedRequest {
    request?: Request
    error?: ProtocolError
}

/** What one line from the server turned out to be. */
export interface ServerLine {
    kind: "heartbeat" | "welcome" | "response" | "invalid"
    welcome?: Welcome
    response?: Response
    error?: ProtocolError
}

/**
 * [P§5a] The short form of the envelope, for devices on metered links: the same members under one-letter
 * names, and the hot path's defaults left out ("m" is "put" when absent, an answer's "s" 200). A request
 * is in the short form when it has "m" or "r" and neither "method" nor "resource"; its answer comes in
 * the short form too. Pushes and connection notices keep the long form.
 * This reads a parsed request object's short-form members as the long ones: a new object for a
 * short-form request, else the same one.
 */
export function requestInLongForm(raw: Json): Json {
    if (!isShortRequest(raw)) return raw
    return { method: shortMethod(raw), resource: raw["r"], params: raw["p"], headers: raw["h"], body: raw["b"], token: raw["t"] }
}

/** [P§5a] A parsed request object in the short form: "m" or "r", and neither "method" nor "resource". */
function isShortRequest(raw: Json): boolean {
    return raw["method"] === undefined && raw["resource"] === undefined && (raw["m"] !== undefined || raw["r"] !== undefined)
}

/** [P§5a] A short-form request's method: "put" when it has no "m". */
function shortMethod(raw: Json): Json {
    return raw["m"] === undefined ? "put" : raw["m"]
}

function fail(code: ErrorCode, status: number, reason: string, token?: string): DecodedRequest {
    const error: ProtocolError = { code: code, status: status, reason: reason }
    if (token !== undefined) error.token = token
    return { error: error }
}

function isPlainObject(v: Json): boolean {
    return v !== null && typeof v === "object" && !Array.isArray(v)
}

/**
 * [P§5] True when the JSON text nests arrays and objects deeper than `maxDepth`. Measured on the text,
 * without recursion, so every door can run it before anything recursive does (a body 5000 levels deep
 * would overflow the stack of JSON.stringify or of a recursive walk). Brackets inside strings do not count.
 */
export function jsonDepthExceeds(text: string, maxDepth: number): boolean {
    // most requests hold fewer brackets than the limit in all: counted by the runtime's indexOf, not in bytecode
    if (!hasMoreOpenersThan(text, maxDepth)) return false
    let depth = 0
    let inString = false
    for (let i = 0; i < text.length; ++i) {
        const c = text.charCodeAt(i)
        if (inString) {
            if (c === 92) ++i // backslash: the next character is escaped
            else if (c === 34) inString = false
        } else if (c === 34) inString = true
        else if (c === 123 || c === 91) {
            if (++depth > maxDepth) return true
        } else if (c === 125 || c === 93) --depth
    }
    return false
}

/** True when `text` holds more than `n` opening brackets ({ or [) in all, in strings or not. */
function hasMoreOpenersThan(text: string, n: number): boolean {
    let count = 0
    for (let at = text.indexOf("{"); at >= 0; at = text.indexOf("{", at + 1)) if (++count > n) return true
    for (let at = text.indexOf("["); at >= 0; at = text.indexOf("[", at + 1)) if (++count > n) return true
    return false
}

/** [P§5] A UTF-16 surrogate without its partner: no character at all, and not storable as UTF-8. */
function hasLoneSurrogate(s: string): boolean {
    for (let i = 0; i < s.length; ++i) {
        const c = s.charCodeAt(i)
        if (c < 0xd800 || c > 0xdfff) continue
        if (c > 0xdbff) return true // a low surrogate first
        const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0
        if (next < 0xdc00 || next > 0xdfff) return true
        ++i
    }
    return false
}

/** True when a string anywhere in `v` (a member name too) holds a lone surrogate. `v` is shallow (depth checked). */
function holdsLoneSurrogate(v: Json): boolean {
    if (typeof v === "string") return hasLoneSurrogate(v)
    if (v === null || typeof v !== "object") return false
    if (Array.isArray(v)) {
        for (let i = 0; i < v.length; ++i) if (holdsLoneSurrogate(v[i])) return true
        return false
    }
    const keys = Object.keys(v)
    for (let i = 0; i < keys.length; ++i) if (hasLoneSurrogate(keys[i]) || holdsLoneSurrogate(v[keys[i]])) return true
    return false
}

/** A-Za-z0-9_.- (by ranges from the top: the DeviceScript compiler spends a stored value on every && and ||) */
function isIdChar(c: number): boolean {
    if (c >= 97) return c <= 122 // a-z
    if (c >= 65) return c <= 90 || c === 95 // A-Z, _
    if (c >= 48) return c <= 57 // 0-9
    return c === 46 || c === 45 // . -
}

/**
 * [P§10] 1..64 characters of A-Za-z0-9_.-, and a name a resource can carry: not "." or ".." (refused
 * as path segments), not ending in ".json" (removed from a resource as its suffix) nor in a format
 * suffix such as ".csv" (answered 406).
 */
export function isDatastreamId(id: Json): boolean {
    if (typeof id !== "string" || id.length < 1 || id.length > MAX_DATASTREAM_ID_CHARS) return false
    for (let i = 0; i < id.length; ++i) if (!isIdChar(id.charCodeAt(i))) return false
    // (slice, not endsWith: the firmware image would carry endsWith's library code for this one use)
    return id !== "." && id !== ".." && id.slice(id.length - 5) !== ".json" && formatSuffixOf(id) === undefined
}

/**
 * [P§5] `r` without a trailing "/" (unless it is "/"), then without a ".json" suffix: what normalizeResource
 * changes in a valid path. The firmware's subscriptions make only these changes (their pushes name the resource
 * in its normal form); the whole check would cost its image ~500 B of code.
 */
export function trimResource(r: string): string {
    let n = r.length
    if (n > 1) if (r.charCodeAt(n - 1) === 47) r = r.slice(0, --n)
    if (r.slice(n - 5) === ".json") r = r.slice(0, n - 5)
    return r
}

/**
 * [P§5] Normalises a resource path, or returns undefined when it is not one.
 * Accepts `/feeds/504`, `/feeds/504/`, `/feeds/504.json`; refuses empty, `.` and `..` segments,
 * percent-escapes, backslashes, NUL and anything outside A-Za-z0-9_.- between slashes.
 */
export function normalizeResource(resource: Json): string | undefined {
    if (typeof resource !== "string") return undefined
    let r: string = resource
    if (r.length < 1 || r.length > MAX_RESOURCE_CHARS || r.charCodeAt(0) !== 47) return undefined
    r = trimResource(r)
    // the suffix is removed once; "/x.json.json" would normalise to "/x.json", which a second
    // decoding would change again, so the normal form would not be stable
    if (r.endsWith(".json")) return undefined
    if (r === "/" || r === "") return "/"
    // segment by segment, in place (every request names a resource: no list of segments is made)
    let segmentStart = 1
    for (let i = 1; i <= r.length; ++i) {
        const c = i < r.length ? r.charCodeAt(i) : 47 // the end closes the last segment
        if (c !== 47) {
            if (!isIdChar(c)) return undefined
            continue
        }
        const n = i - segmentStart
        // empty, "." and ".." segments are refused
        if (n === 0 || (n <= 2 && r.charCodeAt(segmentStart) === 46 && (n === 1 || r.charCodeAt(segmentStart + 1) === 46))) return undefined
        segmentStart = i + 1
    }
    return r
}

/** [P§5] Format suffixes of the Xively API other than .json; a resource ending in one is answered 406. */
const OTHER_FORMATS = ["xml", "csv"]

/** The format a resource asks for with a suffix other than .json ("xml", "csv"), else undefined. */
export function formatSuffixOf(resource: Json): string | undefined {
    if (typeof resource !== "string") return undefined
    let r: string = resource
    if (r.length > 1 && r.charCodeAt(r.length - 1) === 47) r = r.slice(0, r.length - 1)
    const dot = r.lastIndexOf(".")
    if (dot < 0 || r.indexOf("/", dot) >= 0) return undefined
    const suffix = r.slice(dot + 1).toLowerCase()
    return OTHER_FORMATS.indexOf(suffix) >= 0 ? suffix : undefined
}

/** Splits a normalised resource into its segments: "/feeds/1/datastreams/t" -> ["feeds","1","datastreams","t"]. */
export function resourceSegments(resource: string): string[] {
    if (resource === "/") return []
    return resource.slice(1).split("/")
}

/** True when `changed` is `subscribed` or lies under it ([P§8] "R or anything under it"). */
export function resourceCovers(subscribed: string, changed: string): boolean {
    if (subscribed === changed) return true
    if (subscribed === "/") return true
    // (one test a line, and slice, not startsWith: in the firmware image an || or && costs ~9 B of code, startsWith its library code)
    if (changed.charCodeAt(subscribed.length) !== 47) return false
    return changed.slice(0, subscribed.length) === subscribed
}

/**
 * [P§8] Whether a 200 under a subscription's token is one of its pushes: every push names what changed (`body.id`),
 * the subscribe's answer nothing. Told apart so, a push that comes before the answer is not taken for it (the
 * firmware, the client library, the dashboard page).
 */
export function namesAChange(body: Json): boolean {
    if (!body) return false
    return body["id"] !== undefined
}

/**
 * [P§8] Whether a push under a subscription's token (or its final push) is that subscription's: it names the
 * subscribed resource, one under it, one above it (a feed's deletion, to a subscription to one of its datastreams),
 * or nothing. Another (a server that mixed up its subscriptions) is foreign: not handled, no cursor moved, nothing
 * ended (`E_FOREIGN_PUSH`). The one check of the firmware, the client library and the dashboard page.
 */
export function pushIsFor(subscribed: string, named: string | undefined): boolean {
    if (named === undefined) return true
    if (resourceCovers(subscribed, named)) return true
    return resourceCovers(named, subscribed)
}

function isSpace(c: number): boolean {
    return c === 32 || c === 10 || c === 13 || c === 9
}

/**
 * [P§5] A numeric token's text as the request wrote it: the value of the last top-level member `name`
 * (the one JSON.parse kept). A double would change it (12345678901234567890, 1e3, 1.50, -0; DeviceScript
 * prints 7 significant digits), and the client matches its response by the token it sent. `text` parsed
 * as one JSON object, so it is well formed: only strings and brackets need telling apart.
 */
function numberTextOf(text: string, name: string): string {
    let depth = 0
    let found = ""
    for (let i = 0; i < text.length; ++i) {
        const c = text.charCodeAt(i)
        if (c === 123 || c === 91) ++depth
        else if (c === 125 || c === 93) --depth
        else if (c === 34) {
            const start = i
            let escaped = false
            while (text.charCodeAt(++i) !== 34) {
                if (text.charCodeAt(i) === 92) {
                    ++i
                    escaped = true
                }
            }
            let at = i + 1
            while (isSpace(text.charCodeAt(at))) ++at
            if (depth !== 1 || text.charCodeAt(at) !== 58) continue
            // a member name of the request object itself (a string followed by ':'), the name perhaps \u-escaped
            // (parsed then; without a backslash its text is its name)
            if ((escaped ? JSON.parse(text.slice(start, i + 1)) : text.slice(start + 1, i)) !== name) continue
            ++at
            while (isSpace(text.charCodeAt(at))) ++at
            let end = at
            while (end < text.length && "+-.0123456789Ee".indexOf(text.charAt(end)) >= 0) ++end
            found = text.slice(at, end)
        }
    }
    return found
}

/**
 * [P§5] Decodes one request object (the text of one JSON object, as the server's framer cut it).
 * Unknown fields are ignored. Never throws. `fromBytes`: the text was decoded from bytes (UTF-8), so it
 * holds no lone surrogate itself and only a \u escape could make one; without a \u the search is skipped.
 * `shallow`: the caller measured the text's nesting as jsonDepthExceeds does and it is within MAX_DEPTH
 * (the server's framer counts brackets as it cuts the object): it is not measured again. `parsed`: the
 * caller's reading of `text`, taken instead of JSON.parse's (the server's parseDeviceUpdate, for its most
 * common request): JSON.parse's value, a numeric token perhaps given as the text it was written with.
 */
export function decodeRequest(text: string, fromBytes?: boolean, shallow?: boolean, parsed?: Json): DecodedRequest {
    // measured before parsing; the error waits for the token, which parsing (not recursive) reads
    const tooDeep = shallow === true ? false : jsonDepthExceeds(text, MAX_DEPTH)
    let raw: Json = parsed
    if (raw === undefined) {
        try {
            raw = JSON.parse(text)
        } catch (e) {
            return fail("E_BAD_JSON", 400, "the request is not valid JSON; send one JSON object per request")
        }
    }
    if (!isPlainObject(raw)) return fail("E_NOT_OBJECT", 400, "a request must be a JSON object with method and resource")

    // [P§5a] the short form, read as the long one (member by member: no long-form object is made)
    const short = isShortRequest(raw)
    const decoded = decodeRequestObject(text, raw, short, fromBytes === true, tooDeep)
    // [P§5a] a short-form request is answered in the short form, its errors too
    if (short && decoded.error) decoded.error.short = true
    return decoded
}

/** decodeRequest's checks of a parsed request object, in the short form or not. */
function decodeRequestObject(text: string, raw: Json, short: boolean, fromBytes: boolean, tooDeep: boolean): DecodedRequest {
    let token: string | undefined = undefined
    const rawToken = short ? raw["t"] : raw["token"]
    if (rawToken !== undefined && rawToken !== null) {
        if (typeof rawToken === "number") token = numberTextOf(text, short ? "t" : "token")
        else if (typeof rawToken === "string") token = rawToken
        else return fail("E_BAD_TOKEN", 400, "token must be a string of at most " + MAX_TOKEN_BYTES + " bytes of UTF-8, or a number")
        // most tokens are short: a string of at most a quarter of the limit in UTF-16 units is at most the limit in UTF-8
        if (token.length > MAX_TOKEN_BYTES / 4) {
            const bytes = utf8ByteLength(token)
            if (bytes > MAX_TOKEN_BYTES) return fail("E_BAD_TOKEN", 400, "token is " + bytes + " bytes of UTF-8; at most " + MAX_TOKEN_BYTES + " are allowed (64 ASCII characters)")
        }
    }
    if (tooDeep) return fail("E_TOO_DEEP", 400, "the request nests more than " + MAX_DEPTH + " levels deep", token)
    // a short-form request's unknown members are not read, so not checked either
    if ((!fromBytes || text.indexOf("\\u") >= 0) && holdsLoneSurrogate(short ? requestInLongForm(raw) : raw)) {
        // a token that is no Unicode text is not echoed: the answer would hold what the server refuses, and a strict
        // client's parser (DeviceScript's, serde_json) could not read it at all; answered as an unreadable token is
        if (token !== undefined) if (hasLoneSurrogate(token)) token = undefined
        return fail("E_BAD_UTF8", 400, "the request holds a lone UTF-16 surrogate (such as \\ud800 without its pair), which is no character; send valid Unicode text", token)
    }

    const rawMethod = short ? shortMethod(raw) : raw["method"]
    if (rawMethod === undefined || rawMethod === null || rawMethod === "") {
        return fail("E_NO_METHOD", 400, "method is missing; use one of " + METHODS.join(", "), token)
    }
    const method: Method | undefined = typeof rawMethod === "string" ? (rawMethod.toLowerCase() as Method) : undefined
    if (method === undefined || METHODS.indexOf(method) < 0) {
        return fail("E_BAD_METHOD", 405, "method must be one of " + METHODS.join(", "), token)
    }

    const req: Request = { method: method }
    const rawResource = short ? raw["r"] : raw["resource"]
    if (rawResource === undefined || rawResource === null) {
        // [P§8] unsubscribe without a resource removes every subscription of the connection
        if (method !== "unsubscribe") return fail("E_NO_RESOURCE", 400, "resource is missing, e.g. \"/feeds/504\"", token)
    } else {
        const format = formatSuffixOf(rawResource)
        if (format !== undefined) {
            return fail("E_BAD_FORMAT", 406, "only JSON is served, not " + format + "; leave out the ." + format + " suffix (`feedline history --csv` writes CSV)", token)
        }
        const resource = normalizeResource(rawResource)
        if (resource === undefined) {
            return fail(
                "E_BAD_RESOURCE",
                400,
                "resource must be a path such as /feeds/504/datastreams/temp: segments of A-Za-z0-9_.- separated by /, no . or .. segments, at most " +
                    MAX_RESOURCE_CHARS +
                    " characters",
                token
            )
        }
        req.resource = resource
    }

    const rawParams = short ? raw["p"] : raw["params"]
    if (rawParams !== undefined && rawParams !== null) {
        if (!isPlainObject(rawParams)) return fail("E_BAD_PARAMS", 400, "params must be an object of query parameters", token)
        const keys = Object.keys(rawParams)
        for (let i = 0; i < keys.length; ++i) {
            const v = rawParams[keys[i]]
            const t = typeof v
            // a number too large for a double (1e400) parses as Infinity, which JSON cannot carry on
            if ((t !== "string" && t !== "number" && t !== "boolean") || (t === "number" && v - v !== 0)) {
                return fail("E_BAD_PARAMS", 400, "params." + keys[i] + " must be a string, a finite number or a boolean", token)
            }
        }
        if (keys.length) req.params = rawParams
    }

    const rawHeaders = short ? raw["h"] : raw["headers"]
    if (rawHeaders !== undefined && rawHeaders !== null) {
        if (!isPlainObject(rawHeaders)) return fail("E_BAD_HEADERS", 400, "headers must be an object such as {\"X-ApiKey\":\"...\"}", token)
        const keys = Object.keys(rawHeaders)
        for (let i = 0; i < keys.length; ++i) {
            if (typeof rawHeaders[keys[i]] !== "string") return fail("E_BAD_HEADERS", 400, "headers." + keys[i] + " must be a string", token)
        }
        if (keys.length) req.headers = rawHeaders
    }

    const body = short ? raw["b"] : raw["body"]
    // a bare non-finite number (1e400) would be encoded as null, i.e. as no body: drop it now
    if (body !== undefined && body !== null && !(typeof body === "number" && body - body !== 0)) req.body = body
    if (token !== undefined) req.token = token
    if (short) req.short = true
    return { request: req }
}

/** [P§7] The API key a request carries, whatever the header's case. */
export function apiKeyOf(req: Request): string | undefined {
    const h = req.headers
    if (!h) return undefined
    const keys = Object.keys(h)
    for (let i = 0; i < keys.length; ++i) if (keys[i].toLowerCase() === "x-apikey") return h[keys[i]]
    return undefined
}

/**
 * [P§10] Whether JSON text holds the escape \uFFFE or \uFFFF (any case) in a string. The DeviceScript
 * runtime's JSON.parse panics on either (a VM panic: the board reboots, and a subscription's replay would
 * bring it again after every reboot), so a line holding one is a bad line in both runtimes. The server
 * stores neither (controlOrUnparsableAt); an older server, or another, may send them.
 */
function holdsUnparsableEscape(text: string): boolean {
    for (let at = text.indexOf("\\u"); at >= 0; at = text.indexOf("\\u", at + 1)) {
        // an escape only after an odd run of backslashes (JSON text \\uffff is a backslash, then "uffff")
        // (charCodeAt before the text's start is no backslash)
        let run = 1
        while (text.charCodeAt(at - run) === 92) ++run
        const hex = text.slice(at + 2, at + 6).toLowerCase()
        if (run % 2 && (hex === "fffe" || hex === "ffff")) return true
    }
    return false
}

/** [P§6] A server line that is not one: E_BAD_LINE with why. */
function badLine(reason: string): ServerLine {
    return { kind: "invalid", error: { code: "E_BAD_LINE", status: 0, reason: reason } }
}

/** [P§2, P§6] Decodes one line the server sent (without its "\n"). Never throws. */
export function decodeServerLine(line: string): ServerLine {
    // nothing but spaces, tabs and CRs: a heartbeat
    for (let i = 0; ; ++i) {
        if (i === line.length) return { kind: "heartbeat" }
        const c = line.charCodeAt(i)
        if (c !== 32 && c !== 9 && c !== 13) break
    }
    let o: Json
    try {
        // not JSON to this runtime either: its JSON.parse panics on them
        if (holdsUnparsableEscape(line)) throw line
        o = JSON.parse(line)
    } catch (e) {
        return badLine("server line is not JSON")
    }
    if (!isPlainObject(o)) return badLine("server line is not an object")
    if (typeof o["welcome"] === "string" && typeof o["session"] === "string" && typeof o["time"] === "number") {
        const welcome: Welcome = { welcome: o["welcome"], session: o["session"], time: o["time"] }
        // the keep-alive values the server sent as positive numbers; anything else is left out
        for (const name of ["heartbeat", "faulty", "timeout"]) {
            const v = o[name]
            if (typeof v === "number" && v > 0) (welcome as Json)[name] = v
        }
        return { kind: "welcome", welcome: welcome }
    }
    // [P§5a] the short form: only "t", "s" and "b", with "s" 200 when absent; read as the long one
    const short = o["status"] === undefined && isShortAnswer(o)
    if (short) o = { status: o["s"] === undefined ? 200 : o["s"], token: o["t"], body: o["b"] } // a short answer names no resource
    if (typeof o["status"] !== "number") return badLine("server line has no status")
    const resp: Response = { status: o["status"] }
    if (o["notice"] === true) resp.notice = true
    if (typeof o["token"] === "string") resp.token = o["token"]
    if (typeof o["resource"] === "string") resp.resource = o["resource"]
    if (o["body"] !== undefined) resp.body = o["body"]
    if (short) resp.short = true
    return { kind: "response", response: resp }
}

/** [P§5a] An object of the short answer's members only ("t", "s", "b"), "s" a number if present. */
function isShortAnswer(o: Json): boolean {
    for (const k of Object.keys(o)) if (k !== "t" && k !== "s" && k !== "b") return false
    return o["s"] === undefined || typeof o["s"] === "number"
}

const HEX = "0123456789abcdef"

/**
 * [P§5] The length of `s` in bytes of UTF-8. A DeviceScript string knows it; elsewhere it is counted: a
 * surrogate pair is 4 bytes, a lone surrogate 3 (as it would be written), a runtime whose charCodeAt yields
 * code points above U+FFFF 4 for each.
 */
export function utf8ByteLength(s: string): number {
    const known = (s as Json)["byteLength"]
    if (typeof known === "number") return known
    let n = 0
    for (let i = 0; i < s.length; ++i) {
        const c = s.charCodeAt(i)
        if (c < 0x80) n += 1
        else if (c < 0x800) n += 2
        else if (c > 0xffff) n += 4
        else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) < 0xe000) {
            n += 4
            ++i
        } else n += 3
    }
    return n
}

function hex4(c: number): string {
    return "\\u" + HEX.charAt((c >> 12) & 15) + HEX.charAt((c >> 8) & 15) + HEX.charAt((c >> 4) & 15) + HEX.charAt(c & 15)
}

/** [P§3] A JSON string literal, printable ASCII only: control, DEL and non-ASCII characters are written as \uXXXX. */
export function quote(s: string): string {
    let out = "\""
    let start = 0
    for (let i = 0; i < s.length; ++i) {
        const c = s.charCodeAt(i)
        if (c >= 32 && c < 127 && c !== 34 && c !== 92) continue
        if (i > start) out += s.slice(start, i)
        start = i + 1
        if (c === 34) out += "\\\""
        else if (c === 92) out += "\\\\"
        else if (c === 10) out += "\\n"
        else if (c === 13) out += "\\r"
        else if (c === 9) out += "\\t"
        else if (c > 0xffff) {
            // runtimes whose charCodeAt yields code points: write a UTF-16 surrogate pair
            const v = c - 0x10000
            out += hex4(0xd800 + (v >> 10)) + hex4(0xdc00 + (v & 0x3ff))
        } else out += hex4(c)
    }
    if (start < s.length) out += s.slice(start)
    return out + "\""
}

/**
 * [P§3] Compact, ASCII-only JSON, the same bytes in both runtimes: keys keep insertion order, undefined
 * members are left out, non-finite numbers become null. The runtime's native JSON.stringify where its
 * output is provably encodeByHand's: pure ASCII (by DeviceScript's own UTF-8 count), not one backslash (so
 * no string held a quote, a backslash, a control character or, in the DeviceScript simulator, which
 * escapes each UTF-8 byte of it, a non-ASCII one: there the runtimes differ from each other and from
 * this encoder), no DEL (which both leave raw) and no `undefined` (DeviceScript writes an undefined
 * array element so). Numbers print alike on either path (DeviceScript: 7 significant digits both ways).
 * Anything else is encoded by hand.
 */
export function encode(v: Json): string {
    const native = JSON.stringify(v)
    if (typeof native !== "string" || native.indexOf("\\") >= 0 || native.indexOf("undefined") >= 0 || native.indexOf("\u007f") >= 0) return encodeByHand(v)
    // one UTF-8 byte per character: DeviceScript strings know their UTF-8 length (a loop would run in
    // bytecode); Node and the browsers (the dashboard page runs this file too) loop, which their JIT does in nanoseconds
    const utf8Bytes = (native as Json)["byteLength"]
    if (typeof utf8Bytes === "number") return utf8Bytes === native.length ? native : encodeByHand(v)
    for (let i = 0; i < native.length; ++i) if (native.charCodeAt(i) > 127) return encodeByHand(v)
    return native
}

/** [P§3] encode(), written out character by character (strings through quote()): the same bytes in both runtimes. */
export function encodeByHand(v: Json): string {
    if (v === undefined) return "null"
    if (typeof v === "string") return quote(v)
    // null, booleans and numbers (non-finite ones as null): the runtime's own text, as on the native path
    if (v === null || typeof v !== "object") return JSON.stringify(v)
    if (Array.isArray(v)) {
        let out = "["
        for (let i = 0; i < v.length; ++i) {
            if (i) out += ","
            out += encodeByHand(v[i]) // an undefined element as null
        }
        return out + "]"
    }
    let out = "{"
    const keys = Object.keys(v)
    for (let i = 0; i < keys.length; ++i) {
        const item = v[keys[i]]
        if (item === undefined || typeof item === "function") continue
        if (out.length > 1) out += ","
        out += quote(keys[i]) + ":" + encodeByHand(item)
    }
    return out + "}"
}

/** [P§5] One compact request line, in canonical member order (the long form; encodeShortRequest writes the short one). */
export function encodeRequest(req: Request): string {
    return encode({
        method: req.method,
        resource: req.resource,
        params: req.params,
        headers: req.headers,
        body: req.body,
        token: req.token,
    })
}

/**
 * [P§5a] One request line in the short form. Its own function, not a branch of encodeRequest: the
 * firmware writes only this form, so its images carry no long-form writer (their code budget is tight).
 */
export function encodeShortRequest(req: Request): string {
    return encode({ m: req.method === "put" ? undefined : req.method, r: req.resource, p: req.params, h: req.headers, b: req.body, t: req.token })
}

/**
 * [P§6] One compact response line, in canonical member order (a notice's marker first). The answer to a
 * short-form request [P§5a] (`resp.short`) is short too: {"t":…,"s":…,"b":…}, without the resource the
 * device named itself and without "s" when it is 200. A notice is never short.
 */
export function encodeResponse(resp: Response): string {
    if (resp.short === true && resp.notice !== true) {
        // the hot path's answer, a 200 without a body, is its token alone: the same text, without an object to encode
        // (quote() writes what encode() writes for a string, and a short token needs no native pass and checks)
        if (resp.status === 200 && resp.body === undefined && typeof resp.token === "string") return "{\"t\":" + quote(resp.token) + "}"
        return encode({ t: resp.token, s: resp.status === 200 ? undefined : resp.status, b: resp.body })
    }
    return encode({ notice: resp.notice === true ? true : undefined, token: resp.token, status: resp.status, resource: resp.resource, body: resp.body })
}

/** [P§6] A connection notice (the server closes next), not a response: marked, whatever its token. */
export function isNotice(resp: Response): boolean {
    return resp.notice === true
}

/** [P§2] The welcome line. */
export function encodeWelcome(w: Welcome): string {
    return encode({
        welcome: w.welcome,
        session: w.session,
        time: w.time,
        heartbeat: w.heartbeat,
        faulty: w.faulty,
        timeout: w.timeout,
    })
}

/** [P§6] The body of every error response; `code` is the stable E_* code programs test. */
export function errorBody(title: string, reason: string, code?: string): Json {
    return { title: title, errors: reason, code: code }
}

/**
 * [P§10] The index of the first character in `s` that values, titles and names may not hold, or -1: a
 * control character (U+0000-U+001F, U+007F-U+009F: a device prints and parses what it is pushed, where NUL
 * ends a C string and ESC or CR rewrite a terminal's line; PostgreSQL cannot store U+0000), or U+FFFE or
 * U+FFFF, whose escapes the DeviceScript runtime's JSON.parse panics on (holdsUnparsableEscape).
 */
export function controlOrUnparsableAt(s: string): number {
    for (let i = 0; i < s.length; ++i) {
        const c = s.charCodeAt(i)
        if (c < 32 || (c > 126 && c < 160) || (c | 1) === 0xffff) return i
    }
    return -1
}

/** [P§10] A value as stored: strings as they are, numbers as their text; undefined when not acceptable. */
export function valueText(v: Json): string | undefined {
    let s: string
    if (typeof v === "string") {
        if (controlOrUnparsableAt(v) >= 0) return undefined
        s = v
    } else if (typeof v === "number" && v - v === 0) s = "" + v
    else if (typeof v === "boolean") s = v ? "1" : "0"
    else return undefined
    return s.length <= MAX_VALUE_CHARS ? s : undefined
}
