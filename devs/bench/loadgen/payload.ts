// The one update every target receives: the body the firmware sends (src/net/outbox.ts encodeBatch):
// one datastream with one stamped datapoint, the value being the device's sequence number so a
// subscriber can tell which update a push belongs to. feedline gets it
// as the body of `put /feeds/:id`; the MQTT peers get the same bytes as a QoS 1 PUBLISH payload.
import { encode } from "../../../src/protocol.ts"

export function datastreamId(device: number): string {
    return "d" + device
}

/** Device index from a datastream id written by datastreamId(), or -1. */
export function deviceOf(datastream: string): number {
    return datastream.charCodeAt(0) === 100 /* d */ ? Number(datastream.slice(1)) : -1
}

export function updateBody(device: number, seq: number, atMs: number): Record<string, unknown> {
    return { datastreams: [{ id: datastreamId(device), datapoints: [{ at: atMs, value: String(seq) }] }] }
}

export function updatePayload(device: number, seq: number, atMs: number): string {
    return encode(updateBody(device, seq, atMs))
}

/** The sequence number in an MQTT payload written by updatePayload(). */
export function seqOfPayload(body: { datastreams: { datapoints: { value: string }[] }[] }): number {
    return Number(body.datastreams[0].datapoints[0].value)
}

export function mqttTopic(feedId: number, device: number): string {
    return `feeds/${feedId}/${datastreamId(device)}`
}
