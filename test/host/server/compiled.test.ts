// "Run what we ship" (issue 15): the bin, `npm start` and the servers tests spawn are the JavaScript that
// `npm ci` compiles into dist/, not TypeScript through the tsx loader; a build older than its sources is
// refused rather than run; the compiled server's writer thread and the page's shared modules come from
// that build too.
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { test } from "node:test"
import { FeedlineConnection } from "../../../devs/client/connection.ts"
import { compiledCli, modulePath, PACKAGE_ROOT, packageBin, staleSources } from "../../../devs/server/compiled.ts"
import { startServerProcess } from "../../e2e/server-process.ts"

const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8"))

test("the bin runs the compiled CLI, built by npm ci / npm install (prepare), and the product's scripts run compiled JavaScript", () => {
    assert.equal(pkg.bin.feedline, "devs/bin/feedline") // a launcher: the compiled CLI with the allocator settings (below)
    assert.equal(packageBin().command, join(PACKAGE_ROOT, pkg.bin.feedline))
    assert.equal(pkg.scripts.prepare, "node devs/tools/compile.js --if-available") // npm ci and npm install run `prepare` (test/host/tools/install.test.ts)
    assert.equal(pkg.scripts.compile, "node devs/tools/compile.js") // tsc -b tsconfig.build.json, then outputs whose source is gone deleted
    const cli = compiledCli()
    assert.equal(readFileSync(cli, "utf8").split("\n")[0], "#!/usr/bin/env node")
    assert.equal(pkg.scripts.serve, "devs/bin/feedline serve")
    assert.equal(pkg.scripts.preserve, "node devs/tools/compile.js --if-available") // compiles; a production install has no TypeScript and runs its dist/
    for (const script of ["start", "build", "heap", "soak"]) {
        assert.match(pkg.scripts[script], /^node dist\//, `npm run ${script}`)
        assert.equal(pkg.scripts[`pre${script}`], "npm run -s compile", `npm run ${script} compiles first`)
    }
    const build = JSON.parse(readFileSync(join(PACKAGE_ROOT, "tsconfig.build.json"), "utf8"))
    assert.equal(build.compilerOptions.outDir, "dist")
    assert.equal(build.compilerOptions.rewriteRelativeImportExtensions, true) // "./x.ts" imports become "./x.js"
    // every module's source stays in the heap of each thread that loaded it, for the process's life, and as two bytes a
    // character when a comment holds one outside ASCII (a §, a →): without comments the server idles ~1 MiB lower
    // (performance-history.md, "Idle RSS and per-connection memory, fourth pass")
    assert.equal(build.compilerOptions.removeComments, true)
    assert.doesNotMatch(readFileSync(join(PACKAGE_ROOT, "dist/devs/server/session.js"), "utf8"), /^\s*\/\//m, "the compiled modules hold no comments")
    assert.match(readFileSync(join(PACKAGE_ROOT, ".gitignore"), "utf8"), /^\/dist\/$/m)
})

test("the bin, reached through a link as npm installs it, runs the compiled CLI under the node on PATH with glibc's allocator settings, a user's own settings after them", () => {
    const dir = mkdtempSync(join(tmpdir(), "feedline-bin-"))
    try {
        // a stand-in for node that prints what it was given
        writeFileSync(join(dir, "node"), '#!/bin/sh\nprintf "%s\\n" "$GLIBC_TUNABLES" "$@"\n', { mode: 0o755 })
        mkdirSync(join(dir, ".bin"))
        symlinkSync(packageBin().command, join(dir, ".bin", "feedline"))
        const run = (env: NodeJS.ProcessEnv) =>
            execFileSync(join(dir, ".bin", "feedline"), ["serve", "--data-dir", "a b"], { env: { ...env, PATH: `${dir}${delimiter}${process.env.PATH}` }, encoding: "utf8" }).split("\n")
        const ours = "glibc.malloc.mmap_threshold=65536:glibc.malloc.top_pad=0"
        const { GLIBC_TUNABLES: _, ...withoutTunables } = process.env
        assert.deepEqual(run(withoutTunables), [ours, `${join(PACKAGE_ROOT, "devs/bin")}/../../dist/devs/cli.js`, "serve", "--data-dir", "a b", ""])
        assert.equal(run({ ...withoutTunables, GLIBC_TUNABLES: "glibc.malloc.arena_max=2" })[0], `${ours}:glibc.malloc.arena_max=2`)
    } finally {
        rmSync(dir, { recursive: true, force: true })
    }
})

test("a compiled module whose source changed after the last compile is stale (E_STALE_BUILD), one that did not is not", () => {
    const root = mkdtempSync(join(tmpdir(), "feedline-stale-"))
    const put = (file: string, atS: number) => {
        mkdirSync(dirname(join(root, file)), { recursive: true })
        writeFileSync(join(root, file), "")
        utimesSync(join(root, file), atS, atS)
    }
    try {
        assert.deepEqual(staleSources(root), [], "never compiled: nothing to call stale")
        const builtS = 1_800_000_000
        put("dist/.tsbuildinfo", builtS)
        for (const m of ["devs/a", "devs/server/b", "src/c"]) put(`dist/${m}.js`, builtS - 1)
        put("devs/a.ts", builtS - 10)
        put("devs/server/b.ts", builtS + 5) // edited after the compile
        put("src/c.ts", builtS + 1)
        put("devs/d.ts", builtS + 9) // no compiled module yet: nothing imports it from the build
        assert.deepEqual(staleSources(root), ["devs/server/b.ts", "src/c.ts"])
        put("dist/.tsbuildinfo", builtS + 10) // compiled again
        assert.deepEqual(staleSources(root), [])
    } finally {
        rmSync(root, { recursive: true, force: true })
    }
})

test("the compiled server stores through its compiled writer thread and serves the page the shared modules of its own build", { timeout: 120_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-compiled-"))
    const server = await startServerProcess({ dataDir })
    try {
        assert.match(readFileSync(`/proc/${server.pid}/cmdline`, "utf8").replaceAll("\0", " "), /dist\/devs\/cli\.js serve/)
        // started through the bin: node itself (the launcher exec'd it) with the allocator settings
        assert.equal(realpathSync(`/proc/${server.pid}/exe`), realpathSync(process.execPath))
        // (glibc 2.36 splits the value it parsed at its colons in the process's copy of the environment)
        assert.match(readFileSync(`/proc/${server.pid}/environ`, "utf8"), /(^|\0)GLIBC_TUNABLES=glibc\.malloc\.mmap_threshold=65536[:\0]glibc\.malloc\.top_pad=0(\0|$)/)
        const c = await FeedlineConnection.connect({ server: `tls://localhost:${server.devicePort}`, apiKey: server.credentials.masterKey, ca: readFileSync(server.caCertPath) })
        try {
            const feed = server.credentials.feedId
            const put = await c.send("put", `/feeds/${feed}`, { body: { datastreams: [{ id: "temp", current_value: "21.5" }] } })
            assert.equal(put.status, 200, JSON.stringify(put.body))
            const got = await c.send("get", `/feeds/${feed}/datastreams/temp`)
            assert.equal(got.status, 200)
            assert.equal(got.body.current_value, "21.5")
        } finally {
            c.close()
        }
        const page = await fetch(`http://127.0.0.1:${server.appPort}/protocol.js`)
        assert.equal(page.status, 200)
        assert.equal(await page.text(), readFileSync(modulePath("src/protocol.ts", true), "utf8"))
    } finally {
        assert.equal(await server.stop("SIGTERM"), 0, server.output())
        rmSync(dataDir, { recursive: true, force: true })
    }
})
