// Reads a FEEDLINE_WRITER_TRACE file (devs/server/storage/writer-trace.ts) and says where the writes'
// time in the server went between the first write of a message being queued and its answer reaching
// the main thread: held on the main thread (to its turn's end; in traces before 2026-12-07 afternoon also for an answer, two messages on their way), queued at the writer
// thread (of it: behind compactions, checkpoints and loop turns, the rest behind other commits and the
// thread's wake-up), the message's own commit, and the answer's way back. Per request (a line counts for
// the requests of its message), so that its percentiles are those of the acknowledgements' server part.
//   node --import tsx devs/bench/writer-trace-summary.ts <trace file> [from ms] [to ms]
import { readFileSync } from "node:fs"
import { runEntry } from "./entry.ts"

/**
 * Messages on their way at which the main thread held its writes for an answer, in traces of the code before
 * 2026-12-07 afternoon (MESSAGES_ON_THE_WAY); it holds none since (writer-thread.ts sendSoon)
 */
const HELD_AT_MESSAGES = 2

export interface TraceLine {
    sentAt: number
    requests: number
    heldMs: number
    queuedMs: number
    behindCompactionMs: number
    behindCheckpointMs: number
    behindTurnMs: number
    commitMs: number
    afterCommitMs: number
    answerMs: number
    /** SQLite checkpointed (k) or restarted the WAL (r) inside this message's commit */
    inCommit: string
    /** messages on their way to the thread when its first write was queued (-1: not traced; traces of the code before 2026-12-07 afternoon only) */
    inflightAtQueue: number
}

export function parseTrace(text: string): TraceLine[] {
    const out: TraceLine[] = []
    for (const line of text.split("\n")) {
        const f = line.split(" ")
        if (f.length < 11) continue
        const n = f.slice(0, 10).map(Number)
        out.push({
            sentAt: n[0],
            requests: n[1],
            heldMs: n[2],
            queuedMs: n[3],
            behindCompactionMs: n[4],
            behindCheckpointMs: n[5],
            behindTurnMs: n[6],
            commitMs: n[7],
            afterCommitMs: n[8],
            answerMs: n[9],
            inCommit: f[10] === "-" ? "" : f[10],
            inflightAtQueue: f.length > 11 ? Number(f[11]) : -1,
        })
    }
    return out
}

/** The server's part of the oldest request of the message: held + queued + commit + after + answer. */
export const inServerMs = (l: TraceLine): number => l.heldMs + l.queuedMs + l.commitMs + l.afterCommitMs + l.answerMs
/** The part of it that was housekeeping: behind it before the commit, or SQLite's checkpoint inside it. */
export const housekeepingMs = (l: TraceLine): number => l.behindCompactionMs + l.behindCheckpointMs + l.behindTurnMs

/** The value at quantile q of values weighted by weights. */
export function weightedQuantile(values: number[], weights: number[], q: number): number {
    const idx = values.map((_, i) => i).sort((a, b) => values[a] - values[b])
    const total = weights.reduce((s, w) => s + w, 0)
    let acc = 0
    for (const i of idx) {
        acc += weights[i]
        if (acc >= q * total) return values[i]
    }
    return NaN
}

export interface TraceSummary {
    messages: number
    requests: number
    /** the in-server time's p50 / p99 / p99.9 over requests, ms */
    inServer: [number, number, number]
    /** the same with every housekeeping wait taken out (what it would be had nothing but commits stood in front) */
    withoutHousekeeping: [number, number, number]
    /** share of requests that waited behind housekeeping at all, and the waits' p99 / p99.9 / max, ms */
    behindShare: number
    behind: [number, number, number]
    /** per kind: share of requests behind it */
    behindShareByKind: { compaction: number; checkpoint: number; turn: number }
    /** share of requests held up 1 ms or more by housekeeping: behind it, or SQLite's checkpoint in their own commit */
    heldUp1ms: number
    /** the tail (requests at or above the in-server p99): mean ms of each part */
    tail: { held: number; heldForAnswer: number; queuedOtherCommits: number; compaction: number; checkpoint: number; turn: number; commit: number; after: number; answer: number }
    /** own commits that held SQLite's checkpoint (k) or a WAL restart (r): how many, and their commit ms p50 against the others' */
    checkpointCommits: number
    /** own commits that restarted the WAL (r without k) */
    restartCommits: number
    commitP50: { plain: number; withCheckpoint: number }
    /** commit ms p99 / p99.9 over requests */
    commit: [number, number]
}

