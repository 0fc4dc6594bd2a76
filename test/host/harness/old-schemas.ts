// Databases as an older version of the server left them, for the tests of a migration: the schema migrations up to
// `version` (never edited once shipped, so they make what that version made), then the rows a test writes.
import Database from "better-sqlite3"
import pg from "pg"
import { MIGRATIONS as POSTGRES_MIGRATIONS } from "../../../devs/server/storage/postgres.ts"
import { MIGRATIONS as SQLITE_MIGRATIONS } from "../../../devs/server/storage/sqlite.ts"
import { tempStorePath } from "./temp-dirs.ts"

/** The path of a SQLite database of schema `version` (in a temporary folder, removed after the file's tests), `fill` its rows. */
export function oldSqliteDatabase(version: number, fill: (db: Database.Database) => void): string {
    const path = tempStorePath("feedline-old-schema-")
    const old = new Database(path)
    try {
        old.pragma("journal_mode = WAL")
        for (let v = 0; v < version; v++) old.exec(SQLITE_MIGRATIONS[v])
        old.pragma(`user_version = ${version}`)
        fill(old)
    } finally {
        old.close()
    }
    return path
}

/** Makes the (empty) PostgreSQL database at `url` one of schema `version`, `fill` its rows, in one transaction. */
export async function oldPostgresDatabase(url: string, version: number, fill: (c: pg.Client) => Promise<void>): Promise<void> {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    try {
        await c.query("BEGIN")
        await c.query("CREATE TABLE feedline_schema (version INT NOT NULL)")
        for (let v = 0; v < version; v++) await c.query(POSTGRES_MIGRATIONS[v])
        await c.query("INSERT INTO feedline_schema (version) VALUES ($1)", [version])
        await fill(c)
        await c.query("COMMIT")
    } finally {
        await c.end()
    }
}
