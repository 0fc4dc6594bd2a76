// CPU time and resident memory of any process by pid, read from /proc, so a C broker (Mosquitto) and
// Node servers are measured the same way, from outside.
import { readFileSync } from "node:fs"

/** Linux USER_HZ: /proc/<pid>/stat counts CPU time in ticks of 1/100 s on every mainstream kernel. */
const TICKS_PER_S = 100
const PAGE_BYTES = 4096

export interface ProcSample {
    /** user + system CPU time since the process started, ms (10 ms resolution) */
    cpuMs: number
    /** resident set size, bytes */
    rssBytes: number
    /** monotonic time of the sample, ms */
    atMs: number
}

export function sampleProc(pid: number): ProcSample {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // the command name (field 2) may contain spaces; fields after it are fixed
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    const rssPages = Number(fields[21])
    return { cpuMs: ((utime + stime) * 1000) / TICKS_PER_S, rssBytes: rssPages * PAGE_BYTES, atMs: performance.now() }
}

/** CPU ms used between two samples, and the share of one core it represents. */
export function cpuBetween(a: ProcSample, b: ProcSample): { cpuMs: number; coreShare: number } {
    const cpuMs = b.cpuMs - a.cpuMs
    return { cpuMs, coreShare: cpuMs / Math.max(1, b.atMs - a.atMs) }
}

export function isAlive(pid: number): boolean {
    try {
        process.kill(pid, 0)
        return true
    } catch {
        return false
    }
}

/** Aggregate CPU time of the whole machine, from /proc/stat (all cores; includes the kernel's softirq work). */
export interface MachineSample {
    busyTicks: number
    totalTicks: number
}

export function sampleMachine(): MachineSample {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal ...
    const idle = cpu[3] + (cpu[4] ?? 0)
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0)
    return { busyTicks: total - idle, totalTicks: total }
}

/** Share of the whole machine (all cores together) that was busy between two samples, 0..1. */
export function machineBusyBetween(a: MachineSample, b: MachineSample): number {
    const total = b.totalTicks - a.totalTicks
    return total > 0 ? (b.busyTicks - a.busyTicks) / total : NaN
}
