// The fault vocabulary of the fault-injection proxy: the command types, the table of active faults,
// and the pure functions that parse a text command and apply a command to the table. The same
// commands arrive from the programmatic API, the CLI's stdin, the HTTP control port and a schedule.

/** "up" is client → target (device → server), "down" is target → client (server → device). */
export type Dir = "up" | "down"
export type DirSpec = Dir | "both"
/** How "the middle of a frame" is found: a text line, a TLS record, or a raw byte count from arming. */
export type CutFrame = "line" | "tls" | "raw"
export type RefuseMode = "refused" | "reset"
export type FaultName = "refuse" | "blackhole" | "latency" | "throttle" | "split" | "cut"

export interface CutFault {
    /** bytes of the frame the receiver gets before the connection is cut (>= 1, so the cut is mid-frame) */
    afterBytes: number
    frame: CutFrame
    /** false: one connection is cut, then the fault disarms itself; true: every connection, every time */
    repeat: boolean
}

export interface DirFaults {
    /** hold every byte (no forwarding, no closing) until lifted */
    blackhole: boolean
    latencyMs: number
    /** extra delay, uniform in [0, jitterMs]; order is kept, as TCP keeps it */
    jitterMs: number
    /** 0 = unlimited */
    bytesPerSec: number
    /** 0 = off; otherwise every write is forwarded in pieces of at most this many bytes */
    splitBytes: number
    /** pause between two pieces, so the receiver sees them as separate reads */
    splitGapMs: number
    cut?: CutFault
}

export interface FaultTable {
    /** false, or how new connections are refused while the fault lasts */
    refuse: false | RefuseMode
    up: DirFaults
    down: DirFaults
}

export type FaultCommand =
    | { fault: "refuse"; mode?: RefuseMode; forMs?: number }
    | { fault: "reset" }
    | { fault: "blackhole"; dir?: DirSpec; scope?: "all" | "existing"; forMs?: number }
    | { fault: "latency"; ms: number; jitterMs?: number; dir?: DirSpec; forMs?: number }
    | { fault: "throttle"; bytesPerSec: number; dir?: DirSpec; forMs?: number }
    | { fault: "split"; bytes: number; gapMs?: number; dir?: DirSpec; forMs?: number }
    | { fault: "cut"; afterBytes: number; frame?: CutFrame; dir?: DirSpec; repeat?: boolean }
    /** lifts one kind of fault (or all of them) */
    | { fault: "off"; what: FaultName | "all"; dir?: DirSpec }

/** Commands that change nothing but are answered by the control interfaces. */
export type ControlCommand = FaultCommand | { fault: "status" }

/** A command or schedule the proxy cannot understand; `code` is stable, the message says what to fix. */
export class FaultProxyError extends Error {
    constructor(
        readonly code: "E_BAD_COMMAND" | "E_BAD_SCHEDULE" | "E_BAD_OPTIONS",
        message: string
    ) {
        super(message)
        this.name = "FaultProxyError"
    }
}

/** Upper bound for every duration: a day. Longer is almost certainly a unit mistake (µs for ms). */
export const MAX_FAULT_MS = 86_400_000
/** Default pause between split pieces: long enough for the receiver to read each piece on its own. */
export const DEFAULT_SPLIT_GAP_MS = 1

export function noDirFaults(): DirFaults {
    return { blackhole: false, latencyMs: 0, jitterMs: 0, bytesPerSec: 0, splitBytes: 0, splitGapMs: DEFAULT_SPLIT_GAP_MS }
}

export function noFaults(): FaultTable {
    return { refuse: false, up: noDirFaults(), down: noDirFaults() }
}

export function dirsOf(spec: DirSpec | undefined): Dir[] {
    return spec === "up" ? ["up"] : spec === "down" ? ["down"] : ["up", "down"]
}

/**
 * Applies a command to the table and returns the new table (the input is not changed). `reset` and
 * `blackhole scope=existing` act on open connections only, so they leave the table as it is.
 */
