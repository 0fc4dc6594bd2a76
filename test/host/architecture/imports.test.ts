// The architecture as a test (issue 16 item 4): the import graph of src/ and devs/, read from the
// sources, against the rules of docs/ARCHITECTURE.md (rules.ts). Fails on a rule broken outside the
// known exceptions, on an exception that no longer happens, and on an import it cannot resolve. Each
// rule is also shown failing on a planted violation, so a rule that can no longer fail is noticed.
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { test } from "node:test"
import { fileURLToPath } from "node:url"
import { readImportGraph, specifiersOf, type Edge, type ImportGraph } from "./import-graph.ts"
import { describe as show, GENERATED_PREFIXES, judge, KNOWN_EXCEPTIONS, RULES, SHARED_MODULES } from "./rules.ts"

const REPO = fileURLToPath(new URL("../../../", import.meta.url))

/** The page's shared modules as the server serves them (devs/dashboard/static.ts SHARED_TS): "./protocol.js" is src/protocol.ts. */
function pageAliases(): Record<string, string> {
    const text = readFileSync(`${REPO}devs/dashboard/static.ts`, "utf8")
    const out: Record<string, string> = {}
    for (const m of text.matchAll(/"\/([\w-]+\.js)":\s*"((?:src|devs\/client)\/[\w/.-]+\.ts)"/g)) out[`devs/dashboard/${m[1]}`] = m[2]
    return out
}

const graph = readImportGraph(REPO, ["src", "devs"], pageAliases(), GENERATED_PREFIXES)

test("the import graph is read whole: every relative import names a file, the page's shared modules included", () => {
    assert.deepEqual(pageAliases(), {
        "devs/dashboard/protocol.js": "src/protocol.ts",
        "devs/dashboard/keepalive.js": "src/keepalive.ts",
        "devs/dashboard/requests.js": "src/requests.ts",
        "devs/dashboard/subscription-cursor.js": "src/subscription-cursor.ts",
        "devs/dashboard/backoff.js": "src/backoff.ts",
        "devs/dashboard/stamp-overlap.js": "devs/client/stamp-overlap.ts",
        "devs/dashboard/resend.js": "devs/client/resend.ts",
    })
    for (const f of ["src/protocol.ts", "src/net/link.ts", "devs/server/index.ts", "devs/dashboard/connection.js", "devs/bench/firmware/device/link-bench.ts"]) {
        assert.ok(graph.files.includes(f), `${f} is read`)
    }
    assert.deepEqual(graph.unresolved.map((e) => `${e.from}: "${e.spec}"`), [], "imports that name no file")
    const edge = (from: string, to: string) => graph.edges.some((e) => e.from === from && e.to === to)
    assert.ok(edge("devs/dashboard/connection.js", "src/protocol.ts"), "the page's ./protocol.js is src/protocol.ts")
    assert.ok(edge("devs/bench/store-ingest.ts", "devs/server/storage/sqlite.ts"), "a worker's entry (new URL) is an edge")
    assert.ok(edge("devs/server/router.ts", "src/protocol.ts"))
})

test("every import rule holds, apart from the known exceptions", (t) => {
    const { broken, excused } = judge(graph)
    for (const v of excused) t.diagnostic(`known exception: ${show(v)}`)
    assert.deepEqual(broken.map(show), [], "rules broken (docs/ARCHITECTURE.md \"Import rules\"); fix the import, or, for code you cannot change now, add it to KNOWN_EXCEPTIONS in test/host/architecture/rules.ts with the issue that removes it")
})

test("every known exception still happens (the list only shrinks)", () => {
    const { stale } = judge(graph)
    assert.deepEqual(stale.map((x) => `${x.rule}: ${x.from} -> ${x.to}`), [], "exceptions that no longer happen: remove them from KNOWN_EXCEPTIONS in test/host/architecture/rules.ts")
    for (const x of KNOWN_EXCEPTIONS) assert.ok(RULES.some((r) => r.id === x.rule), `${x.rule} is a rule`)
})

test("each rule fails on a planted violation", () => {
    const files = ["src/protocol.ts", "src/net/link.ts", "src/sensors/sampler.ts", "src/app/ports.ts", "devs/server/router.ts", "devs/server/listeners/tls.ts", "devs/server/storage/store.ts", "devs/server/hub/index.ts", "devs/dashboard/mount.ts", "devs/client/connection.ts", "devs/tools/x.ts", "devs/bench/firmware/device/p.ts"]
    const planted: Record<string, Edge[]> = {
        "shared-import-free": [{ from: SHARED_MODULES[0], to: "node:fs", kind: "import", spec: "node:fs" }],
        "src-not-devs": [{ from: "src/net/link.ts", to: "devs/server/router.ts", kind: "import", spec: "" }],
        "devs-only-shared-src": [{ from: "devs/client/connection.ts", to: "src/net/link.ts", kind: "import", spec: "" }],
        "listeners-not-store": [{ from: "devs/server/listeners/tls.ts", to: "devs/server/storage/store.ts", kind: "import", spec: "" }],
        "core-not-tools": [{ from: "devs/server/hub/index.ts", to: "devs/dashboard/mount.ts", kind: "import", spec: "" }],
        "sensors-actuators-below-app": [{ from: "src/sensors/sampler.ts", to: "src/app/ports.ts", kind: "import", spec: "" }],
        "net-below-app": [{ from: "src/net/link.ts", to: "src/app/ports.ts", kind: "import", spec: "" }],
    }
    assert.deepEqual(Object.keys(planted).sort(), RULES.map((r) => r.id).sort(), "one planted violation per rule")
    const clean: ImportGraph = { files, unresolved: [], edges: [{ from: "devs/server/router.ts", to: "src/protocol.ts", kind: "import", spec: "" }, { from: "devs/bench/firmware/device/p.ts", to: "src/net/link.ts", kind: "import", spec: "" }] }
    assert.deepEqual(judge(clean, RULES, []).broken, [], "allowed: the server imports the shared codec; a DeviceScript benchmark program imports the firmware")
    for (const [rule, edges] of Object.entries(planted)) {
        const { broken } = judge({ ...clean, edges: [...clean.edges, ...edges] }, RULES, [])
        assert.ok(broken.length > 0 && broken.every((v) => v.rule === rule), `${rule} catches ${edges.map((e) => `${e.from} -> ${e.to}`).join(", ")}: got ${broken.map(show).join("; ") || "nothing"}`)
    }
})

test("what counts as an import: static, type-only, re-export, dynamic, side effect, a worker's entry, a source read; not text in strings or comments", () => {
    const text = [
        'import { a } from "./a.ts"',
        'import type { B } from "../b.ts"',
        'export { c } from "./c.ts"',
        'const d = await import("./d.ts")',
        'import "./e.ts"',
        'const W = new URL("./worker.ts", import.meta.url)',
        'const root = new URL("../../", import.meta.url)',
        'const m = /x/.exec(readFileSync(join(REPO, "src/net/config.ts"), "utf8"))',
        'const generated = `import { f } from "../f.ts"`',
        '// import { g } from "./g.ts"',
        'console.log("see src/app/config.ts")',
    ].join("\n")
    assert.deepEqual(specifiersOf(text), [
        { spec: "./a.ts", kind: "import" },
        { spec: "../b.ts", kind: "import" },
        { spec: "./c.ts", kind: "import" },
        { spec: "./d.ts", kind: "import" },
        { spec: "./e.ts", kind: "import" },
        { spec: "./worker.ts", kind: "url" },
        { spec: "src/net/config.ts", kind: "reads" },
    ])
})
