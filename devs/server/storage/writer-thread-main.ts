// The SQLite writer thread (writer-thread.ts): owns a write connection and commits each message's
// datapoint writes in one transaction (point-writer.ts), answering the message after its commit.
import { parentPort, workerData } from "node:worker_threads"
import { openConnection } from "./connection.ts"
import { commitBatch, PointWriter } from "./point-writer.ts"
import { packOutcomes, unpackWrites, type FromWriter, type ToWriter, type WriterThreadData } from "./writer-thread.ts"

const port = parentPort!
const data = workerData as WriterThreadData
const post = (m: FromWriter) => port.postMessage(m)
const db = openConnection(data.path, data.synchronous)
const writer = new PointWriter(db)

post({ kind: "ready" })

port.on("message", (m: ToWriter) => {
    if (m.kind === "close") {
        db.close()
        post({ kind: "closed" })
        port.close()
        return
    }
    let commitMs: number | undefined
    const outcomes = commitBatch(writer, unpackWrites(m.writes), m.nowMs, {
        onCommit: (ms) => (commitMs = ms),
        onError: (err) => post({ kind: "error", message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined }),
    })
    post({ kind: "written", id: m.id, outcomes: packOutcomes(outcomes), commitMs })
})
