// Pure checks of the zero-loss end-to-end suite (test/e2e/zero-loss.test.ts): what the device
// printed and what the server stored go in, findings come out. No I/O, so each rule is easy to read.
import type { VmLine } from "./firmware-harness.ts"

export type LinkState = "offline" | "connecting" | "greeting" | "up" | "degraded" | "down"

/**
 * The link's state machine (docs/FIRMWARE.md "Link states", src/net/link.ts): the transitions it may make.
 * down -> down: a connection attempt that fails at once (E_OPEN) backs off again; down -> offline: the
 * network went away while waiting.
 */
export const LEGAL_TRANSITIONS: Record<LinkState, LinkState[]> = {
    offline: ["connecting", "down"],
    connecting: ["greeting", "down"],
    greeting: ["up", "down"],
    up: ["degraded", "down"],
    degraded: ["up", "down"],
    down: ["connecting", "offline", "down"],
}

export interface Transition {
    from: LinkState
    to: LinkState
    reason: string
    atMs: number
    /** index of the VM line */
    index: number
}

const TRANSITION = /^link: (\w+) -> (\w+) \((.*)\)$/

/** Every `link: a -> b (reason)` line the device printed, in order. */
export function transitions(lines: VmLine[]): Transition[] {
    const out: Transition[] = []
    lines.forEach((l, index) => {
        const m = TRANSITION.exec(l.text)
        if (m) out.push({ from: m[1] as LinkState, to: m[2] as LinkState, reason: m[3], atMs: l.atMs, index })
    })
    return out
}

/** Problems with the reported states: an unknown state, an illegal step, or a step that does not start where the last one ended. */
export function stateMachineErrors(ts: Transition[]): string[] {
    const errors: string[] = []
    let state: LinkState = "offline"
    for (const t of ts) {
        const line = `link: ${t.from} -> ${t.to} (${t.reason})`
        if (!(t.from in LEGAL_TRANSITIONS) || !(t.to in LEGAL_TRANSITIONS)) errors.push(`unknown state in "${line}"`)
        else if (!LEGAL_TRANSITIONS[t.from].includes(t.to)) errors.push(`illegal transition "${line}"`)
        if (t.from !== state) errors.push(`"${line}" but the link was ${state}`)
        state = t.to
    }
    return errors
}

export interface Producer {
    /** samples produced so far (they are 1..produced) */
    produced: number
    /** samples waiting in the outbox, of any stream (so produced - outbox were all acknowledged or dropped) */
    outbox: number
    /** samples the full outbox dropped, since boot */
    drops: number
    atMs: number
}

const PRODUCED = /^produced (\d+) outbox (\d+) drops (\d+)$/

/** The device's last `produced n outbox d drops k` line that reached the host before `beforeMs`. */
export function lastProduced(lines: VmLine[], beforeMs = Infinity): Producer | undefined {
    for (let i = lines.length - 1; i >= 0; i--) {
        const m = PRODUCED.exec(lines[i].text)
        if (m && lines[i].atMs < beforeMs) return { produced: Number(m[1]), outbox: Number(m[2]), drops: Number(m[3]), atMs: lines[i].atMs }
    }
    return undefined
}

export interface SampleAccount {
    produced: number
    /** datapoints stored (rows) */
    stored: number
    /** distinct sample numbers stored */
    distinct: number
    /** sample numbers produced and not stored */
    missing: number[]
    /** missing samples beyond those the device counted as dropped */
    lost: number
    /** sample numbers stored more than once */
    duplicated: number[]
    /** stored values that are no sample the device produced */
    foreign: string[]
    /** two rows with one `at` (cannot happen if the store keys on it) */
    sharedAts: string[]
}

/** Compares the samples 1..produced with the stored datapoints of their stream. `dropped` samples are allowed to be missing. */
export function accountSamples(produced: number, dropped: number, rows: { at: string; value: string }[]): SampleAccount {
    const count = new Map<number, number>()
    const foreign: string[] = []
    const ats = new Map<string, number>()
    for (const r of rows) {
        ats.set(r.at, (ats.get(r.at) ?? 0) + 1)
        const n = Number(r.value)
        if (!Number.isInteger(n) || n < 1 || n > produced || String(n) !== r.value) foreign.push(r.value)
        else count.set(n, (count.get(n) ?? 0) + 1)
    }
    const missing: number[] = []
    for (let n = 1; n <= produced; n++) if (!count.has(n)) missing.push(n)
    return {
        produced,
        stored: rows.length,
        distinct: count.size,
        missing,
        // the device counts its drops but does not say which ones; missing beyond that count are lost
        lost: Math.max(0, missing.length - dropped),
        duplicated: [...count].filter(([, c]) => c > 1).map(([n]) => n),
        foreign,
        sharedAts: [...ats].filter(([, c]) => c > 1).map(([at]) => at),
    }
}

/** p-th percentile (0..100) by nearest rank; NaN for no values. */
export function percentile(values: number[], p: number): number {
    if (values.length === 0) return NaN
    const sorted = [...values].sort((a, b) => a - b)
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}
