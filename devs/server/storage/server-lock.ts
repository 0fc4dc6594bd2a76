// One server per SQLite database. A second `feedline serve` on the same data folder would run beside the
// first with nothing between them: its subscribers would never hear the first's writes, and both would
// keep the journal, the server stamps and the feed ids in memory as if alone (several servers need
// PostgreSQL and Redis). The lock is an exclusive transaction, held until close, on a small SQLite file
// beside the database: the operating system lets it go when the process dies however it dies, so a
// crash leaves nothing to clean up, and SQLite's locks also tell two servers in one process apart. The
// `feedline keys` command opens the database without it, beside a running server, as it always could.
import { closeSync, openSync } from "node:fs"
import Database from "better-sqlite3"
import { PRIVATE_FILE_MODE } from "./private-folder.ts"
import { StoreError } from "./store.ts"

/** The lock file beside a database file. */
export const serverLockPathOf = (databasePath: string) => `${databasePath}.server-lock`

export interface ServerLock {
    release(): void
}

/** Takes the database's server lock at once, or throws StoreError "in-use" saying what to do. */
export function lockDatabaseForServer(databasePath: string): ServerLock {
    const path = serverLockPathOf(databasePath)
    closeSync(openSync(path, "a", PRIVATE_FILE_MODE)) // owner-only, as every file in the data folder
    // no busy wait: a holder keeps the lock for as long as it runs
    const db = new Database(path, { timeout: 0 })
    try {
        db.pragma("journal_mode = MEMORY") // nothing is written: no -journal file beside it
        db.exec("BEGIN EXCLUSIVE")
    } catch (e) {
        db.close()
        if ((e as { code?: string }).code !== "SQLITE_BUSY") throw e
        throw new StoreError(
            "in-use",
            `another feedline server is serving the database ${databasePath}; stop it first, or give this server a --data-dir of its own (several servers on one database need PostgreSQL and Redis: --database-url and --redis-url)`,
        )
    }
    return { release: () => db.close() }
}
