// Splits the server's byte stream into lines [P§3], bounded so a misbehaving server cannot exhaust
// the 64 KB VM heap: a ~10 KB line already ran the simulator out of memory (platform notes §2).

/**
 * Longest line kept; longer ones are dropped and counted. What a server sends a device is small: the
 * largest push (a 64-character id, a 32-character value escaped to 192) is under 500 B. Decoding a line
 * costs about four times its length at once (parts, joined buffer, string, parsed object): 4096 left
 * the full firmware 2-4 KB of heap, 1024 leaves 13 KB (docs/FIRMWARE.md "Heap budget").
 */
export const MAX_LINE_BYTES = 1024
/**
 * Pieces of a partial line kept apart before they are joined into one: each piece is a Buffer of its own,
 * about 20 B of heap beside its bytes (measured: a 1000-byte line in one-byte pieces, a server or a path
 * that drips, held 20 KB, more than the heap has left with the outbox full; joined every 8, at most ~2 KB).
 */
const MAX_LINE_PIECES = 8

/**
 * `push(chunk)` hands every complete line (without "\n" or a trailing "\r") to `onLine`.
 * A line longer than MAX_LINE_BYTES is skipped up to its "\n" and counted in `overlong`.
 */
export class LineFramer {
    private parts: Buffer[] = []
    private partBytes = 0
    /** true while skipping the rest of an over-long line */
    private skipping = false
    /** over-long lines dropped so far */
    overlong = 0

    constructor(private onLine: (line: string) => void) {}

    push(chunk: Buffer) {
        let start = 0
        while (start < chunk.length) {
            const nl = chunk.indexOf(10, start)
            const end = nl < 0 ? chunk.length : nl
            if (!this.skipping) {
                if (this.partBytes + end - start > MAX_LINE_BYTES) {
                    this.reset()
                    this.skipping = true
                    this.overlong++
                } else if (end > start) {
                    if (this.parts.length === MAX_LINE_PIECES) this.parts = [joined(this.parts, this.partBytes)]
                    this.parts.push(start === 0 && end === chunk.length ? chunk : chunk.slice(start, end))
                    this.partBytes += end - start
                }
            }
            if (nl < 0) return
            if (this.skipping) this.skipping = false
            else this.emit()
            start = nl + 1
        }
    }

    /**
     * Forgets a partial line: the next connection starts clean, also after one that ended inside an
     * over-long line (else the new connection's welcome was skipped as that line's rest).
     */
    reset() {
        this.parts = []
        this.partBytes = 0
        this.skipping = false
    }

    private emit() {
        const n = this.parts.length
        let line = n === 0 ? "" : n === 1 ? this.parts[0].toString("utf-8") : joined(this.parts, this.partBytes).toString("utf-8")
        this.reset()
        if (line.length && line.charCodeAt(line.length - 1) === 13) line = line.slice(0, line.length - 1)
        this.onLine(line)
    }
}

/**
 * `parts` (`bytes` in all) in one buffer: Buffer.concat would do, but it brings its library code into the
 * image (with Buffer's concat and set methods about 280 B of the code window; docs/FIRMWARE.md "Program size").
 */
function joined(parts: Buffer[], bytes: number): Buffer {
    const out = Buffer.alloc(bytes)
    let off = 0
    for (const p of parts) {
        out.blitAt(off, p, 0, p.length)
        off += p.length
    }
    return out
}
