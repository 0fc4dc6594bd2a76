// [P§3] Client -> server framing: a stream of JSON objects, whitespace and newlines allowed between and
// inside them (pretty-printed requests pasted into `openssl s_client` work). A byte-level state machine:
// feed() it chunks of any size (1 byte, half an object, three objects) and it returns what it cut
// (feedTo() hands the same to a sink, without a list per chunk).
// It only finds object boundaries (braces outside strings), checks that an object is UTF-8 and says
// whether it nests deeper than MAX_DEPTH (so decodeRequest need not measure it again); JSON.parse in
// decodeRequest judges the rest. A bad line (anything but an object where one should
// start, or a string running past the end of its line) is reported once and skipped to its end: the
// next line is read afresh, so a typo in a by-hand session costs that line only.
import { isUtf8 } from "node:buffer"
import { MAX_DEPTH } from "../../src/protocol.ts"
import { MAX_OBJECT_BYTES } from "./limits.ts"

export type FramerEvent =
    /** one complete top-level object, as text; `badUtf8`: its bytes are not UTF-8 (the text holds U+FFFD in their place) */
    | { kind: "object"; text: string; bytes: number; badUtf8?: true }
    /** [P§3] a bad line, once, with why: non-whitespace where an object should start, or a raw newline inside a string; skipped to its end */
    | { kind: "garbage"; reason: string }
    /** the current object passed MAX_OBJECT_BYTES; the framer is finished (the stream position is lost) */
    | { kind: "oversize"; bytes: number }

const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const QUOTE = 0x22
const BACKSLASH = 0x5c
const NEWLINE = 0x0a

function isWhitespace(b: number): boolean {
    return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}

/**
 * Bytes inside an object that change none of the framer's state, one table for inside strings and one
 * for outside (1: plain): ASCII, and in a string neither its end, an escape nor a newline; outside strings
 * no bracket and no quote. A table lookup per byte instead of a chain of comparisons.
 */
const PLAIN_IN_STRING = plainBytes([QUOTE, BACKSLASH, NEWLINE])
const PLAIN_OUTSIDE = plainBytes([QUOTE, OPEN_BRACE, CLOSE_BRACE, OPEN_BRACKET, CLOSE_BRACKET])

function plainBytes(special: number[]): Uint8Array {
    const t = new Uint8Array(256)
    t.fill(1, 0, 0x80)
    for (const b of special) t[b] = 0
    return t
}

/** The first byte of a bad line, readable, so a person sees which line it was (only that byte: the report must not depend on how the stream was cut). */
function firstOf(b: number): string {
    return b > 0x20 && b < 0x7f ? JSON.stringify(String.fromCharCode(b)) : `byte 0x${b.toString(16).padStart(2, "0")}`
}

function badLineReason(first: number): string {
    return `expected a JSON object starting with {, not a line starting with ${firstOf(first)}; the rest of this line was skipped`
}

/**
 * A UTF-8 byte order mark, which some clients write before their first byte (.NET's StreamWriter with
 * Encoding.UTF8 does): skipped at the start of the stream, as RFC 8259 §8.1 allows. Read as a bad line, it
 * cost the client its first request, usually the one that carried its key.
 */
const UTF8_BOM = [0xef, 0xbb, 0xbf]

/** Where a framer hands what it cuts (the session implements it: no event object or list per request). */
export interface FramerSink {
    /**
     * one complete top-level object, as text; `badUtf8`: its bytes are not UTF-8 (the text holds U+FFFD in their
     * place); `shallow`: it nests at most MAX_DEPTH levels (measured on its bytes as jsonDepthExceeds measures text)
     */
    framedObject(text: string, bytes: number, badUtf8: boolean, shallow: boolean): void
    /** [P§3] a bad line, once, with why; skipped to its end */
    framedGarbage(reason: string): void
    /** the current object passed the size limit; the framer is finished */
    framedOversize(bytes: number): void
}

/** Collects what a framer cuts as events (feed()). */
class EventList implements FramerSink {
    readonly events: FramerEvent[] = []
    framedObject(text: string, bytes: number, badUtf8: boolean): void {
        this.events.push(badUtf8 ? { kind: "object", text, bytes, badUtf8: true } : { kind: "object", text, bytes })
    }
    framedGarbage(reason: string): void {
        this.events.push({ kind: "garbage", reason })
    }
    framedOversize(bytes: number): void {
        this.events.push({ kind: "oversize", bytes })
    }
}

export class ObjectFramer {
    /** nesting depth; 0 = between objects */
    private depth = 0
    private inString = false
    private escaped = false
    /** inside a bad line already reported: skipping to its end */
    private inGarbage = false
    /** the current object holds a byte above 0x7f (else it is ASCII: no UTF-8 check, no copy to decode it) */
    private nonAscii = false
    /** the current object nests deeper than MAX_DEPTH (brackets outside strings, as jsonDepthExceeds counts them) */
    private deep = false
    /** pieces of the current object from earlier chunks */
    private parts: Buffer[] = []
    private partsBytes = 0
    private finished = false
    /** bytes of a leading UTF8_BOM seen so far; -1 once the stream's start is behind */
    private bomAt = 0

    constructor(private readonly maxObjectBytes = MAX_OBJECT_BYTES) {}

