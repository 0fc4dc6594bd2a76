// The data folder holds every datapoint, the key hashes, the token secret and credentials.json (the plain
// keys): only the user the server runs as may read it. Folders are 0700, files 0600; what is found wider
// on start is narrowed and reported, so an old install (0755 folder, 0644 database) is fixed by upgrading.
import { chmodSync, lstatSync, mkdirSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { ConfigError } from "../errors.ts"

export const PRIVATE_DIR_MODE = 0o700
export const PRIVATE_FILE_MODE = 0o600
/** group and others: any of these bits makes a path readable (or writable) by another local user */
const SHARED_BITS = 0o077

export interface ModeFix {
    path: string
    /** permission bits before and after, e.g. 0o644 -> 0o600 */
    from: number
    to: number
    /** set when the mode could not be changed (not the owner, read-only file system) */
    error?: string
}

/**
 * Creates `dir` (0700) if missing, and narrows it and everything in it that another user could read:
 * folders to 0700, files to 0600 (symbolic links are not followed). Returns what it changed or could not.
 * With `onlyEntries` (a folder the server did not make for itself: the working folder an old empty
 * FEEDLINE_DATA_DIR put the database in, for `npm start` the package root), only the entries of `dir` it
 * names (patterns: "feedline.db*", "*.flash", "tls"), and what is inside them: never `dir` itself nor anything else in it.
 */
export function securePrivateFolder(dir: string, onlyEntries?: readonly string[]): ModeFix[] {
    try {
        return narrowPrivateFolder(dir, onlyEntries)
    } catch (e) {
        // not a folder, not ours to create or read: a setting to change, not a crash
        throw new ConfigError(`the data folder ${dir} cannot be used (${(e as Error).message}); give --data-dir a folder this user may create, read and write`)
    }
}

function narrowPrivateFolder(dir: string, onlyEntries?: readonly string[]): ModeFix[] {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE })
    const fixes: ModeFix[] = []
    const visit = (path: string) => {
        const st = lstatSync(path)
        if (!st.isDirectory() && !st.isFile()) return
        const to = st.isDirectory() ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE
        const from = st.mode & 0o777
        if (from & SHARED_BITS) {
            try {
                chmodSync(path, to)
                fixes.push({ path, from, to })
            } catch (e) {
                fixes.push({ path, from, to, error: (e as Error).message })
            }
        }
        if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name))
    }
    if (onlyEntries === undefined) visit(dir)
    else for (const name of readdirSync(dir)) if (isNamed(name, onlyEntries)) visit(join(dir, name))
    return fixes
}

/** Whether `name` is one of `patterns` ("feedline.db*": a prefix, "*.flash": a suffix, else the name itself). */
function isNamed(name: string, patterns: readonly string[]): boolean {
    return patterns.some((p) => (p.endsWith("*") ? name.startsWith(p.slice(0, -1)) : p.startsWith("*") ? name.endsWith(p.slice(1)) : name === p))
}

/** "0644" */
export const octal = (mode: number) => "0" + mode.toString(8)
