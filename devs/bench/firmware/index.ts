// Firmware-side figures, measured in the DeviceScript simulator against the DeviceScript MQTT client
// in the same run.
import type { FirmwareRow } from "../report.ts"

export interface FirmwareResult {
    rows: FirmwareRow[]
    notes: string[]
}

export interface FirmwareContext {
    smoke: boolean
    workDir: string
    log(line: string): void
}

export async function benchFirmware(_ctx: FirmwareContext): Promise<FirmwareResult> {
    const notYet = (metric: string, unit: string): FirmwareRow => ({ metric, unit, better: "lower", note: "not yet" })
    return {
        rows: [
            notYet("bytes on the wire per update, one value", "B"),
            notYet("VM time per update (encode + send)", "ratio"),
            notYet("bytecode size per board", "B"),
            notYet("largest outbox that fits the heap with TLS connected", "samples"),
            notYet("link recovery: server back → first acked sample (median)", "ms"),
            notYet("black-holed link detected after (median)", "ms"),
        ],
        notes: [],
    }
}
