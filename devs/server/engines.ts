// The engines a server runs on, chosen from its settings: the store (SQLite in the data folder, or
// PostgreSQL with --database-url) and the bus (in-process, or Redis with --redis-url). startServer and the
// `feedline keys` command open them here; nothing else in the server names an engine. PostgreSQL's and
// Redis's clients are loaded only when named (~12 MiB of RSS a server on SQLite does not carry).
import { join } from "node:path"
import type { Bus } from "./bus/bus.ts"
import { LocalBus } from "./bus/local.ts"
import { ConfigError, UnavailableError } from "./errors.ts"
import type { Logger } from "./log.ts"
import type { PostgresStore } from "./storage/postgres.ts"
import { redactedUrl } from "./redacted-url.ts"
import { SqliteStore } from "./storage/sqlite.ts"
import { StoreBoundary, type StoreEngine, type StoreFailureReport } from "./storage/boundary.ts"
import { StoreError, type Store } from "./storage/store.ts"
import { SQLITE_FILE } from "./data-dir.ts"

export interface StoreChoice {
    dataDir: string
    /** PostgreSQL instead of SQLite in dataDir */
    databaseUrl?: string
    /** SQLite's synchronous mode */
    synchronous?: "FULL" | "NORMAL"
    /** a server opens it (not the `keys` command): SQLite is then refused while another server serves from it */
    serving?: boolean
}

export interface OpenedStore {
    store: Store
    /** what a commit survives, as the engine reports it (logged at start) */
    durability: Record<string, string>
}

export interface StoreHooks {
    onCommit?: (ms: number) => void
    /** a group commit (or a move of SQLite's journal) failed: its writes were refused */
    onError?: (err: unknown) => void
    /** any other call failed for the engine's own reason (storage/boundary.ts) */
    onFailure?: StoreFailureReport
    log?: Logger
}

/**
 * Opens the store the settings name, behind its boundary (storage/boundary.ts: every failure leaves it
 * classified); a PostgreSQL that cannot be reached is an UnavailableError that says where.
 */
export async function openStore(o: StoreChoice, hooks: StoreHooks = {}): Promise<OpenedStore> {
    const { engine, durability } = await openEngine(o, hooks)
    return { store: new StoreBoundary(engine, hooks.onFailure), durability }
}

async function openEngine(o: StoreChoice, hooks: StoreHooks): Promise<{ engine: StoreEngine; durability: Record<string, string> }> {
    if (!o.databaseUrl) {
        // the datapoint commits on a writer thread (storage/writer-thread.ts)
        const path = join(o.dataDir, SQLITE_FILE)
        const store = inUseAsConfigError(() => {
            try {
                return new SqliteStore({ path, synchronous: o.synchronous, writerThread: true, serving: o.serving, onCommit: hooks.onCommit, onError: hooks.onError })
            } catch (e) {
                throw cannotOpen(path, e)
            }
        })
        try {
            await store.ready() // the writer thread is up before the first write can arrive
        } catch (e) {
            // its connection, or its move of a journal a crash left, failed: let go of the database (its server lock too)
            await store.close().catch(() => {})
            throw cannotOpen(path, e)
        }
        return { engine: store, durability: store.durability() }
    }
    if (!/^postgres(ql)?:\/\//.test(o.databaseUrl)) throw new ConfigError(`--database-url must be a postgres:// URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE), not "${redactedUrl(o.databaseUrl)}"`)
    let store: PostgresStore
    try {
        const { PostgresStore } = await import("./storage/postgres.ts")
        store = await PostgresStore.open({
            url: o.databaseUrl,
            onCommit: hooks.onCommit,
            onError: hooks.onError,
            onNotice: (message, err) => (err ? hooks.log?.warn({ err: (err as Error).message }, message) : hooks.log?.info(message)),
        })
    } catch (e) {
        throw new UnavailableError(`could not open the PostgreSQL database at ${redactedUrl(o.databaseUrl)}: ${(e as Error).message}`)
    }
    return { engine: store, durability: await store.durability() }
}

/** Not a database, unreadable, read-only, damaged, a full disk: say which file and what to do, not where in better-sqlite3. */
function cannotOpen(path: string, e: unknown): unknown {
    const code = (e as { code?: unknown } | undefined)?.code
    if (typeof code !== "string" || !code.startsWith("SQLITE_")) return e
    const todo = code === "SQLITE_FULL" ? "free space on its disk, then start again" : "restore it from a backup, or move it away to start an empty one"
    return new ConfigError(`cannot open the database ${path} (${code}: ${(e as Error).message}); ${todo}`)
}

/** The bus the settings name: Redis with a URL (its keys and channel named for the store), else this process alone. */
export async function openBus(redisUrl: string | undefined, log: Logger, store: Store): Promise<Bus> {
    if (!redisUrl) return new LocalBus()
    if (!/^rediss?:\/\//.test(redisUrl)) throw new ConfigError(`--redis-url must be a redis:// URL (redis://[:PASSWORD@]HOST:PORT[/DB]), not "${redactedUrl(redisUrl)}"`)
    try {
        const { RedisBus } = await import("./bus/redis.ts")
        const commits = store.recordCommitsAs && store.lastCommits ? { recordAs: store.recordCommitsAs.bind(store), last: store.lastCommits.bind(store) } : undefined
        return await RedisBus.connect(redisUrl, log, await store.storeId(), commits)
    } catch (e) {
        // PostgreSQL's record of commits unreadable: says so itself
        if (e instanceof UnavailableError) throw e
        throw new UnavailableError(`could not reach Redis at ${redactedUrl(redisUrl)}: ${(e as Error).message}`)
    }
}

/**
 * Claims the store for this process and its bus: alone without one, shared with one. A second server
 * on a PostgreSQL database without Redis is refused here, with what to do: without a bus its
 * subscribers would never hear the other's writes.
 */
export async function claimStore(store: Store, bus: Bus): Promise<void> {
    await inUseAsConfigError(() => store.claim(bus.kind === "local" ? "alone" : "shared"))
}

/** Another server's use of the store is a configuration to change (the message says how), not a crash. */
function inUseAsConfigError<T>(fn: () => T): T {
    const asConfig = (e: unknown) => (e instanceof StoreError && e.failure === "in-use" ? new ConfigError(e.message) : e)
    try {
        const r = fn()
        return r instanceof Promise ? (r.catch((e) => Promise.reject(asConfig(e))) as T) : r
    } catch (e) {
        throw asConfig(e)
    }
}
