// [P§8] The retention records each datastream's newest `at` deleted beside its newest seq (SQLite schema 13,
// PostgreSQL 11): a subscribe with `since` is told of a gap from what was deleted. A trim recorded before holds no
// `at`; the upgrade bounds it from what is left (rows.ts legacyTrimAtSql): never below a point the retention
// deleted (a gap is not left unsaid), as little above as the points left tell. On both engines, from a database
// the old code made.
import assert from "node:assert/strict"
import { randomBytes } from "node:crypto"
import Database from "better-sqlite3"
import pg from "pg"
import { after, test } from "node:test"
import { PRUNE_CHUNK_ROWS } from "../../../../devs/server/storage/rows.ts"
import { SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import { PostgresStore } from "../../../../devs/server/storage/postgres.ts"
import type { Store } from "../../../../devs/server/storage/store.ts"
import { createScratchDatabase, skipUnlessInstalled, startPostgres, type RunningService } from "../../../../devs/tools/services.ts"
import { oldPostgresDatabase, oldSqliteDatabase } from "../../harness/old-schemas.ts"

const T0 = Date.UTC(2026, 11, 7, 12)
let server: Promise<RunningService> | undefined
after(async () => (await server)?.stop())

/**
 * Feed 1 as the old code left it, each row the SQL of the engine's tables: what the retention deleted is in
 * comments (the old record holds the seq alone).
 * - kept: trimmed seq 3 (deleted @T0+10); left: seq 2 @T0+50 (written before, outlived it), seq 5 @T0+20 (a
 *   backfill written after) -> T0+49: the oldest point written before the newest deleted one, less 1 ms
 * - later: trimmed seq 4 (deleted @T0+15); left: seq 6 @T0+30 -> T0+29
 * - empty: trimmed seq 1 (deleted @T0+5, its current value) -> T0+5
 * - gone: trimmed seq 7, its datastream deleted by its client since -> 0 by schema 13 / 11; the next (14 / 12) drops it
 *   (a datastream's trims go with it): nothing
 */
const OLD_ROWS = [
    "INSERT INTO feeds (id, title, created_ms, updated_ms) VALUES (1, '', 0, 0)",
    "INSERT INTO datastreams (feed, id, current_value, at_ms, created_ms) VALUES (1, 'kept', '2', 50 + T0, 0), (1, 'later', '6', 30 + T0, 0), (1, 'empty', '1', 5 + T0, 0)",
    "INSERT INTO datapoints (feed, stream, at_ms, value, seq) VALUES (1, 'kept', 50 + T0, '2', 2), (1, 'kept', 20 + T0, '5', 5), (1, 'later', 30 + T0, '6', 6)",
    "INSERT INTO retention_trims (feed, stream, seq) VALUES (1, 'kept', 3), (1, 'later', 4), (1, 'empty', 1), (1, 'gone', 7)",
    "UPDATE feeds SET last_seq = 7",
].map((sql) => sql.replaceAll("T0", String(T0)))

async function upgraded(store: Store): Promise<void> {
    const at = async (stream: string | undefined) => (await store.replay(1, stream, 0, 10)).trimmedAtMs
    assert.deepEqual(
        [await at("kept"), await at("later"), await at("empty"), await at("gone"), await at(undefined)],
        [T0 + 49, T0 + 29, T0 + 5, undefined, T0 + 49],
    )
    // from now on the retention records the `at` it deleted, never lowering the bound
    assert.equal(await store.prune(T0 + 25), 1)
    assert.deepEqual([await at("kept"), (await store.replay(1, "kept", 0, 10)).trimmedSeq], [T0 + 49, 5])
    await store.writePoints(1, [{ stream: "fresh", atMs: T0 + 1, value: "x" }])
    assert.equal(await store.prune(T0 + 25), 1)
    assert.equal(await at("fresh"), T0 + 1)
}

test("SQLite: a database of schema 12 opens with each trim's `at` bounded from what is left", async () => {
    const path = oldSqliteDatabase(12, (old) => OLD_ROWS.forEach((sql) => old.exec(sql)))
    const store = new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 + 100 })
    try {
        await upgraded(store)
    } finally {
        await store.close()
    }
})

test("PostgreSQL: a database of schema 10 opens with each trim's `at` bounded from what is left", { skip: skipUnlessInstalled("postgresql") }, async () => {
    server ??= startPostgres({ durable: false })
    const url = await createScratchDatabase((await server).url, `trims_${randomBytes(6).toString("hex")}`)
    await oldPostgresDatabase(url, 10, async (c) => {
        for (const sql of OLD_ROWS) await c.query(sql)
    })
    const store = await PostgresStore.open({ url, now: () => T0 + 100 })
    try {
        await upgraded(store)
    } finally {
        await store.close()
    }
})

/**
 * What a process of the version before (SQLite schema 12, PostgreSQL 10) does to a database upgraded under it: a
 * PostgreSQL process in a rolling upgrade, a SQLite server beside a `feedline keys` of the new version that upgraded
 * its file. Its retention (its own SQL, as it shipped) inserts a trim without `at` and raises the seq alone; its
 * datastream deletion deletes the rows.
 */
interface OldProcess {
    prune(beforeMs: number): Promise<void>
    deleteDatastream(stream: string): Promise<void>
    /** the rows left in retention_trims (read by the test) */
    trimRows(): Promise<number>
}

/**
 * [P§8] A trim an older process wrote is judged by the bound (rows.ts trimAtSql), never by an `at` it left behind:
 * a gap it made is told (a little early at worst). Its datastream deletions take the trims along too.
 */