    /** What `chunk` completes, as a list of events. */
    feed(chunk: Buffer): FramerEvent[] {
        const list = new EventList()
        this.feedTo(chunk, list)
        return list.events
    }

    /** What `chunk` completes, handed to `sink` in stream order (the sink may not feed this framer). */
    feedTo(chunk: Buffer, sink: FramerSink): void {
        if (this.finished) return
        let start = this.depth > 0 ? 0 : -1 // where the current object starts in this chunk
        const n = chunk.length
        for (let i = this.bomAt >= 0 ? this.skipBom(chunk, sink) : 0; i < n; ++i) {
            let b = chunk[i]
            const plain = this.inString ? PLAIN_IN_STRING : PLAIN_OUTSIDE
            if (this.depth > 0 && !this.escaped && plain[b] === 1) {
                // the hot path: a run of bytes that change nothing (most of a request, in strings and out),
                // skipped in a tight loop up to the first one that does or that would pass the size limit
                const end = Math.min(n, start + this.maxObjectBytes - this.partsBytes)
                if (i < end) {
                    while (++i < end && plain[chunk[i]] === 1);
                    if (i === n) break
                    b = chunk[i]
                }
            }
            if (this.depth === 0) {
                if (this.inGarbage) {
                    if (b === NEWLINE) this.inGarbage = false // the next line is read afresh
                } else if (b === OPEN_BRACE) {
                    this.depth = 1
                    start = i
                } else if (!isWhitespace(b)) {
                    this.inGarbage = true
                    sink.framedGarbage(badLineReason(b))
                }
                continue
            }
            if (b > 0x7f) this.nonAscii = true
            if (this.inString) {
                if (this.escaped) this.escaped = false
                else if (b === BACKSLASH) this.escaped = true
                else if (b === QUOTE) this.inString = false
                else if (b === NEWLINE) {
                    // JSON strings cannot hold a raw newline: this object is broken; the next line is read afresh
                    this.reset()
                    sink.framedGarbage("a string ran past the end of its line (a missing \"?); this request was skipped")
                    start = -1
                    continue // nothing of a broken object counts towards the size limit
                }
            } else if (b === QUOTE) this.inString = true
            else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
                if (++this.depth > MAX_DEPTH) this.deep = true
            } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
                if (--this.depth === 0) {
                    const bytes = this.partsBytes + (i + 1 - start)
                    if (bytes > this.maxObjectBytes) return this.overflow(sink, bytes)
                    const shallow = !this.deep
                    if (!this.nonAscii && this.parts.length === 0) {
                        // ASCII in one chunk (the hot path): UTF-8 by construction, decoded straight from the chunk
                        const text = chunk.toString("latin1", start, i + 1)
                        this.reset()
                        sink.framedObject(text, bytes, false, shallow)
                    } else {
                        const last = chunk.subarray(start, i + 1)
                        const whole = this.parts.length ? Buffer.concat([...this.parts, last]) : last
                        this.reset()
                        // [P§5] toString would put U+FFFD in place of bad bytes, and that would be stored as if it had been sent
                        sink.framedObject(whole.toString("utf8"), bytes, !isUtf8(whole), shallow)
                    }
                    start = -1
                    continue
                }
            }
            if (this.partsBytes + (i - start + 1) > this.maxObjectBytes) return this.overflow(sink, this.partsBytes + (i - start + 1))
        }
        if (this.depth > 0 && start >= 0) {
            // keep a copy: the caller may reuse the chunk's memory
            const rest = Buffer.from(chunk.subarray(start))
            this.parts.push(rest)
            this.partsBytes += rest.length
        }
    }

    /** At the stream's start: skips what `chunk` holds of a UTF8_BOM; the index of its first byte after that. */
    private skipBom(chunk: Buffer, sink: FramerSink): number {
        let i = 0
        while (i < chunk.length && this.bomAt >= 0) {
            if (chunk[i] === UTF8_BOM[this.bomAt]) {
                ++i
                if (++this.bomAt === UTF8_BOM.length) this.bomAt = -1
                continue
            }
            // the start of one but not one: a bad line from its first byte, as without this
            if (this.bomAt > 0) {
                this.inGarbage = true
                sink.framedGarbage(badLineReason(UTF8_BOM[0]))
            }
            this.bomAt = -1
        }
        return i
    }

    /** bytes held for an unfinished object */
    get pendingBytes(): number {
        return this.partsBytes
    }

    private overflow(sink: FramerSink, bytes: number): void {
        this.reset()
        this.finished = true
        sink.framedOversize(bytes)
    }

    private reset(): void {
        this.depth = 0
        this.inString = false
        this.escaped = false
        this.nonAscii = false
        this.deep = false
        if (this.parts.length) this.parts = []
        this.partsBytes = 0
    }
}

/**
 * [P§3] How many whole objects `text` holds one after another, whitespace between them, and nothing else (0 when it
 * holds anything else): a WebSocket message written as a device port's stream, several requests in one, which a
 * message may not be, is told so rather than called no JSON.
 */
export function objectsIn(text: string): number {
    const framer = new ObjectFramer()
    const events = framer.feed(Buffer.from(text, "utf8"))
    return framer.pendingBytes > 0 || events.some((e) => e.kind !== "object") ? 0 : events.length
}
