// One table for everything: a row per figure, a column per target, and ratios of feedline against
// each peer that say in words whether feedline is ahead or behind. Also the JSON and Markdown files.
import { execFileSync } from "node:child_process"
import os from "node:os"
import type { TargetResult } from "./server-bench.ts"
import type { IngestResult } from "./store-ingest.ts"
import type { Profile } from "./profile.ts"
import type { TargetName } from "./targets/target.ts"

export interface FirmwareRow {
    metric: string
    /** "ours" = feedline's firmware path, "peer" = the DeviceScript MQTT client, same run */
    ours?: number | string
    peer?: number | string
    unit: string
    better: "higher" | "lower"
    /** "not yet: …" or a caveat */
    note?: string
}

export interface Machine {
    nproc: number
    cpuModel: string
    node: string
    os: string
    memGiB: number
    /** 1-minute load average when the run started: above nproc, other work shared the machine */
    loadAvgAtStart: number
}

export interface Row {
    section: string
    metric: string
    unit: string
    better: "higher" | "lower" | "none"
    values: Partial<Record<TargetName, number | string>>
    note?: string
}

const TARGETS: TargetName[] = ["feedline", "feedline-pg", "feedline-pg-2w", "mosquitto", "aedes"]
const PEERS: TargetName[] = ["mosquitto", "aedes"]
/** within this relative difference two figures count as even (run-to-run noise on a shared machine) */
const EVEN_WITHIN = 0.05
/** a load generator using more than this share of a core was probably the limit, not the server */
const CLIENT_BOUND_SHARE = 0.9

export function machine(): Machine {
    let cpuModel = os.cpus()[0]?.model ?? "unknown"
    try {
        const lscpu = execFileSync("lscpu", { encoding: "utf8" })
        const m = /Model name:\s*(.+)/.exec(lscpu)
        if (m) cpuModel = m[1].trim()
    } catch {}
    return {
        nproc: os.availableParallelism(),
        cpuModel,
        node: process.version,
        os: `${os.type()} ${os.release()}`,
        memGiB: Math.round(os.totalmem() / 2 ** 30),
        loadAvgAtStart: os.loadavg()[0],
    }
}

const MiB = 2 ** 20

