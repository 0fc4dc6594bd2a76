// [P§8] PostgreSQL's seqs per feed (migration 9), as SQLite's (seq-per-feed-upgrade.test.ts): every point drew the
// next number of one sequence for the whole database (datapoint_seq), so the gaps between a feed's seqs counted
// every other tenant's writes. Now a batch numbers each feed's points on from the feed's row (last_seq), under the
// row lock it already held, so two processes writing one feed take its numbers in turn.
// The upgrade, from a database the old code made (schema 8): nothing is renumbered, so every cursor a client holds
// stays meaningful; each feed counts on from the sequence's last value, above every seq a client of it can have
// been given (its points', a deleted tail's, a datastream deletion's); the sequence is dropped, so that a process
// of the old version still running fails its writes rather than number a feed below its last seq.
import assert from "node:assert/strict"
import { randomBytes } from "node:crypto"
import { after, describe, test } from "node:test"
import pg from "pg"
import { planCatchUp } from "../../../../devs/server/hub/catch-up.ts"
import { PostgresStore, SCHEMA_VERSION } from "../../../../devs/server/storage/postgres.ts"
import { oldPostgresDatabase } from "../../harness/old-schemas.ts"
import { createScratchDatabase, skipUnlessInstalled, startPostgres, type RunningService } from "../../../../devs/tools/services.ts"

const T0 = Date.UTC(2026, 11, 7, 12)
/** the schema before seqs per feed */
const OLD_SCHEMA = 8
let server: Promise<RunningService> | undefined
after(async () => (await server)?.stop())

async function scratch(): Promise<string> {
    server ??= startPostgres({ durable: false })
    return createScratchDatabase((await server).url, `seq_${randomBytes(6).toString("hex")}`)
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    try {
        return (await c.query<T>(text, values)).rows
    } finally {
        await c.end()
    }
}

/** A new database at `schema` (the migrations up to it), then `fill`ed as the code of that version would, in one transaction. */
async function databaseAt(schema: number, fill: (c: pg.Client) => Promise<void>): Promise<string> {
    const url = await scratch()
    await oldPostgresDatabase(url, schema, fill)
    return url
}

/**
 * Schema 8 as shipped, as the old code left it (every seq from datapoint_seq): feed 1's points 1, 3, 5 (its 6
 * deleted by its tenant since: a client of it may hold 6); feed 2's 4 and 7, its 2 deleted by the retention
 * (retention_trims); feed 3's datastream deleted, which took 8 (deleted_seq); feed 4 never written.
 */
function oldDatabase(): Promise<string> {
    return databaseAt(OLD_SCHEMA, async (c) => {
        for (const f of [1, 2, 3, 4]) await c.query("INSERT INTO feeds (id, created_ms, updated_ms) VALUES ($1, $2, $2)", [f, T0])
        await c.query("UPDATE settings SET int_value = 4 WHERE name = 'feed_id_high_water'")
        for (const f of [1, 2]) await c.query("INSERT INTO datastreams (feed, id, created_ms) VALUES ($1, 's', $2)", [f, T0])
        for (const f of [1, 2, 1, 2, 1, 1, 2]) {
            const [{ seq }] = (await c.query<{ seq: string }>("SELECT nextval('datapoint_seq') AS seq")).rows
            await c.query("INSERT INTO datapoints (feed, stream, at_ms, value, seq) VALUES ($1, 's', $2, $3, $4)", [f, T0 + Number(seq), seq, seq])
            await c.query("UPDATE feeds SET last_seq = $2 WHERE id = $1", [f, seq])
        }
        await c.query("DELETE FROM datapoints WHERE seq IN (2, 6)")
        await c.query("INSERT INTO retention_trims (feed, stream, seq) VALUES (2, 's', 2)")
        await c.query("UPDATE feeds SET last_seq = s, deleted_seq = s FROM (SELECT nextval('datapoint_seq') AS s) n WHERE id = 3")
    })
}

const pointsOf = (r: { points: { value: string; seq: number }[] }) => r.points.map((p) => [p.value, p.seq])

