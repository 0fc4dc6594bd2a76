// How the package installs and starts (devs/tools/compile.js, devs/tools/devicescript-libs.js,
// devs/bin/feedline): a production install (`npm ci --omit=dev`: no TypeScript, no DeviceScript CLI) gets
// through `prepare` and `postinstall`, each saying what it skipped; the compiled server imports only
// `dependencies`; a compile deletes the outputs of sources that are gone; the bin finds the compiled CLI
// through npm's links, from any folder, on paths with spaces, under dash and without `readlink -f`.
// Each case runs on a small throw-away package; the real `npm ci --omit=dev` of this one, which takes
// minutes, is devs/tools/check-production-install.sh (not part of npm test).
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { isBuiltin } from "node:module"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { after, test } from "node:test"
import { compiledCli, PACKAGE_ROOT } from "../../../devs/server/compiled.ts"
import { readImportGraph } from "../architecture/import-graph.ts"

const scratch = mkdtempSync(join(tmpdir(), "feedline install "))
after(() => rmSync(scratch, { recursive: true, force: true }))

/** the package's own files, copied into a throw-away package under `root` */
function put(root: string, file: string, from?: string, text?: string): string {
    const to = join(root, file)
    mkdirSync(dirname(to), { recursive: true })
    if (text !== undefined) writeFileSync(to, text, { mode: 0o755 })
    else copyFileSync(join(PACKAGE_ROOT, from ?? file), to)
    return to
}

function run(command: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    const r = spawnSync(command, args, { cwd: o.cwd, env: o.env ?? process.env, encoding: "utf8", timeout: 60_000 })
    return { status: r.status, out: r.stdout + r.stderr, stdout: r.stdout }
}

test("the install hooks, and `npm run serve`'s compile, are the plain-JavaScript steps that work without dev dependencies", () => {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8"))
    assert.equal(pkg.scripts.prepare, "node devs/tools/compile.js --if-available")
    assert.equal(pkg.scripts.compile, "node devs/tools/compile.js")
    assert.equal(pkg.scripts.postinstall, "node devs/tools/devicescript-libs.js")
    assert.equal(pkg.scripts.preserve, pkg.scripts.prepare, "`npm run serve` works on a production install too")
})

