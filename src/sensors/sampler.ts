// Reads every sensor on its own schedule in one fiber, applies each sensor's sampling policy and hands
// the readings worth sending to the sink. Policies change live (server config datastreams).
import * as ds from "@devicescript/core"
import { formatDuration, parsePolicyPatch, PolicyPatch } from "../foundation/config-text"
import { ErrorReporter, SampleSink } from "../foundation/ports"
import {
    decideSend,
    formatReading,
    initialSamplingState,
    markSent,
    MAX_INTERVAL_MS,
    MIN_INTERVAL_MS,
    msUntilRead,
    readDue,
    reschedule,
    SamplingPolicy,
    SamplingState,
    scheduleNextRead,
} from "./sampling"
import { Sensor } from "./sensor"

/** A sensor with no reading is retried this soon (binding takes ~1 s; a loose wire may come back). */
export const NOT_READY_RETRY_MS = 1000
/** Missed readings in a row before the sensor is reported on `_errors` (~10 s at the retry pace). */
export const MISSES_BEFORE_ERROR = 10
/** The loop wakes at least this often, so a new, shorter interval applies without waiting out the old one. */
export const MAX_SLEEP_MS = 1000
/**
 * A read that has not finished after this long counts as a miss, so one hung sensor (a native
 * register read or an I2C transfer that never returns) cannot stop the others. I2C reads take ms.
 */
export const READ_TIMEOUT_MS = 3000
/** Poll period while a read runs in its own fiber. */
const READ_POLL_MS = 5

interface Channel {
    sensor: Sensor
    policy: SamplingPolicy
    state: SamplingState
    misses: number
    /** a read fiber has not returned yet; no second one is started for this sensor meanwhile */
    reading: boolean
}

interface ReadOutcome {
    done: boolean
    value: number | undefined
    failure: string
}

export interface SamplerStats {
    reads: number
    sent: number
    skipped: number
    misses: number
}

/** "i=5s d=0.1 s=1m": the policy as applied, in the syntax the config datastream accepts. */
export function formatPolicy(p: SamplingPolicy): string {
    return `i=${formatDuration(p.intervalMs)} d=${formatReading(p.deadband, p.decimals)} s=${formatDuration(p.maxSilenceMs)}`
}

function clamp(v: number, lo: number, hi: number): number {
    return v < lo ? lo : v > hi ? hi : v
}

export class Sampler {
    private channels: Channel[] = []
    readonly stats: SamplerStats = { reads: 0, sent: 0, skipped: 0, misses: 0 }

    /** set to log each value sent ("feedline: temp = 21.54 C (moved)") */
    log: (line: string) => void
    readTimeoutMs = READ_TIMEOUT_MS

    constructor(private sink: SampleSink, private errors: ErrorReporter, private clock: () => number = ds.millis) {}

    add(sensor: Sensor, policy: SamplingPolicy) {
        this.channels.push({ sensor: sensor, policy: policy, state: initialSamplingState(this.clock()), misses: 0, reading: false })
    }

    ids(): string[] {
        return this.channels.map(c => c.sensor.id)
    }

    policyOf(id: string): SamplingPolicy | undefined {
        const ch = this.channel(id)
        return ch ? ch.policy : undefined
    }

    /** The policy in force as config text, "" for an unknown sensor. */
    describe(id: string): string {
        const p = this.policyOf(id)
        return p ? formatPolicy(p) : ""
    }

    /**
     * Applies a change at once, clamped to what the device supports, and returns the policy now in force.
     * The next read moves so the new interval counts from the previous read.
     */
    setPolicy(id: string, patch: PolicyPatch): SamplingPolicy | undefined {
        const ch = this.channel(id)
        if (!ch) return undefined
        const old = ch.policy
        const p: SamplingPolicy = {
            intervalMs: old.intervalMs,
            deadband: old.deadband,
            maxSilenceMs: old.maxSilenceMs,
            decimals: old.decimals,
            outbox: old.outbox,
        }
        if (patch.intervalMs !== undefined) p.intervalMs = clamp(patch.intervalMs, MIN_INTERVAL_MS, MAX_INTERVAL_MS)
        if (patch.maxSilenceMs !== undefined) p.maxSilenceMs = clamp(patch.maxSilenceMs, 0, MAX_INTERVAL_MS)
        if (patch.deadband !== undefined) p.deadband = patch.deadband
        reschedule(ch.state, old, p)
        ch.policy = p
        return p
    }

