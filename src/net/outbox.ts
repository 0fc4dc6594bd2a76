// The outbox: samples waiting for the server's acknowledgement. Pure (no sockets, no clock reads).
// Bounded in bytes because it lives in the 64 KB VM heap; a sample leaves only when the batch that
// carries it is acknowledged, and a resend is harmless because writes are idempotent on `at` [P§9].
import { DEVICE_MAX_SEND_BYTES, encodeRequest } from "../protocol"

/** every: keep each sample (a time series); latest: only the newest one matters (a state, a setting). */
export type Policy = "every" | "latest"

/** Heap cost of one queued sample besides its two strings: the object, its slots and boxed numbers. */
export const SAMPLE_OVERHEAD_BYTES = 64
/** Room in a batch line for the envelope around the datapoints: method, resource, token, the API key header of a first request. */
const ENVELOPE_BYTES = 200
/** Bytes of one datapoint besides its value: {"at":1763790000000,"value":},  */
const DATAPOINT_BYTES = 32
/** Bytes of one datastream group besides its id: {"id":,"datapoints":[]}, */
const GROUP_BYTES = 28

export interface Sample {
    stream: string
    value: string
    /** device clock (ds.millis()) when taken */
    ms: number
    /** server time in ms since the epoch, fixed once stamped so a resend carries the same identity; 0 until the clock is known */
    at: number
    /** the batch carrying it; 0 while waiting */
    batch: number
    latest: boolean
}

export class Outbox {
    private items: Sample[] = []
    /** per datastream, the last `at` given out: two samples of one stream never share an `at` (that would merge them) */
    private lastAt: Record<string, number> = {}
    /** estimated heap bytes held */
    bytes = 0
    /** samples dropped because the outbox was full */
    drops = 0

    constructor(public maxBytes: number) {}

    depth(): number {
        return this.items.length
    }

    /**
     * Queues a sample taken at device time `ms`. `offsetMs` (server time − device time) stamps it at once
     * when the clock is known; pass undefined before the first welcome.
     * When full, the oldest waiting keep-every sample is dropped (counted); if there is none, the new one is.
     */
    add(stream: string, value: string, policy: Policy, ms: number, offsetMs: number) {
        const latest = policy === "latest"
        if (latest) {
            for (let i = 0; i < this.items.length; ++i) {
                const old = this.items[i]
                if (old.stream === stream && old.batch === 0) {
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
        const s: Sample = { stream: stream, value: value, ms: ms, at: 0, batch: 0, latest: latest }
        if (offsetMs !== undefined) this.stamp(s, offsetMs)
        this.items.push(s)
        this.bytes += cost
    }

    /** The clock became known: stamp the samples taken before it. */
    stampAll(offsetMs: number) {
        for (let i = 0; i < this.items.length; ++i) if (this.items[i].at === 0) this.stamp(this.items[i], offsetMs)
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
        for (let i = 0; i < this.items.length && out.length < maxCount; ++i) {
            const s = this.items[i]
            if (s.batch !== 0 || s.at === 0) continue
            // quotes only; escapes are rare (values are short ASCII) and the link checks the exact size
            let add = DATAPOINT_BYTES + s.value.length + 2
            const newGroup = groups.indexOf(s.stream) < 0
            if (newGroup) add += GROUP_BYTES + s.stream.length
            if (size + add >= maxBytes && out.length) break
            if (newGroup) groups.push(s.stream)
            size += add
            s.batch = batchId
            out.push(s)
        }
        return out
    }

    /** The batch was acknowledged: its samples are stored on the server. Returns how many left. */
    ack(batchId: number): number {
        let n = 0
        for (let i = this.items.length - 1; i >= 0; --i) {
            if (this.items[i].batch === batchId) {
                this.remove(i)
                n++
            }
        }
        return n
    }

    /** The batch's fate is unknown (connection lost, no ack): its samples wait to be sent again. */
    release(batchId: number) {
        for (let i = 0; i < this.items.length; ++i) if (this.items[i].batch === batchId) this.items[i].batch = 0
    }

    private stamp(s: Sample, offsetMs: number) {
        let at = Math.round(s.ms + offsetMs)
        const last = this.lastAt[s.stream]
        if (last !== undefined && at <= last) at = last + 1
        this.lastAt[s.stream] = at
        s.at = at
    }

    private dropOldestEvery(): boolean {
        for (let i = 0; i < this.items.length; ++i) {
            const s = this.items[i]
            if (!s.latest && s.batch === 0) {
                this.remove(i)
                this.drops++
                return true
            }
        }
        return false
    }

    private remove(i: number) {
        const s = this.items[i]
        this.bytes -= sampleBytes(s.stream, s.value)
        this.items.insert(i, -1)
    }
}

function sampleBytes(stream: string, value: string): number {
    return SAMPLE_OVERHEAD_BYTES + stream.length + value.length
}

/** [P§5] One `put /feeds/:feed` carrying the samples as datapoints, grouped by datastream in queue order. */
export function encodeBatch(feedResource: string, samples: Sample[], token: string, headers: any): string {
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
    return encodeRequest({ method: "put", resource: feedResource, headers: headers, body: { datastreams: streams }, token: token })
}