test("a production install (no TypeScript, no DeviceScript CLI): prepare and postinstall skip, saying so and whether dist/ can run; an explicit compile fails with E_NO_TYPESCRIPT", () => {
    const root = join(scratch, "production")
    const compile = put(root, "devs/tools/compile.js")
    const libs = put(root, "devs/tools/devicescript-libs.js")
    put(root, "package.json", undefined, '{"type":"module"}\n')

    let r = run(process.execPath, [compile, "--if-available"])
    assert.equal(r.status, 0, r.out)
    assert.match(r.out, /not compiling: TypeScript .* not installed.*dist\/devs\/cli\.js is missing, so `feedline serve` cannot run from this copy yet/)
    put(root, "dist/devs/cli.js", undefined, "")
    r = run(process.execPath, [compile, "--if-available"])
    assert.equal(r.status, 0, r.out)
    assert.match(r.out, /not compiling: .*the compiled server already in dist\/ is what `feedline serve` runs/)

    r = run(process.execPath, [compile])
    assert.equal(r.status, 1, r.out)
    assert.match(r.out, /E_NO_TYPESCRIPT/)

    r = run(process.execPath, [libs])
    assert.equal(r.status, 0, r.out)
    assert.match(r.out, /not building the firmware's DeviceScript libraries: @devicescript\/cli .* not installed/)
})

test("a compile deletes the outputs of sources deleted or renamed since the last one (tsc -b leaves them), and keeps the rest", () => {
    const root = join(scratch, "stale outputs")
    const compile = put(root, "devs/tools/compile.js")
    put(root, "package.json", undefined, '{"type":"module"}\n')
    symlinkSync(join(PACKAGE_ROOT, "node_modules"), join(root, "node_modules"))
    const config = { compilerOptions: { module: "nodenext", target: "es2022", types: [], outDir: "dist", rootDir: ".", incremental: true, tsBuildInfoFile: "dist/.tsbuildinfo", resolveJsonModule: true }, include: ["devs/**/*.ts"] }
    put(root, "tsconfig.build.json", undefined, JSON.stringify(config))
    put(root, "devs/a.ts", undefined, 'import v from "./v.json" with { type: "json" }\nexport const a = v.n\n')
    put(root, "devs/v.json", undefined, '{"n":1}\n')
    put(root, "devs/gone/b.ts", undefined, "export const b = 2\n")
    put(root, "devs/renamed.ts", undefined, "export const r = 3\n")

    let r = run(process.execPath, [compile])
    assert.equal(r.status, 0, r.out)
    for (const f of ["devs/a.js", "devs/v.json", "devs/gone/b.js", "devs/renamed.js"]) assert.ok(existsSync(join(root, "dist", f)), f)

    rmSync(join(root, "devs/gone"), { recursive: true })
    renameSync(join(root, "devs/renamed.ts"), join(root, "devs/new-name.ts"))
    r = run(process.execPath, [compile])
    assert.equal(r.status, 0, r.out)
    assert.match(r.out, /deleted 2 output\(s\) whose source is gone/)
    for (const f of ["devs/gone/b.js", "devs/gone", "devs/renamed.js"]) assert.ok(!existsSync(join(root, "dist", f)), `${f} is deleted`)
    for (const f of [".tsbuildinfo", "devs/a.js", "devs/v.json", "devs/new-name.js"]) assert.ok(existsSync(join(root, "dist", f)), `${f} is kept`)
})

test("the bin finds the compiled CLI through npm's links, from another folder, on paths with spaces, under dash, without `readlink -f`; without it, E_NOT_COMPILED", () => {
    // as `npm install <folder>` lays it out: node_modules/feedline links to the package, .bin/feedline to its bin
    const pkg = join(scratch, "a package")
    const bin = put(pkg, "devs/bin/feedline")
    const app = join(scratch, "an app")
    mkdirSync(join(app, "node_modules/.bin"), { recursive: true })
    symlinkSync(pkg, join(app, "node_modules/feedline"))
    symlinkSync("../feedline/devs/bin/feedline", join(app, "node_modules/.bin/feedline"))
    // BSD's and older macOS's readlink, which has no -f
    const stubs = join(scratch, "stubs")
    put(stubs, "readlink", undefined, '#!/bin/sh\n[ "$1" = -f ] && { echo "readlink: illegal option -- f" >&2; exit 1; }\nexec /usr/bin/readlink "$@"\n')
    const env = { ...process.env, PATH: [stubs, dirname(process.execPath), process.env.PATH].join(delimiter) }
    const elsewhere = join(scratch, "some other folder")
    mkdirSync(elsewhere)

    let r = run("dash", [join(app, "node_modules/.bin/feedline"), "serve"], { cwd: elsewhere, env })
    assert.equal(r.status, 1, r.out)
    assert.match(r.out, /^feedline: E_NOT_COMPILED: .*an app\/node_modules\/\.bin\/\.\.\/feedline\/devs\/bin\/\.\.\/\.\.\/dist\/devs\/cli\.js is missing/)

    put(pkg, "dist/devs/cli.js", undefined, "console.log(JSON.stringify({ argv: process.argv.slice(2), tunables: process.env.GLIBC_TUNABLES }))\n")
    for (const [command, args] of [["dash", [join(app, "node_modules/.bin/feedline")]], [join(app, "node_modules/.bin/feedline"), []], ["dash", ["../an app/node_modules/.bin/feedline"]], ["dash", [bin]]] as const) {
        r = run(command, [...args, "serve", "--data-dir", "a b"], { cwd: elsewhere, env })
        assert.equal(r.status, 0, r.out)
        assert.deepEqual(JSON.parse(r.stdout), { argv: ["serve", "--data-dir", "a b"], tunables: "glibc.malloc.mmap_threshold=65536:glibc.malloc.top_pad=0" }, `${command} ${args}`)
    }
})

/** Packages the compiled server may import though they are not `dependencies`, each with why it is never loaded there. */
const NOT_LOADED_COMPILED: Record<string, string> = {
    esbuild: "devs/dashboard/static.ts compiles the page's shared modules with it only under tsx; the compiled server serves them from dist/",
}

test("the compiled CLI and server import only node's modules and the package's dependencies, never a devDependency (absent in a production install)", () => {
    compiledCli() // compiled first if stale
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8"))
    const graph = readImportGraph(join(PACKAGE_ROOT, "dist"), ["devs", "src", "test"])
    // a `new URL("./x.ts", import.meta.url)` names a source: the branch that runs under tsx only
    const unresolved = graph.unresolved.filter((e) => !(e.kind === "url" && e.spec.endsWith(".ts")))
    assert.deepEqual(unresolved.map((e) => `${e.from}: "${e.spec}"`), [], "relative imports in dist/ that name no file")
    const reached = new Set(["devs/cli.js"])
    const packages = new Map<string, string>() // package -> a module that imports it
    for (const from of reached) {
        for (const e of graph.edges) {
            if (e.from !== from || e.kind === "reads") continue
            if (e.spec.startsWith(".")) reached.add(e.to)
            else if (!isBuiltin(e.spec)) packages.set(e.spec.split("/").slice(0, e.spec.startsWith("@") ? 2 : 1).join("/"), from)
        }
    }
    assert.ok(reached.has("devs/server/index.js") && reached.has("devs/server/storage/writer-thread-main.js"), "the server and its writer thread are reached")
    const notDependencies = [...packages].filter(([name]) => !(name in pkg.dependencies) && !(name in NOT_LOADED_COMPILED))
    assert.deepEqual(notDependencies.map(([name, from]) => `${name} (${from})`), [], "packages the compiled CLI imports that a production install lacks: move them to dependencies, or keep them off the server's imports")
    for (const name of Object.keys(NOT_LOADED_COMPILED)) assert.ok(packages.has(name), `${name} is no longer imported: drop it from NOT_LOADED_COMPILED`)
})