export function summarizeTrace(lines: TraceLine[]): TraceSummary {
    const w = lines.map((l) => l.requests)
    const total = w.reduce((s, x) => s + x, 0)
    const pct = (vals: number[]): [number, number, number] => [weightedQuantile(vals, w, 0.5), weightedQuantile(vals, w, 0.99), weightedQuantile(vals, w, 0.999)]
    const inServer = lines.map(inServerMs)
    const hk = lines.map(housekeepingMs)
    const share = (pick: (l: TraceLine) => number) => lines.reduce((s, l) => s + (pick(l) > 0 ? l.requests : 0), 0) / Math.max(1, total)
    const p99 = weightedQuantile(inServer, w, 0.99)
    const tailLines = lines.filter((_, i) => inServer[i] >= p99)
    const tw = tailLines.reduce((s, l) => s + l.requests, 0) || 1
    const mean = (pick: (l: TraceLine) => number) => tailLines.reduce((s, l) => s + pick(l) * l.requests, 0) / tw
    const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[xs.length >> 1] : NaN)
    const withCk = lines.filter((l) => l.inCommit.includes("k"))
    const restarts = lines.filter((l) => l.inCommit === "r")
    const heldUp = lines.reduce((sum, l, i) => sum + (hk[i] >= 1 || (l.inCommit.includes("k") && l.commitMs >= 1) ? l.requests : 0), 0) / Math.max(1, total)
    return {
        messages: lines.length,
        requests: total,
        inServer: pct(inServer),
        withoutHousekeeping: pct(inServer.map((v, i) => v - hk[i])),
        behindShare: share(housekeepingMs),
        behind: [weightedQuantile(hk, w, 0.99), weightedQuantile(hk, w, 0.999), Math.max(0, ...hk)],
        behindShareByKind: { compaction: share((l) => l.behindCompactionMs), checkpoint: share((l) => l.behindCheckpointMs), turn: share((l) => l.behindTurnMs) },
        tail: {
            held: mean((l) => l.heldMs),
            heldForAnswer: mean((l) => (l.inflightAtQueue >= HELD_AT_MESSAGES ? l.heldMs : 0)),
            queuedOtherCommits: mean((l) => l.queuedMs - housekeepingMs(l)),
            compaction: mean((l) => l.behindCompactionMs),
            checkpoint: mean((l) => l.behindCheckpointMs),
            turn: mean((l) => l.behindTurnMs),
            commit: mean((l) => l.commitMs),
            after: mean((l) => l.afterCommitMs),
            answer: mean((l) => l.answerMs),
        },
        heldUp1ms: heldUp,
        checkpointCommits: withCk.length,
        restartCommits: restarts.length,
        commitP50: { plain: median(lines.filter((l) => !l.inCommit).map((l) => l.commitMs)), withCheckpoint: median(withCk.map((l) => l.commitMs)) },
        commit: [weightedQuantile(lines.map((l) => l.commitMs), w, 0.99), weightedQuantile(lines.map((l) => l.commitMs), w, 0.999)],
    }
}

/** One paragraph for a bench's output. */
export function formatTraceSummary(s: TraceSummary): string {
    const ms = (x: number) => x.toFixed(2)
    const pc = (x: number) => `${(x * 100).toFixed(2)} %`
    const t = s.tail
    return [
        `writer trace: ${s.messages} messages, ${s.requests} writes; in the server p50 ${ms(s.inServer[0])}, p99 ${ms(s.inServer[1])}, p99.9 ${ms(s.inServer[2])} ms;`,
        `without the housekeeping waits p99 ${ms(s.withoutHousekeeping[1])}, p99.9 ${ms(s.withoutHousekeeping[2])} ms;`,
        `behind housekeeping ${pc(s.behindShare)} of writes (compaction ${pc(s.behindShareByKind.compaction)}, checkpoint ${pc(s.behindShareByKind.checkpoint)}, loop turn ${pc(s.behindShareByKind.turn)}), held up ≥ 1 ms by it ${pc(s.heldUp1ms)}, the wait p99 ${ms(s.behind[0])}, p99.9 ${ms(s.behind[1])}, max ${ms(s.behind[2])} ms;`,
        `the tail (≥ p99), mean ms: held on the main thread ${ms(t.held)} (of it for an answer, two messages on their way: ${ms(t.heldForAnswer)}), behind commits ${ms(t.queuedOtherCommits)}, compaction ${ms(t.compaction)}, checkpoint ${ms(t.checkpoint)}, turn ${ms(t.turn)}, own commit ${ms(t.commit)}, after ${ms(t.after)}, answer ${ms(t.answer)};`,
        `commit p99 ${ms(s.commit[0])}, p99.9 ${ms(s.commit[1])} ms; ${s.checkpointCommits} commits held a checkpoint (p50 ${ms(s.commitP50.withCheckpoint)} ms against ${ms(s.commitP50.plain)}), ${s.restartCommits} restarted the WAL`,
    ].join(" ")
}

/** Per kind of housekeeping in [from, to]: how many spans, their ms p50 and max (from `<trace>.housekeeping`). */
export function housekeepingSpans(path: string, from = -Infinity, to = Infinity): string {
    let text = ""
    try {
        text = readFileSync(`${path}.housekeeping`, "utf8")
    } catch {
        return ""
    }
    const by = new Map<string, number[]>()
    for (const line of text.split("\n")) {
        const [kind, at, ms] = line.split(" ")
        if (!ms || Number(at) < from || Number(at) > to) continue
        let list = by.get(kind)
        if (!list) by.set(kind, (list = []))
        list.push(Number(ms))
    }
    return [...by]
        .map(([kind, ms]) => {
            ms.sort((a, b) => a - b)
            return `${kind} ×${ms.length} p50 ${ms[ms.length >> 1].toFixed(2)} max ${ms[ms.length - 1].toFixed(2)} ms`
        })
        .join(", ")
}

/** The trace's lines of messages sent in [from, to] (ms since the epoch). */
export function readTrace(path: string, from = -Infinity, to = Infinity): TraceLine[] {
    return parseTrace(readFileSync(path, "utf8")).filter((l) => l.sentAt >= from && l.sentAt <= to)
}

if (import.meta.url === `file://${process.argv[1]}`) {
    runEntry(async () => {
        const [path, from, to] = process.argv.slice(2)
        console.log(formatTraceSummary(summarizeTrace(readTrace(path, from ? Number(from) : undefined, to ? Number(to) : undefined))))
    })
}
