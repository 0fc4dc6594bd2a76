// [P§8] A datastream's retention trims go with it, in its deletion's transaction (PostgreSQL migration 12's trigger),
// also when another process's retention is deleting from it at that moment: the retention's statement deletes the
// points and raises the trims row at once, and the deletion deletes the points before the trims (the trigger runs
// after the datastream's row goes), so a retention that deleted any of them committed first and its row is seen and
// deleted; one that comes later finds the points gone and records nothing. Here the retention is held at its trims
// row (another connection locks it), with the points it deleted locked, while the deletion waits for them.
import assert from "node:assert/strict"
import { randomBytes } from "node:crypto"
import { after, test } from "node:test"
import pg from "pg"
import { PostgresStore } from "../../../../devs/server/storage/postgres.ts"
import { createScratchDatabase, skipUnlessInstalled, startPostgres, type RunningService } from "../../../../devs/tools/services.ts"
import { until } from "../../harness/until.ts"

const T0 = Date.UTC(2026, 11, 7, 12)
/** a bound for a hung test on a loaded machine, not a timing assertion */
const WAIT_LIMIT_MS = 30_000
let server: Promise<RunningService> | undefined
after(async () => (await server)?.stop())

test("PostgreSQL: a datastream deleted while another process's retention deletes from it leaves no trims behind: re-created, it is told of no gap", { skip: skipUnlessInstalled("postgresql") }, async () => {
    server ??= startPostgres({ durable: false })
    const url = await createScratchDatabase((await server).url, `trims_race_${randomBytes(6).toString("hex")}`)
    const deleter = await PostgresStore.open({ url, now: () => T0 })
    const retainer = await PostgresStore.open({ url, now: () => T0 })
    const holder = new pg.Client({ connectionString: url })
    await holder.connect()
    const lockWaits = async () =>
        Number((await holder.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0].n)
    try {
        const f = (await deleter.createFeed({})).id
        for (const atMs of [T0 - 30, T0 - 20, T0 - 2]) await deleter.writePoints(f, [{ stream: "a", atMs, value: String(atMs) }])
        assert.equal(await retainer.prune(T0 - 25), 1)
        await holder.query("BEGIN")
        await holder.query("SELECT 1 FROM retention_trims WHERE feed = $1 AND stream = 'a' FOR UPDATE", [f])
        // the retention deletes @T0-20 (its row locked) and waits at the trims row; the deletion waits for that point
        const pruned = retainer.prune(T0 - 5)
        await until("the retention to wait at the trims row", async () => (await lockWaits()) === 1, WAIT_LIMIT_MS)
        const deleted = deleter.deleteDatastream(f, "a")
        await until("the deletion to wait for the retention's points", async () => (await lockWaits()) === 2, WAIT_LIMIT_MS)
        await holder.query("COMMIT")
        assert.equal(await pruned, 1)
        assert.ok(await deleted)
        await deleter.writePoints(f, [{ stream: "a", atMs: T0 - 40, value: "again" }])
        for (const store of [deleter, retainer]) {
            assert.deepEqual([(await store.replay(f, "a", 0, 10)).trimmedAtMs, (await store.replayAfterSeq(f, "a", 0, 10)).trimmedSeq ?? 0], [undefined, 0])
            assert.equal((await store.replay(f, undefined, 0, 10)).trimmedAtMs, undefined)
        }
    } finally {
        await holder.end()
        await retainer.close()
        await deleter.close()
    }
})
