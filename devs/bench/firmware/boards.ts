// Bytecode size per board, from the sensors engineer's `npm run build` (devs/tools/build-boards.ts),
// which builds every board in boards/ plus the simulator build and prints a table.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { REPO } from "./sim.ts"

const BUILD_SCRIPT = join(REPO, "devs/tools/build-boards.ts")

export interface BoardSize {
    board: string
    arch: string
    bytes?: number
    ok: boolean
}

export function boardSizes(): { boards: BoardSize[]; skipped?: string } {
    if (!existsSync(BUILD_SCRIPT)) return { boards: [], skipped: "not yet: devs/tools/build-boards.ts (npm run build) does not exist" }
    const r = spawnSync(process.execPath, ["--import", "tsx", BUILD_SCRIPT], { cwd: REPO, encoding: "utf8", timeout: 300_000 })
    const boards: BoardSize[] = []
    // rows: "<board>  <arch>  <N> B  ok|FAILED  <t> s"
    for (const line of (r.stdout ?? "").split("\n")) {
        const m = /^(\S+)\s+(\S+)\s+(?:(\d+) B|-)\s+(ok|FAILED)\s/.exec(line)
        if (m) boards.push({ board: m[1], arch: m[2], bytes: m[3] ? Number(m[3]) : undefined, ok: m[4] === "ok" })
    }
    if (!boards.length) return { boards, skipped: `npm run build printed no board table (exit ${r.status}): ${(r.stderr ?? "").slice(0, 300)}` }
    return { boards }
}
