// `npm run build`: checks every board definition against the firmware's board table and builds the
// firmware for each board (offline: the compiler needs no network), printing the image size and where its
// function code ends in the 64 KiB window the verifier allows; below 40% free the build fails.
//
//   npm run build                       all boards in boards/, plus the simulator build (src/main.ts)
//   npm run build -- feedline_c3        only the boards named
//
// A board file and its wiring in src/foundation/config.ts must agree: the firmware reads pins from the table,
// while the flashed runtime takes I2C and status LED from the board file. Exit code 1 on any problem.
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { basename, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { BoardConfig, boardById } from "../../src/foundation/config.ts"

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
        problems.push(`E_BOARD_TABLE ${file}: no board "${id}" in src/foundation/config.ts allBoards(); add its wiring there`)
        return problems
    }
    const pins: Record<string, unknown> = json.pins ?? {}
    const expect = (name: string, gpio: number | undefined) => {
        const got = pinNumber(pins, name)
        if (gpio === undefined && got !== undefined)
            problems.push(`E_BOARD_PIN ${file}: pin ${name} (GPIO${got}) is not wired in src/foundation/config.ts ${id}`)
        if (gpio !== undefined && got !== gpio)
            problems.push(`E_BOARD_PIN ${file}: pin ${name} is ${got === undefined ? "missing" : "GPIO" + got}, src/foundation/config.ts ${id} uses GPIO${gpio}`)
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
        problems.push(`E_BOARD_ENTRY ${ENTRY_DIR}/${id}.ts is missing: it imports "@dsboard/${id}" and starts the device with the board's chip driver (as ${ENTRY_DIR}/feedline_c3.ts does)`)
    return problems
}

export interface BuildResult {
    entry: string
    ok: boolean
    /** image size as `devs disasm` reports it, in bytes */
    bytes?: number
    /**
     * where the function code ends in the image: 112 (header) + descriptors + code, from disasm's `fun:` line.
     * The runtime's bytecode verifier refuses code past byte 65,536 (error 1051: program counters are 16-bit)
     */
    codeEnd?: number
    output: string
}

/** The verifier's window for function code (platform notes, "what a real ESP32 does"). */
export const CODE_WINDOW_BYTES = 65536
/** Issue 13: every build keeps at least this share of the window free, for what comes next. */
export const MIN_FREE_SHARE = 0.4
const IMAGE_HEADER_BYTES = 112

/** `devs disasm <entry>`: compiles (offline, ~2-5 s) and prints the image layout; nothing is written. */
export function devsBuild(entry: string): BuildResult {
    const r = spawnSync(join("node_modules", ".bin", "devs"), ["disasm", entry], { encoding: "utf8", maxBuffer: 64 << 20 })
    const output = `${r.stdout ?? ""}${r.stderr ?? ""}`.replace(/\x1b\[[0-9;]*m/g, "")
    const img = /^\/\/ img size (\d+)/m.exec(output)
    const fun = /^\/\/ fun: (\d+)\+(\d+)/m.exec(output)
    const ok = r.status === 0 && !!img && !!fun
    return { entry, ok, bytes: img ? Number(img[1]) : undefined, codeEnd: fun ? IMAGE_HEADER_BYTES + Number(fun[1]) + Number(fun[2]) : undefined, output: ok ? "" : output.slice(0, 4000) }
}

/** "E_CODE_WINDOW …" when a build leaves less than MIN_FREE_SHARE of the code window free, else undefined. */
export function codeWindowProblem(id: string, codeEnd: number): string | undefined {
    const limit = Math.floor(CODE_WINDOW_BYTES * (1 - MIN_FREE_SHARE))
    if (codeEnd <= limit) return undefined
    return `E_CODE_WINDOW ${id}: code ends at byte ${codeEnd} of the ${CODE_WINDOW_BYTES}-byte window (${freeShare(codeEnd)} free); keep it at or below ${limit} (${MIN_FREE_SHARE * 100}% free): shrink what \`devs build --stats\` shows is biggest`
}

/** The share of the window left free, rounded down: a build just past the limit never reads "40.0%". */
function freeShare(codeEnd: number): string {
    return `${(Math.floor(((CODE_WINDOW_BYTES - codeEnd) / CODE_WINDOW_BYTES) * 1000) / 10).toFixed(1)}%`
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
            console.error(`E_BUILD ${t.id}: devs disasm ${t.entry} failed:\n${r.output}`)
        }
        const window = r.codeEnd === undefined ? undefined : codeWindowProblem(t.id, r.codeEnd)
        if (window) {
            failed = true
            console.error(window)
        }
        rows.push([
            t.id,
            t.arch,
            r.bytes !== undefined ? `${r.bytes} B` : "-",
            r.ok ? "ok" : "FAILED",
            `${((Date.now() - started) / 1000).toFixed(1)} s`,
            r.codeEnd !== undefined ? `${r.codeEnd} B` : "-",
            r.codeEnd !== undefined ? freeShare(r.codeEnd) : "-",
        ])
    }
    const header = ["board", "arch", "image", "build", "time", "code end", "window free"]
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ")
    console.log(line(header))
    for (const r of rows) console.log(line(r))
    return failed ? 1 : 0
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exit(main(process.argv.slice(2)))
