// The SQLite store's ingest journal (storage/point-writer.ts): a write's durable commit appends its points
// to `ingest_journal`, and a compaction moves them into datapoints, datastreams and feeds later. These
// tests hold what must not change for that: a journal a crash left is moved when the store opens (nothing
// lost, nothing twice), every read right after an acknowledgement sees it, deletes see what was
// acknowledged before them, reads laid over the journal answer what they answer once it is moved, a
// rewrite of an identical value is no change whether the first is still in the journal or in the table
// (and is a change again after a delete, even one made by another connection), and a compaction never
// leaves the connection at synchronous=NORMAL.
import assert from "node:assert/strict"
import { statSync } from "node:fs"
import { join } from "node:path"
import { test } from "node:test"
import Database from "better-sqlite3"
import { appendStatementRows, COMPACT_CHUNK_ROWS, COMPACT_JOURNAL_ROWS, PointWriter } from "../../../../devs/server/storage/point-writer.ts"
import { MIGRATIONS, SCHEMA_VERSION, SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import { tempStorePath } from "../../harness/temp-dirs.ts"

const T0 = Date.UTC(2026, 11, 6, 12)
/** SQLite's WAL file format: a 32-byte file header, then per frame a 24-byte header and one page */
const WAL_HEADER_BYTES = 32
const WAL_FRAME_HEADER_BYTES = 24

function scratchPath(): string {
    return tempStorePath("feedline-journal-")
}

/** Rows in the journal and in datapoints, read by a connection of their own. */
function rowsOf(path: string, feed?: number): { journal: number; datapoints: number } {
    const db = new Database(path)
    try {
        const where = feed === undefined ? "" : ` WHERE feed = ${feed}`
        return {
            journal: db.prepare(`SELECT COUNT(*) FROM ingest_journal${where}`).pluck().get() as number,
            datapoints: db.prepare(`SELECT COUNT(*) FROM datapoints${where}`).pluck().get() as number,
        }
    } finally {
        db.close()
    }
}

for (const writerThread of [false, true]) {
    const mode = writerThread ? "writer thread" : "in-process"

    test(`journal (${mode}): a journal left by a crash is moved into the tables when the store opens; nothing lost, nothing twice`, async () => {
        const path = scratchPath()
        const first = new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 })
        const f = (await first.createFeed({})).id
        await first.close()
        // a writer journals two commits and the process dies before any compaction (no close)
        const db = new Database(path)
        const writer = new PointWriter(db)
        writer.commit([{ feed: f, points: [{ stream: "s", atMs: T0, value: "1" }, { stream: "s", atMs: T0 + 1, value: "2" }, { stream: "t", atMs: T0, value: "x" }] }], T0)
        writer.commit([{ feed: f, points: [{ stream: "s", atMs: T0 + 1, value: "3" }] }], T0 + 5) // replaces T0 + 1
        db.close()
        assert.deepEqual(rowsOf(path), { journal: 4, datapoints: 0 }, "the crash left its points in the journal only")

        const store = new SqliteStore({ path, synchronous: "NORMAL", writerThread, now: () => T0 + 10 })
        try {
            assert.deepEqual(await store.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 10 }), [
                { atMs: T0, value: "1" },
                { atMs: T0 + 1, value: "3" },
            ])
            const s = await store.getDatastream(f, "s")
            assert.deepEqual([s?.currentValue, s?.atMs, s?.minValue, s?.maxValue], ["3", T0 + 1, 1, 3])
            assert.equal((await store.getFeed(f))?.updatedMs, T0 + 5)
            const replay = await store.replay(f, undefined, 0, 10)
            assert.deepEqual(replay.points.map((p) => [p.stream, p.atMs, p.value, p.seq]), [["s", T0, "1", 1], ["t", T0, "x", 3], ["s", T0 + 1, "3", 4]])
            assert.deepEqual([replay.seen({ seq: 4 }), replay.seen({ seq: 5 })], [true, false])
            // the same value again is no change; the next change gets the next seq
            assert.deepEqual(await store.writePoints(f, [{ stream: "s", atMs: T0 + 1, value: "3" }]), [])
            assert.deepEqual((await store.writePoints(f, [{ stream: "s", atMs: T0 + 2, value: "4" }])).map((p) => p.seq), [5])
        } finally {
            await store.close()
        }
        assert.deepEqual(rowsOf(path), { journal: 0, datapoints: 4 })
    })

    test(`journal (${mode}): every read right after an acknowledgement sees the write`, async () => {
        const path = scratchPath()
        let now = T0
        const store = new SqliteStore({ path, synchronous: "NORMAL", writerThread, now: () => now })
        try {
            const f = (await store.createFeed({})).id
            for (let i = 1; i <= 5; i++) {
                now = T0 + i
                const [written] = await store.writePoints(f, [{ stream: "s", atMs: T0 + i, value: String(i) }])
                assert.deepEqual((await store.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 1, newest: true })).map((p) => p.value), [String(i)])
                assert.equal((await store.getDatastream(f, "s"))?.currentValue, String(i))
                assert.equal((await store.listDatastreams(f))[0]?.maxValue, i)
                assert.equal((await store.getFeed(f))?.updatedMs, T0 + i)
                assert.equal((await store.listFeeds())[0]?.updatedMs, T0 + i)
                const replay = await store.replay(f, "s", T0 + i - 1, 10)
                assert.deepEqual(replay.points.map((p) => p.value), [String(i)])
                assert.equal(replay.seen(written), true, "what the replay holds is not sent again live")
            }
            // a datastream created by a write is not created again
            assert.deepEqual(await store.createDatastreams(f, ["s", "u"]), ["u"])
        } finally {
            await store.close()
        }
    })

    test(`journal (${mode}): a rewrite of an identical value is no change, in the journal or in the table; a new value replaces it`, async () => {
        const store = new SqliteStore({ path: scratchPath(), synchronous: "NORMAL", writerThread, now: () => T0 })
        try {
            const f = (await store.createFeed({})).id
            const p = (value: string) => [{ stream: "s", atMs: T0, value }]
            const [a] = await store.writePoints(f, p("1"))
            assert.deepEqual(await store.writePoints(f, p("1")), [], "the first is still in the journal")
            const [b] = await store.writePoints(f, p("2"))
            assert.ok(b.seq > a.seq)
            assert.deepEqual(await store.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 10 }), [{ atMs: T0, value: "2" }]) // (moves the journal)
            assert.deepEqual(await store.writePoints(f, p("2")), [], "now in the table")
            // two requests of one commit
            const both = await Promise.all([store.writePoints(f, p("3")), store.writePoints(f, p("3"))])
            assert.deepEqual(both.map((w) => w.length), [1, 0])
            const replay = await store.replay(f, "s", 0, 10)
            assert.deepEqual(replay.points.map((q) => [q.value, q.seq]), [["3", both[0][0].seq]])
        } finally {
            await store.close()
        }
    })

    test(`journal (${mode}): deletes see the acknowledged points; an identical rewrite after a delete is stored again`, async () => {
        const path = scratchPath()
        const store = new SqliteStore({ path, synchronous: "NORMAL", writerThread, now: () => T0 })
        try {
            const f = (await store.createFeed({})).id
            await store.writePoints(f, [{ stream: "s", atMs: T0, value: "1" }, { stream: "s", atMs: T0 + 1, value: "2" }])
            assert.equal(await store.deletePoints(f, "s", T0 + 1, T0 + 1), 1)
            assert.equal((await store.getDatastream(f, "s"))?.currentValue, "1")
            assert.equal((await store.writePoints(f, [{ stream: "s", atMs: T0 + 1, value: "2" }])).length, 1, "stored again")
            assert.equal((await store.getDatastream(f, "s"))?.currentValue, "2")

            await store.writePoints(f, [{ stream: "t", atMs: T0, value: "x" }])
            assert.ok(await store.deleteDatastream(f, "t"))
            assert.equal(await store.getDatastream(f, "t"), undefined)
            assert.equal((await store.writePoints(f, [{ stream: "t", atMs: T0, value: "x" }])).length, 1, "stored again")
            assert.equal((await store.getDatastream(f, "t"))?.currentValue, "x")

            // retention sees the journal too
            assert.equal(await store.prune(T0 + 1), 2) // s@T0 and t@T0
            // a feed deleted with points in the journal: none of them outlives it
            const g = (await store.createFeed({})).id
            await store.writePoints(g, [{ stream: "s", atMs: T0, value: "1" }])
            assert.ok(await store.deleteFeed(g))
            await store.writePoints(f, [{ stream: "s", atMs: T0 + 2, value: "3" }])
            assert.equal((await store.getDatastream(f, "s"))?.currentValue, "3")
        } finally {
            await store.close()
        }
        assert.equal(rowsOf(path).journal, 0)
    })

    test(`journal (${mode}): another connection that moves the journal and deletes (the CLI) leaves the writer's dedup true`, async () => {
        const path = scratchPath()
        const server = new SqliteStore({ path, synchronous: "NORMAL", writerThread, now: () => T0 })
        const cli = new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 })
        try {
            const f = (await server.createFeed({})).id
            await server.writePoints(f, [{ stream: "s", atMs: T0, value: "1" }])
            assert.equal(rowsOf(path).journal, 1)
            // the CLI's delete moves the server's journal first (its reads must see the point too)
            assert.equal(await cli.deletePoints(f, "s", T0, T0), 1)
            assert.equal((await server.writePoints(f, [{ stream: "s", atMs: T0, value: "1" }])).length, 1, "stored again, not taken for a rewrite")
            assert.deepEqual(await cli.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 10 }), [{ atMs: T0, value: "1" }])
        } finally {
            await cli.close()
            await server.close()
        }
    })
    test(`journal (${mode}): a compaction that fails (storage error) refuses the replay that needs it, loses nothing, and the next one moves it all`, async () => {
        const path = scratchPath()
        const errors: unknown[] = []
        const store = new SqliteStore({ path, synchronous: "NORMAL", writerThread, now: () => T0, onError: (e) => errors.push(e) })
        try {
            const f = (await store.createFeed({})).id
            const db = new Database(path)
            db.exec(`CREATE TRIGGER fail BEFORE INSERT ON datapoints BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
            assert.equal((await store.writePoints(f, [{ stream: "s", atMs: T0, value: "1" }])).length, 1, "acknowledged: it is in the journal")
            // a history read lays the journal over the table: it needs no compaction
            assert.deepEqual(await store.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 10 }), [{ atMs: T0, value: "1" }])
            // a replay has the journal moved first
            await assert.rejects(store.replay(f, "s", 0, 10), (e: { failure?: string; message: string }) => {
                assert.equal(e.failure, "commit-failed")
                assert.ok(!e.message.includes("fire"), "internal errors are logged, not sent to clients")
                return true
            })
            assert.ok(errors.length >= 1)
            db.exec("DROP TRIGGER fail")
            db.close()
            assert.deepEqual((await store.replay(f, "s", 0, 10)).points.map((p) => [p.atMs, p.value]), [[T0, "1"]])
            assert.deepEqual(rowsOf(path), { journal: 0, datapoints: 1 })
            assert.equal((await store.getDatastream(f, "s"))?.currentValue, "1")
        } finally {
            await store.close()
        }
    })
}

for (const writerThread of [false, true]) {
    const mode = writerThread ? "writer thread" : "in-process"
    test(`journal (${mode}): history, current values and updated_ms read with points in the journal are what they are once it is moved`, async () => {
        const path = scratchPath()
        let now = T0
        const store = new SqliteStore({ path, synchronous: "NORMAL", writerThread, now: () => now })
        try {
            const f = (await store.createFeed({})).id
            await store.writePoints(f, [0, 1, 2, 3, 4].map((i) => ({ stream: "s", atMs: T0 + i, value: String(i) })))
            await store.writePoints(f, [{ stream: "t", atMs: T0, value: "on" }])
            await store.replay(f, undefined, 0, 100) // moves the journal into the tables
            now = T0 + 50
            await store.writePoints(f, [
                { stream: "s", atMs: T0, value: "100" }, // replaces the first, in its bucket
                { stream: "s", atMs: T0 + 2, value: "20" }, // replaces one inside
                { stream: "s", atMs: T0 + 7, value: "7" }, // newer
                { stream: "s", atMs: T0 - 5, value: "-5" }, // older
                { stream: "u", atMs: T0, value: "x" }, // a new datastream
            ])
            now = T0 + 60
            await store.writePoints(f, [{ stream: "a", atMs: T0 + 1, value: "1.5" }]) // another new one, first by id
            if (!writerThread) assert.equal(rowsOf(path).journal, 6, "the reads below are laid over the journal")
            const queries = [
                { startMs: 0, endMs: T0 * 2, limit: 100 },
                { startMs: 0, endMs: T0 * 2, limit: 3 },
                { startMs: 0, endMs: T0 * 2, limit: 2, newest: true },
                { startMs: T0 + 1, endMs: T0 + 6, limit: 100 },
                { startMs: 0, endMs: T0 * 2, limit: 100, intervalMs: 5 },
                { startMs: 0, endMs: T0 * 2, limit: 2, intervalMs: 5, newest: true },
                { startMs: 0, endMs: T0 * 2, limit: 100, intervalMs: 3 },
            ]
            const read = async () => ({
                history: await Promise.all(queries.map((q) => store.history(f, "s", q))),
                streams: await store.listDatastreams(f),
                s: await store.getDatastream(f, "s"),
                u: await store.getDatastream(f, "u"),
                feed: await store.getFeed(f),
                feeds: await store.listFeeds(),
            })
            const merged = await read()
            assert.deepEqual(merged.history[0].map((p) => `${p.atMs - T0}=${p.value}`), ["-5=-5", "0=100", "1=1", "2=20", "3=3", "4=4", "7=7"])
            assert.deepEqual(merged.history[4].map((p) => `${p.atMs - T0}=${p.value}`), ["-5=-5", "0=100", "7=7"])
            assert.deepEqual([merged.s?.currentValue, merged.s?.atMs, merged.s?.minValue, merged.s?.maxValue], ["7", T0 + 7, -5, 100])
            assert.deepEqual(merged.streams.map((d) => d.id), ["a", "s", "t", "u"])
            assert.equal(merged.feed?.updatedMs, T0 + 60)
            await store.replay(f, undefined, 0, 100) // moves the journal
            assert.equal(rowsOf(path).journal, 0)
            assert.deepEqual(merged, await read())
        } finally {
            await store.close()
        }
    })
}

test("journal: a compaction skips the points of a feed deleted after they were journaled, and leaves the connection at synchronous=FULL", async () => {
    const path = scratchPath()
    const setup = new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 })
    const f = (await setup.createFeed({})).id
    const g = (await setup.createFeed({})).id
    await setup.close()
    const db = new Database(path)
    db.pragma("journal_mode = WAL")
    db.pragma("synchronous = FULL")
    db.pragma("foreign_keys = ON")
    try {
        const writer = new PointWriter(db)
        writer.commit([{ feed: f, points: [{ stream: "s", atMs: T0, value: "1" }] }, { feed: g, points: [{ stream: "s", atMs: T0, value: "1" }] }], T0)
        // another connection deletes g meanwhile (its datastream row would need the feed: a foreign key)
        const other = new Database(path)
        other.prepare("DELETE FROM feeds WHERE id = ?").run(g)
        other.close()
        assert.equal(writer.compact(), true)
        assert.equal(db.pragma("synchronous", { simple: true }), 2, "FULL again after the compaction")
        assert.deepEqual(rowsOf(path, g), { journal: 0, datapoints: 0 })
        assert.deepEqual(rowsOf(path, f), { journal: 0, datapoints: 1 })
        assert.equal(writer.compact(), false, "an empty journal: nothing to do")
    } finally {
        db.close()
    }
})

test(`journal: in-process, the commit that takes the journal to ${COMPACT_JOURNAL_ROWS} points is followed by a compaction`, async () => {
    const path = scratchPath()
    const store = new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 })
    try {
        const f = (await store.createFeed({})).id
        await store.writePoints(f, Array.from({ length: COMPACT_JOURNAL_ROWS - 1 }, (_, i) => ({ stream: "s", atMs: T0 + i, value: String(i) })))
        assert.equal(rowsOf(path).journal, COMPACT_JOURNAL_ROWS - 1)
        await store.writePoints(f, [{ stream: "t", atMs: T0, value: "x" }])
        assert.deepEqual(rowsOf(path), { journal: 0, datapoints: COMPACT_JOURNAL_ROWS })
    } finally {
        await store.close()
    }
})

/** A PointWriter on a store's database with `feeds` feeds, and a way to read back what a table holds. */
async function writerWithFeeds(feeds: number): Promise<{ path: string; db: Database.Database; writer: PointWriter; ids: number[] }> {
    const path = scratchPath()
    const setup = new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 })
    const ids: number[] = []
    for (let i = 0; i < feeds; i++) ids.push((await setup.createFeed({})).id)
    await setup.close()
    const db = new Database(path)
    db.pragma("journal_mode = WAL")
    return { path, db, writer: new PointWriter(db), ids }
}

test("journal: one commit across many feeds, with duplicates inside it and a missing feed, journals each change once in seq order", async () => {
    const { path, db, writer, ids } = await writerWithFeeds(40)
    try {
        const missing = Math.max(...ids) + 1000
        // 40 feeds × 4 points = 160 rows: more than one multi-row INSERT (64 + 64 + 32)
        const batch = ids.map((feed, k) => ({
            feed,
            points: [
                { stream: "a", atMs: T0 + k, value: "x" },
                { stream: "b", atMs: T0, value: String(k) },
                { stream: "a", atMs: T0 + k, value: "y" }, // same (stream, at) in one request: the last wins
                { stream: "c", atMs: T0, value: "1" },
                { stream: "d", atMs: T0, value: "2" },
            ],
        }))
        batch.splice(7, 0, { feed: missing, points: [{ stream: "a", atMs: T0, value: "1" }] })
        // a later request of the commit: the same point again (no change) and a new value (a change)
        batch.push({ feed: ids[0], points: [{ stream: "c", atMs: T0, value: "1" }, { stream: "d", atMs: T0, value: "3" }] })
        const outcomes = writer.commit(batch, T0)
        assert.equal(outcomes.length, 42)
        assert.equal((outcomes[7] as { failure?: string }).failure, "no-such-feed")
        const seqs: number[] = []
        outcomes.forEach((o, i) => {
            if (i === 7) return
            assert.ok(Array.isArray(o))
            for (let k = 1; k < o.length; k += 2) seqs.push(o[k])
        })
        assert.deepEqual((outcomes[0] as number[]).filter((_, k) => k % 2 === 0), [2, 1, 3, 4], "indexes in stream then time order, the duplicate's last")
        assert.deepEqual((outcomes[41] as number[]).filter((_, k) => k % 2 === 0), [1], "only the changed point of the later request")
        // [P§8] each feed counts its own seqs: 1-4 for each feed's first request, 5 for feed 0's later one
        assert.deepEqual(seqs, [...ids.flatMap(() => [1, 2, 3, 4]), 5], "each feed's seqs consecutive, in request order")
        const rows = db.prepare("SELECT feed_seq AS seq, feed, stream, at_ms AS at, value FROM ingest_journal ORDER BY rowid").all() as { seq: number; feed: number; stream: string; at: number; value: string }[]
        assert.equal(rows.length, 40 * 4 + 1)
        assert.deepEqual(rows.map((r) => r.seq), seqs)
        assert.deepEqual(rows.slice(0, 4).map((r) => [r.feed, r.stream, r.value]), [[ids[0], "a", "y"], [ids[0], "b", "0"], [ids[0], "c", "1"], [ids[0], "d", "2"]])
        assert.deepEqual(rows.at(-1), { seq: seqs.at(-1), feed: ids[0], stream: "d", at: T0, value: "3" })
        // the same commit again: no change now (what the journal holds, remembered), but feed 0's "d",
        // which the journal holds at "3" since the last request
        const again = writer.commit(batch.slice(0, 41), T0 + 1)
        assert.deepEqual(again.map((o) => (Array.isArray(o) ? o.length : "refused")), batch.slice(0, 41).map((_, i) => (i === 7 ? "refused" : i === 0 ? 2 : 0)))
        writer.compact()
        assert.deepEqual(rowsOf(path), { journal: 0, datapoints: 40 * 4 })
        assert.equal(db.prepare("SELECT value FROM datapoints WHERE feed = ? AND stream = 'd'").pluck().get(ids[0]), "2")
        assert.equal(db.prepare("SELECT current_value FROM datastreams WHERE feed = ? AND id = 'a'").pluck().get(ids[39]), "y")
    } finally {
        db.close()
    }
})

test("journal: a commit's rows go in at most two INSERTs up to 64 rows, and commits of every size from 1 to 130 rows journal each row once, in seq order", async () => {
    // the statements' sizes: every size to 16, then multiples of 16 to 64 (19 prepared statements at most)
    const sizes = new Set<number>()
    for (let n = 1; n <= 200; n++) {
        const parts: number[] = []
        for (let left = n; left > 0; left -= parts.at(-1)!) parts.push(appendStatementRows(left))
        assert.equal(parts.reduce((a, b) => a + b, 0), n)
        if (n <= 64) assert.ok(parts.length <= 2, `${n} rows: ${parts.join(" + ")}`)
        parts.forEach((p) => sizes.add(p))
    }
    assert.deepEqual([...sizes].sort((a, b) => a - b), [...Array.from({ length: 16 }, (_, i) => i + 1), 32, 48, 64])
    const { db, writer, ids } = await writerWithFeeds(1)
    try {
        let at = T0
        const written: number[] = []
        for (let n = 1; n <= 130; n++) {
            const batch = Array.from({ length: n }, (_, k) => ({ feed: ids[0], points: [{ stream: `s${k % 7}`, atMs: at++, value: String(n) }] }))
            for (const o of writer.commit(batch, T0)) written.push((o as number[])[1])
        }
        const rows = db.prepare("SELECT seq, at_ms AS at FROM ingest_journal ORDER BY seq").all() as { seq: number; at: number }[]
        assert.equal(rows.length, (130 * 131) / 2)
        assert.deepEqual(rows.map((r) => r.seq), written)
        assert.deepEqual(rows.map((r) => r.seq), rows.map((_, i) => rows[0].seq + i), "consecutive seqs")
        assert.deepEqual(rows.map((r) => r.at), rows.map((_, i) => T0 + i), "each row once, in the order written")
    } finally {
        db.close()
    }
})

test("journal: a commit that fails after journaling some of its points leaves no memory of them (the same points are a change afterwards)", async () => {
    const { path, db, writer, ids } = await writerWithFeeds(1)
    const [f] = ids
    try {
        writer.commit([{ feed: f, points: [{ stream: "s", atMs: T0, value: "0" }] }], T0)
        const other = new Database(path)
        other.exec(`CREATE TRIGGER fail BEFORE INSERT ON ingest_journal WHEN NEW.value = 'boom' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
        const ok = { stream: "s", atMs: T0 + 1, value: "1" }
        assert.throws(() => writer.commit([{ feed: f, points: [ok] }, { feed: f, points: [{ stream: "t", atMs: T0, value: "boom" }] }], T0), /disk on fire/)
        other.exec("DROP TRIGGER fail")
        other.close()
        assert.deepEqual(rowsOf(path), { journal: 1, datapoints: 0 }, "rolled back")
        const again = writer.commit([{ feed: f, points: [ok] }], T0 + 2)
        assert.equal((again[0] as number[]).length, 2, "stored now: not taken for a rewrite of what was rolled back")
        assert.equal(writer.journalRows(), 2)
        writer.compact()
        assert.deepEqual(rowsOf(path), { journal: 0, datapoints: 2 })
    } finally {
        db.close()
    }
})

test("journal: an older point than its datastream's newest is looked up in the journal's memory (no change when identical) and in the table", async () => {
    const { db, writer, ids } = await writerWithFeeds(1)
    const [f] = ids
    const lengths = (points: { stream: string; atMs: number; value: string }[]) => writer.commit([{ feed: f, points }], T0).map((o) => (o as number[]).length / 2)
    try {
        assert.deepEqual(lengths([{ stream: "s", atMs: T0 + 5, value: "5" }, { stream: "s", atMs: T0 + 1, value: "1" }]), [2])
        assert.deepEqual(lengths([{ stream: "s", atMs: T0 + 1, value: "1" }]), [0], "older than the newest, identical, in the journal")
        assert.deepEqual(lengths([{ stream: "s", atMs: T0 + 3, value: "3" }]), [1], "older than the newest, in neither")
        assert.deepEqual(lengths([{ stream: "s", atMs: T0 + 1, value: "one" }]), [1], "a new value")
        assert.equal(writer.journalRows(), 3, "(feed, stream, at) counted once however often rewritten")
        writer.compact()
        assert.deepEqual(lengths([{ stream: "s", atMs: T0 + 1, value: "one" }, { stream: "s", atMs: T0 + 3, value: "3" }, { stream: "s", atMs: T0 + 5, value: "five" }]), [1], "in the table now")
        assert.equal(writer.journalRows(), 1)
    } finally {
        db.close()
    }
})

test("journal: a one-point commit writes one WAL frame (the journal's leaf), not a second for a stored counter", async () => {
    const { path, db, writer, ids } = await writerWithFeeds(1)
    try {
        db.pragma("wal_autocheckpoint = 0")
        writer.commit([{ feed: ids[0], points: [{ stream: "s", atMs: T0, value: "0" }] }], T0)
        db.pragma("wal_checkpoint(TRUNCATE)")
        const commits = 200
        for (let i = 1; i <= commits; i++) writer.commit([{ feed: ids[0], points: [{ stream: `s${i % 50}`, atMs: T0 + i, value: String(i) }] }], T0 + i)
        const walBytes = statSync(`${path}-wal`).size
        const pageBytes = db.pragma("page_size", { simple: true }) as number
        const frames = (walBytes - WAL_HEADER_BYTES) / (WAL_FRAME_HEADER_BYTES + pageBytes)
        // a new leaf of the journal now and then also writes its parent and the database's header page
        assert.ok(frames <= commits * 1.1, `${frames} frames for ${commits} one-point commits`)
    } finally {
        db.close()
    }
})

test("journal: two writers on two connections, taking turns, never give out one seq twice", async () => {
    const { path, db, writer, ids } = await writerWithFeeds(1)
    const otherDb = new Database(path)
    try {
        const other = new PointWriter(otherDb)
        const seqs: number[] = []
        for (let i = 0; i < 6; i++) {
            const w = i % 3 === 0 ? other : writer // the same writer twice in a row too: it may count from memory then
            const [pairs] = w.commit([{ feed: ids[0], points: [{ stream: "s", atMs: T0 + i, value: String(i) }] }], T0 + i) as number[][]
            seqs.push(pairs[1])
            if (i === 3) other.compact() // the journal emptied by the other: the newest seq is compacted_seq now
        }
        assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6])
        writer.compact()
        const rows = db.prepare("SELECT at_ms - ? AS i, seq FROM datapoints ORDER BY seq").all(T0) as { i: number; seq: number }[]
        assert.deepEqual(rows.map((r) => [r.i, r.seq]), [0, 1, 2, 3, 4, 5].map((i) => [i, i + 1]))
    } finally {
        otherDb.close()
        db.close()
    }
})

