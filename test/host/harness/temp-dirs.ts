// Throw-away folders for a test file: made under the system's temporary folder, deleted after the file's
// tests. The one cleanup hook is registered when this module is loaded, which is when a test file imports
// it (statically, at its top): node:test then runs it after every test of the file. Registered from inside
// a test instead, it would run when that test ends and miss the folders of the tests after it.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after } from "node:test"

const made: string[] = []
after(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A new empty folder named `<prefix>XXXXXX` (e.g. "feedline-store-"), deleted after the file's tests. */
export function tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix))
    made.push(dir)
    return dir
}

/** The path of a SQLite store in a new tempDir(prefix) (the file `db` there, not made yet). */
export function tempStorePath(prefix: string): string {
    return join(tempDir(prefix), "db")
}
