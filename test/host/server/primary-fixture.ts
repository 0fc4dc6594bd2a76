// A stand-in `feedline serve --workers 2` for the tests of devs/server/workers.ts: a fixture file that runs the
// real primary (runPrimary) with stand-in workers, in a child process under tsx. Its workers wait on files
// named from `release` (FEEDLINE_TEST_RELEASE), in a folder of the test's own, removed with the process when
// the test ends.
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface PrimaryFixture {
    process: ChildProcess
    /** what it wrote on stdout and stderr so far */
    out(): string
    err(): string
    /** its exit code */
    exited: Promise<number | null>
    /** the path the fixture's FEEDLINE_TEST_RELEASE names */
    release: string
}

export function startPrimaryFixture(t: { after(fn: () => void): void }, fixture: string): PrimaryFixture {
    const dir = mkdtempSync(join(tmpdir(), "feedline-primary-"))
    const release = join(dir, "release")
    const child = spawn(process.execPath, ["--import", "tsx", fixture], { env: { ...process.env, FEEDLINE_TEST_RELEASE: release }, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout!.on("data", (d) => (out += d))
    child.stderr!.on("data", (d) => (err += d))
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    t.after(() => {
        child.kill("SIGKILL")
        rmSync(dir, { recursive: true, force: true })
    })
    return { process: child, out: () => out, err: () => err, exited, release }
}