test("journal: a data folder from before migration 9 (a stored seq counter) opens with its points, seqs and order, and counts on from them", async () => {
    for (const writerThread of [false, true]) {
        for (const crashed of [false, true]) {
            const path = scratchPath()
            // schema 8 as shipped: points 1-3 in datapoints; a crash left 4-5 in the journal, else they were moved too
            const old = new Database(path)
            old.pragma("journal_mode = WAL")
            for (let v = 0; v < 8; v++) old.exec(MIGRATIONS[v])
            old.pragma("user_version = 8")
            old.prepare("INSERT INTO feeds (id, title, created_ms, updated_ms) VALUES (1, '', ?, ?)").run(T0, T0)
            old.prepare("INSERT INTO datastreams (feed, id, current_value, at_ms, min_value, max_value, created_ms) VALUES (1, 's', ?, ?, 1, ?, ?)").run(
                crashed ? "3" : "5", crashed ? T0 + 3 : T0 + 5, crashed ? 3 : 5, T0,
            )
            const moved = crashed ? 3 : 5
            for (let seq = 1; seq <= 5; seq++) {
                if (seq <= moved) old.prepare("INSERT INTO datapoints (feed, stream, at_ms, value, seq) VALUES (1, 's', ?, ?, ?)").run(T0 + seq, String(seq), seq)
                else old.prepare("INSERT INTO ingest_journal (feed, stream, at_ms, value, seq, now_ms) VALUES (1, 's', ?, ?, ?, ?)").run(T0 + seq, String(seq), seq, T0 + seq)
            }
            old.prepare("UPDATE settings SET value = ? WHERE name = 'seq_high_water'").run(5)
            old.prepare("UPDATE settings SET value = ? WHERE name = 'compacted_seq'").run(moved)
            old.close()

            const store = new SqliteStore({ path, synchronous: "NORMAL", writerThread, now: () => T0 + 10 })
            try {
                const what = `${writerThread ? "writer thread" : "in-process"}, ${crashed ? "journal left by a crash" : "journal empty"}`
                const replay = await store.replay(1, undefined, 0, 10)
                assert.deepEqual(replay.points.map((p) => [p.value, p.seq]), [1, 2, 3, 4, 5].map((i) => [String(i), i]), what)
                assert.deepEqual([replay.seen({ seq: 5 }), replay.seen({ seq: 6 })], [true, false], what)
                assert.deepEqual((await store.writePoints(1, [{ stream: "s", atMs: T0 + 6, value: "6" }])).map((p) => p.seq), [6], `${what}: no seq given out twice`)
                assert.equal((await store.getDatastream(1, "s"))?.currentValue, "6", what)
            } finally {
                await store.close()
            }
            const db = new Database(path)
            try {
                assert.equal(db.pragma("user_version", { simple: true }), SCHEMA_VERSION)
                assert.equal(db.prepare("SELECT COUNT(*) FROM settings WHERE name = 'seq_high_water'").pluck().get(), 0, "the stored counter is gone")
                assert.equal(db.prepare("SELECT value FROM settings WHERE name = 'compacted_seq'").pluck().get(), 6)
            } finally {
                db.close()
            }
        }
    }
})