    /**
     * Applies a config text ("i=5s d=0.2") from the server or a setting. Returns the applied policy as
     * text, or undefined after reporting the error (E_CFG_*) on `_errors`.
     */
    configure(id: string, text: string): string | undefined {
        const r = parsePolicyPatch(text)
        if (r.error) {
            this.errors.report(r.error, `${id} ${r.detail}`)
            return undefined
        }
        const p = this.setPolicy(id, r.patch)
        if (!p) {
            this.errors.report("E_CFG_SENSOR", id)
            return undefined
        }
        return formatPolicy(p)
    }

    /** Reads the sensors that are due; returns ms until the next read is due. */
    async tick(): Promise<number> {
        for (const ch of this.channels) {
            if (readDue(ch.state, this.clock())) await this.sample(ch)
        }
        const now = this.clock()
        let wait = MAX_INTERVAL_MS
        for (const ch of this.channels) {
            const w = msUntilRead(ch.state, now)
            if (w < wait) wait = w
        }
        return wait
    }

    /** The sampling fiber: never returns, never throws (an exception here would stop the VM). */
    async run() {
        for (;;) {
            let wait = MAX_SLEEP_MS
            try {
                wait = await this.tick()
            } catch (e) {
                console.error(`feedline: E_INTERNAL sampler: ${e}`)
            }
            await ds.sleep(wait < MAX_SLEEP_MS ? wait : MAX_SLEEP_MS)
        }
    }

    /** Reads in a fiber of its own and waits at most readTimeoutMs for it. */
    private async readBounded(ch: Channel): Promise<ReadOutcome> {
        const out: ReadOutcome = { done: false, value: undefined, failure: "" }
        if (ch.reading) return out // the previous read is still stuck
        ch.reading = true
        const read = async () => {
            try {
                out.value = await ch.sensor.read()
            } catch (e) {
                out.failure = "" + ((e as Error).message || e)
            }
            out.done = true
            ch.reading = false
        }
        read.start()
        const deadline = ds.millis() + this.readTimeoutMs
        while (!out.done && ds.millis() < deadline) await ds.sleep(READ_POLL_MS)
        return out
    }

    private channel(id: string): Channel | undefined {
        for (const ch of this.channels) if (ch.sensor.id === id) return ch
        return undefined
    }

    private async sample(ch: Channel) {
        const id = ch.sensor.id
        const r = await this.readBounded(ch)
        const v = r.done ? r.value : undefined
        const failure = r.done ? r.failure : "hung"
        const now = this.clock()
        this.stats.reads++
        if (v === undefined) {
            this.stats.misses++
            ch.misses++
            if (ch.misses === MISSES_BEFORE_ERROR) this.errors.report(failure ? "E_SENSOR_READ" : "E_SENSOR_NONE", id)
            ch.state.nextReadAtMs = now + (ch.policy.intervalMs < NOT_READY_RETRY_MS ? ch.policy.intervalMs : NOT_READY_RETRY_MS)
            return
        }
        if (ch.misses >= MISSES_BEFORE_ERROR) console.log(`feedline: sensor ${id} reading again`)
        ch.misses = 0
        scheduleNextRead(ch.state, ch.policy, now)
        const reason = decideSend(ch.policy, ch.state, v, now)
        const text = reason === "skip" ? undefined : formatReading(v, ch.policy.decimals)
        if (text === undefined) {
            this.stats.skipped++
            return
        }
        markSent(ch.state, ch.policy, v, now)
        this.stats.sent++
        if (this.log) this.log(`feedline: ${id} = ${text} ${ch.sensor.unit} (${reason})`)
        this.sink.report(id, text, ch.policy.outbox)
    }
}
