// Firmware-side figures, measured in the DeviceScript simulator against the DeviceScript MQTT client
// in the same run, plus the per-board bytecode sizes and the link's recovery times.
import { MAX_OUTBOX_BYTES } from "../../../src/foundation/outbox-budget.ts"
import type { FirmwareRow } from "../report.ts"
import type { TlsFixture } from "../tls-fixture.ts"
import { boardSizes, type BoardSize } from "./boards.ts"
import { benchLink, type LinkBenchResult } from "./link-bench.ts"
import { benchWire, type WireResult } from "./wire-bench.ts"

export interface FirmwareResult {
    wire?: WireResult
    link?: LinkBenchResult
    boards?: BoardSize[]
    rows: FirmwareRow[]
    notes: string[]
}

export interface FirmwareContext {
    tls: TlsFixture
    updates: number
    wireRounds: number
    recoveryRuns: number
    outbox: boolean
    boards: boolean
    log(line: string): void
}

const CASE_LABEL: Record<string, string> = {
    one: "one value",
    ten: "a batch of 10 values (10 datastreams)",
    buffered: "a batch of 10 buffered datapoints (1 datastream)",
}

/** The DeviceScript MQTT client's recovery behaviour, read from its source (net/src/mqtt.ts), not measured. */
const MQTT_WATCHDOG_MS = 50_000

function outageRange(l: LinkBenchResult): string {
    const s = l.runs.map((r) => r.outageMs / 1000)
    const lo = Math.min(...s)
    const hi = Math.max(...s)
    return lo === hi ? `${lo} s` : `${lo}–${hi} s`
}

export async function benchFirmware(ctx: FirmwareContext): Promise<FirmwareResult> {
    const result: FirmwareResult = { rows: [], notes: [] }
    const rows = result.rows
    const notYet = (metric: string, unit: string, why: string) => rows.push({ metric, unit, better: "lower", note: why })

    ctx.log("  wire bytes and VM time (simulator)...")
    result.wire = await benchWire(ctx.tls, ctx.updates, ctx.wireRounds, ctx.log).catch((e: Error) => ({ cases: [], run: { code: null, done: false }, error: e.message }))
    if (result.wire.error) result.notes.push(`firmware wire: ${result.wire.error.slice(0, 400)}`)
    for (const c of result.wire.cases) {
        const label = CASE_LABEL[c.case] ?? c.case
        rows.push({ metric: `bytes per update, ${label}: device → server`, unit: "B", better: "lower", ours: c.oursBytesPerUpdate.up, peer: c.mqttBytesPerUpdate.up })
        rows.push({
            metric: `bytes per update, ${label}: both directions`,
            unit: "B",
            better: "lower",
            ours: c.oursBytesPerUpdate.up + c.oursBytesPerUpdate.down,
            peer: c.mqttBytesPerUpdate.up + c.mqttBytesPerUpdate.down,
            note:
                c.case === "one"
                    ? "TLS 1.3 records included; one update at a time: ours after its ack, MQTT (QoS 1 PUBLISH of the same JSON body; the client writes header and body apart, two TLS records) 50 ms after the last"
                    : undefined,
        })
    }
    for (const c of result.wire.cases) {
        rows.push({
            metric: `VM time per update (encode + send), ${CASE_LABEL[c.case] ?? c.case}`,
            unit: "ms",
            better: "lower",
            ours: c.oursVmMsPerUpdate,
            peer: c.mqttVmMsPerUpdate,
            note: c.case === "one" ? "median of the runs (ours and MQTT after each other in each); test mode: GC stress on, so absolute ms are inflated; compare the ratio" : undefined,
        })
    }
    if (!result.wire.cases.length) notYet("bytes and VM time per update", "B / ms", "not measured: " + (result.wire.error ?? "no result").slice(0, 120))

    if (ctx.boards) {
        ctx.log("  bytecode per board (npm run build)...")
        const b = boardSizes()
        result.boards = b.boards
        if (b.skipped) notYet("bytecode size per board", "B", b.skipped)
        for (const x of b.boards) rows.push({ metric: `bytecode size, ${x.board} (${x.arch})`, unit: "B", better: "lower", ours: x.ok ? x.bytes : "build failed" })
    }

    if (ctx.recoveryRuns > 0 || ctx.outbox) {
        ctx.log(`  link recovery (${ctx.recoveryRuns} runs) and outbox capacity...`)
        const l = await benchLink(ctx.tls, ctx.recoveryRuns, ctx.outbox, ctx.log)
        result.link = l
        result.notes.push(...l.errors.map((e) => `firmware: ${e}`))
        const n = l.runs.length
        if (l.medianRecoveryMs !== undefined) {
            rows.push({
                metric: `link recovery: server back after a ${outageRange(l)} outage → first acked sample (median of ${n})`,
                unit: "ms",
                better: "lower",
                ours: l.medianRecoveryMs,
                peer: `up to ${MQTT_WATCHDOG_MS.toLocaleString("en-US")}`,
                note: "MQTT: its watchdog reconnects every 50 s (from its source, not measured)",
            })
            rows.push({
                metric: `black-holed link detected after (median of ${n})`,
                unit: "ms",
                better: "lower",
                ours: l.medianBlackholeDetectMs,
                peer: "never",
                note: "feedline: 3 s keep-alive timeout [P§4]; MQTT client: no ping-response timeout (from its source)",
            })
            rows.push({ metric: `black hole → acked again on a new connection (median of ${n})`, unit: "ms", better: "lower", ours: l.medianBlackholeRecoveryMs })
        } else if (ctx.recoveryRuns > 0) notYet("link recovery and black-hole detection", "ms", "not measured: " + (l.errors[0] ?? "no run completed"))
        if (l.outbox) {
            const perSample = l.outbox.samples ? l.outbox.bytes / l.outbox.samples : NaN
            const dfltNote = `; the default OUTBOX_BYTES ${MAX_OUTBOX_BYTES} holds ~${Math.floor(MAX_OUTBOX_BYTES / perSample)} samples`
            rows.push({
                metric: "largest outbox that fits the 64 KB heap, link connected over TLS",
                unit: "samples",
                better: "higher",
                ours: l.outbox.oom ? l.outbox.samples : `> ${l.outbox.samples} (no OOM seen)`,
                note: `the link's own byte estimate at that point: ${l.outbox.bytes} B${dfltNote}; sensors and actuators share the heap on a device`,
            })
        }
    }
    return result
}
