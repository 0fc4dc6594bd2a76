// A start whose SQLite writer thread cannot open the database, or cannot move the journal a crash left
// (a full disk: found on a full tmpfs), says which database and why, as a start that cannot work does
// (a ConfigError: the CLI prints one line and exits 2), and lets go of the database: it printed
// "feedline: [object Object]" (better-sqlite3's SqliteError crossed the thread as a plain object) and kept
// the server lock of the process. A trigger that fails the journal's move stands in for the full disk.
import assert from "node:assert/strict"
import { join } from "node:path"
import { test } from "node:test"
import Database from "better-sqlite3"
import { ConfigError } from "../../../../devs/server/errors.ts"
import { startServer } from "../../../../devs/server/index.ts"
import { PointWriter } from "../../../../devs/server/storage/point-writer.ts"
import { SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import { tempDir } from "../../harness/temp-dirs.ts"

const T0 = Date.UTC(2026, 11, 7, 3)
const dataDir = tempDir("feedline-writer-start-")

test("a writer thread that cannot move a crash's journal at start: a ConfigError naming the database and the cause; the database is let go", async () => {
    const path = join(dataDir, "feedline.db")
    const made = new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 })
    const feed = (await made.createFeed({})).id
    await made.close()
    // a process journaled a write and died before moving it; moving it now fails
    const db = new Database(path)
    new PointWriter(db).commit([{ feed, points: [{ stream: "s", atMs: T0, value: "kept" }] }], T0)
    db.exec("CREATE TRIGGER fail BEFORE INSERT ON datapoints BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    db.close()

    const start = () => startServer({ dataDir, devicePort: 0, appPort: 0, logLevel: "silent" })
    const r = await start().catch((e: unknown) => e)
    if (!(r instanceof Error)) {
        await (r as Awaited<ReturnType<typeof start>>).close()
        assert.fail("started on a journal it could not move")
    }
    assert.ok(r instanceof ConfigError, String((r as Error).stack ?? r))
    assert.match(r.message, /cannot open the database .*feedline\.db \(SQLITE_[A-Z_]+: disk on fire\)/)

    // the cause gone, the same process starts on it (nothing held the server lock) and the write is there
    const fix = new Database(path)
    fix.exec("DROP TRIGGER fail")
    fix.close()
    const server = await start()
    try {
        assert.deepEqual(await server.store.history(feed, "s", { startMs: 0, endMs: T0 * 2, limit: 10 }), [{ atMs: T0, value: "kept" }])
    } finally {
        await server.close()
    }
})
