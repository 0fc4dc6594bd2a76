// The SQLite writer thread (writer-thread.ts): owns a write connection and commits the datapoint writes of
// every write message waiting in its inbox in one transaction (point-writer.ts), answering them after it. The
// commit appends to the ingest journal; the thread moves the journal into the tables (compacts) when it
// holds COMPACT_JOURNAL_ROWS points and no message waits, when no write came for IDLE_COMPACT_MS, when a
// read asks for it, and before it closes. While writes come a few points a commit, its own compactions
// stop after a chunk when a message comes and leave the rest for the next quiet moment, so that an
// acknowledgement waits for a chunk at most, not for a whole compaction (housekeeping.ts; performance-history.md,
// "The writer thread's housekeeping and the ack tail").
//
// The thread does not wait in its event loop: it takes its messages from its inbox port itself
// (receiveMessageOnPort) and sleeps on the doorbell (Atomics.wait) when none waits, giving the loop a turn
// now and then (LOOP_TURN_EVERY_MS). At a fleet's moderate rate a commit holds a point or two, and what a
// message cost besides the commit was much of it the loop's: the wake-up through libuv's epoll, Node's
// MessagePort dispatch and MessageEvent, the idle timer's refresh (performance-history.md, "The writer thread,
// night pass").
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads"
import { openConnection } from "./connection.ts"
import { averagePointsPerCommit, compactionYields } from "./housekeeping.ts"
import { commitBatch, COMPACT_JOURNAL_ROWS, compactQuietly, PointWriter, type GroupCommitHooks } from "./point-writer.ts"
import { ThreadTrace, traceNow, WRITER_TRACE_PATH, type TracedHousekeeping } from "./writer-trace.ts"
import { DOORBELL_RUNG, packOutcomes, unpackWrites, type FromWriter, type ToWriter, type WriterThreadStart } from "./writer-thread.ts"

/**
 * No write for this long: the writer is idle, and compacts. An empty journal lets reads go without asking
 * the thread (SqliteStore.visible); under a steady flow of writes this never fires and the row bound does.
 * Not much shorter: a compaction of a handful of rows costs more than half of what their commit cost
 * (a scratch run: compacting after every one-point commit took CPU per point from ~196 µs to ~258–296 µs; every
 * 20 commits, ~167–203 µs), so a fleet whose writes come tens of ms apart must not compact after each.
 */
const IDLE_COMPACT_MS = 1000

const port = parentPort!
const data = workerData as WriterThreadStart
const inbox = data.inbox
const doorbell = new Int32Array(data.doorbell)
const post = (m: FromWriter) => port.postMessage(m)
const report: GroupCommitHooks = {
    onError: (err) => post({ kind: "error", message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined }),
}
const { db, writer } = opened()

/**
 * The thread's connection and its writer, which moves what a previous process left in the journal (crash
 * recovery), unless the thread is a lost one's recovery, which decides from the journal what was written. A failure here ends the thread: it is rethrown as a native Error with SQLite's code, since
 * better-sqlite3's SqliteError is none and crosses to the main thread as a plain object holding its code
 * alone (a start on a full disk printed "feedline: [object Object]").
 */
function opened(): { db: ReturnType<typeof openConnection>; writer: PointWriter } {
    try {
        const db = openConnection(data.path, data.synchronous)
        return { db, writer: new PointWriter(db, { compactOnOpen: !data.recovering }) }
    } catch (e) {
        const code = (e as { code?: unknown }).code
        throw Object.assign(new Error(e instanceof Error ? e.message : String(e)), typeof code === "string" ? { code } : {})
    }
}
/** FEEDLINE_WRITER_TRACE (writer-trace.ts): the thread's housekeeping, for each message's trace */
const trace = WRITER_TRACE_PATH ? new ThreadTrace(WRITER_TRACE_PATH, data.path) : undefined

/** Runs one piece of housekeeping, traced when tracing. */
function housekeeping<T>(kind: TracedHousekeeping, work: () => T): T {
    if (!trace) return work()
    const startAt = traceNow()
    try {
        return work()
    } finally {
        trace.housekeeping(kind, startAt)
    }
}

// the seq high-water as opened (a crash's journal moved): what a recovery's lost commits came after, if none is answered
post({ kind: "ready", seq: writer.seqs().seq })

type WriteMessage = Extract<ToWriter, { kind: "write" }>

/**
 * A message taken from the inbox behind the write messages gathered for one commit (gathered()), which does not
 * go in it: handled next, in its order.
 */
let next: ToWriter | undefined

/** The next message: the one set aside, else the inbox's first. */
function take(): ToWriter | undefined {
    const m = next
    if (m !== undefined) {
        next = undefined
        return m
    }
    return receiveMessageOnPort(inbox)?.message as ToWriter | undefined
}

/** Handles one message (with the write messages waiting behind a write); false once the thread is to end. */
function handle(m: ToWriter): boolean {
    if (m.kind === "close") {
        compactQuietly(writer, report) // tidy: else the next open moves it
        db.close()
        trace?.close()
        post({ kind: "closed" })
        inbox.close()
        port.close()
        return false
    }
    if (m.kind === "compact") {
        let failed: string | undefined
        try {
            housekeeping("compaction", () => writer.compact())
        } catch (e) {
            report.onError!(e)
            failed = e instanceof Error ? e.message : String(e)
        }
        post({ kind: "compacted", id: m.id, failed })
        return true
    }
    commitWrites(gathered(m))
    return true
}

