// Storage failures of a server's SQLite store, as a full disk would make them: another connection adds a trigger
// that aborts the changes named, until the returned function drops it.
import { join } from "node:path"
import Database from "better-sqlite3"

/** Makes every `event` of `table` in the store in `dataDir` fail (those matching `when`, an SQL condition on NEW/OLD, if given) until the returned function is called. */
export function failChangesOf(dataDir: string, table: string, event: "INSERT" | "UPDATE" | "DELETE" = "INSERT", when?: string): () => void {
    const other = new Database(join(dataDir, "feedline.db"))
    const name = `fail_${table}_${event.toLowerCase()}`
    other.exec(`CREATE TRIGGER ${name} BEFORE ${event} ON ${table} ${when ? `WHEN ${when} ` : ""}BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
    return () => {
        other.exec(`DROP TRIGGER ${name}`)
        other.close()
    }
}
