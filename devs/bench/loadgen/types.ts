// What the load generator knows about a target and the two things it does with one: open simulated
// devices that send acknowledged updates, and open subscribers that receive the pushes.

export type ClientKind = "feedline" | "mqtt"

/** Everything a worker needs to reach a target; plain data, sent over IPC. */
export interface TargetAddress {
    kind: ClientKind
    host: string
    port: number
    caPath: string
    /** the feed every simulated device writes to (device i writes datastream `d<i>`) */
    feedId: number
    /** feedline: key with update permission on the feed; MQTT peers run without auth */
    deviceKey?: string
    /** feedline: key with read permission on the feed, for subscribers */
    readKey?: string
}

export interface WireBytes {
    read: number
    written: number
}

/**
 * Called once per update when its acknowledgement arrives (or the update is refused; `retryAfterMs`: the
 * server's hint of a 429/503, after which a device sends again).
 */
export type AckHandler = (seq: number, ok: boolean, detail?: string, retryAfterMs?: number) => void
/** Called for every push a subscriber receives: which device wrote which sequence number. */
export type PushHandler = (device: number, seq: number) => void

export interface DeviceConnection {
    /** Sends update `seq` (a fresh number per device) stamped `atMs`; the ack arrives via the AckHandler. */
    send(seq: number, atMs: number): void
    /** raw TCP payload bytes, i.e. TLS records included, since the connection opened */
    bytes(): WireBytes
    close(): void
}

export interface SubscriberConnection {
    bytes(): WireBytes
    close(): void
}

export interface ClientAdapter {
    /** Connects, authenticates and gets one update (seq 0) acknowledged before resolving; writes to `feedId` (default: the address's). */
    openDevice(device: number, onAck: AckHandler, onClose: (why: string) => void, feedId?: number): Promise<DeviceConnection>
    /** Connects and subscribes to every datastream of the feed (default: the address's) before resolving. */
    openSubscriber(index: number, onPush: PushHandler, onClose: (why: string) => void, feedId?: number): Promise<SubscriberConnection>
    /** A second feed (MQTT: topic tree) that the load phases do not write: the noisy-neighbour phase's quiet one. */
    quietFeed(): Promise<number>
    /** Sends keep-alives the protocol needs from idle clients; called every KEEPALIVE_SWEEP_MS. */
    sweepKeepAlive?(nowMs: number): void
}
