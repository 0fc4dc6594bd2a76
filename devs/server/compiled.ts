// The server, CLI and tools ship as JavaScript compiled into dist/ (`npm run compile`, run by `npm ci` and
// `npm install` through the `prepare` script where TypeScript is installed, and first by `npm start`,
// `npm run serve` and `npm test`; devs/tools/compile.js).
// Tests and development scripts may run the same modules as TypeScript under tsx. This module says which
// of the two is running, where the package's own files are in both cases, and refuses to run a compiled
// build that is older than the sources it was compiled from (it would silently run old code).
import { execFileSync } from "node:child_process"
import { readdirSync, statSync } from "node:fs"
import { delimiter, dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

/** true when this module is the compiled JavaScript in dist/, false under tsx */
export const RUNNING_COMPILED = import.meta.url.endsWith(".js")
/** the package's folder (package.json, devs/dashboard's page, ./data) in both cases; dist/ mirrors it one level down */
export const PACKAGE_ROOT = resolve(fileURLToPath(new URL(RUNNING_COMPILED ? "../../.." : "../..", import.meta.url)))
/** where `npm run compile` writes; its .tsbuildinfo is rewritten by every compile that saw a source change (in content or only in time) */
export const BUILD_DIR = join(PACKAGE_ROOT, "dist")
const BUILD_INFO_FILE = ".tsbuildinfo" // tsconfig.build.json's tsBuildInfoFile
const BUILD_INFO = join(BUILD_DIR, BUILD_INFO_FILE)
/** `npm run compile`: tsc -b tsconfig.build.json, then the outputs whose source is gone are deleted */
const COMPILE_SCRIPT = "devs/tools/compile.js"

/** A path in the package, for the running code: `devs/cli.ts` → dist/devs/cli.js when compiled. */
export function modulePath(sourcePath: string, compiled = RUNNING_COMPILED): string {
    return compiled ? join(BUILD_DIR, sourcePath.replace(/\.ts$/, ".js")) : join(PACKAGE_ROOT, sourcePath)
}

function mtimeMs(file: string): number | undefined {
    try {
        return statSync(file).mtimeMs
    } catch {
        return undefined
    }
}

/**
 * The sources (package-relative) changed after the last compile: for each compiled module in dist/, its .ts
 * beside the package is newer than the build record. Empty when there are no sources (an installed copy
 * without them) or nothing changed.
 */
export function staleSources(root = PACKAGE_ROOT): string[] {
    const buildDir = join(root, "dist")
    const builtAtMs = mtimeMs(join(buildDir, BUILD_INFO_FILE))
    if (builtAtMs === undefined) return []
    const stale: string[] = []
    for (const out of readdirSync(buildDir, { recursive: true, encoding: "utf8" })) {
        if (!out.endsWith(".js")) continue
        const source = join(root, out.slice(0, -3) + ".ts")
        const changedMs = mtimeMs(source)
        if (changedMs !== undefined && changedMs > builtAtMs) stale.push(relative(root, source))
    }
    return stale.sort()
}

/** Exits with E_STALE_BUILD when compiled code would run older sources than the checkout's; a no-op under tsx. */
export function refuseStaleBuild(program: string): void {
    if (!RUNNING_COMPILED) return
    const stale = staleSources()
    if (stale.length === 0) return
    const shown = stale.slice(0, 3).join(", ") + (stale.length > 3 ? ` and ${stale.length - 3} more` : "")
    process.stderr.write(`${program}: E_STALE_BUILD: ${shown} changed after the last compile; run \`npm run compile\` (dist/ would run the old code)\n`)
    process.exit(1)
}

/**
 * For tests and development tools that spawn the compiled CLI or server: compiles first when dist/ is
 * missing or older than the sources (`npm run compile`: tsc -b, incremental; TypeScript is a devDependency). Type errors do
 * not stop it (tsc still emits; `npm test` reports them in its typecheck step).
 */
export function compileIfStale(): void {
    if (mtimeMs(BUILD_INFO) !== undefined && staleSources().length === 0) return
    try {
        execFileSync(process.execPath, [join(PACKAGE_ROOT, COMPILE_SCRIPT)], { cwd: PACKAGE_ROOT, stdio: "pipe" })
    } catch (e) {
        const stale = staleSources()
        if (mtimeMs(BUILD_INFO) === undefined || stale.length) throw new Error(`E_STALE_BUILD: \`npm run compile\` failed and dist/ is older than ${stale[0] ?? "the sources"}:\n${(e as { stdout?: Buffer }).stdout ?? e}`)
    }
}

/** A compiled entry point (`devs/start.ts` → dist/devs/start.js) for a test or a benchmark to spawn with `node`: compiled first if stale. */
export function compiledEntry(sourcePath: string): string {
    compileIfStale()
    return modulePath(sourcePath, true)
}

/** The compiled CLI (what the bin runs), compiled first if stale. */
export const compiledCli = (): string => compiledEntry("devs/cli.ts")

/**
 * The package's bin (`feedline`, devs/bin/feedline), for a test or a benchmark to spawn the server as a user
 * runs it: the compiled CLI (compiled first if stale) under the allocator settings the server ships with.
 * The bin execs the `node` on PATH in its own process (a signal reaches the server); `env` puts this
 * process's Node first on that PATH.
 */
export function packageBin(): { command: string; env: NodeJS.ProcessEnv } {
    compiledCli()
    return { command: join(PACKAGE_ROOT, "devs/bin/feedline"), env: { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}` } }
}
