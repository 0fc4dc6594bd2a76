// Fault schedules: a list of commands at times since the proxy started, optionally repeating.
// Parsing and "what is due between two instants" are pure; the proxy only sets one timer at a time.
//
// File format (JSON):
//   {"repeatMs": 20000, "steps": [{"atMs": 2000, "do": "blackhole for=5000"},
//                                 {"atMs": 9000, "do": {"fault": "reset"}}]}
// or just the array of steps. `do` is a text command (as typed on the CLI) or a command object.

import { checkCommand, FaultProxyError, intIn, MAX_FAULT_MS, parseCommand, type FaultCommand } from "./faults.ts"

export interface ScheduleStep {
    atMs: number
    command: FaultCommand
}

export interface Schedule {
    /** sorted by atMs */
    steps: ScheduleStep[]
    /** 0 = run once; otherwise every step also runs at atMs + k × repeatMs */
    repeatMs: number
}

function badSchedule(message: string): never {
    throw new FaultProxyError("E_BAD_SCHEDULE", message)
}

/** Validates a parsed JSON schedule. Throws FaultProxyError E_BAD_SCHEDULE naming the step at fault. */
export function parseSchedule(json: unknown): Schedule {
    const o = Array.isArray(json) ? { steps: json } : (json as Record<string, unknown>)
    if (o === null || typeof o !== "object" || !Array.isArray(o.steps)) {
        badSchedule('a schedule is {"repeatMs": MS, "steps": [{"atMs": MS, "do": "COMMAND"}, …]} or just the list of steps')
    }
    const repeatMs = o.repeatMs === undefined ? 0 : intIn(o.repeatMs, "repeatMs", 1, MAX_FAULT_MS, "E_BAD_SCHEDULE")
    const steps = (o.steps as unknown[]).map((raw, i): ScheduleStep => {
        const s = raw as Record<string, unknown>
        if (s === null || typeof s !== "object") badSchedule(`step ${i} must be an object {"atMs": MS, "do": "COMMAND"}`)
        const atMs = intIn(s.atMs, `step ${i} atMs`, 0, MAX_FAULT_MS, "E_BAD_SCHEDULE")
        if (repeatMs > 0 && atMs >= repeatMs) badSchedule(`step ${i} atMs ${atMs} must be below repeatMs ${repeatMs}`)
        let command
        try {
            command = typeof s.do === "string" ? parseCommand(s.do) : checkCommand(s.do)
        } catch (e) {
            badSchedule(`step ${i}: ${(e as Error).message}`)
        }
        if (command.fault === "status") badSchedule(`step ${i}: status is not a fault`)
        return { atMs, command }
    })
    // stable sort: steps at the same instant run in file order
    steps.sort((a, b) => a.atMs - b.atMs)
    return { steps, repeatMs }
}

/** The steps due in the interval (fromMs, toMs] since the start, in order (repeats expanded). */
export function dueSteps(s: Schedule, fromMs: number, toMs: number): ScheduleStep[] {
    const out: ScheduleStep[] = []
    if (toMs <= fromMs || s.steps.length === 0) return out
    const firstRound = s.repeatMs > 0 ? Math.max(0, Math.floor(fromMs / s.repeatMs)) : 0
    const lastRound = s.repeatMs > 0 ? Math.floor(toMs / s.repeatMs) : 0
    for (let r = firstRound; r <= lastRound; ++r) {
        for (const step of s.steps) {
            const at = step.atMs + r * s.repeatMs
            if (at > fromMs && at <= toMs) out.push({ atMs: at, command: step.command })
        }
    }
    return out
}

/** The first instant after `afterMs` at which a step is due, or undefined when the schedule is over. */
export function nextDueMs(s: Schedule, afterMs: number): number | undefined {
    let best: number | undefined
    for (const step of s.steps) {
        let at = step.atMs
        if (s.repeatMs > 0 && at <= afterMs) at += (Math.floor((afterMs - at) / s.repeatMs) + 1) * s.repeatMs
        if (at > afterMs && (best === undefined || at < best)) best = at
    }
    return best
}
