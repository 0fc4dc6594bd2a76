// FEEDLINE_BENCH_CPU_PROFILE=1: the feedline server runs with `node --cpu-prof`; when it stops, the
// functions with the most self time are printed, so a slow figure comes with where the time went.
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

interface ProfileNode {
    id: number
    callFrame: { functionName: string; url: string; lineNumber: number }
}

/** The `top` functions by self time of the .cpuprofile files in `dir`, as "12.3% name file:line" lines. */
export function topSelfTime(dir: string, top = 15): string[] {
    if (!existsSync(dir)) return []
    const self = new Map<string, number>()
    let total = 0
    for (const f of readdirSync(dir).filter((x) => x.endsWith(".cpuprofile"))) {
        const prof = JSON.parse(readFileSync(join(dir, f), "utf8")) as { nodes: ProfileNode[]; samples: number[] }
        const byId = new Map(prof.nodes.map((n) => [n.id, n]))
        for (const id of prof.samples) {
            const cf = byId.get(id)!.callFrame
            if (cf.functionName === "(idle)") continue
            const where = cf.url.replace(/^.*\/node_modules\//, "").replace(/^file:\/\/.*?\/(devs|src)\//, "$1/")
            const key = `${cf.functionName || "(anonymous)"} ${where}${where ? ":" + (cf.lineNumber + 1) : ""}`
            self.set(key, (self.get(key) ?? 0) + 1)
            total++
        }
    }
    return [...self]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([k, n]) => `${((100 * n) / total).toFixed(1).padStart(5)}% ${k}`)
}
