// FEEDLINE_WRITER_TRACE=<file>: a debug trace of where each message to the SQLite writer thread spent its
// time, one line per answered message, for performance-history.md "The writer thread's housekeeping and the ack
// tail". Off unless the variable is set (the server's process and its thread both read it): then the main
// side stamps each message, the thread reports what it did before and around it, and the main side
// appends a line when the answer arrives. Clocks: performance.timeOrigin + performance.now(), which both
// threads of one process share.
import { closeSync, openSync, readSync, writeSync } from "node:fs"
import { endianness } from "node:os"

export const WRITER_TRACE_PATH = process.env.FEEDLINE_WRITER_TRACE || undefined

/** ms since the epoch, sub-ms, comparable across the threads of one process */
export const traceNow = (): number => performance.timeOrigin + performance.now()

/** What the thread did other than the message's own commit, while it waited: the kinds the trace tells apart. */
export type TracedHousekeeping = "compaction" | "checkpoint" | "turn"
const KINDS: readonly TracedHousekeeping[] = ["compaction", "checkpoint", "turn"]

/** The thread's side of one message's trace (sent back with its answer). */
export interface ThreadTiming {
    startAt: number
    commitEndAt: number
    postedAt: number
    /** ms of [the message's first write queued, its start] the thread spent on each kind of housekeeping */
    behind: number[]
    /** SQLite checkpointed (k) or restarted the WAL (r) inside the message's own commit (read from the -shm header) */
    inCommit: string
}

/** The main side's stamps of one message. */
export interface MainTiming {
    firstQueuedAt: number
    sentAt: number
}

/** Overlap in ms of [from, to] with the intervals [start, end] (sorted, not overlapping). */
export function overlapMs(intervals: readonly (readonly [number, number])[], from: number, to: number): number {
    let sum = 0
    for (const [s, e] of intervals) {
        if (e <= from || s >= to) continue
        sum += Math.min(e, to) - Math.max(s, from)
    }
    return sum
}

/** How long back the thread remembers its housekeeping: longer than any wait worth tracing. */
const REMEMBER_MS = 10_000

/** The thread's record of its housekeeping. */
export class ThreadTrace {
    private readonly spans = new Map<TracedHousekeeping, [number, number][]>(KINDS.map((k) => [k, []]))

    /** `<trace file>.housekeeping`: one line per span, "kind startAt ms" (a few a second) */
    private readonly spanFile: number

    private readonly wal: WalIndex

    constructor(tracePath: string, dbPath: string) {
        this.spanFile = openSync(`${tracePath}.housekeeping`, "a")
        this.wal = new WalIndex(dbPath)
    }

    /** The WAL now (before a commit, for walChange). */
    walIndex(): WalState | undefined {
        return this.wal.read()
    }

    /** What the commit since `before` did to the WAL (walChange). */
    walChange(before: WalState | undefined): string {
        return walChange(before, this.wal.read())
    }

    /** Records a span of housekeeping that ran from `startAt` until now. */
    housekeeping(kind: TracedHousekeeping, startAt: number): void {
        const now = traceNow()
        const list = this.spans.get(kind)!
        list.push([startAt, now])
        while (list.length && list[0][1] < now - REMEMBER_MS) list.shift()
        writeSync(this.spanFile, `${kind} ${startAt.toFixed(3)} ${(now - startAt).toFixed(3)}\n`)
    }

    behind(from: number, to: number): number[] {
        return KINDS.map((k) => overlapMs(this.spans.get(k)!, from, to))
    }

    close(): void {
        closeSync(this.spanFile)
    }
}

/** The WAL as its index says: frames in it, and how many of those are copied into the database file. */
export interface WalState {
    frames: number
    backfilled: number
}

const NATIVE_LE = endianness() === "LE"
/** the header's iVersion, the only one SQLite has written */
const WAL_INDEX_VERSION = 3007000
/** Bytes of the WAL-index header read (the header's two copies, then the checkpoint information). */
const WAL_INDEX_HEADER_BYTES = 100

/**
 * `-shm` files open for reading, by path, for the life of the process: never closed, because closing any
 * descriptor of a file drops every POSIX lock this process holds on it (fcntl locks are per process), and
 * SQLite's connections in this process hold theirs on the `-shm` while they are open (the lock that tells
 * another process, such as the CLI, that the index is in use).
 */
const shmFiles = new Map<string, number>()

/**
 * The WAL-index header as the database's `-shm` file holds it (sqlite.org/walformat.html, "The WAL-Index
 * Header": mxFrame at offset 16, nBackfill at 96, both 32-bit in native byte order; SQLite maps the file
 * shared, so a read sees what the connections wrote). One `pread`.
 */
export class WalIndex {
    private readonly header = Buffer.alloc(WAL_INDEX_HEADER_BYTES)

    constructor(private readonly dbPath: string) {}

    /** The WAL's frames now, or undefined when there is no index to read. */
    read(): WalState | undefined {
        try {
            const path = `${this.dbPath}-shm`
            let fd = shmFiles.get(path)
            if (fd === undefined) shmFiles.set(path, (fd = openSync(path, "r")))
            if (readSync(fd, this.header, 0, WAL_INDEX_HEADER_BYTES, 0) < WAL_INDEX_HEADER_BYTES) return undefined
            const u32 = (at: number) => (NATIVE_LE ? this.header.readUInt32LE(at) : this.header.readUInt32BE(at))
            if (u32(0) !== WAL_INDEX_VERSION) return undefined
            return { frames: u32(16), backfilled: u32(96) }
        } catch {
            return undefined
        }
    }
}

/** What a commit did to the WAL-index: k when it checkpointed, r when it restarted the WAL. */
export function walChange(before: WalState | undefined, after: WalState | undefined): string {
    if (!before || !after) return ""
    let s = ""
    if (after.frames < before.frames) s += "r"
    if (after.backfilled > (after.frames < before.frames ? 0 : before.backfilled)) s += "k"
    return s
}

/** The main side writes its lines at most this often (a reader of the file lags it by as much). */
const FLUSH_EVERY_MS = 250

/** The main side's trace file: one line per answered message, written in blocks. */
export class MainTrace {
    private lines: string[] = []
    private readonly fd: number
    private flushedAt = 0

    constructor(path: string) {
        this.fd = openSync(path, "a")
    }

    answered(main: MainTiming, thread: ThreadTiming, requests: number): void {
        const receivedAt = traceNow()
        const t = thread
        // sentAt, then each part in ms: held on main, queued at the thread, behind each housekeeping kind, commit, after the commit, answer's way back
        this.lines.push(
            [
                main.sentAt.toFixed(3),
                requests,
                (main.sentAt - main.firstQueuedAt).toFixed(3),
                (t.startAt - main.sentAt).toFixed(3),
                ...t.behind.map((b) => b.toFixed(3)),
                (t.commitEndAt - t.startAt).toFixed(3),
                (t.postedAt - t.commitEndAt).toFixed(3),
                (receivedAt - t.postedAt).toFixed(3),
                t.inCommit || "-",
            ].join(" "),
        )
        if (receivedAt - this.flushedAt >= FLUSH_EVERY_MS) this.flush()
    }

    flush(): void {
        this.flushedAt = traceNow()
        if (!this.lines.length) return
        writeSync(this.fd, this.lines.join("\n") + "\n")
        this.lines = []
    }

    close(): void {
        this.flush()
        closeSync(this.fd)
    }
}
