// An actuator: a command datastream the device subscribes to, an output it drives, and `<id>.state`,
// the state it really applied, written back so the server shows what the device did.
import { ActuatorStore, ErrorReporter, SampleSink } from "../foundation/ports"
import * as ds from "@devicescript/core"
import { formatReading } from "../sensors/sampling"
import { commandText, parseSetpointCommand, parseSwitchCommand, ParsedCommand } from "./commands"
import { Output } from "./outputs"

export const STATE_SUFFIX = ".state"

export interface ActuatorSpec {
    /** command datastream id */
    id: string
    kind: "switch" | "setpoint"
    /** setpoint only: allowed range and resolution */
    min?: number
    max?: number
    decimals?: number
    initial: number
}

export class Actuator {
    /** the value the output last accepted */
    state: number
    /** newest command not yet applied: commands arriving during an apply collapse to the latest */
    private wanted: number | undefined
    /** the `at` of that command, and of the last one saved */
    private wantedAt: string
    private savedAt: string
    private busy = false
    applied = 0

    /** `store` keeps the applied state and the `at` of the command that set it across reboots */
    constructor(readonly spec: ActuatorSpec, private output: Output, private sink: SampleSink, private errors: ErrorReporter, private store?: ActuatorStore) {
        this.state = spec.initial
    }

    /**
     * Takes the state saved before a reboot as the one to start with; returns the `at` of the command that
     * set it, to subscribe from (commands written meanwhile are replayed, each handled once).
     */
    async restore(): Promise<string | undefined> {
        const saved = this.store ? await this.store.load(this.spec.id) : undefined
        if (!saved) return undefined
        this.state = saved.state
        this.savedAt = saved.at
        return saved.at
    }

    /** Puts the output in its start state (initial, or restored) and reports it, so the server knows it after a boot. */
    async start() {
        this.request(this.state, undefined)
        await this.idle()
    }

    /** A pushed body [P§8]. Never throws: a bad command is reported on `_errors` and changes nothing. */
    command(body: any) {
        const c = commandText(body)
        if (c.error) return this.errors.report(c.error, this.spec.id)
        if (c.text === undefined) return // datastream deleted: keep the current state
        const p = this.parse(c.text)
        if (p.error) return this.errors.report(p.error, `${this.spec.id} ${c.text}`)
        this.request(p.value, typeof body["at"] === "string" ? body["at"] : undefined)
    }

    parse(text: string): ParsedCommand {
        const s = this.spec
        if (s.kind === "switch") return parseSwitchCommand(text, this.wanted !== undefined ? this.wanted : this.state)
        return parseSetpointCommand(text, s.min, s.max, s.decimals)
    }

    /** The applied state as sent on `<id>.state`. */
    stateText(): string {
        if (this.spec.kind === "switch") return this.state ? "1" : "0"
        return formatReading(this.state, this.spec.decimals)
    }

    /** Resolves when every requested value has been applied (tests, start-up). */
    async idle() {
        while (this.busy) await ds.sleep(10)
    }

    private request(value: number, at: string) {
        this.wanted = value
        if (at !== undefined) this.wantedAt = at
        if (this.busy) return
        // a fiber of its own: the caller (the link's reader) must not wait for the hardware
        this.busy = true
        this.drain.start() // a method read off its object comes bound in DeviceScript
    }

    private async drain() {
        while (this.wanted !== undefined) {
            const v = this.wanted
            const at = this.wantedAt
            this.wanted = undefined
            try {
                await this.output.apply(v)
                this.state = v
                this.applied++
                const text = this.stateText()
                console.log(`feedline: ${this.spec.id} = ${text}`)
                this.sink.report(this.spec.id + STATE_SUFFIX, text, "every")
                // after the apply: a reboot in between replays the command onto the state saved before it
                if (this.store && at !== undefined && at !== this.savedAt) {
                    this.savedAt = at
                    await this.store.save(this.spec.id, v, at)
                }
            } catch (e) {
                this.errors.report("E_ACT_APPLY", this.spec.id)
            }
        }
        this.busy = false
    }
}
