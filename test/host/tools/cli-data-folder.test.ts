// The CLI's data folder is ./data of the folder it runs in (docs/OPERATIONS.md), not the installed package's
// own folder: `npx feedline serve` in a project that depends on feedline keeps its data there, not in
// node_modules/feedline/data. A local `keys` command run where ./data has no database says so and makes none.
import { test } from "node:test"
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { compiledCli } from "../../../devs/server/compiled.ts"
import { startTestServer } from "../harness/server-harness.ts"

const execFileAsync = promisify(execFile)
/** the CLI in `cwd`, with no data folder or server named by the environment */
function cliIn(cwd: string, args: string[]) {
    const env = { ...process.env }
    delete env.FEEDLINE_DATA_DIR
    delete env.FEEDLINE_DATABASE_URL
    delete env.FEEDLINE_SERVER
    return execFileAsync(process.execPath, [compiledCli(), ...args], { cwd, env })
}

test("local `keys list` reads ./data of the folder it runs in", async () => {
    const project = mkdtempSync(join(tmpdir(), "feedline-cwd-"))
    try {
        const server = await startTestServer({ dataDir: join(project, "data") })
        await server.close() // the folder stays; stop() would delete it
        const label = `only-in-${project.slice(-6)}` // no other data folder has it (the package's own may exist)
        await cliIn(project, ["keys", "create", "--label", label, "--feeds", "1", "--data-dir", join(project, "data")])
        const { stdout } = await cliIn(project, ["keys", "list", "--json"])
        const keys = JSON.parse(stdout) as { label?: string }[]
        assert.ok(keys.some((k) => k.label === label), `the key made in ${project}/data is listed: ${stdout}`)
    } finally {
        rmSync(project, { recursive: true, force: true })
    }
})

test("local `keys` where the default ./data has no database: a usage error naming the folder, and no database made", async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), "feedline-cwd-"))
    try {
        mkdirSync(join(elsewhere, "data"))
        for (const args of [["keys", "list"], ["keys", "create", "--feeds", "1"]]) {
            const failed = await cliIn(elsewhere, args).then(
                () => assert.fail(`${args.join(" ")} in a folder without a database succeeded`),
                (e: { code: number; stderr: string }) => e,
            )
            assert.equal(failed.code, 2, failed.stderr)
            assert.match(failed.stderr, /holds no feedline database.*--data-dir/)
            assert.ok(!existsSync(join(elsewhere, "data", "feedline.db")), "no empty database was made")
        }
    } finally {
        rmSync(elsewhere, { recursive: true, force: true })
    }
})
