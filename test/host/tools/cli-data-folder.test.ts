// The CLI's data folder is ./data of the folder it runs in (docs/OPERATIONS.md), not the installed package's
// own folder: `npx feedline serve` in a project that depends on feedline keeps its data there, not in
// node_modules/feedline/data. A local `keys` command run where ./data has no database says so and makes none.
import { test } from "node:test"
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { compiledCli } from "../../../devs/server/compiled.ts"
import { chooseDataDir, namedDir, SQLITE_FILE } from "../../../devs/server/data-dir.ts"
import { startTestServer } from "../harness/server-harness.ts"

const execFileAsync = promisify(execFile)
/** the CLI in `cwd`, with no data folder or server named by the environment (`dataDirEnv`: FEEDLINE_DATA_DIR's value) */
function cliIn(cwd: string, args: string[], dataDirEnv?: string) {
    const env = { ...process.env }
    delete env.FEEDLINE_DATA_DIR
    if (dataDirEnv !== undefined) env.FEEDLINE_DATA_DIR = dataDirEnv
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

test("an empty FEEDLINE_DATA_DIR names no folder: ./data, never the working folder itself (was: the database made in the working folder, npm start's in the checkout)", async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), "feedline-cwd-"))
    try {
        const failed = await cliIn(elsewhere, ["keys", "create", "--feeds", "1"], "").then(
            () => assert.fail("keys create with an empty FEEDLINE_DATA_DIR made a database"),
            (e: { code: number; stderr: string }) => e,
        )
        assert.equal(failed.code, 2, failed.stderr)
        assert.match(failed.stderr, /data holds no feedline database/)
        assert.ok(!existsSync(join(elsewhere, SQLITE_FILE)), "no database in the working folder")
    } finally {
        rmSync(elsewhere, { recursive: true, force: true })
    }
})

test("a database an empty FEEDLINE_DATA_DIR left in the working folder is used, with a notice saying how to move it, while ./data has none", async () => {
    const project = mkdtempSync(join(tmpdir(), "feedline-cwd-"))
    try {
        const label = "made-in-the-old-place"
        await cliIn(project, ["keys", "create", "--label", label, "--feeds", "1", "--data-dir", project])
        const { stdout, stderr } = await cliIn(project, ["keys", "list", "--json"])
        assert.ok((JSON.parse(stdout) as { label?: string }[]).some((k) => k.label === label), stdout)
        assert.match(stderr, /using the database found in .* rather than a new one in .*data; to move it, stop the server, then: mkdir -p .*mv feedline\.db\* credentials\.json jwt-secret tls /)
        // once moved (or once ./data has its own), ./data it is, and nothing is said
        mkdirSync(join(project, "data"), { mode: 0o700 })
        renameSync(join(project, SQLITE_FILE), join(project, "data", SQLITE_FILE))
        const moved = await cliIn(project, ["keys", "list", "--json"])
        assert.ok((JSON.parse(moved.stdout) as { label?: string }[]).some((k) => k.label === label))
        assert.doesNotMatch(moved.stderr, /using the database found/)
    } finally {
        rmSync(project, { recursive: true, force: true })
    }
})

// The old place is the working folder (for `npm start` the package root), a folder the
// server did not make for itself: it narrowed it to 0700, and everything in it to 0600 (the checkout's sources,
// node_modules), as it does its own data folder. Only the data's own files are narrowed there now. Found by the
// adversarial audit of 2026-12-07.
test("a database found in the working folder: only the data's files are narrowed, not the folder nor what else it holds", async () => {
    const project = mkdtempSync(join(tmpdir(), "feedline-cwd-"))
    try {
        await cliIn(project, ["keys", "create", "--label", "old", "--feeds", "1", "--data-dir", project])
        writeFileSync(join(project, "package.json"), "{}")
        // as a checkout is: readable by others; the old database too (an old install)
        for (const [name, mode] of [[".", 0o755], ["package.json", 0o644], [SQLITE_FILE, 0o644]] as const) chmodSync(join(project, name), mode)
        const { stderr } = await cliIn(project, ["keys", "list", "--json"])
        assert.match(stderr, /using the database found in/)
        const modeOf = (name: string) => statSync(join(project, name)).mode & 0o777
        assert.deepEqual([modeOf("."), modeOf("package.json"), modeOf(SQLITE_FILE)], [0o755, 0o644, 0o600], "the folder and its other files as found; the database narrowed")
        // the server, given what chooseDataDir said, does the same
        chmodSync(join(project, SQLITE_FILE), 0o644)
        const choice = chooseDataDir(undefined, join(project, "data"), project)
        assert.deepEqual(choice.dataFiles?.slice(0, 2), [`${SQLITE_FILE}*`, "credentials.json"])
        const server = await startTestServer({ dataDir: choice.dir, dataFiles: choice.dataFiles })
        await server.close() // not stop(): that deletes its data folder, here the project
        assert.deepEqual([modeOf("."), modeOf("package.json"), modeOf(SQLITE_FILE)], [0o755, 0o644, 0o600])
    } finally {
        rmSync(project, { recursive: true, force: true })
    }
})

test("chooseDataDir: a named folder wins; the default unless only the old place has a database", () => {
    const root = mkdtempSync(join(tmpdir(), "feedline-choose-"))
    try {
        const data = join(root, "data")
        assert.deepEqual(chooseDataDir("/srv/feedline", data, root), { dir: "/srv/feedline" })
        assert.equal(namedDir(undefined, ""), undefined)
        assert.equal(namedDir("", "/x"), "/x")
        assert.deepEqual(chooseDataDir(undefined, data, root), { dir: data })
        writeFileSync(join(root, SQLITE_FILE), "")
        const old = chooseDataDir(undefined, data, root, ["demo-product.json", "*.flash"])
        assert.equal(old.dir, root)
        assert.match(old.notice!, /mv feedline\.db\* credentials\.json jwt-secret tls demo-product\.json \*\.flash /)
        mkdirSync(data)
        writeFileSync(join(data, SQLITE_FILE), "")
        assert.deepEqual(chooseDataDir(undefined, data, root), { dir: data })
    } finally {
        rmSync(root, { recursive: true, force: true })
    }
})

test("local `keys revoke` of an id no key has: exit 2, saying where the ids are", async () => {
    const project = mkdtempSync(join(tmpdir(), "feedline-revoke-"))
    try {
        const dataDir = join(project, "data")
        const failed = await cliIn(project, ["keys", "revoke", "3f9a1c2e", "--data-dir", dataDir]).then(
            () => assert.fail("revoking a key that does not exist succeeded"),
            (e: { code?: number; stderr?: string }) => e
        )
        assert.equal(failed.code, 2)
        assert.match(failed.stderr ?? "", /no unrevoked key with id 3f9a1c2e; `feedline keys list` shows the keys' ids/)
    } finally {
        rmSync(project, { recursive: true, force: true })
    }
})
