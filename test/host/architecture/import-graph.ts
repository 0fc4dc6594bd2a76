// The import graph of src/ and devs/, read from the sources: every module and every other module or
// package it depends on. TypeScript's own scanner (ts.preProcessFile) finds the imports: static and
// dynamic import, export … from, require. Besides imports it records two other ways one module uses
// another: `new URL("./x.ts", import.meta.url)` (a module started in a worker or child process) and
// readFileSync of a literal "src/….ts" path (a module that reads another one's source as text).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { join, posix } from "node:path"
import ts from "typescript"

/** How `from` uses `to`. */
export type EdgeKind = "import" | "url" | "reads"

export interface Edge {
    /** repo-relative path, e.g. "devs/server/router.ts" */
    from: string
    /** a repo-relative path, or a package name ("node:fs", "@devicescript/core") */
    to: string
    kind: EdgeKind
    /** the specifier as written */
    spec: string
}

export interface ImportGraph {
    files: string[]
    edges: Edge[]
    /** relative specifiers that name no file: a test of the graph must fail on them, not skip them */
    unresolved: Edge[]
}

const SOURCE = /\.(ts|js|mjs|cjs)$/
/** Folders with generated code or run output, not sources (git-ignored). */
const SKIPPED_DIRS = new Set(["node_modules", "devs/bench/results"])

/** Every source file below the given roots, repo-relative with "/" separators, sorted. */
export function sourceFiles(repo: string, roots: string[]): string[] {
    const out: string[] = []
    const walk = (rel: string) => {
        for (const name of readdirSync(join(repo, rel)).sort()) {
            const child = posix.join(rel, name)
            if (name.startsWith(".") || SKIPPED_DIRS.has(name) || SKIPPED_DIRS.has(child)) continue
            if (statSync(join(repo, child)).isDirectory()) walk(child)
            else if (SOURCE.test(name)) out.push(child)
        }
    }
    for (const r of roots) walk(r)
    return out.sort()
}

/** The specifiers a module names: imports (TypeScript's scanner), worker/child entries and source reads. */
export function specifiersOf(text: string): { spec: string; kind: EdgeKind }[] {
    const found: { spec: string; kind: EdgeKind }[] = ts.preProcessFile(text, true, true).importedFiles.map((f) => ({ spec: f.fileName, kind: "import" as const }))
    for (const m of text.matchAll(/new URL\(\s*["'`](\.{1,2}\/[^"'`]+\.(?:ts|js|mjs|cjs))["'`]\s*,\s*import\.meta\.url\s*\)/g)) found.push({ spec: m[1], kind: "url" })
    for (const line of text.split("\n")) {
        if (!line.includes("readFileSync")) continue
        for (const m of line.matchAll(/["'`]((?:src|devs)\/[\w./-]+\.ts)["'`]/g)) found.push({ spec: m[1], kind: "reads" })
    }
    return found
}

/**
 * Reads the graph. `aliases` maps a module path that exists only as a URL to the file behind it (the
 * dashboard page imports "./protocol.js", which the server compiles from src/protocol.ts); a specifier
 * under one of the `generated` folders names a module written at run time.
 */
export function readImportGraph(repo: string, roots: string[], aliases: Record<string, string> = {}, generated: string[] = []): ImportGraph {
    const files = sourceFiles(repo, roots)
    const known = new Set(files)
    // a module outside the roots (devs/tools/soak.ts runs test/e2e/soak.ts) is an edge too, to a file on disk
    const exists = (p: string) => known.has(p) || p in aliases || (SOURCE.test(p) && existsSync(join(repo, p)) && statSync(join(repo, p)).isFile())
    const resolve = (p: string): string | undefined => {
        for (const c of [p, p + ".ts", p + ".js", p + "/index.ts", p.replace(/\.js$/, ".ts")]) if (exists(c)) return aliases[c] ?? c
        return undefined
    }
    const edges: Edge[] = []
    const unresolved: Edge[] = []
    for (const from of files) {
        for (const { spec, kind } of specifiersOf(readFileSync(join(repo, from), "utf8"))) {
            if (kind === "reads") {
                edges.push({ from, to: spec, kind, spec })
                continue
            }
            if (!spec.startsWith("./") && !spec.startsWith("../")) {
                edges.push({ from, to: spec, kind, spec }) // a package
                continue
            }
            const target = posix.normalize(posix.join(posix.dirname(from), spec))
            const to = resolve(target)
            if (to) edges.push({ from, to, kind, spec })
            else if (generated.some((g) => target.startsWith(g))) edges.push({ from, to: target, kind, spec })
            else unresolved.push({ from, to: target, kind, spec })
        }
    }
    return { files, edges, unresolved }
}
