// How every connection to the feedline database is opened: the server's reading connection, its writer
// thread's, and the CLI's. One place, so that what a commit survives is the same on all of them.
import Database from "better-sqlite3"

export type Synchronous = "FULL" | "NORMAL"

/** FULL (default): a commit survives power loss. NORMAL: faster, survives a process crash only. */
export function openConnection(path: string, synchronous: Synchronous = "FULL"): Database.Database {
    const db = new Database(path)
    db.pragma("journal_mode = WAL")
    db.pragma(`synchronous = ${synchronous}`)
    db.pragma("foreign_keys = ON")
    db.pragma("busy_timeout = 5000") // another connection (the writer thread, the `keys` CLI) may be writing
    return db
}
