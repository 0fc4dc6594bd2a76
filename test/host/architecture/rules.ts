// Who may import whom, as data: the rules of docs/ARCHITECTURE.md "Import rules" and the one list of
// known exceptions, each with the issue that removes it. imports.test.ts checks the real import graph
// against them; a rule broken outside this list fails `npm test`, and so does an exception that no
// longer happens (remove it here: the list only shrinks).
import type { Edge, ImportGraph } from "./import-graph.ts"

/**
 * Import-free modules both runtimes compile: DeviceScript for the firmware, Node for the server and the
 * tools (the dashboard page is served them compiled): the protocol envelope, the client core (the
 * keep-alive decision, the request table, the subscription cursor, the reconnect backoff), and the
 * firmware's tables that the tools check against.
 */
export const SHARED_MODULES = [
    "src/protocol.ts",
    "src/keepalive.ts",
    "src/requests.ts",
    "src/subscription-cursor.ts",
    "src/backoff.ts",
    // the firmware's own tables the tools check against: board wiring and quantities (build-boards), the outbox budget (the firmware bench)
    "src/foundation/config.ts",
    "src/foundation/outbox-budget.ts",
]

/** DeviceScript programs under devs/ that run the firmware in the simulator: firmware-side, like test/firmware/. */
export const FIRMWARE_PROGRAMS_IN_DEVS = "devs/bench/firmware/device/"

/** Modules that exist only at run time (written by the benchmark, git-ignored). */
export const GENERATED_PREFIXES = ["devs/bench/results/"]

export interface Violation {
    rule: string
    from: string
    to: string
}

export interface Rule {
    id: string
    says: string
    check(g: ImportGraph): Violation[]
}

const direct = (rule: string, edges: Edge[]): Violation[] => edges.map((e) => ({ rule, from: e.from, to: e.to }))

export const RULES: Rule[] = [
    {
        id: "shared-import-free",
        says: "src/protocol.ts and the client core (src/keepalive.ts, src/requests.ts, src/subscription-cursor.ts, src/backoff.ts) import nothing, not even a package",
        check: (g) => direct("shared-import-free", g.edges.filter((e) => SHARED_MODULES.includes(e.from))),
    },
    {
        id: "src-not-devs",
        says: "nothing in src/ imports devs/",
        check: (g) => direct("src-not-devs", g.edges.filter((e) => e.from.startsWith("src/") && e.to.startsWith("devs/"))),
    },
    {
        id: "devs-only-shared-src",
        says: "devs/ takes from src/ only the shared modules (DeviceScript programs in devs/bench/firmware/device/ run the firmware itself)",
        check: (g) =>
            direct(
                "devs-only-shared-src",
                g.edges.filter((e) => e.from.startsWith("devs/") && !e.from.startsWith(FIRMWARE_PROGRAMS_IN_DEVS) && e.to.startsWith("src/") && !SHARED_MODULES.includes(e.to))
            ),
    },
    {
        id: "listeners-not-store",
        says: "the server's listeners (devs/server/listeners/) never import the store (devs/server/storage/)",
        check: (g) => direct("listeners-not-store", g.edges.filter((e) => e.from.startsWith("devs/server/listeners/") && e.to.startsWith("devs/server/storage/"))),
    },
    {
        id: "core-not-tools",
        // every module of the core is checked, and src/ imports nothing in devs/: so no path leads out either
        says: "the server core (devs/server/) imports nothing else in devs/: not the dashboard, browser tokens, client, bench, fault proxy, tools or the commands that mount them",
        check: (g) => direct("core-not-tools", g.edges.filter((e) => e.from.startsWith("devs/server/") && e.to.startsWith("devs/") && !e.to.startsWith("devs/server/"))),
    },
    {
        id: "sensors-actuators-below-app",
        says: "src/sensors/ and src/actuators/ never import src/app/ (ports and config parsers are foundations below them; app/ wires them up)",
        check: (g) => direct("sensors-actuators-below-app", g.edges.filter((e) => /^src\/(sensors|actuators)\//.test(e.from) && e.to.startsWith("src/app/"))),
    },
    {
        id: "net-below-app",
        says: "src/net/ (the link, the claim) never imports src/app/: app/ wires the link to the sensors and actuators, and setting conventions both use are foundations",
        check: (g) => direct("net-below-app", g.edges.filter((e) => e.from.startsWith("src/net/") && e.to.startsWith("src/app/"))),
    },
]

export interface KnownException {
    rule: string
    from: string
    to: string
    /** the issue (and item) whose work removes it */
    removedBy: string
}

/** The one list of rules broken today. Each entry must still happen (else remove it). */
export const KNOWN_EXCEPTIONS: KnownException[] = [
    // none today: the last ones went with issue 16 item 3 (firmware foundations in src/foundation/, the
    // board tables and the outbox budget shared import-free with the tools)
]

const key = (v: { rule: string; from: string; to: string }) => `${v.rule}: ${v.from} -> ${v.to}`

/** Every violation of every rule, split into the known exceptions and the rest; and the exceptions that no longer happen. */
export function judge(g: ImportGraph, rules = RULES, exceptions = KNOWN_EXCEPTIONS): { broken: Violation[]; excused: Violation[]; stale: KnownException[] } {
    const all = rules.flatMap((r) => r.check(g))
    const excused = new Set(exceptions.map(key))
    const seen = new Set(all.map(key))
    return {
        broken: all.filter((v) => !excused.has(key(v))),
        excused: all.filter((v) => excused.has(key(v))),
        stale: exceptions.filter((x) => !seen.has(key(x))),
    }
}

export function describe(v: Violation): string {
    return `${v.rule}: ${v.from} -> ${v.to}`
}
