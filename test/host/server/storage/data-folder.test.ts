// The data folder (every datapoint, key hashes, the token secret, credentials.json) is owner-only: the
// folder and its subfolders 0700, its files 0600 (feedline.db with -wal and -shm included), made so on a
// fresh start, narrowed and logged on a start that finds them wider (an install from before), and made
// so by the `feedline keys` CLI too.
import assert from "node:assert/strict"
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Writable } from "node:stream"
import { test } from "node:test"
import { feedlineCli, startTestServer } from "../../harness/server-harness.ts"

/** Every path under `dir` (itself included) with its permission bits. */
function modes(dir: string): Map<string, number> {
    const out = new Map<string, number>()
    const visit = (p: string) => {
        const st = statSync(p)
        out.set(p, st.mode & 0o777)
        if (st.isDirectory()) for (const n of readdirSync(p)) visit(join(p, n))
    }
    visit(dir)
    return out
}

function assertOwnerOnly(dir: string): void {
    for (const [p, mode] of modes(dir)) {
        const want = statSync(p).isDirectory() ? 0o700 : 0o600
        assert.equal(mode.toString(8), want.toString(8), `${p} is ${mode.toString(8)}`)
    }
}

test("a fresh data folder is owner-only: folders 0700, every file 0600, the database's -wal and -shm too", async () => {
    const parent = mkdtempSync(join(tmpdir(), "feedline-folder-"))
    const old = process.umask(0o022) // the usual umask, under which files were 0644
    try {
        const dataDir = join(parent, "data")
        const s = await startTestServer({ dataDir })
        try {
            for (const f of ["feedline.db", "feedline.db-wal", "feedline.db-shm", "jwt-secret", "credentials.json", "tls"]) assert.ok(existsSync(join(dataDir, f)), f)
            assertOwnerOnly(dataDir)
        } finally {
            await s.stop()
        }
    } finally {
        process.umask(old)
        rmSync(parent, { recursive: true, force: true })
    }
})

test("a start that finds the folder or its files readable by others narrows them and logs each", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-folder-"))
    try {
        const first = await startTestServer({ dataDir })
        await first.close()
        // as an install from before left it
        for (const [p] of modes(dataDir)) chmodSync(p, statSync(p).isDirectory() ? 0o755 : 0o644)
        const log: any[] = []
        const sink = new Writable({ write: (chunk, _enc, done) => (log.push(...chunk.toString().trim().split("\n").map((l: string) => JSON.parse(l))), done()) })
        const second = await startTestServer({ dataDir, logLevel: "warn", logDestination: sink })
        try {
            assertOwnerOnly(dataDir)
            const narrowed = log.filter((l) => /readable by other users; narrowed/.test(l.msg))
            assert.ok(narrowed.some((l) => l.path === dataDir && l.from === "0755" && l.to === "0700"), JSON.stringify(log))
            assert.ok(narrowed.some((l) => l.path === join(dataDir, "feedline.db") && l.from === "0644" && l.to === "0600"))
            assert.ok(narrowed.some((l) => l.path === join(dataDir, "credentials.json")))
            // and it still works
            assert.equal((await second.keys.authenticate(second.credentials.deviceKey))?.feeds?.[0], second.credentials.feedId)
        } finally {
            await second.stop()
        }
    } finally {
        rmSync(dataDir, { recursive: true, force: true })
    }
})

test("the keys CLI makes a new data folder owner-only and narrows one it finds wider", async () => {
    const parent = mkdtempSync(join(tmpdir(), "feedline-folder-"))
    try {
        const dataDir = join(parent, "data")
        await feedlineCli(["keys", "create", "--label", "x", "--data-dir", dataDir])
        assertOwnerOnly(dataDir)
        chmodSync(dataDir, 0o755)
        chmodSync(join(dataDir, "feedline.db"), 0o644)
        await feedlineCli(["keys", "list", "--data-dir", dataDir])
        assertOwnerOnly(dataDir)
    } finally {
        rmSync(parent, { recursive: true, force: true })
    }
})
