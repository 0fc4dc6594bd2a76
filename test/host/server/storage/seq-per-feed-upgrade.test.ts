// [P§8] SQLite's seqs per feed (migration 12), from a database the old code made (schema 11, one counter for the
// whole store): nothing is renumbered, so every cursor a client holds stays meaningful; each feed counts on from
// above every seq a client of it can have been given (its points', and the store-wide cursor a subscribe was
// acknowledged with, which a deleted tail of the feed left above its points); a point a crash left in the journal
// keeps its seq; from then on a feed's seqs and its cursor move with its own writes only.
import assert from "node:assert/strict"
import { test } from "node:test"
import Database from "better-sqlite3"
import { SCHEMA_VERSION, SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import { oldSqliteDatabase } from "../../harness/old-schemas.ts"

const T0 = Date.UTC(2026, 11, 7, 12)

/**
 * Schema 11 as shipped, as the old code left it: feed 1's points have seqs 1, 3, 5 (its 6 deleted by its tenant
 * since, so a client of it may hold 6: its push, or a subscribe acknowledged while compacted_seq was 6); feed 2's
 * 2, 4, 7, its 2 deleted by the retention (retention_trims); with `crashed` its 8 is still in the journal.
 */
function oldDatabase(crashed: boolean): string {
    return oldSqliteDatabase(11, (old) => {
        const feed = old.prepare("INSERT INTO feeds (id, title, created_ms, updated_ms) VALUES (?, '', ?, ?)")
        const stream = old.prepare("INSERT INTO datastreams (feed, id, current_value, at_ms, created_ms) VALUES (?, 's', ?, ?, ?)")
        const point = old.prepare("INSERT INTO datapoints (feed, stream, at_ms, value, seq) VALUES (?, 's', ?, ?, ?)")
        for (const f of [1, 2]) feed.run(f, T0, T0)
        stream.run(1, "5", T0 + 5, T0)
        stream.run(2, "7", T0 + 7, T0)
        for (const seq of [1, 3, 5]) point.run(1, T0 + seq, String(seq), seq)
        for (const seq of [4, 7]) point.run(2, T0 + seq, String(seq), seq)
        old.prepare("INSERT INTO retention_trims (feed, stream, seq) VALUES (2, 's', 2)").run()
        if (crashed) old.prepare("INSERT INTO ingest_journal (seq, feed, stream, at_ms, value, now_ms) VALUES (8, 2, 's', ?, '8', ?)").run(T0 + 8, T0 + 8)
        old.prepare("UPDATE settings SET value = 7 WHERE name = 'compacted_seq'").run()
    })
}

const pointsOf = (r: { points: { value: string; seq: number }[] }) => r.points.map((p) => [p.value, p.seq])

for (const writerThread of [false, true]) {
    for (const crashed of [false, true]) {
        const what = `${writerThread ? "writer thread" : "in-process"}, ${crashed ? "a point left in the journal by a crash" : "journal empty"}`
        test(`seqs per feed: a database of schema 11 (one counter) opens with its seqs as they were and counts on per feed from above every cursor (${what})`, async () => {
            const path = oldDatabase(crashed)
            const store = new SqliteStore({ path, synchronous: "NORMAL", writerThread, now: () => T0 + 100 })
            try {
                // nothing renumbered; old cursors replay what they did
                assert.deepEqual(pointsOf(await store.replayAfterSeq(1, undefined, 0, 10)), [["1", 1], ["3", 3], ["5", 5]])
                assert.deepEqual(pointsOf(await store.replayAfterSeq(1, undefined, 3, 10)), [["5", 5]])
                const two = await store.replayAfterSeq(2, undefined, 0, 10)
                assert.deepEqual(pointsOf(two), crashed ? [["4", 4], ["7", 7], ["8", 8]] : [["4", 4], ["7", 7]])
                assert.equal(two.trimmedSeq, 2, "what the retention deleted is still told")
                // each feed's cursor is above every seq its clients can hold: feed 1's 6 (deleted) and the old store-wide 7
                const one = await store.replayAfterSeq(1, undefined, 6, 10)
                assert.deepEqual([one.points.length, one.highSeq], [0, 7])
                assert.equal(two.highSeq, crashed ? 8 : 7)

                // from now on each feed counts its own
                const w1 = await store.writePoints(1, [{ stream: "s", atMs: T0 + 20, value: "a" }])
                assert.deepEqual(w1.map((p) => p.seq), [8], "feed 1 goes on above the old store-wide cursor")
                for (let i = 0; i < 5; i++) await store.writePoints(2, [{ stream: "s", atMs: T0 + 30 + i, value: `b${i}` }])
                const w2 = await store.writePoints(1, [{ stream: "s", atMs: T0 + 21, value: "b" }, { stream: "t", atMs: T0 + 21, value: "c" }])
                assert.deepEqual(w2.map((p) => p.seq), [9, 10], "feed 2's writes took none of feed 1's numbers")
                const again = await store.replayAfterSeq(1, undefined, 7, 10)
                assert.deepEqual(pointsOf(again), [["a", 8], ["b", 9], ["c", 10]])
                assert.equal(again.highSeq, 10)
                assert.deepEqual([again.seen({ seq: 10 }), again.seen({ seq: 11 })], [true, false])
                assert.equal((await store.replayAfterSeq(2, undefined, undefined, 10)).highSeq, (crashed ? 8 : 7) + 5)
                assert.equal((await store.getDatastream(1, "s"))?.currentValue, "b")
            } finally {
                await store.close()
            }
            const db = new Database(path, { readonly: true })
            try {
                assert.equal(db.pragma("user_version", { simple: true }), SCHEMA_VERSION)
                assert.deepEqual(db.prepare("SELECT id, last_seq FROM feeds ORDER BY id").raw().all(), [[1, 10], [2, (crashed ? 8 : 7) + 5]])
            } finally {
                db.close()
            }
        })
    }
}