describe("PostgreSQL: a feed's seqs are its own", { skip: skipUnlessInstalled("postgresql") }, () => {
    test("a database of schema 8 (one sequence) opens with its seqs as they were and counts on per feed from above every cursor; the sequence is gone", async () => {
        const url = await oldDatabase()
        const store = await PostgresStore.open({ url, now: () => T0 + 100 })
        try {
            // nothing renumbered; old cursors replay what they did
            assert.deepEqual(pointsOf(await store.replayAfterSeq(1, undefined, 0, 10)), [["1", 1], ["3", 3], ["5", 5]])
            assert.deepEqual(pointsOf(await store.replayAfterSeq(1, undefined, 3, 10)), [["5", 5]])
            const two = await store.replayAfterSeq(2, undefined, 0, 10)
            assert.deepEqual(pointsOf(two), [["4", 4], ["7", 7]])
            assert.equal(two.trimmedSeq, 2, "what the retention deleted is still told")
            assert.deepEqual((await store.replay(1, undefined, T0 + 2, 10)).points.map((p) => p.value), ["3", "5"], "`since` as before")

            // from now on each feed counts its own, from above the old sequence's last (8: feed 3's deletion)
            const w1 = await store.writePoints(1, [{ stream: "s", atMs: T0 + 20, value: "a" }])
            assert.deepEqual(w1.map((p) => [p.seq, p.prevSeq]), [[9, 8]], "feed 1 goes on above every seq given, its deleted 6 included")
            for (let i = 0; i < 5; i++) await store.writePoints(2, [{ stream: "s", atMs: T0 + 30 + i, value: `b${i}` }])
            const w2 = await store.writePoints(1, [{ stream: "s", atMs: T0 + 21, value: "b" }, { stream: "t", atMs: T0 + 21, value: "c" }])
            assert.deepEqual(w2.map((p) => p.seq), [10, 11], "feed 2's writes took none of feed 1's numbers")
            assert.deepEqual((await store.writePoints(3, [{ stream: "s", atMs: T0, value: "x" }])).map((p) => p.seq), [9], "feed 3 above its deletion's 8")
            assert.deepEqual((await store.writePoints(4, [{ stream: "s", atMs: T0, value: "x" }])).map((p) => p.seq), [9], "feed 4, never written, as every feed")
            const fresh = (await store.createFeed({})).id
            assert.deepEqual((await store.writePoints(fresh, [{ stream: "s", atMs: T0, value: "x" }])).map((p) => p.seq), [1], "a feed made after the upgrade starts at 1")

            const again = await store.replayAfterSeq(1, undefined, 6, 10)
            assert.deepEqual(pointsOf(again), [["a", 9], ["b", 10], ["c", 11]], "a client holding the deleted 6 misses nothing")
            assert.equal(again.highSeq, 11)
            assert.equal((await store.replayAfterSeq(2, undefined, undefined, 10)).highSeq, 8 + 5)
            // a datastream's deletion takes the feed's next seq, and the next write the one after
            const deletion = await store.deleteDatastream(1, "t")
            assert.equal(deletion?.seq, 12)
            assert.deepEqual((await store.writePoints(1, [{ stream: "s", atMs: T0 + 22, value: "d" }])).map((p) => [p.seq, p.prevSeq]), [[13, 12]])
            assert.equal((await store.getDatastream(1, "s"))?.currentValue, "d")
        } finally {
            await store.close()
        }
        assert.deepEqual(await sql(url, "SELECT version FROM feedline_schema"), [{ version: SCHEMA_VERSION }])
        assert.deepEqual(await sql(url, "SELECT count(*)::int AS n FROM pg_class WHERE relname = 'datapoint_seq'"), [{ n: 0 }], "a process of the old version cannot number a point")
    })

    test("two processes writing one feed at once, with another feed's writes between: the feed's seqs are 1..n, each taken once, rising in each process's commit order", async () => {
        const url = await scratch()
        const a = await PostgresStore.open({ url, now: () => T0 })
        const b = await PostgresStore.open({ url, now: () => T0 })
        try {
            const f = (await a.createFeed({})).id
            const g = (await a.createFeed({})).id
            const N = 30
            const writes: Promise<{ seq: number }[]>[] = []
            for (let i = 0; i < N; i++) {
                writes.push(a.writePoints(f, [{ stream: "s", value: `a${i}` }]), b.writePoints(f, [{ stream: "s", value: `b${i}` }]))
                writes.push((i % 2 ? a : b).writePoints(g, [{ stream: "x", value: "1" }, { stream: "y", value: "2" }]))
            }
            const results = await Promise.all(writes)
            const own = results.filter((_, i) => i % 3 !== 2).map((r) => r[0].seq)
            assert.deepEqual([...own].sort((x, y) => x - y), Array.from({ length: 2 * N }, (_, i) => i + 1), "every number once, none taken by g's writes")
            for (const p of [0, 1]) {
                const ofProcess = own.filter((_, i) => i % 2 === p)
                assert.deepEqual(ofProcess, [...ofProcess].sort((x, y) => x - y), "one process's writes commit in the order given")
            }
            assert.deepEqual(results.filter((_, i) => i % 3 === 2).flatMap((r) => r.map((p) => p.seq)).sort((x, y) => x - y), Array.from({ length: 2 * N }, (_, i) => i + 1), "g's own numbers")
            const replay = await b.replayAfterSeq(f, undefined, 0, 100)
            assert.deepEqual(replay.points.map((p) => p.seq), own.sort((x, y) => x - y))
            assert.equal(replay.highSeq, 2 * N)
        } finally {
            await a.close()
            await b.close()
        }
    })
})

