// feedline's SQLite store alone, without sockets: how many datapoints per second it commits, by
// request size, so the store's ceiling is known next to the end-to-end figures.
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Samples, type Percentiles } from "./stats.ts"

const STORE_MODULE = fileURLToPath(new URL("../server/storage/sqlite.ts", import.meta.url))
/** concurrent requests in the group-commit run: many connections each sending one small batch */
const CONCURRENT_REQUESTS = 100
/** datapoints per request in the group-commit run (a device batch of buffered samples) */
const GROUP_BATCH = 10
const STREAMS = 50
/** one-datapoint commits are slow (an fsync each): stop a run after this long, the rate is known by then */
const MAX_RUN_MS = 4000

export interface IngestRun {
    /** datapoints per writePoints() call */
    batch: number
    /** writePoints() calls in flight together (1 = each awaited before the next, one commit each) */
    concurrent: number
    datapoints: number
    ms: number
    datapointsPerS: number
    commitsPerS: number
    /** SQLite synchronous mode of the run */
    synchronous: "FULL" | "NORMAL"
    /** time of one commit (transaction + fsync), as the store reports it, ms; the event loop is blocked that long */
    commit: Percentiles
}

export interface IngestResult {
    skipped?: string
    runs: IngestRun[]
}

interface StoreOptions {
    path: string
    synchronous?: "FULL" | "NORMAL"
    onCommit?: (ms: number, requests: number) => void
}

interface StoreLike {
    createFeed(input: { title?: string }): Promise<{ id: number }>
    writePoints(feed: number, points: { stream: string; atMs: number; value: string }[]): Promise<unknown[]>
    close(): Promise<void>
}

function points(batch: number, start: number): { stream: string; atMs: number; value: string }[] {
    const out = []
    for (let i = 0; i < batch; i++) {
        const n = start + i
        out.push({ stream: "s" + (n % STREAMS), atMs: 1_763_790_000_000 + n, value: String(n % 1000) })
    }
    return out
}

export async function benchStoreIngest(total: number, batchSizes: number[]): Promise<IngestResult> {
    if (!existsSync(STORE_MODULE)) return { skipped: "not yet: devs/server/storage/sqlite.ts does not exist", runs: [] }
    const { SqliteStore } = (await import(STORE_MODULE)) as { SqliteStore: new (o: StoreOptions) => StoreLike }
    const dir = mkdtempSync(join(tmpdir(), "feedline-ingest-"))
    const runs: IngestRun[] = []
    try {
        const run = async (synchronous: "FULL" | "NORMAL", batch: number, concurrent: number) => {
            let commits = new Samples()
            const store = new SqliteStore({ path: join(dir, `bench-${synchronous}.db`), synchronous, onCommit: (ms) => commits.add(ms) })
            const feed = (await store.createFeed({ title: "ingest bench" })).id
            commits = new Samples()
            const calls = Math.max(1, Math.floor(total / batch / concurrent))
            let written = 0
            const t0 = performance.now()
            let c = 0
            for (; c < calls && performance.now() - t0 < MAX_RUN_MS; c++) {
                const inflight = []
                for (let k = 0; k < concurrent; k++, written += batch) inflight.push(store.writePoints(feed, points(batch, written)))
                await Promise.all(inflight)
            }
            const ms = performance.now() - t0
            await store.close()
            const dp = c * concurrent * batch
            runs.push({ batch, concurrent, datapoints: dp, ms, datapointsPerS: (dp * 1000) / ms, commitsPerS: (c * 1000) / ms, synchronous, commit: commits.percentiles() })
        }
        for (const b of batchSizes) await run("FULL", b, 1)
        await run("FULL", GROUP_BATCH, CONCURRENT_REQUESTS)
        // what relaxing durability (survives a process crash, not a power loss) would buy
        await run("NORMAL", 1, 1)
        await run("NORMAL", GROUP_BATCH, CONCURRENT_REQUESTS)
        return { runs }
    } finally {
        rmSync(dir, { recursive: true, force: true })
    }
}
