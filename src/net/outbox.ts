// The outbox: samples waiting for the server's acknowledgement. Pure (no sockets, no clock reads).
// Bounded in bytes because it lives in the 64 KB VM heap; a sample leaves only when the batch that
// carries it is acknowledged, and a resend is harmless because writes are idempotent on `at` [P§9].
import { DEVICE_MAX_SEND_BYTES, encodeShortRequest } from "../protocol"

/** every: keep each sample (a time series); latest: only the newest one matters (a state, a setting). */
export type Policy = "every" | "latest"

/**
 * Estimated heap bytes of one queued sample besides its strings' characters: five array slots of 8 bytes,
 * slack for array growth and a string header. Measured in the simulator (64 KB heap, GC stress):
 * parallel arrays held ~850 samples before OutOfMemory, one object per sample only ~450.
 */
export const SAMPLE_OVERHEAD_BYTES = 56
/** Room in a batch line for the envelope around the datapoints: method, resource, token, the API key header of a first request. */
const ENVELOPE_BYTES = 200
/** Bytes of one datapoint besides its value: {"at":1763790000000,"value":},  */
const DATAPOINT_BYTES = 32
/** Bytes of one datastream group besides its id: {"id":,"datapoints":[]}, */
const GROUP_BYTES = 28

/** One sample as handed out in a batch. */
export interface Sample {
    stream: string
    value: string
    /** server time in ms since the epoch */
    at: number
}

/** A sample taken before the clock was known keeps its device time minus this (always < 0; exact in a double). */
const UNSTAMPED_BIAS_MS = 1125899906842624
/** A setting value is one Jacdac packet (~236 B): a saved chunk of the outbox stays under this as JSON. */
export const SAVE_CHUNK_BYTES = 200

/**
 * Queue order is kept in parallel arrays (index i is one sample): half the heap of one object per sample.
 * A sample's `time` is its server time (`at`, > 0) once stamped, else its device time − UNSTAMPED_BIAS_MS
 * until the clock is known (device times from before a reboot are negative); `at` never changes after
 * stamping, so a resend carries the same identity.
 */
export class Outbox {
    private streams: string[] = []
    private values: string[] = []
    private times: number[] = []
    /** the batch carrying it; 0 while waiting */
    private batches: number[] = []
    private latest: boolean[] = []
    /** per datastream, the last `at` given out: two samples of one stream never share an `at` (that would merge them) */
    private lastAt: Record<string, number> = {}
    /**
     * The next entry savedChunk() saves. remove() keeps it on the same entry: the save yields between chunks,
     * and a sample leaving meanwhile (a "latest" one replaced, a drop, an ack) shifted the queue under a plain
     * index, so the save skipped the next entry and the reboot lost that sample.
     */
    saveNext = 0
    /** estimated heap bytes held */
    bytes = 0
    /** samples dropped because the outbox was full */
    drops = 0

    constructor(public maxBytes: number) {}

    depth(): number {
        return this.streams.length
    }

    /**
     * Queues a sample taken at device time `ms`. `offsetMs` (server time − device time) stamps it at once
     * when the clock is known; pass undefined before the first welcome.
     * A "latest" sample replaces a waiting one of its stream (one in flight stays until acknowledged).
     * When full, the oldest waiting keep-every sample is dropped (counted); if there is none, the new one is.
     */
    add(stream: string, value: string, policy: Policy, ms: number, offsetMs: number) {
        const latest = policy === "latest"
        if (latest) {
            for (let i = 0; i < this.streams.length; ++i) {
                if (this.streams[i] === stream && this.batches[i] === 0) {
                    this.remove(i)
                    break
                }
            }
        }
        const cost = sampleBytes(stream, value)
        while (this.bytes + cost > this.maxBytes) {
            if (!this.dropOldestEvery()) {
                this.drops++
                return
            }
        }
        this.push(stream, value, offsetMs === undefined ? ms - UNSTAMPED_BIAS_MS : this.stampAt(stream, ms, offsetMs), latest, cost)
    }

    /**
     * Entries from `saveNext` on for one saved chunk (as many as fit SAVE_CHUNK_BYTES as JSON); moves `saveNext`
     * past them; [] once every entry is saved. An entry is [stream, value, t] (+ 1 when "latest"): t is the `at`,
     * or for a sample taken before the clock was known −(its age at `nowMs`) − 1. An entry too long for a chunk
     * alone is skipped.
     */
    savedChunk(nowMs: number): any[] {
        const entries: any[] = []
        let size = 2
        let i = this.saveNext
        for (; i < this.streams.length; ++i) {
            const t = this.times[i]
            const e: any[] = [this.streams[i], this.values[i], t > 0 ? t : -(nowMs - (t + UNSTAMPED_BIAS_MS)) - 1]
            if (this.latest[i]) e.push(1)
            const n = JSON.stringify(e).length + 1
            if (size + n > SAVE_CHUNK_BYTES) {
                if (entries.length) break
                continue
            }
            entries.push(e)
            size += n
        }
        this.saveNext = i
        return entries
    }