export function applyToTable(table: FaultTable, cmd: FaultCommand): FaultTable {
    const t: FaultTable = { refuse: table.refuse, up: { ...table.up }, down: { ...table.down } }
    switch (cmd.fault) {
        case "refuse":
            t.refuse = cmd.mode ?? "refused"
            break
        case "reset":
            break
        case "blackhole":
            if (cmd.scope !== "existing") for (const d of dirsOf(cmd.dir)) t[d].blackhole = true
            break
        case "latency":
            for (const d of dirsOf(cmd.dir)) {
                t[d].latencyMs = cmd.ms
                t[d].jitterMs = cmd.jitterMs ?? 0
            }
            break
        case "throttle":
            for (const d of dirsOf(cmd.dir)) t[d].bytesPerSec = cmd.bytesPerSec
            break
        case "split":
            for (const d of dirsOf(cmd.dir)) {
                t[d].splitBytes = cmd.bytes
                t[d].splitGapMs = cmd.gapMs ?? DEFAULT_SPLIT_GAP_MS
            }
            break
        case "cut":
            for (const d of dirsOf(cmd.dir)) t[d].cut = { afterBytes: cmd.afterBytes, frame: cmd.frame ?? "line", repeat: cmd.repeat ?? false }
            break
        case "off":
            if (cmd.what === "refuse" || cmd.what === "all") t.refuse = false
            for (const d of dirsOf(cmd.dir)) {
                const f = t[d]
                if (cmd.what === "all") t[d] = noDirFaults()
                else if (cmd.what === "blackhole") f.blackhole = false
                else if (cmd.what === "latency") (f.latencyMs = 0), (f.jitterMs = 0)
                else if (cmd.what === "throttle") f.bytesPerSec = 0
                else if (cmd.what === "split") (f.splitBytes = 0), (f.splitGapMs = DEFAULT_SPLIT_GAP_MS)
                else if (cmd.what === "cut") delete f.cut
            }
            break
    }
    return t
}

/** The command that lifts a timed fault when its `forMs` runs out, or undefined for one-shot commands. */
export function expiryOf(cmd: FaultCommand): { afterMs: number; command: FaultCommand } | undefined {
    if (!("forMs" in cmd) || cmd.forMs === undefined) return undefined
    const dir = "dir" in cmd ? cmd.dir : undefined
    return { afterMs: cmd.forMs, command: { fault: "off", what: cmd.fault as FaultName, dir } }
}

// ---- text commands: `blackhole dir=up for=5000`, `latency 200 jitter=50`, `off all` ----

const USAGE =
    "commands: refuse [for=MS] [mode=refused|reset] | accept | reset | blackhole [dir=up|down|both] [for=MS] [scope=all|existing] | " +
    "latency MS [jitter=MS] [dir=…] [for=MS] | throttle BYTES_PER_S [dir=…] [for=MS] | split BYTES [gap=MS] [dir=…] [for=MS] | " +
    "cut BYTES [frame=line|tls|raw] [dir=…] [repeat] | off refuse|blackhole|latency|throttle|split|cut|all [dir=…] | clear | status"

function bad(message: string): never {
    throw new FaultProxyError("E_BAD_COMMAND", message + ". " + USAGE)
}

/** An integer in [min, max], from text or a JSON number, with a message naming the field. */
export function intIn(v: unknown, name: string, min: number, max: number, code: FaultProxyError["code"] = "E_BAD_COMMAND"): number {
    const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN
    if (!Number.isInteger(n) || n < min || n > max) {
        throw new FaultProxyError(code, `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`)
    }
    return n
}

function oneOf<T extends string>(v: unknown, name: string, allowed: readonly T[]): T {
    if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T
    return bad(`${name} must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`)
}

const DIRS = ["up", "down", "both"] as const
const FAULT_NAMES = ["refuse", "blackhole", "latency", "throttle", "split", "cut", "all"] as const
const MAX_BYTES = 1 << 30

/**
 * Validates a command given as an object (from JSON or a program) and returns it in canonical form.
 * Throws FaultProxyError E_BAD_COMMAND with a message that names the wrong field.
 */