export function serverRows(results: TargetResult[], profile: Profile): Row[] {
    const by = (name: TargetName) => results.find((r) => r.name === name)
    const rows: Row[] = []
    const row = (section: string, metric: string, unit: string, better: Row["better"], f: (r: TargetResult) => number | string | undefined, note?: string) => {
        const values: Row["values"] = {}
        for (const t of TARGETS) {
            const r = by(t)
            if (!r) continue
            if (r.skipped) values[t] = r.skipped.startsWith("not yet") ? "not yet" : "skipped"
            else values[t] = f(r) ?? "n/a"
        }
        rows.push({ section, metric, unit, better, values, note })
    }
    const l = profile.latency
    const t = profile.throughput
    const S = "server"
    row(S, `max sustained acked updates/s (${t.devices} connections, closed loop, best of windows ${t.windows.join("/")} × ${t.rounds} rounds)`, "updates/s", "higher", (r) => r.throughput?.ackedPerS)
    row(S, "  server CPU at that rate (share of one core)", "%", "none", (r) => r.throughput && r.throughput.server.coreShare * 100,
        "Node's GC and libuv threads can take a server above 100%")
    row(S, "  load generator CPU at that rate (share of one core)", "%", "none", (r) => r.throughput && r.throughput.clientCoreShare * 100,
        `above ${CLIENT_BOUND_SHARE * 100}% the load generator, not the server, was the limit`)
    row(S, "  what limited it", "", "none", (r) => r.throughput && limitOf(r.throughput))
    row(S, "  whole machine CPU busy at that rate (all cores, kernel included)", "%", "none", (r) => r.throughput && r.throughput.machineBusy * 100,
        "near 100%: the 2-core box (TLS both ends, loopback TCP) was the limit; the server's own share says how much of it the server took")
    row(S, "server CPU per update at max rate", "µs", "lower", (r) => r.throughput && (r.throughput.server.cpuMs * 1000) / Math.max(1, r.throughput.acked))
    const rate = `at ${l.ratePerS}/s over ${l.devices} connections${l.rounds > 1 ? ` (least disturbed of ${l.rounds} rounds)` : ""}`
    row(S, `ack latency p50 ${rate}`, "ms", "lower", (r) => r.latency?.ack.p50,
        "feedline acks after a durable SQLite commit (synchronous=FULL, on the store's writer thread) [P§9], feedline-pg after a durable PostgreSQL commit; the peers ack from memory (persistence off)")
    row(S, "ack latency p99", "ms", "lower", (r) => r.latency?.ack.p99)
    row(S, "ack latency p99.9", "ms", "lower", (r) => r.latency?.ack.p999)
    row(S, `push fan-out latency p50 (send → push at each of ${l.subscribers} subscribers)`, "ms", "lower", (r) => r.latency?.push.p50)
    row(S, "push fan-out latency p99", "ms", "lower", (r) => r.latency?.push.p99)
    row(S, "pushes received / expected", "%", "higher", (r) => r.latency && (100 * r.latency.pushesReceived) / Math.max(1, r.latency.pushesExpected))
    row(S, `server CPU per update ${rate}, with fan-out`, "µs", "lower", (r) => r.latency && (r.latency.server.cpuMs * 1000) / Math.max(1, r.latency.sent))
    row(S, "bytes on the wire per update, device side (up + down, TLS records included)", "B", "lower", (r) => r.latency && r.latency.deviceBytesPerUpdate.up + r.latency.deviceBytesPerUpdate.down,
        "feedline devices write the short form and get short answers [P§5a], as the firmware does")
    row(S, "  of which device → server", "B", "lower", (r) => r.latency?.deviceBytesPerUpdate.up)
    row(S, "  of which server → device (ack)", "B", "lower", (r) => r.latency?.deviceBytesPerUpdate.down)
    row(S, "bytes on the wire per push, subscriber side (TLS included)", "B", "lower", (r) => r.latency?.subscriberBytesPerPush)
    const nb = profile.noisy
    const flood = `${nb.floodDevices} devices × ${nb.window} updates in flight to ${Math.max(l.subscribers, nb.floodSubscribers)} subscribers`
    row(S, `noisy neighbour: push latency p99 on a quiet feed (${nb.quietRatePerS}/s) while another is flooded (${flood}${nb.rounds > 1 ? `; least disturbed of ${nb.rounds} rounds` : ""})`, "ms", "lower", (r) => r.noisy?.quiet.p99,
        "send → push at the quiet feed's one subscriber; MQTT peers: one topic tree flooded, another subscribed")
    row(S, "  push latency p50 on the quiet feed", "ms", "lower", (r) => r.noisy?.quiet.p50)
    row(S, "  quiet pushes received / sent", "%", "higher", (r) => r.noisy && (100 * r.noisy.quietReceived) / Math.max(1, r.noisy.quietSent))
    row(S, "  the flooded feed meanwhile: updates acked", "updates/s", "none", (r) => r.noisy?.floodAckedPerS)
    row(S, "  the flooded feed meanwhile: pushes delivered (all subscribers)", "pushes/s", "none", (r) => r.noisy?.floodPushesPerS)
    row(S, "  the flooded feed meanwhile: updates refused, sent again after retry_after_ms", "updates", "none", (r) => r.noisy?.floodRefused,
        "feedline: 429 E_FANOUT_BUSY once the feed owes 50 000 pushes; the peers have no such bound")
    row(S, "server RSS, idle, no connections", "MiB", "lower", (r) => r.idleRssBytes && r.idleRssBytes / MiB,
        profile.idleRssAfterStartMs ? `read ${profile.idleRssAfterStartMs / 1000} s or more after each server's start (at rest: V8 shrinks what its start grew after ~8 s)` : undefined)
    const k = profile.defaultKeepAliveIdle
    row(S, `idle server CPU with ${k.connections} connections at the default keep-alive`, "% core", "lower", (r) => r.defaultKeepAliveIdle && r.defaultKeepAliveIdle.server.coreShare * 100,
        "feedline: its default keep-alive profile (`field` since issue 13: 20 s heartbeats) [P§4]; MQTT clients: 60 s keepalive")
    for (const step of profile.connections.steps) {
        row(S, `server RSS with ${step} idle connections`, "MiB", "lower", (r) => {
            const s = r.connections.find((c) => c.step === step)
            if (!s) return "not reached"
            return s.open.open < step ? `${(s.server.rssBytes / MiB).toFixed(1)} (only ${s.open.open} opened)` : s.server.rssBytes / MiB
        })
    }
    row(S, "server RSS per idle connection (at the largest count reached)", "KiB", "lower", (r) => {
        const s = r.connections.at(-1)
        return s && s.rssPerConnectionBytes / 1024
    }, "TLS session + connection state; feedline at its metered-link keep-alive (25 s heartbeat), MQTT keepalive 60 s")
    row(S, "server RSS per idle connection added (between the last two counts)", "KiB", "lower", (r) => {
        const [a, b] = r.connections.slice(-2)
        return a && b && b.open.open > a.open.open ? (b.server.rssBytes - a.server.rssBytes) / (b.open.open - a.open.open) / 1024 : undefined
    }, "the slope: what one more connection costs, without the allocator's slack and start-up garbage a process holds at rest (which the row above divides in)")
    row(S, `idle server CPU holding the largest count`, "% core", "lower", (r) => {
        const s = r.connections.at(-1)
        return s && s.server.coreShare * 100
    })
    return rows
}

