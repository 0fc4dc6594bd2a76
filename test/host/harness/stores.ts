// The stores a contract test runs against: SQLite in a temporary folder, and PostgreSQL on one throw-away
// server per test file (devs/tools/services.ts), a new database for each store opened. A test file
// calls storeBackends() once and closeStoreBackends() in its `after`. PostgreSQL is skipped, with the
// reason, where it is not installed (`npm test` counts the skip; with CI=true they run and fail).
import { randomBytes } from "node:crypto"
import Database from "better-sqlite3"
import pg from "pg"
import { PostgresStore } from "../../../devs/server/storage/postgres.ts"
import { SqliteStore } from "../../../devs/server/storage/sqlite.ts"
import type { Store } from "../../../devs/server/storage/store.ts"
import { createScratchDatabase, skipUnlessInstalled, startPostgres, type RunningService } from "../../../devs/tools/services.ts"
import { tempStorePath } from "./temp-dirs.ts"

export interface OpenedStore {
    store: Store
    /** group commits so far */
    commits(): number
    /** errors the store reported (failed commits) */
    errors: unknown[]
    /** another store on the same data: another process (a second server, the `feedline keys` CLI) */
    another(): Promise<Store>
    /** makes every commit that writes the datapoint value `value` fail, as a full disk would (another connection adds a trigger) */
    failWritesOf(value: string): Promise<void>
    /** makes every deletion of a datapoint at `fromAtMs` or later fail, as a full disk would (another connection adds a trigger), until the returned function is called */
    failDeletesFrom(fromAtMs: number): Promise<() => Promise<void>>
    /** [PostgreSQL] makes the database refuse (SQLSTATE 23514, a check violation) every datapoint of the value `value`: a row-level error */
    refuseValuesOf?(value: string): Promise<void>
    /** [PostgreSQL] a trigger `name` running the PL/pgSQL `body` before each insert of a datapoint of the value `value` (SQL text: test values only) */
    onInsertOf?(value: string, name: string, body: string): Promise<void>
    /**
     * [PostgreSQL] holds every transaction that writes the datapoint value `value` at that insert until
     * open() (a batch held in the middle of its commit); waiting(statement) says whether a statement of
     * the database whose text starts so waits for a lock now
     */
    gateWritesOf?(value: string): Promise<{ waiting(statement: string): Promise<boolean>; open(): Promise<void> }>
}

export interface StoreBackend {
    /** "sqlite": commits in-process (the CLI); "sqlite-thread": on the writer thread (the server) */
    name: "sqlite" | "sqlite-thread" | "postgres"
    /** why this backend cannot run here (the tests skip with it), or undefined */
    skip?: string
    open(o?: { now?: () => number }): Promise<OpenedStore>
}

let postgres: Promise<RunningService> | undefined

function sqliteBackend(writerThread: boolean): StoreBackend {
    return {
        name: writerThread ? "sqlite-thread" : "sqlite",
        async open(o = {}) {
            const path = tempStorePath("feedline-store-")
            let commits = 0
            const errors: unknown[] = []
            const store = new SqliteStore({ path, synchronous: "NORMAL", writerThread, now: o.now, onCommit: () => commits++, onError: (e) => errors.push(e) })
            return {
                store,
                commits: () => commits,
                errors,
                another: async () => new SqliteStore({ path, synchronous: "NORMAL", now: o.now }),
                async failWritesOf(value) {
                    const other = new Database(path)
                    // the commit a write's acknowledgement waits for inserts into the ingest journal (point-writer.ts)
                    other.exec(`CREATE TRIGGER fail BEFORE INSERT ON ingest_journal WHEN NEW.value = '${value}' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
                    other.close()
                },
                async failDeletesFrom(fromAtMs) {
                    const other = new Database(path)
                    other.exec(`CREATE TRIGGER fail_deletes BEFORE DELETE ON datapoints WHEN OLD.at_ms >= ${fromAtMs} BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
                    return async () => {
                        other.exec("DROP TRIGGER fail_deletes")
                        other.close()
                    }
                },
            }
        },
    }
}

function postgresBackend(): StoreBackend {
    const skip = skipUnlessInstalled("postgresql")
    return {
        name: "postgres",
        skip,
        async open(o = {}) {
            // one server per test file, fast rather than durable (durability is PostgreSQL's own, not under test here)
            postgres ??= startPostgres({ durable: false })
            const url = await createScratchDatabase((await postgres).url, `t_${randomBytes(6).toString("hex")}`)
            let commits = 0
            const errors: unknown[] = []
            const store = await PostgresStore.open({ url, now: o.now, onCommit: () => commits++, onError: (e) => errors.push(e) })
            return {
                store,
                commits: () => commits,
                errors,
                another: () => PostgresStore.open({ url, now: o.now }),
                failWritesOf: (value) => onDatapointsInsert(url, "fail", value, "RAISE EXCEPTION 'disk on fire'"),
                refuseValuesOf: (value) => onDatapointsInsert(url, "refuse", value, "RAISE EXCEPTION 'value refused' USING ERRCODE = 'check_violation'"),
                onInsertOf: (value, name, body) => onDatapointsInsert(url, name, value, body),
                async failDeletesFrom(fromAtMs) {
                    const c = new pg.Client({ connectionString: url })
                    await c.connect()
                    await c.query("CREATE FUNCTION fail_deletes() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk on fire' USING ERRCODE = 'io_error'; END $$ LANGUAGE plpgsql")
                    await c.query(`CREATE TRIGGER fail_deletes BEFORE DELETE ON datapoints FOR EACH ROW WHEN (OLD.at_ms >= ${fromAtMs}) EXECUTE FUNCTION fail_deletes()`)
                    return async () => {
                        await c.query("DROP TRIGGER fail_deletes ON datapoints")
                        await c.end()
                    }
                },
                async gateWritesOf(value) {
                    const admin = new pg.Client({ connectionString: url })
                    await admin.connect()
                    // the gate: a lock this connection holds until open(); the trigger waits for it
                    await admin.query("SELECT pg_advisory_lock(4243)")
                    await onDatapointsInsert(url, "gate", value, "PERFORM pg_advisory_xact_lock_shared(4243)")
                    let opened = false
                    return {
                        waiting: async (statement) =>
                            ((await admin.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND starts_with(query, $1)", [statement])).rowCount ?? 0) > 0,
                        async open() {
                            if (opened) return
                            opened = true
                            await admin.end()
                        },
                    }
                },
            }
        },
    }
}

/** A trigger `name` on the datapoints of a PostgreSQL store: `body` runs before each insert of the value `value`. */
async function onDatapointsInsert(url: string, name: string, value: string, body: string): Promise<void> {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    await c.query(`CREATE FUNCTION ${name}() RETURNS trigger AS $$ BEGIN ${body}; RETURN NEW; END $$ LANGUAGE plpgsql`)
    await c.query(`CREATE TRIGGER ${name} BEFORE INSERT ON datapoints FOR EACH ROW WHEN (NEW.value = '${value}') EXECUTE FUNCTION ${name}()`)
    await c.end()
}

/** SQLite, then PostgreSQL. */
export function storeBackends(): StoreBackend[] {
    return [sqliteBackend(false), sqliteBackend(true), postgresBackend()]
}

/** Stops the file's PostgreSQL server (the SQLite folders go after the file's tests: temp-dirs.ts). */
export async function closeStoreBackends(): Promise<void> {
    const p = postgres
    postgres = undefined
    if (p) await (await p).stop()
}