export function checkCommand(raw: unknown): ControlCommand {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) bad("a command must be an object such as {\"fault\":\"blackhole\",\"forMs\":5000}")
    const o = raw as Record<string, unknown>
    const opt = <T>(key: string, read: (v: unknown) => T): T | undefined => (o[key] === undefined ? undefined : read(o[key]))
    const ms = (key: string) => opt(key, (v) => intIn(v, key, 0, MAX_FAULT_MS))
    const dir = () => opt("dir", (v) => oneOf(v, "dir", DIRS))
    const drop = <T extends object>(c: T): T => {
        for (const k of Object.keys(c)) if ((c as Record<string, unknown>)[k] === undefined) delete (c as Record<string, unknown>)[k]
        return c
    }
    switch (o.fault) {
        case "refuse":
            return drop({ fault: "refuse", mode: opt("mode", (v) => oneOf(v, "mode", ["refused", "reset"] as const)), forMs: ms("forMs") })
        case "reset":
            return { fault: "reset" }
        case "status":
            return { fault: "status" }
        case "blackhole":
            return drop({ fault: "blackhole", dir: dir(), scope: opt("scope", (v) => oneOf(v, "scope", ["all", "existing"] as const)), forMs: ms("forMs") })
        case "latency":
            return drop({ fault: "latency", ms: intIn(o.ms, "ms", 0, MAX_FAULT_MS), jitterMs: ms("jitterMs"), dir: dir(), forMs: ms("forMs") })
        case "throttle":
            return drop({ fault: "throttle", bytesPerSec: intIn(o.bytesPerSec, "bytesPerSec", 1, MAX_BYTES), dir: dir(), forMs: ms("forMs") })
        case "split":
            return drop({ fault: "split", bytes: intIn(o.bytes, "bytes", 1, MAX_BYTES), gapMs: ms("gapMs"), dir: dir(), forMs: ms("forMs") })
        case "cut":
            return drop({
                fault: "cut",
                afterBytes: intIn(o.afterBytes, "afterBytes", 1, MAX_BYTES),
                frame: opt("frame", (v) => oneOf(v, "frame", ["line", "tls", "raw"] as const)),
                dir: dir(),
                repeat: opt("repeat", (v) => (typeof v === "boolean" ? v : bad(`repeat must be true or false, got ${JSON.stringify(v)}`))),
            })
        case "off":
            return drop({ fault: "off", what: oneOf(o.what, "what", FAULT_NAMES), dir: dir() })
        default:
            return bad(`unknown fault ${JSON.stringify(o.fault)}`)
    }
}

const KNOWN_COMMANDS = ["refuse", "reset", "status", "blackhole", "latency", "throttle", "split", "cut", "off"]
/** Text option names → command fields. */
const OPTION_FIELDS: Record<string, string> = { for: "forMs", jitter: "jitterMs", gap: "gapMs", dir: "dir", mode: "mode", scope: "scope", frame: "frame" }
/** The positional argument of each command, if it has one. */
const POSITIONAL: Record<string, string> = { latency: "ms", throttle: "bytesPerSec", split: "bytes", cut: "afterBytes", off: "what" }

/** Parses one text command, e.g. `blackhole dir=up for=5000`. Throws FaultProxyError E_BAD_COMMAND. */
export function parseCommand(line: string): ControlCommand {
    const words = line.trim().split(/\s+/).filter((w) => w !== "")
    if (words.length === 0) bad("empty command")
    let name = words[0].toLowerCase()
    const o: Record<string, unknown> = {}
    if (name === "accept") (name = "off"), (o.what = "refuse")
    else if (name === "clear") (name = "off"), (o.what = "all")
    o.fault = name
    if (!KNOWN_COMMANDS.includes(name)) bad(`unknown fault ${JSON.stringify(words[0])}`)
    for (const w of words.slice(1)) {
        const eq = w.indexOf("=")
        if (eq < 0) {
            if (w === "repeat" && name === "cut") o.repeat = true
            else if (POSITIONAL[name] && o[POSITIONAL[name]] === undefined) o[POSITIONAL[name]] = w
            else bad(`unexpected word ${JSON.stringify(w)} in ${JSON.stringify(line.trim())}`)
            continue
        }
        const field = OPTION_FIELDS[w.slice(0, eq)]
        if (!field) bad(`unknown option ${JSON.stringify(w.slice(0, eq))}`)
        o[field] = w.slice(eq + 1)
    }
    if (POSITIONAL[name] && o[POSITIONAL[name]] === undefined) bad(`${name} needs a value`)
    return checkCommand(o)
}

/** One short line describing a command, for logs: the inverse of parseCommand. */
export function describeCommand(cmd: ControlCommand): string {
    const parts: string[] = []
    const o = cmd as Record<string, unknown>
    const name = cmd.fault
    const pos = POSITIONAL[name]
    parts.push(name)
    if (pos && o[pos] !== undefined) parts.push(String(o[pos]))
    for (const [opt, field] of Object.entries(OPTION_FIELDS)) if (o[field] !== undefined) parts.push(`${opt}=${o[field]}`)
    if (o.repeat === true) parts.push("repeat")
    return parts.join(" ")
}
