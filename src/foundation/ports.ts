// The small interfaces the sensor and actuator parts need from the link (src/net). Kept here, not
// imported from src/net, so these parts are tested with fakes and wired with a few lines in main.ts.
import * as ds from "@devicescript/core"

export type OutboxPolicy = "every" | "latest"

/** Where readings and reported states go: the link's outbox. */
export interface SampleSink {
    report(id: string, value: string, policy: OutboxPolicy): void
}

/**
 * Server pushes [P§8]: `handler` gets each pushed body, e.g. {"id":"led","current_value":"1","at":…};
 * `sinceAt`: replay what was written after that `at` (the last command handled before a reboot).
 * A function (the link's `subscribe`, bound), not an object with a `subscribe` method: a `.subscribe` call
 * through an interface compiles in every method of that name the image's classes have (GPIO's, with its
 * change poller, and the Jacdac register's and event's): 220 B of code window on the S3 (docs/FIRMWARE.md "Program size").
 */
export type CommandSource = (resource: string, handler: (body: any) => void, sinceAt?: string) => void

/** An actuator's applied state and the `at` of the command that set it, kept across reboots. */
export interface SavedState {
    state: number
    at: string
}

/** Keeps actuator states across reboots (ACT_<id> settings on the device). */
export interface ActuatorStore {
    load(id: string): Promise<SavedState | undefined>
    save(id: string, state: number, at: string): Promise<void>
}

/** Keeps a sensor's applied policy text across reboots (CFG_<id> settings on the device). */
export interface PolicyStore {
    load(id: string): Promise<string | undefined>
    save(id: string, text: string): Promise<void>
}

/** console.log as a value (DeviceScript compiles console.log calls in place; it is no function to pass around). */
export function logLine(msg: string) {
    console.log(msg)
}

/** The diagnostics datastream for errors a person should see: bad commands, failing sensors. */
export const ERRORS_ID = "_errors"
/** The same error text is sent at most once per this period: a flood of bad commands cannot fill the outbox. */
export const ERROR_REPEAT_MS = 10000
/** [P§10] value limit */
const MAX_VALUE_CHARS = 32

/** Reports `E_CODE detail` on `_errors` (and the console); never throws. */
export class ErrorReporter {
    private lastText = ""
    private lastAtMs = 0
    /** errors not sent because they repeated the previous one */
    suppressed = 0

    constructor(private sink: SampleSink, private clock: () => number = ds.millis) {}

    report(code: string, detail: string) {
        let text = detail ? code + " " + detail : code
        if (text.length > MAX_VALUE_CHARS) text = text.slice(0, MAX_VALUE_CHARS)
        const now = this.clock()
        if (text === this.lastText && now - this.lastAtMs < ERROR_REPEAT_MS) {
            this.suppressed++
            return
        }
        this.lastText = text
        this.lastAtMs = now
        console.log(`feedline: ${ERRORS_ID} ${text}`)
        this.sink.report(ERRORS_ID, text, "every")
    }
}
