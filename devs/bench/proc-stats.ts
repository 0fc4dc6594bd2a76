// CPU time and resident memory of any process by pid, read from /proc, so a C broker (Mosquitto) and
// Node servers are measured the same way, from outside.
import { readdirSync, readFileSync } from "node:fs"

/** Linux USER_HZ: /proc/<pid>/stat counts CPU time in ticks of 1/100 s on every mainstream kernel. */
const TICKS_PER_S = 100
const PAGE_BYTES = 4096

export interface ProcSample {
    /** user + system CPU time since the process started, ms (10 ms resolution) */
    cpuMs: number
    /** resident set size, bytes */
    rssBytes: number
    /** of cpuMs, the process's main thread alone (a Node server's event loop; not its workers, GC helpers or libuv pool); one pid only */
    mainThreadCpuMs?: number
    /**
     * of cpuMs, its other live threads together (workers, GC helpers, libuv pool); one pid only. Summed from
     * each thread's own counters: cpuMs minus mainThreadCpuMs is not this, as the kernel splits a process's and
     * a thread's time into user and system apart, and over a short window the difference came out negative
     */
    otherThreadsCpuMs?: number
    /** monotonic time of the sample, ms */
    atMs: number
}

/**
 * CPU time and memory of a process, or of several processes with all their descendants (a server made
 * of several: feedline's --workers, PostgreSQL's backends, Redis).
 */
export function sampleProc(pid: number | number[]): ProcSample {
    const pids = typeof pid === "number" ? [pid] : withDescendants(pid)
    let cpuMs = 0
    let rssBytes = 0
    const mainThreadCpuMs = typeof pid === "number" ? cpuMsOf(readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8")) : undefined
    const otherThreadsCpuMs = typeof pid === "number" ? otherThreadsCpuMsOf(pid) : undefined
    for (const p of pids) {
        let stat: string
        try {
            stat = readFileSync(`/proc/${p}/stat`, "utf8")
        } catch (e) {
            if (typeof pid === "number") throw e
            continue // a descendant that ended between the listing and the read
        }
        cpuMs += cpuMsOf(stat)
        rssBytes += Number(statFields(stat)[21]) * PAGE_BYTES
    }
    return { cpuMs, rssBytes, mainThreadCpuMs, otherThreadsCpuMs, atMs: performance.now() }
}

/** user + system CPU ms of every live thread of `pid` but its main one */
function otherThreadsCpuMsOf(pid: number): number {
    let ms = 0
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
        if (tid === String(pid)) continue
        try {
            ms += cpuMsOf(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"))
        } catch {
            // a thread that ended between the listing and the read
        }
    }
    return ms
}

/** The fields after the command name of a /proc stat line (the name, field 2, may contain spaces; fields after it are fixed). */
function statFields(stat: string): string[] {
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
}

/** user + system CPU ms of a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line */
function cpuMsOf(stat: string): number {
    const fields = statFields(stat)
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S
}

/** `roots` and every process below them, from /proc's parent links. */
function withDescendants(roots: number[]): number[] {
    const children = new Map<number, number[]>()
    for (const name of readdirSync("/proc")) {
        if (!/^\d+$/.test(name)) continue
        let stat: string
        try {
            stat = readFileSync(`/proc/${name}/stat`, "utf8")
        } catch {
            continue
        }
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
        children.set(ppid, [...(children.get(ppid) ?? []), Number(name)])
    }
    const all = [...roots]
    for (let i = 0; i < all.length; i++) all.push(...(children.get(all[i]) ?? []))
    return all
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
