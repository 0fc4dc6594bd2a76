// Which folder is the data folder (the SQLite database, the development CA, credentials.json): the one named
// (--data-dir, else FEEDLINE_DATA_DIR), else the caller's default, `data/` (`feedline serve`: of the working
// folder; `npm start`: of the package). An empty setting names nothing: `FEEDLINE_DATA_DIR=` (an empty line in
// an env file, a compose file's blank) resolved to the working folder, so `npm start` put its database files
// in the package root, the checkout, beside package.json. A database a run like that left there is used
// rather than silently abandoned for an empty `data/`, with a notice saying how to move it.
import { existsSync } from "node:fs"
import { join, resolve } from "node:path"

/** The SQLite database's file in a data folder. */
export const SQLITE_FILE = "feedline.db"

/** What a data folder holds besides the database, for the notice's `mv` (the server makes them all there). */
const DATA_FOLDER_FILES = [`${SQLITE_FILE}*`, "credentials.json", "jwt-secret", "tls"]

export interface DataDirChoice {
    dir: string
    /** said once, at start, when `dir` is the old location: where the data should go, and how */
    notice?: string
    /**
     * When `dir` is the old location (the working folder; for `npm start` the package root), not a folder made
     * for the data: the names of the data's files in it (ServerOptions.dataFiles). Only those are narrowed to
     * the owner; the folder and everything else in it are left as they are.
     */
    dataFiles?: string[]
}

/** A setting's value, or undefined when it names nothing (absent or empty). */
export const namedDir = (...settings: (string | undefined)[]): string | undefined => settings.find((s) => s !== undefined && s !== "")

/**
 * The data folder: `setting` when it names one, else `defaultDir`, unless `defaultDir` holds no database and
 * `oldDir` (where an empty setting put it: the working folder) does; that one is then used, with a notice.
 * `extraFiles`: what else the caller keeps in the folder (npm start: its demo product, the boards' flash).
 */
export function chooseDataDir(setting: string | undefined, defaultDir: string, oldDir: string, extraFiles: string[] = []): DataDirChoice {
    if (setting !== undefined) return { dir: resolve(setting) }
    const dir = resolve(defaultDir)
    const old = resolve(oldDir)
    if (old === dir || existsSync(join(dir, SQLITE_FILE)) || !existsSync(join(old, SQLITE_FILE))) return { dir }
    const dataFiles = [...DATA_FOLDER_FILES, ...extraFiles]
    const files = dataFiles.join(" ")
    return {
        dir: old,
        dataFiles,
        notice:
            `using the database found in ${old} (where an empty FEEDLINE_DATA_DIR put it) rather than a new one in ${dir}; ` +
            `to move it, stop the server, then: mkdir -p ${dir} && cd ${old} && mv ${files} ${dir}/ (or name the folder with FEEDLINE_DATA_DIR)`,
    }
}