    /** Queues the entries of a saved chunk again after a reboot (`nowMs`: the device clock now). */
    restore(entries: any[], nowMs: number) {
        for (let i = 0; i < entries.length; ++i) {
            const e = entries[i]
            if (!Array.isArray(e)) continue
            if (typeof e[0] !== "string" || typeof e[1] !== "string" || typeof e[2] !== "number") continue
            const stream: string = e[0]
            const t: number = e[2]
            const last = this.lastAt[stream]
            if (t > 0 && (last === undefined || last < t)) this.lastAt[stream] = t
            const cost = sampleBytes(stream, e[1])
            if (this.bytes + cost <= this.maxBytes) this.push(stream, e[1], t > 0 ? t : nowMs + t + 1 - UNSTAMPED_BIAS_MS, e[3] === 1, cost)
            else this.drops++
        }
    }

    private push(stream: string, value: string, time: number, latest: boolean, cost: number) {
        this.streams.push(stream)
        this.values.push(value)
        this.times.push(time)
        this.batches.push(0)
        this.latest.push(latest)
        this.bytes += cost
    }

    /** The clock became known: stamp the samples taken before it. */
    stampAll(offsetMs: number) {
        for (let i = 0; i < this.times.length; ++i) {
            const t = this.times[i]
            if (t < 0) this.times[i] = this.stampAt(this.streams[i], t + UNSTAMPED_BIAS_MS, offsetMs)
        }
    }

    /**
     * Marks the oldest waiting, stamped samples as carried by batch `batchId`, as many as fit in one
     * line of `maxBytes` (at most DEVICE_MAX_SEND_BYTES) and at most `maxCount`. Returns them in queue order.
     */
    takeBatch(batchId: number, maxCount: number, maxBytes: number): Sample[] {
        if (maxBytes > DEVICE_MAX_SEND_BYTES) maxBytes = DEVICE_MAX_SEND_BYTES
        const out: Sample[] = []
        const groups: string[] = []
        let size = ENVELOPE_BYTES
        for (let i = 0; i < this.streams.length && out.length < maxCount; ++i) {
            if (this.batches[i] !== 0 || this.times[i] < 0) continue
            const stream = this.streams[i]
            // quotes only; escapes are rare (values are short ASCII) and the link checks the exact size
            let add = DATAPOINT_BYTES + this.values[i].length + 2
            const newGroup = groups.indexOf(stream) < 0
            if (newGroup) add += GROUP_BYTES + stream.length
            if (size + add >= maxBytes && out.length) break
            if (newGroup) groups.push(stream)
            size += add
            this.batches[i] = batchId
            out.push({ stream: stream, value: this.values[i], at: this.times[i] })
        }
        return out
    }

    /** The batch was acknowledged: its samples are stored on the server. Returns how many left. */
    ack(batchId: number): number {
        let n = 0
        for (let i = this.batches.length - 1; i >= 0; --i) {
            if (this.batches[i] === batchId) {
                this.remove(i)
                n++
            }
        }
        return n
    }

    /** The batch's fate is unknown (connection lost, no ack): its samples wait to be sent again. */
    release(batchId: number) {
        for (let i = 0; i < this.batches.length; ++i) if (this.batches[i] === batchId) this.batches[i] = 0
    }

    private stampAt(stream: string, ms: number, offsetMs: number): number {
        let at = Math.round(ms + offsetMs)
        const last = this.lastAt[stream]
        if (last !== undefined && at <= last) at = last + 1
        this.lastAt[stream] = at
        return at
    }

    private dropOldestEvery(): boolean {
        for (let i = 0; i < this.streams.length; ++i) {
            if (!this.latest[i] && this.batches[i] === 0) {
                this.remove(i)
                this.drops++
                return true
            }
        }
        return false
    }

    private remove(i: number) {
        if (i < this.saveNext) this.saveNext--
        this.bytes -= sampleBytes(this.streams[i], this.values[i])
        this.streams.insert(i, -1)
        this.values.insert(i, -1)
        this.times.insert(i, -1)
        this.batches.insert(i, -1)
        this.latest.insert(i, -1)
    }
}

function sampleBytes(stream: string, value: string): number {
    return SAMPLE_OVERHEAD_BYTES + stream.length + value.length
}

/** [P§5] One `put /feeds/:feed` carrying the samples as datapoints, grouped by datastream in queue order. */
export function encodeBatch(feedResource: string, samples: Sample[], token: string, headers: any): string {
    // [P§5a] the short form: one-letter envelope members and no "m" (a put), answered {"t":…}
    return encodeShortRequest({ method: "put", resource: feedResource, headers: headers, body: batchBody(samples), token: token })
}

/** The body of a batch: {"datastreams":[{"id":…,"datapoints":[{"at":…,"value":…},…]},…]} (the benchmark's MQTT client publishes it too). */
export function batchBody(samples: Sample[]): any {
    const streams: any[] = []
    for (let i = 0; i < samples.length; ++i) {
        const s = samples[i]
        let group: any = undefined
        for (let j = 0; j < streams.length; ++j) if (streams[j]["id"] === s.stream) group = streams[j]
        if (group === undefined) {
            group = { id: s.stream, datapoints: [] }
            streams.push(group)
        }
        group["datapoints"].push({ at: s.at, value: s.value })
    }
    return { datastreams: streams }
}