// [P§8] Migration 10: which datastream a deletion's seq deleted (datastream_deletions), so that a process that missed
// it pushes it in a catch-up (hub/catch-up.ts) instead of telling the feed's subscribers to resubscribe. A deletion
// the store cannot name (made before the migration, or by a process of the version before, which moves deleted_seq
// alone) leaves its seq in unnamed_deleted_seq, which a catch-up cannot get past.
describe("PostgreSQL: a datastream's deletion is named for a catch-up", { skip: skipUnlessInstalled("postgresql") }, () => {
    /** the schema before it (9), as the code of that version left it: feed 1's points 1 and 2, a datastream of it deleted (3), a point 4 */
    function schema9(): Promise<string> {
        return databaseAt(9, async (c) => {
            await c.query("INSERT INTO feeds (id, created_ms, updated_ms) VALUES (1, $1, $1)", [T0])
            await c.query("UPDATE settings SET int_value = 1 WHERE name = 'feed_id_high_water'")
            await c.query("INSERT INTO datastreams (feed, id, created_ms) VALUES (1, 's', $1)", [T0])
            await c.query("INSERT INTO datapoints (feed, stream, at_ms, value, seq) VALUES (1, 's', $1, '1', 1), (1, 's', $1 + 1, '2', 2), (1, 's', $1 + 3, '4', 4)", [T0])
            await c.query("UPDATE feeds SET last_seq = 4, deleted_seq = 3 WHERE id = 1")
        })
    }
    /** a datastream's deletion as the code of schema 9 makes it: the feed's next seq, in deleted_seq alone */
    const deletedByOldVersion = (url: string, feed: number, stream: string) =>
        sql(
            url,
            `WITH gone AS (DELETE FROM datastreams WHERE feed = $1 AND id = $2)
             UPDATE feeds SET last_seq = COALESCE(last_seq, 0) + 1, deleted_seq = COALESCE(last_seq, 0) + 1 WHERE id = $1 RETURNING last_seq AS seq`,
            [feed, stream],
        ).then((rows) => Number((rows[0] as { seq: string }).seq))

    test("a database of schema 9 opens with its deletions unnamed; the new version's deletions are named (each name's newest, and the one before), the old version's are not; a feed's deletion takes its record with it", async () => {
        const url = await schema9()
        const store = await PostgresStore.open({ url, now: () => T0 + 100 })
        const read = async (after: number) => (await store.changesAfter(new Map([[1, after]]), 10)).get(1)!
        try {
            assert.deepEqual(await read(2), { lastSeq: 4, unnamedDeletionSeq: 3, deletions: [], points: [{ stream: "s", atMs: T0 + 3, value: "4", seq: 4 }] }, "the deletion made before the migration: unnamed")
            assert.equal(planCatchUp(1, 2, await read(2), 10).kind, "told", "a catch-up from before it cannot say what it deleted")
            assert.equal(planCatchUp(1, 3, await read(3), 10).kind, "repair", "from after it: point 4")

            await store.writePoints(1, [{ stream: "t", atMs: T0 + 5, value: "5" }])
            const deletion = await store.deleteDatastream(1, "t")
            assert.equal(deletion?.seq, 6)
            assert.deepEqual((await read(4)).deletions, [{ stream: "t", seq: 6, earlierSeq: 0 }])
            assert.equal((await read(4)).unnamedDeletionSeq, 3, "named: the trigger leaves it")
            const plan = planCatchUp(1, 4, await read(4), 10)
            assert.deepEqual(plan.kind === "repair" && plan.events.map((e) => [e.seq, e.stream, e.deleted ?? false]), [[6, "t", true]], "its point 5 went with it")

            // a process of the version before, still running, deletes a datastream: the store cannot name it
            await store.writePoints(1, [{ stream: "u", atMs: T0 + 7, value: "7" }])
            assert.equal(await deletedByOldVersion(url, 1, "u"), 8)
            assert.equal((await read(6)).unnamedDeletionSeq, 8)
            assert.equal(planCatchUp(1, 6, await read(6), 10).kind, "told")
            // the same name deleted again by this version: named, with the seq of its deletion before
            await store.writePoints(1, [{ stream: "t", atMs: T0 + 9, value: "9" }])
            assert.equal((await store.deleteDatastream(1, "t"))?.seq, 10)
            assert.deepEqual((await read(8)).deletions, [{ stream: "t", seq: 10, earlierSeq: 6 }])
            assert.equal(planCatchUp(1, 8, await read(8), 10).kind, "repair", "deleted once after 8")
            assert.equal(planCatchUp(1, 5, await read(5), 10).kind, "told", "deleted twice after 5")

            await store.deleteFeed(1)
            assert.deepEqual(await sql(url, "SELECT count(*)::int AS n FROM datastream_deletions"), [{ n: 0 }])
        } finally {
            await store.close()
        }
        assert.deepEqual(await sql(url, "SELECT version FROM feedline_schema"), [{ version: SCHEMA_VERSION }])
    })
})
