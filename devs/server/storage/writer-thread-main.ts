// The SQLite writer thread (writer-thread.ts): owns a write connection and commits each message's
// datapoint writes in one transaction (point-writer.ts), answering the message after its commit. The
// commit appends to the ingest journal; the thread moves the journal into the tables (compacts) when it
// holds COMPACT_JOURNAL_ROWS points and no message waits, when no write came for IDLE_COMPACT_MS, when a
// read asks for it, and before it closes.
import { parentPort, workerData } from "node:worker_threads"
import { openConnection } from "./connection.ts"
import { commitBatch, COMPACT_JOURNAL_ROWS, compactQuietly, PointWriter, type GroupCommitHooks } from "./point-writer.ts"
import { packOutcomes, unpackWrites, type FromWriter, type ToWriter, type WriterThreadData } from "./writer-thread.ts"

/**
 * No write for this long: the writer is idle, and compacts. An empty journal lets reads go without asking
 * the thread (SqliteStore.visible); under a steady flow of writes this never fires and the row bound does.
 * Not much shorter: a compaction of a handful of rows costs more than half of what their commit cost
 * (a scratch run: compacting after every one-point commit took CPU per point from ~196 µs to ~258–296 µs; every
 * 20 commits, ~167–203 µs), so a fleet whose writes come tens of ms apart must not compact after each.
 */
const IDLE_COMPACT_MS = 1000

const port = parentPort!
const data = workerData as WriterThreadData
const post = (m: FromWriter) => port.postMessage(m)
const report: GroupCommitHooks = {
    onError: (err) => post({ kind: "error", message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined }),
}
const db = openConnection(data.path, data.synchronous)
const writer = new PointWriter(db) // moves what a previous process left in the journal (crash recovery)

let compactSoon = false
// setImmediate: after the messages that have arrived meanwhile (they are taken first), so that waiting
// acknowledgements are not held up by a compaction
const compactWhenNothingWaits = () => {
    compactSoon = false
    compactQuietly(writer, report)
}
const idle = setTimeout(() => compactQuietly(writer, report), IDLE_COMPACT_MS)
idle.unref()

post({ kind: "ready" })

port.on("message", (m: ToWriter) => {
    if (m.kind === "close") {
        clearTimeout(idle)
        compactQuietly(writer, report) // tidy: else the next open moves it
        db.close()
        post({ kind: "closed" })
        port.close()
        return
    }
    if (m.kind === "compact") {
        let failed: string | undefined
        try {
            writer.compact()
        } catch (e) {
            report.onError!(e)
            failed = e instanceof Error ? e.message : String(e)
        }
        post({ kind: "compacted", id: m.id, failed })
        return
    }
    let commitMs: number | undefined
    const outcomes = commitBatch(writer, unpackWrites(m.writes), m.nowMs, {
        onCommit: (ms) => (commitMs = ms),
        onError: report.onError,
    })
    post({ kind: "written", id: m.id, outcomes: packOutcomes(outcomes), commitMs, keysGeneration: writer.keysGeneration() })
    if (writer.journalRows() >= COMPACT_JOURNAL_ROWS && !compactSoon) {
        compactSoon = true
        setImmediate(compactWhenNothingWaits)
    }
    idle.refresh()
})
