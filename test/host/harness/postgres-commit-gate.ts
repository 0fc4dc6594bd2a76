// PostgreSQL COMMITs a test holds at commit time: a deferred trigger makes the COMMIT of a datapoint valued
// "gated…" wait for an advisory lock the test's own connection holds until open(). The moment a COMMIT is on
// its way and its outcome not yet known, inside the database itself (the server's link to it can then be
// broken, its backend terminated, or its outcome asked for).
import type pg from "pg"
import { until } from "./until.ts"

/** the advisory lock the gate waits for */
const GATE_LOCK = 4242

/**
 * Installs the gate on `admin`'s database (a connection of the test's, straight to PostgreSQL) and closes it.
 * `commitWaiting` resolves with the pid of a backend whose COMMIT waits at it.
 */
export async function gateCommits(admin: pg.Client, waitMs: number): Promise<{ commitWaiting(): Promise<number>; open(): Promise<unknown> }> {
    await admin.query(`CREATE FUNCTION gate() RETURNS trigger AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(${GATE_LOCK}); RETURN NULL; END $$ LANGUAGE plpgsql`)
    await admin.query(`CREATE CONSTRAINT TRIGGER gate AFTER INSERT ON datapoints DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.value LIKE 'gated%') EXECUTE FUNCTION gate()`)
    await admin.query(`SELECT pg_advisory_lock(${GATE_LOCK})`)
    return {
        commitWaiting: async () => {
            let pid = 0
            await until("a COMMIT to wait at the gate", async () => {
                const r = await admin.query("SELECT pid FROM pg_stat_activity WHERE query = 'COMMIT' AND wait_event_type = 'Lock'")
                pid = r.rows[0]?.pid ?? 0
                return pid !== 0
            }, waitMs, 20)
            return pid
        },
        open: () => admin.query(`SELECT pg_advisory_unlock(${GATE_LOCK})`),
    }
}
