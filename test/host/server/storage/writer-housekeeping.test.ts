// The writer thread's housekeeping: when its compaction yields to writes (storage/housekeeping.ts, a pure
// decision; what a stopped compaction leaves is in ingest-journal.test.ts), and the trace that measures
// what each write waited for (FEEDLINE_WRITER_TRACE, storage/writer-trace.ts), which this file turns on
// for its own process.
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { test } from "node:test"
import { tempDir } from "../../harness/temp-dirs.ts"

const traceDir = tempDir("feedline-writer-trace-")
const TRACE = join(traceDir, "trace")
process.env.FEEDLINE_WRITER_TRACE = TRACE // before the store's modules load (they read it once), and the thread inherits it
const { averagePointsPerCommit, compactionYields, WHOLE_COMPACTION_POINTS_PER_COMMIT } = await import("../../../../devs/server/storage/housekeeping.ts")
const { SqliteStore } = await import("../../../../devs/server/storage/sqlite.ts")
const { overlapMs, walChange } = await import("../../../../devs/server/storage/writer-trace.ts")
const { parseTrace } = await import("../../../../devs/bench/writer-trace-summary.ts")

const T0 = Date.UTC(2026, 11, 7, 0)

test("housekeeping: a compaction yields to writes while they come a few points a commit, and runs whole once the writer is busy", () => {
    let recent = 0
    for (let i = 0; i < 50; i++) recent = averagePointsPerCommit(recent, i % 2 ? 1 : 3) // ~2 a commit: 1000/s
    assert.ok(Math.abs(recent - 2) < 0.5, String(recent))
    assert.equal(compactionYields(recent), true)
    for (let i = 0; i < 20; i++) recent = averagePointsPerCommit(recent, 400) // a closed loop
    assert.equal(compactionYields(recent), false)
    for (let i = 0; i < 30; i++) recent = averagePointsPerCommit(recent, 1) // quiet again
    assert.equal(compactionYields(recent), true)
    assert.equal(compactionYields(WHOLE_COMPACTION_POINTS_PER_COMMIT), false)
    assert.equal(compactionYields(WHOLE_COMPACTION_POINTS_PER_COMMIT - 0.01), true)
})

test("writer trace: the overlap of a wait with housekeeping spans; what a commit did to the WAL index", () => {
    assert.equal(overlapMs([[0, 2], [5, 6], [9, 12]], 1, 10), 1 + 1 + 1)
    assert.equal(overlapMs([[0, 2]], 2, 3), 0)
    assert.equal(walChange({ frames: 999, backfilled: 0 }, { frames: 1000, backfilled: 1000 }), "k")
    assert.equal(walChange({ frames: 1000, backfilled: 1000 }, { frames: 1, backfilled: 0 }), "r")
    assert.equal(walChange({ frames: 5, backfilled: 0 }, { frames: 6, backfilled: 0 }), "")
})

test("writer trace: every answered message is traced with its parts, and SQLite's checkpoints inside commits are seen", async () => {
    const dir = tempDir("feedline-store-")
    const store = new SqliteStore({ path: join(dir, "db"), synchronous: "NORMAL", writerThread: true, now: () => T0 })
    // each write awaited: a commit of its own, a WAL frame each, so SQLite's automatic checkpoint (at 1000 frames) runs twice or more
    const COMMITS = 2500
    try {
        const f = (await store.createFeed({})).id
        for (let i = 0; i < COMMITS; i++) await store.writePoints(f, [{ stream: `s${i % 50}`, atMs: T0 + i, value: String(i) }])
    } finally {
        await store.close()
    }
    const lines = parseTrace(readFileSync(TRACE, "utf8"))
    assert.equal(lines.length, COMMITS)
    for (const l of lines) {
        assert.equal(l.requests, 1)
        for (const ms of [l.heldMs, l.queuedMs, l.commitMs, l.afterCommitMs, l.answerMs, l.behindCompactionMs, l.behindCheckpointMs, l.behindTurnMs]) assert.ok(ms > -1 && ms < 60_000, JSON.stringify(l)) // (two threads' clocks: within a ms)
    }
    assert.ok(lines.filter((l) => l.inCommit.includes("k")).length >= 2, "commits that held a checkpoint")
    const spans = readFileSync(`${TRACE}.housekeeping`, "utf8").split("\n").filter((l) => l.startsWith("checkpoint "))
    assert.ok(spans.length >= 2, `${spans.length} checkpoint spans`)
})