test(`journal: a compaction stopped after each chunk of ${COMPACT_CHUNK_ROWS} seqs, with commits between its parts, answers reads and rewrites as one compaction does and leaves the same tables`, async () => {
    // A compacts one chunk at a time (what the writer thread does when a write comes during a compaction); B once at the end
    const a = await writerWithFeeds(2)
    const b = await writerWithFeeds(2)
    const [f, g] = a.ids
    assert.deepEqual(b.ids, a.ids)
    /** commit i: 600 points over two feeds and three datastreams, rewriting (identically and not) and going back in time */
    const batch = (i: number) =>
        [f, g].map((feed) => ({
            feed,
            points: Array.from({ length: 300 }, (_, k) => {
                const at = T0 + ((i * 250 + k) % 1500) - (k % 7 === 0 ? 50 : 0)
                return { stream: ["s", "t", "u"][k % 3], atMs: at, value: k % 5 === 0 ? String(at % 11) : String(i * 1000 + k) }
            }),
        }))
    const readers = [a, b].map((x) => new SqliteStore({ path: x.path, writerThread: true, now: () => T0 })) // reads only: no thread starts
    const read = async (store: SqliteStore) => ({
        history: await Promise.all(["s", "t", "u"].flatMap((s) => [f, g].map((feed) => store.history(feed, s, { startMs: 0, endMs: T0 * 2, limit: 1000 })))),
        streams: await Promise.all([f, g].map((feed) => store.listDatastreams(feed))),
        feeds: await store.listFeeds(),
    })
    try {
        let parts = 0
        let partial = 0
        for (let i = 0; i < 8; i++) {
            const now = T0 + 10 * i
            assert.deepEqual(a.writer.commit(batch(i), now), b.writer.commit(batch(i), now), `commit ${i}: the same changes`)
            if (i >= 1) {
                const before = rowsOf(a.path).journal
                assert.equal(a.writer.compact(() => true), true)
                parts++
                const after = rowsOf(a.path).journal
                assert.equal(after, Math.max(0, before - COMPACT_CHUNK_ROWS), "one chunk moved (seqs are consecutive)")
                if (after > 0) partial++
            }
            if (i % 3 === 2) assert.deepEqual(await read(readers[0]), await read(readers[1]), `reads after commit ${i}`)
        }
        while (a.writer.compact(() => true)) parts++
        assert.equal(b.writer.compact(), true)
        assert.ok(partial >= 4 && parts > 8, `${partial} compactions left rows, ${parts} parts`)
        for (const x of [a, b]) assert.equal(rowsOf(x.path).journal, 0)
        assert.deepEqual(await read(readers[0]), await read(readers[1]), "the tables, read")
        const tables = (db: Database.Database) => ({
            datapoints: db.prepare("SELECT * FROM datapoints ORDER BY feed, stream, at_ms").all(),
            datastreams: db.prepare("SELECT * FROM datastreams ORDER BY feed, id").all(),
            feeds: db.prepare("SELECT id, updated_ms FROM feeds ORDER BY id").all(),
            compacted: db.prepare("SELECT value FROM settings WHERE name = 'compacted_seq'").pluck().get(),
        })
        assert.deepEqual(tables(a.db), tables(b.db))
        // and on from there alike: rewrites of what the parts moved are no change, new values are
        assert.deepEqual(a.writer.commit(batch(3), T0 + 100), b.writer.commit(batch(3), T0 + 100))
    } finally {
        await Promise.all(readers.map((r) => r.close()))
        a.db.close()
        b.db.close()
    }
})