/**
 * `first` and the write messages waiting behind it in the inbox, up to the first other message (set aside):
 * the writes made while the thread committed, in one commit. A recovery (recoverAfterSeq) goes alone, as sent.
 */
function gathered(first: WriteMessage): WriteMessage[] {
    const group = [first]
    if (first.recoverAfterSeq !== undefined) return group
    for (;;) {
        const got = receiveMessageOnPort(inbox)
        if (got === undefined) return group
        const m = got.message as ToWriter
        if (m.kind !== "write" || m.recoverAfterSeq !== undefined) {
            next = m
            return group
        }
        group.push(m)
    }
}

/** Commits the messages' writes in one transaction and answers them together. */
function commitWrites(group: WriteMessage[]): void {
    let commitMs: number | undefined
    const startAt = trace ? traceNow() : 0
    const walBefore = trace?.walIndex()
    const writes = group.length === 1 ? unpackWrites(group[0].writes) : group.flatMap((m) => unpackWrites(m.writes))
    let points = 0
    for (const w of writes) points += w.points.length
    recentPointsPerCommit = averagePointsPerCommit(recentPointsPerCommit, points)
    const outcomes = commitBatch(
        writer,
        writes,
        // the newest of the messages' times (the feeds' updated time; stamps are the main thread's)
        group[group.length - 1].nowMs,
        {
            onCommit: (ms) => (commitMs = ms),
            onError: report.onError,
        },
        group[0].recoverAfterSeq,
    )
    // the high-water after it (-1 after a rollback: unknown here, and unchanged)
    const seq = writer.seqs().seq
    const answer: FromWriter = {
        kind: "written",
        ids: group.map((m) => m.id),
        outcomes: packOutcomes(outcomes),
        commitMs,
        keysGeneration: writer.keysGeneration(),
        seq: seq < 0 ? undefined : seq,
    }
    if (trace) {
        const commitEndAt = traceNow()
        const inCommit = trace.walChange(walBefore)
        // SQLite's automatic checkpoint runs inside the commit: whoever waited for this commit waited for it too
        if (inCommit) trace.housekeeping("checkpoint", startAt)
        const postedAt = traceNow()
        answer.traces = group.map((m) => ({ startAt, commitEndAt, postedAt, behind: trace.behind(m.trace?.firstQueuedAt ?? startAt, startAt), inCommit }))
    }
    post(answer)
}

/**
 * The thread gives its event loop a turn at least this often, and after each idle wait: V8's and Node's
 * own tasks for this isolate (the end of an incremental GC, the memory reducer) run there, and nowhere
 * else. A turn costs a few µs.
 */
const LOOP_TURN_EVERY_MS = 100

// The doorbell counts the messages sent: a message is in the inbox before its ring, so a count that has
// not moved since the inbox was found empty means that nothing is on its way, and the wait cannot miss one.
let rung = Atomics.load(doorbell, DOORBELL_RUNG)
/** A message was sent since the thread last found its inbox empty (a compaction stops after its chunk). */
const messageCame = () => Atomics.load(doorbell, DOORBELL_RUNG) !== rung
/** points per commit, recently (averagePointsPerCommit) */
let recentPointsPerCommit = 0
/** When a compaction stops: when a message comes, unless the writer is busy (compactionYields). */
const compactionStop = () => (compactionYields(recentPointsPerCommit) ? messageCame : undefined)
/** a message came since the last idle compaction */
let idleCompactDue = false
/** when the thread left serve() for a turn of its event loop (traced as housekeeping); 0 when not tracing */
let turnFrom = 0

/** Takes the messages as they come and sleeps between them, until the close; returns for a turn of the event loop. */
function serve(): void {
    if (turnFrom) trace!.housekeeping("turn", turnFrom)
    const turnAt = performance.now() + LOOP_TURN_EVERY_MS
    for (;;) {
        const got = take()
        if (got !== undefined) {
            if (!handle(got)) return // closed: the thread ends
            idleCompactDue = true
            if (performance.now() >= turnAt) break
            continue
        }
        const now = Atomics.load(doorbell, DOORBELL_RUNG)
        if (now !== rung) {
            rung = now
            continue
        }
        // nothing waits, and nothing is on its way: a full journal is moved now (a chunk at a time, until a
        // message comes, while writes come a few at a time), so that acknowledgements are not held up by it
        if (writer.journalRows() >= COMPACT_JOURNAL_ROWS) {
            housekeeping("compaction", () => compactQuietly(writer, report, compactionStop()))
            continue
        }
        if (Atomics.wait(doorbell, DOORBELL_RUNG, rung, IDLE_COMPACT_MS) === "timed-out") {
            if (idleCompactDue) housekeeping("compaction", () => compactQuietly(writer, report, compactionStop()))
            idleCompactDue = false
            break
        }
    }
    turnFrom = trace ? traceNow() : 0
    setImmediate(serve)
}

serve()
