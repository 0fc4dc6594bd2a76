// feedline's SQLite store alone, without sockets: how many datapoints per second it commits, by
// request size, so the store's ceiling is known next to the end-to-end figures.
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const STORE_MODULE = fileURLToPath(new URL("../server/storage/sqlite.ts", import.meta.url))
/** concurrent requests in the group-commit run: many connections each sending one small batch */
const CONCURRENT_REQUESTS = 100
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
}

export interface IngestResult {
    skipped?: string
    synchronous?: string
    runs: IngestRun[]
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
    const { SqliteStore } = (await import(STORE_MODULE)) as { SqliteStore: new (o: { path: string }) => StoreLike }
    const dir = mkdtempSync(join(tmpdir(), "feedline-ingest-"))
    const runs: IngestRun[] = []
    try {
        const store = new SqliteStore({ path: join(dir, "bench.db") })
        const feed = (await store.createFeed({ title: "ingest bench" })).id
        let written = 0
        const run = async (batch: number, concurrent: number) => {
            const calls = Math.max(1, Math.floor(total / batch / concurrent))
            const t0 = performance.now()
            let c = 0
            for (; c < calls && performance.now() - t0 < MAX_RUN_MS; c++) {
                const inflight = []
                for (let k = 0; k < concurrent; k++, written += batch) inflight.push(store.writePoints(feed, points(batch, written)))
                await Promise.all(inflight)
            }
            const ms = performance.now() - t0
            const dp = c * concurrent * batch
            runs.push({ batch, concurrent, datapoints: dp, ms, datapointsPerS: (dp * 1000) / ms, commitsPerS: (c * 1000) / ms })
        }
        for (const b of batchSizes) await run(b, 1)
        await run(10, CONCURRENT_REQUESTS)
        await store.close()
        return { synchronous: "FULL (the store's default)", runs }
    } finally {
        rmSync(dir, { recursive: true, force: true })
    }
}
