// The SQLite writer thread (writer-thread.ts): owns a write connection and commits the datapoint writes
// the main thread sends, grouped (point-writer.ts), answering each message after its commit.
import { parentPort, workerData } from "node:worker_threads"
import { openConnection } from "./connection.ts"
import { GroupCommit, PointWriter, refusalOf, type StoreRefusal, type WrittenPairs } from "./point-writer.ts"
import { StoreError } from "./store.ts"
import { unpackWrites, type FromWriter, type ToWriter, type WriterThreadData } from "./writer-thread.ts"

const port = parentPort!
const data = workerData as WriterThreadData
const post = (m: FromWriter) => port.postMessage(m)
const db = openConnection(data.path, data.synchronous)
let nowMs = Date.now()
const group = new GroupCommit(new PointWriter(db), () => nowMs, {
    onCommit: (ms, requests) => post({ kind: "commit", ms, requests }),
    onError: (err) => post({ kind: "error", message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined }),
})

post({ kind: "ready" })

port.on("message", (m: ToWriter) => {
    if (m.kind === "close") {
        group.flush()
        // after the answers of that last commit went out (they are posted from promise callbacks)
        setImmediate(() => {
            db.close()
            post({ kind: "closed" })
            port.close()
        })
        return
    }
    nowMs = m.nowMs
    const id = m.id
    Promise.all(
        unpackWrites(m.writes).map((w) =>
            group.write(w.feed, w.points).then(
                (written): WrittenPairs | StoreRefusal => written,
                (e: StoreError) => refusalOf(e),
            ),
        ),
    ).then((outcomes) => post({ kind: "written", id, outcomes }))
})
