// Several processes may share one data folder (`--workers`, or servers on one host): the first to start
// makes the development CA and credentials.json, the others must find them whole, not make their own
// at the same moment. Provisioning therefore runs under a lock: a folder, since mkdir is atomic (also on
// NFS, where a data folder shared between hosts would live). A lock left by a process that died while
// holding it is taken over once it is STALE_LOCK_MS old; provisioning takes well under a second.
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "./private-folder.ts"

export const LOCK_NAME = ".provisioning.lock"
/** a lock this old was left by a process that died holding it */
const STALE_LOCK_MS = 30_000
/** how often a waiting process looks again, and for how long in all before it gives up */
const POLL_MS = 50
const WAIT_MS = 120_000

export interface LockClock {
    nowMs(): number
    sleep(ms: number): Promise<void>
}

const REAL_CLOCK: LockClock = { nowMs: Date.now, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) }

/** What to do when the lock folder exists: wait, take it over (stale), or give up. Pure. */
export function lockStep(lockAgeMs: number | undefined, waitedMs: number): "retry-now" | "take-over" | "wait" | "give-up" {
    if (lockAgeMs === undefined) return "retry-now" // released between our attempt and our look
    if (lockAgeMs > STALE_LOCK_MS) return "take-over"
    return waitedMs > WAIT_MS ? "give-up" : "wait"
}

/** Runs `fn` while holding `<dir>/.provisioning.lock`. */
export async function withFolderLock<T>(dir: string, fn: () => Promise<T>, clock: LockClock = REAL_CLOCK): Promise<T> {
    const lock = join(dir, LOCK_NAME)
    const started = clock.nowMs()
    for (;;) {
        try {
            mkdirSync(lock, { mode: PRIVATE_DIR_MODE })
            break
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
        }
        let age: number | undefined
        try {
            age = clock.nowMs() - statSync(lock).mtimeMs
        } catch {
            age = undefined
        }
        const step = lockStep(age, clock.nowMs() - started)
        if (step === "give-up") throw new Error(`${lock} is held by another process for over ${WAIT_MS / 1000} s; if none is starting, delete it`)
        if (step === "take-over") rmSync(lock, { recursive: true, force: true })
        else if (step === "wait") await clock.sleep(POLL_MS)
    }
    // who holds it, for a person who finds it left behind
    writeFileSync(join(lock, "holder"), `${hostname()} ${process.pid}\n`, { mode: PRIVATE_FILE_MODE })
    try {
        return await fn()
    } finally {
        rmSync(lock, { recursive: true, force: true })
    }
}
