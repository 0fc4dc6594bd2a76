// [P§8] The retention records each datastream's newest `at` deleted beside its newest seq (SQLite schema 13,
// PostgreSQL 11): a subscribe with `since` is told of a gap from what was deleted. A trim recorded before holds no
// `at`; the upgrade bounds it from what is left (rows.ts legacyTrimAtSql): never below a point the retention
// deleted (a gap is not left unsaid), as little above as the points left tell. On both engines, from a database
// the old code made.
import assert from "node:assert/strict"
import { randomBytes } from "node:crypto"
import { after, test } from "node:test"
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
 * - gone: trimmed seq 7, its datastream deleted by its client since -> 0
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
        [T0 + 49, T0 + 29, T0 + 5, 0, T0 + 49],
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