/** What capped a closed-loop run, judged from the CPU shares. */
function limitOf(r: { clientCoreShare: number; server: { coreShare: number }; machineBusy: number }): string {
    if (r.clientCoreShare > CLIENT_BOUND_SHARE) return "load generator (the figure is a floor)"
    if (r.server.coreShare > CLIENT_BOUND_SHARE) return "server CPU"
    if (r.machineBusy > 0.95) return "the shared machine"
    return "not CPU (waits)"
}

export function ingestRows(ingest: IngestResult): Row[] {
    if (ingest.skipped) return [{ section: "store", metric: "SQLite ingest alone", unit: "datapoints/s", better: "none", values: { feedline: ingest.skipped } }]
    return ingest.runs.flatMap((r) => {
        const what =
            r.concurrent === 1
                ? `${r.batch} datapoint${r.batch === 1 ? "" : "s"} per commit`
                : `${r.concurrent} concurrent requests of ${r.batch} (group commit)`
        const sync = `synchronous=${r.synchronous}`
        return [
            { section: "store", metric: `SQLite ingest alone, ${what}, ${sync}`, unit: "datapoints/s", better: "none" as const, values: { feedline: r.datapointsPerS } },
            {
                section: "store",
                metric: `  commit time p50 / p99 (event loop blocked)`,
                unit: "ms",
                better: "none" as const,
                values: { feedline: `${fmt(r.commit.p50)} / ${fmt(r.commit.p99)}` },
            },
        ]
    })
}

function fmt(v: number | string | undefined): string {
    if (v === undefined) return ""
    if (typeof v === "string") return v
    if (!Number.isFinite(v)) return "n/a"
    const a = Math.abs(v)
    if (a >= 1000) return Math.round(v).toLocaleString("en-US")
    if (a >= 100) return v.toFixed(0)
    if (a >= 10) return v.toFixed(1)
    return v.toFixed(2)
}

/** feedline ÷ peer, with a verdict a reader does not have to work out. */
export function verdict(ours: unknown, peer: unknown, better: Row["better"]): string {
    if (typeof ours !== "number" || typeof peer !== "number" || !Number.isFinite(ours) || !Number.isFinite(peer) || better === "none") return ""
    if (peer === 0 && ours === 0) return "even"
    if (peer === 0) return better === "lower" ? "behind" : "ahead"
    const ratio = ours / peer
    const word = Math.abs(ratio - 1) <= EVEN_WITHIN ? "even" : (ratio > 1) === (better === "higher") ? "ahead" : "**behind**"
    return `${ratio.toFixed(2)}× ${word}`
}

export function markdownTable(rows: Row[], present: TargetName[]): string {
    const peers = PEERS.filter((p) => present.includes(p))
    const head = ["figure", "unit", ...present, ...peers.map((p) => `feedline ÷ ${p}`), "note"]
    const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`]
    for (const r of rows) {
        const cells = [
            r.metric.replace(/^ +/, "↳ "),
            r.unit,
            ...present.map((t) => fmt(r.values[t])),
            ...peers.map((p) => verdict(r.values.feedline, r.values[p], r.better)),
            r.note ?? "",
        ]
        lines.push(`| ${cells.join(" | ")} |`)
    }
    return lines.join("\n")
}

export function firmwareTable(rows: FirmwareRow[]): string {
    const lines = ["| figure (DeviceScript simulator) | unit | feedline firmware | DeviceScript MQTT client | feedline ÷ MQTT | note |", "|---|---|---|---|---|---|"]
    for (const r of rows) lines.push(`| ${r.metric} | ${r.unit} | ${fmt(r.ours)} | ${fmt(r.peer)} | ${verdict(r.ours, r.peer, r.better)} | ${r.note ?? ""} |`)
    return lines.join("\n")
}