async function besideAnOldProcess(store: Store, old: OldProcess): Promise<void> {
    const at = async (stream: string) => (await store.replay(1, stream, 0, 10)).trimmedAtMs
    await store.createFeed({ id: 1 })
    // x: seqs 1..3 (@10, @60, @90); y: seqs 4, 5 (@50, @80)
    for (const atMs of [10, 60, 90]) await store.writePoints(1, [{ stream: "x", atMs: T0 + atMs, value: String(atMs) }])
    for (const atMs of [50, 80]) await store.writePoints(1, [{ stream: "y", atMs: T0 + atMs, value: String(atMs) }])
    assert.equal(await store.prune(T0 + 20), 1)
    assert.equal(await at("x"), T0 + 10)
    await old.prune(T0 + 70)
    // x's record raised to seq 2 with its `at` left at 10 (a since of 30 was told nothing of the point @60 gone): the
    // oldest point left, less 1 ms. y's inserted with at_ms 0: the same
    assert.deepEqual([await at("x"), await at("y")], [T0 + 89, T0 + 79])
    // this version deleting from y again, a backfill older than what the old process deleted: y's `at` stays unknown
    await store.writePoints(1, [{ stream: "y", atMs: T0 + 5, value: "backfill" }])
    assert.equal(await store.prune(T0 + 20), 1)
    assert.deepEqual([await at("y"), (await store.replay(1, "y", 0, 10)).trimmedSeq], [T0 + 79, 6])
    // the old process deletes x and a write re-creates it: nothing of the old x's trims is left
    await old.deleteDatastream("x")
    await store.writePoints(1, [{ stream: "x", atMs: T0 + 1, value: "again" }])
    assert.deepEqual([await at("x"), (await store.replayAfterSeq(1, "x", 0, 10)).trimmedSeq ?? 0], [undefined, 0])
    // a feed deleted takes its datastreams' trims along (its id is never given again: they were only left over)
    assert.equal(await old.trimRows(), 1)
    assert.ok(await store.deleteFeed(1))
    assert.equal(await old.trimRows(), 0)
}

test("SQLite: a server of schema 12 beside a database upgraded under it: its trims are bounded, its deletions take them along", async () => {
    const path = oldSqliteDatabase(12, () => {})
    const store = new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 + 100 })
    const db = new Database(path)
    db.pragma("foreign_keys = ON")
    db.pragma("busy_timeout = 5000")
    // schema 12's statements (sqlite.ts before schema 13)
    const pruneChunk = db.prepare<[number, number], { stream: string; seq: number }>(
        `DELETE FROM datapoints WHERE (feed, stream, at_ms) IN
           (SELECT feed, stream, at_ms FROM datapoints WHERE feed = ? AND at_ms < ? LIMIT ${PRUNE_CHUNK_ROWS})
         RETURNING stream, seq`,
    )
    const raiseTrimmed = db.prepare("INSERT INTO retention_trims (feed, stream, seq) VALUES (?, ?, ?) ON CONFLICT (feed, stream) DO UPDATE SET seq = MAX(seq, excluded.seq)")
    try {
        await besideAnOldProcess(store, {
            prune: async (beforeMs) =>
                db.transaction(() => {
                    const top = new Map<string, number>()
                    for (const g of pruneChunk.all(1, beforeMs)) top.set(g.stream, Math.max(top.get(g.stream) ?? 0, g.seq))
                    for (const [stream, seq] of top) raiseTrimmed.run(1, stream, seq)
                })(),
            deleteDatastream: async (stream) =>
                db.transaction(() => {
                    db.prepare("DELETE FROM datapoints WHERE feed = 1 AND stream = ?").run(stream)
                    db.prepare("DELETE FROM datastreams WHERE feed = 1 AND id = ?").run(stream)
                })(),
            trimRows: async () => db.prepare<[], number>("SELECT count(*) FROM retention_trims").pluck().get()!,
        })
    } finally {
        db.close()
        await store.close()
    }
})

test("PostgreSQL: a process of schema 10 in a rolling upgrade to 12: its trims are bounded, its deletions take them along", { skip: skipUnlessInstalled("postgresql") }, async () => {
    server ??= startPostgres({ durable: false })
    const url = await createScratchDatabase((await server).url, `trims_${randomBytes(6).toString("hex")}`)
    await oldPostgresDatabase(url, 10, async () => {})
    const store = await PostgresStore.open({ url, now: () => T0 + 100 })
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    try {
        await besideAnOldProcess(store, {
            // schema 10's retention statement (postgres.ts before migration 11)
            prune: async (beforeMs) => {
                await c.query(
                    `WITH gone AS (DELETE FROM datapoints WHERE ctid = ANY(ARRAY(SELECT ctid FROM datapoints WHERE feed = $1 AND at_ms < $2 LIMIT ${PRUNE_CHUNK_ROWS})) RETURNING stream, seq),
                     raised AS (INSERT INTO retention_trims (feed, stream, seq) SELECT $1, stream, max(seq) FROM gone GROUP BY stream
                                ON CONFLICT (feed, stream) DO UPDATE SET seq = GREATEST(retention_trims.seq, excluded.seq))
                     SELECT count(*)::int AS deleted FROM gone`,
                    [1, beforeMs],
                )
            },
            deleteDatastream: async (stream) => {
                await c.query("BEGIN")
                await c.query("DELETE FROM datapoints WHERE feed = 1 AND stream = $1", [stream])
                await c.query("DELETE FROM datastreams WHERE feed = 1 AND id = $1", [stream])
                await c.query("COMMIT")
            },
            trimRows: async () => Number((await c.query<{ n: string }>("SELECT count(*) AS n FROM retention_trims")).rows[0].n),
        })
    } finally {
        await c.end()
        await store.close()
    }
})
