// `npm run compile`, and `prepare` (npm runs it after `npm ci` and `npm install`): the server, CLI and tools
// compiled into dist/ (tsc -b tsconfig.build.json, incremental), then every output whose source is gone is
// deleted. tsc -b never removes the .js of a source that was deleted or renamed, and that old module would
// still be there in dist/ to be imported or run.
//
// Plain JavaScript run by node itself, not TypeScript: it runs before anything is compiled, and also in a
// production install (`npm ci --omit=dev`), where TypeScript and tsx, devDependencies, are not installed.
// There `--if-available` (what `prepare` passes) skips the compile with a line saying whether dist/ holds a
// compiled server to run; an explicit `npm run compile` without TypeScript fails with E_NO_TYPESCRIPT.
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, rmSync, statSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"

/** the package's folder: this file is devs/tools/compile.js */
const ROOT = fileURLToPath(new URL("../..", import.meta.url))
/** tsconfig.build.json's outDir; its rootDir is the package, so dist/devs/cli.js is built from devs/cli.ts */
const OUT_DIR = join(ROOT, "dist")
/** tsconfig.build.json's tsBuildInfoFile: tsc's own record, not an output of a source */
const BUILD_INFO = join(OUT_DIR, ".tsbuildinfo")
/** TypeScript from this package's own node_modules: a devDependency, absent in a production install */
const TSC = join(ROOT, "node_modules/typescript/bin/tsc")
/** what `feedline` (devs/bin/feedline) runs */
const COMPILED_CLI = join(OUT_DIR, "devs/cli.js")

/** The source an output in dist/ was compiled from (package-relative), by tsc's naming: x.ts -> x.js; anything else (JSON) is copied as is. */
function sourceOf(output) {
    for (const [out, src] of [[".d.ts", ".ts"], [".js.map", ".ts"], [".js", ".ts"]]) if (output.endsWith(out)) return output.slice(0, -out.length) + src
    return output
}

/** Deletes the outputs in dist/ whose source no longer exists, then the folders that left empty; returns the deleted files (dist-relative). */
function pruneStaleOutputs() {
    if (!existsSync(OUT_DIR)) return []
    const deleted = []
    const entries = readdirSync(OUT_DIR, { recursive: true, encoding: "utf8" }).sort()
    // tolerant of a compile running at the same time (test files compile on demand): what it deleted first is gone
    for (const rel of entries) {
        const file = join(OUT_DIR, rel)
        if (file === BUILD_INFO || !statSync(file, { throwIfNoEntry: false })?.isFile()) continue
        if (existsSync(join(ROOT, sourceOf(rel)))) continue
        rmSync(file, { force: true })
        deleted.push(rel)
    }
    // deepest first, so a folder emptied by its subfolders' removal goes too
    for (const rel of entries.reverse()) {
        const dir = join(OUT_DIR, rel)
        if (statSync(dir, { throwIfNoEntry: false })?.isDirectory() && readdirSync(dir).length === 0) rmSync(dir, { recursive: true, force: true })
    }
    return deleted
}

const ifAvailable = process.argv.includes("--if-available")
if (!existsSync(TSC)) {
    const why = "TypeScript (a devDependency) is not installed, as in a production install (npm ci --omit=dev)"
    if (!ifAvailable) {
        process.stderr.write(`feedline compile: E_NO_TYPESCRIPT: ${why}; install the dev dependencies (npm ci) to compile\n`)
        process.exit(1)
    }
    process.stderr.write(
        existsSync(COMPILED_CLI)
            ? `feedline: not compiling: ${why}; the compiled server already in ${relative(ROOT, OUT_DIR)}/ is what \`feedline serve\` runs\n`
            : `feedline: not compiling: ${why}, and ${relative(ROOT, COMPILED_CLI)} is missing, so \`feedline serve\` cannot run from this copy yet: compile where the dev dependencies are installed (npm ci && npm run compile) and copy ${relative(ROOT, OUT_DIR)}/ here (docs/OPERATIONS.md, "Production install")\n`,
    )
    process.exit(0)
}
const tsc = spawnSync(process.execPath, [TSC, "-b", join(ROOT, "tsconfig.build.json")], { cwd: ROOT, stdio: "inherit" })
const deleted = pruneStaleOutputs()
if (deleted.length) process.stderr.write(`feedline compile: deleted ${deleted.length} output(s) whose source is gone: ${deleted.slice(0, 5).join(", ")}${deleted.length > 5 ? ", …" : ""}\n`)
process.exit(tsc.status ?? 1)
