// The writer's connection keeps SQLite's statement journals in memory (PointWriter sets temp_store =
// MEMORY): a compaction's INSERT … SELECT changes hundreds of pages in one statement, and SQLite spilled
// their statement journal to a temporary file past 64 KiB, in every compaction (an open, ~100 writes and
// a close). This file runs in a process of its own, so SQLite's temporary folder (read once, at its first
// use) is a scratch folder the test watches.
import assert from "node:assert/strict"
import { watch, writeFileSync } from "node:fs"
import { join } from "node:path"
import { test } from "node:test"
import Database from "better-sqlite3"
import { tempDir, tempStorePath } from "../../harness/temp-dirs.ts"

const sqliteTmp = tempDir("feedline-sqlite-tmp-")
process.env.SQLITE_TMPDIR = sqliteTmp // before the first connection of this process
const { PointWriter } = await import("../../../../devs/server/storage/point-writer.ts")
const { SqliteStore } = await import("../../../../devs/server/storage/sqlite.ts")

const T0 = Date.UTC(2026, 11, 6, 22)
const STREAMS = 50

test("writer: a compaction of thousands of points creates no temporary file (its statement journal stays in memory); with SQLite's default it does", async () => {
    const path = tempStorePath("feedline-store-")
    const setup = new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 })
    const f = (await setup.createFeed({})).id
    await setup.close()
    const db = new Database(path)
    db.pragma("journal_mode = WAL")
    db.pragma("synchronous = NORMAL")
    const writer = new PointWriter(db)
    assert.equal(db.pragma("temp_store", { simple: true }), 2, "MEMORY")
    let at = T0
    /** journals 4000 points over the datastreams (the existing leaves change: their old pages go to the statement journal) and compacts */
    const journalAndCompact = () => {
        const points = Array.from({ length: 4000 }, (_, i) => ({ stream: `s${i % STREAMS}`, atMs: ++at, value: String(at % 1000) }))
        writer.commit([{ feed: f, points }], T0)
        assert.equal(writer.compact(), true)
    }
    const created: string[] = []
    const watcher = watch(sqliteTmp, (_event, name) => created.push(String(name)))
    try {
        journalAndCompact() // the tables' first leaves
        journalAndCompact()
        journalAndCompact()
        // the control: the same compaction with SQLite's default spills (so the watch would have seen the
        // files above); the marker orders the events, which arrive in order
        writeFileSync(join(sqliteTmp, "marker"), "")
        db.pragma("temp_store = DEFAULT")
        journalAndCompact()
        const deadline = Date.now() + 30_000
        while (created.filter((n) => n !== "marker").length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
        assert.equal(created[0], "marker", `no temporary file before the control: ${created.join(", ")}`)
        assert.ok(created.some((n) => n !== "marker"), "the control (SQLite's default) spilled a statement journal into a temporary file")
    } finally {
        watcher.close()
        db.close()
    }
})
