// "Run what we ship" (issue 15): the bin, `npm start` and the servers tests spawn are the JavaScript that
// `npm ci` compiles into dist/, not TypeScript through the tsx loader; a build older than its sources is
// refused rather than run; the compiled server's writer thread and the page's shared modules come from
// that build too.
import assert from "node:assert/strict"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { test } from "node:test"
import { FeedlineConnection } from "../../../devs/client/connection.ts"
import { compiledCli, modulePath, PACKAGE_ROOT, staleSources } from "../../../devs/server/compiled.ts"
import { startServerProcess } from "../../e2e/server-process.ts"

const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8"))

test("the bin is the compiled CLI, built by npm ci / npm install (prepare), and the product's scripts run compiled JavaScript", () => {
    assert.equal(pkg.bin.feedline, "dist/devs/cli.js")
    assert.match(pkg.scripts.prepare, /npm run -s compile/) // npm ci and npm install run `prepare`
    assert.equal(pkg.scripts.compile, "tsc -b tsconfig.build.json")
    const cli = compiledCli()
    assert.equal(cli, join(PACKAGE_ROOT, pkg.bin.feedline))
    assert.equal(readFileSync(cli, "utf8").split("\n")[0], "#!/usr/bin/env node")
    for (const script of ["start", "serve", "build", "heap", "soak"]) {
        assert.match(pkg.scripts[script], /^node dist\//, `npm run ${script}`)
        assert.equal(pkg.scripts[`pre${script}`], "npm run -s compile", `npm run ${script} compiles first`)
    }
    const build = JSON.parse(readFileSync(join(PACKAGE_ROOT, "tsconfig.build.json"), "utf8"))
    assert.equal(build.compilerOptions.outDir, "dist")
    assert.equal(build.compilerOptions.rewriteRelativeImportExtensions, true) // "./x.ts" imports become "./x.js"
    assert.match(readFileSync(join(PACKAGE_ROOT, ".gitignore"), "utf8"), /^\/dist\/$/m)
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
