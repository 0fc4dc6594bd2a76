// `npm run build`: checks every board definition against the firmware's board table and builds the
// firmware for each board (offline: `devs build` needs no network), printing the bytecode sizes.
//
//   npm run build                       all boards in boards/, plus the simulator build (src/main.ts)
//   npm run build -- feedline_c3        only the boards named
//
// A board file and its row in src/app/config.ts must agree: the firmware reads pins from the table,
// while the flashed runtime takes I2C and status LED from the board file. Exit code 1 on any problem.
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { basename, join } from "node:path"
import { BoardConfig, boardById } from "../../src/app/config.ts"

const BOARDS_DIR = "boards"
const ENTRY_DIR = "src/boards"
/** The ESP32-S2 has no TLS in DeviceScript (platform notes §1); the C3 and S3 do. */
export const SUPPORTED_ARCHS = ["esp32c3", "esp32s3"]

export interface BoardCheck {
    id: string
    problems: string[]
}

/** The GPIO a board file gives a pin name ("RELAY": 10 or "RELAY": "P10"), or undefined. */
function pinNumber(pins: Record<string, unknown>, name: string): number | undefined {
    const v = pins[name]
    if (typeof v === "number") return v
    if (typeof v === "string" && pins[v] !== undefined) return pinNumber(pins, v)
    if (typeof v === "string" && /^P\d+$/.test(v)) return Number(v.slice(1))
    return undefined
}

/** Problems (each a sentence a person can act on) between a board file and the firmware's table. */
export function checkBoard(id: string, json: any, table: BoardConfig | undefined): string[] {
    const problems: string[] = []
    const file = `${BOARDS_DIR}/${id}.board.json`
    if (!SUPPORTED_ARCHS.includes(json.archId))
        problems.push(`E_BOARD_ARCH ${file}: archId "${json.archId}" is not supported; use ${SUPPORTED_ARCHS.join(" or ")} (the ESP32-S2 runtime has no TLS)`)
    if (!table) {
        problems.push(`E_BOARD_TABLE ${file}: no board "${id}" in src/app/config.ts BOARDS; add its wiring there`)
        return problems
    }
    const pins: Record<string, unknown> = json.pins ?? {}
    const expect = (name: string, gpio: number | undefined) => {
        const got = pinNumber(pins, name)
        if (gpio === undefined && got !== undefined)
            problems.push(`E_BOARD_PIN ${file}: pin ${name} (GPIO${got}) is not wired in src/app/config.ts ${id}`)
        if (gpio !== undefined && got !== gpio)
            problems.push(`E_BOARD_PIN ${file}: pin ${name} is ${got === undefined ? "missing" : "GPIO" + got}, src/app/config.ts ${id} uses GPIO${gpio}`)
    }
    expect("LIGHT", table.lightPin)
    expect("SOIL", table.soilPin)
    for (const name of ["LED", "RELAY"]) {
        const sw = table.switches.find((s) => s.id === name.toLowerCase())
        expect(name, sw?.pin)
    }
    if (table.climate && !(json.i2c && json.i2c.pinSDA !== undefined && json.i2c.pinSCL !== undefined))
        problems.push(`E_BOARD_I2C ${file}: the ${table.climate.chip} needs "i2c": {"pinSDA", "pinSCL"}`)
    if (!existsSync(join(ENTRY_DIR, `${id}.ts`)))
        problems.push(`E_BOARD_ENTRY ${ENTRY_DIR}/${id}.ts is missing: it holds import "@dsboard/${id}" and import "../main"`)
    return problems
}

export interface BuildResult {
    entry: string
    ok: boolean
    /** bytecode size as `devs build` reports it, in bytes (10-byte resolution) */
    bytes?: number
    output: string
}

/** `devs build <entry>`; offline, ~2–5 s. */
export function devsBuild(entry: string): BuildResult {
    const r = spawnSync(join("node_modules", ".bin", "devs"), ["build", entry, "--stats"], { encoding: "utf8" })
    const output = `${r.stdout ?? ""}${r.stderr ?? ""}`.replace(/\x1b\[[0-9;]*m/g, "")
    const m = /bytecode: ([\d.]+)kb/.exec(output)
    const ok = r.status === 0 && !!m
    return { entry, ok, bytes: m ? Math.round(Number(m[1]) * 1024) : undefined, output }
}

function main(argv: string[]): number {
    const only = argv.filter((a) => !a.startsWith("-"))
    const ids = readdirSync(BOARDS_DIR)
        .filter((f) => f.endsWith(".board.json"))
        .map((f) => basename(f, ".board.json"))
        .filter((id) => !only.length || only.includes(id))
        .sort()
    for (const id of only) if (!ids.includes(id)) console.error(`E_BOARD_UNKNOWN ${id}: no ${BOARDS_DIR}/${id}.board.json`)
    let failed = only.some((id) => !ids.includes(id))

    const rows: string[][] = []
    const targets: { id: string; arch: string; entry: string }[] = []
    if (!only.length) targets.push({ id: "sim", arch: "wasm", entry: "src/main.ts" })
    for (const id of ids) {
        const json = JSON.parse(readFileSync(join(BOARDS_DIR, `${id}.board.json`), "utf8"))
        const problems = checkBoard(id, json, boardById(id))
        for (const p of problems) console.error(p)
        if (problems.length) failed = true
        else targets.push({ id, arch: json.archId, entry: `${ENTRY_DIR}/${id}.ts` })
    }
    for (const t of targets) {
        const started = Date.now()
        const r = devsBuild(t.entry)
        if (!r.ok) {
            failed = true
            console.error(`E_BUILD ${t.id}: devs build ${t.entry} failed:\n${r.output}`)
        }
        rows.push([t.id, t.arch, r.bytes !== undefined ? `${r.bytes} B` : "-", r.ok ? "ok" : "FAILED", `${((Date.now() - started) / 1000).toFixed(1)} s`])
    }
    const header = ["board", "arch", "bytecode", "build", "time"]
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ")
    console.log(line(header))
    for (const r of rows) console.log(line(r))
    return failed ? 1 : 0
}

if (process.argv[1] && process.argv[1].endsWith("build-boards.ts")) process.exit(main(process.argv.slice(2)))
