// Pure decisions of the fault-injection proxy, one direction of one connection at a time:
// when each piece of a received chunk may be written (latency, jitter, throttle, split), and where
// a chunk must be cut so that the receiver gets exactly N bytes of a frame. Time and randomness are
// arguments; nothing here touches a socket or a timer.

import type { CutFault, DirFaults } from "./faults.ts"

/** A throttled stream is written in slices this long, so the rate is smooth rather than one burst a second. */
export const THROTTLE_SLICE_MS = 20

export interface PaceState {
    /** when the previous piece is written; later pieces never overtake it (TCP delivers in order) */
    lastAtMs: number
    /** the throttle's next free moment: a piece may not start before it */
    nextFreeAtMs: number
}

export interface Piece {
    start: number
    end: number
    atMs: number
}

/**
 * The writes of one received chunk, in O(1) space however small the pieces: piece i (0-based) is bytes
 * [i × pieceBytes, min(length, (i + 1) × pieceBytes)) and goes at firstAtMs + i × intervalMs.
 * Equal pieces make the spacing uniform: max(split gap, pieceBytes × 1000 / bytesPerSec).
 */
export interface ChunkPlan {
    length: number
    pieceBytes: number
    count: number
    firstAtMs: number
    intervalMs: number
}

export function freshPace(): PaceState {
    return { lastAtMs: -Infinity, nextFreeAtMs: -Infinity }
}

/** The largest piece a direction's faults allow (the whole chunk when neither split nor throttle is on). */
export function maxPieceBytes(f: DirFaults, length: number): number {
    let max = Math.max(1, length)
    if (f.splitBytes > 0) max = Math.min(max, f.splitBytes)
    if (f.bytesPerSec > 0) max = Math.min(max, Math.max(1, Math.floor((f.bytesPerSec * THROTTLE_SLICE_MS) / 1000)))
    return max
}

/**
 * Plans the writes of one received chunk of `length` bytes that arrived at `nowMs`. The first piece
 * waits for latency plus `rand01` × jitter, for the previous piece (plus the split gap) and for the
 * throttle; each later one for the gap and for the throttle (pieceBytes × 1000 / bytesPerSec ms each).
 */
export function planChunk(state: PaceState, nowMs: number, length: number, f: DirFaults, rand01: number): { plan: ChunkPlan; state: PaceState } {
    const gapMs = f.splitBytes > 0 ? f.splitGapMs : 0
    const pieceBytes = maxPieceBytes(f, length)
    const count = Math.ceil(length / pieceBytes)
    const msPerByte = f.bytesPerSec > 0 ? 1000 / f.bytesPerSec : 0
    let firstAtMs = Math.max(nowMs + f.latencyMs + rand01 * f.jitterMs, state.lastAtMs + gapMs)
    if (f.bytesPerSec > 0) firstAtMs = Math.max(firstAtMs, state.nextFreeAtMs)
    const intervalMs = Math.max(gapMs, pieceBytes * msPerByte)
    const plan: ChunkPlan = { length, pieceBytes, count, firstAtMs, intervalMs }
    if (count === 0) return { plan, state }
    const last = pieceOf(plan, count - 1)
    const nextFreeAtMs = f.bytesPerSec > 0 ? last.atMs + (last.end - last.start) * msPerByte : state.nextFreeAtMs
    return { plan, state: { lastAtMs: last.atMs, nextFreeAtMs } }
}

/** Piece i of a plan. */
export function pieceOf(plan: ChunkPlan, i: number): Piece {
    const start = i * plan.pieceBytes
    return { start, end: Math.min(plan.length, start + plan.pieceBytes), atMs: plan.firstAtMs + i * plan.intervalMs }
}

/** Every piece of a plan, for logs and tests (the proxy walks a plan without expanding it). */
export function piecesOf(plan: ChunkPlan): Piece[] {
    return Array.from({ length: plan.count }, (_, i) => pieceOf(plan, i))
}

// ---- frames: where a cut lands "in the middle" ----

const NEWLINE = 10
const TLS_HEADER_BYTES = 5

/**
 * Position in the current frame of one direction's byte stream, tracked from the connection's first byte.
 * line: bytes since the last "\n"; tls: bytes into the current TLS record (5-byte header + length);
 * raw: bytes since the cut was armed.
 */
export interface FrameCursor {
    line: number
    tlsPos: number
    /** full length of the current TLS record, 0 until its header has been read */
    tlsLen: number
    tlsLenHigh: number
    /** bytes left before a raw cut, or -1 when no raw cut is armed */
    rawLeft: number
}

export function freshCursor(): FrameCursor {
    return { line: 0, tlsPos: 0, tlsLen: 0, tlsLenHigh: 0, rawLeft: -1 }
}

/** Scans a text chunk; returns the index at which the line has exactly n bytes and goes on, or -1. */
function scanLines(c: FrameCursor, chunk: Uint8Array, n: number): number {
    let i = 0
    while (i < chunk.length) {
        const nl = chunk.indexOf(NEWLINE, i)
        const segEnd = nl < 0 ? chunk.length : nl
        if (n > 0 && c.line <= n && i + (n - c.line) < segEnd) return i + (n - c.line)
        if (nl < 0) {
            c.line += segEnd - i
            return -1
        }
        c.line = 0
        i = nl + 1
    }
    return -1
}

/** Scans TLS records; returns the index at which the record has exactly n bytes and goes on, or -1. */
function scanTls(c: FrameCursor, chunk: Uint8Array, n: number): number {
    let i = 0
    while (i < chunk.length) {
        if (n > 0 && c.tlsPos === n) return i
        if (c.tlsPos < TLS_HEADER_BYTES) {
            if (c.tlsPos === 3) c.tlsLenHigh = chunk[i]
            if (c.tlsPos === 4) c.tlsLen = TLS_HEADER_BYTES + c.tlsLenHigh * 256 + chunk[i]
            c.tlsPos++
            i++
        } else {
            const take = Math.min(chunk.length - i, c.tlsLen - c.tlsPos)
            if (n > c.tlsPos && n < c.tlsPos + take) return i + (n - c.tlsPos)
            c.tlsPos += take
            i += take
        }
        if (c.tlsPos === c.tlsLen) (c.tlsPos = 0), (c.tlsLen = 0)
    }
    return -1
}

/**
 * Advances the cursor over a chunk and, when a cut is armed, returns where to cut: the receiver gets
 * chunk[0, cutAt) and then the connection closes (so the cursor is not used after a cut).
 * A cut only lands inside a frame: a line that ends at exactly n bytes, or a record of n bytes, is
 * forwarded whole, and the cut waits for the next frame long enough.
 */
export function findCut(c: FrameCursor, chunk: Uint8Array, cut: CutFault | undefined): number {
    const n = cut ? cut.afterBytes : 0
    const lineCut = scanLines(c, chunk, cut && cut.frame === "line" ? n : 0)
    const tlsCut = scanTls(c, chunk, cut && cut.frame === "tls" ? n : 0)
    if (!cut) {
        c.rawLeft = -1
        return -1
    }
    if (cut.frame === "line") return lineCut
    if (cut.frame === "tls") return tlsCut
    if (c.rawLeft < 0) c.rawLeft = n
    if (c.rawLeft < chunk.length) return c.rawLeft
    c.rawLeft -= chunk.length
    return -1
}
