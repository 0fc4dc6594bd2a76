// Firmware-side benchmark, run in the DeviceScript simulator by devs/bench/firmware/wire-bench.ts:
// bytes on the wire and VM time per update for feedline's envelope (the firmware's own encodeBatch
// and socket layer) against a publish of the same data, built from the same samples, by the
// DeviceScript MQTT client. Updates go one at a time, as a device sends them: ours after the previous
// one's acknowledgement (the link has one batch in flight), MQTT after a pause long enough for the
// previous PUBACK (the client does not say when one came); so every request and answer travels in
// its own TLS records on both sides.
// The host counts the bytes (TLS records included) per connection, in the order connections are made:
// for every case, ours with 0 then K updates, then MQTT with 0 then K updates.
// VM time per update: from the update's start until its text was handed to the runtime's socket (ours:
// encodeBatch, send, the socket's write; MQTT: the awaited publish), not the waits in between.
// ds.millis() stands still while the VM runs without yielding and catches up at the next yield, so
// every timed section starts and ends after a yield; updates are summed in chunks of CHUNK and the
// median chunk is reported. Test mode has GC stress on (a collection per allocation), which inflates
// both paths: only their ratio means something.
import * as ds from "@devicescript/core"
import { MQTTState, startMQTTClient } from "@devicescript/net"
import { NativeSocket, SocketSink, WRITE_GAP_MS, startNativeSocket } from "../../../../src/net/socket"
import { batchBody, encodeBatch, Sample } from "../../../../src/net/outbox"
import { FW_BENCH } from "../../results/tmp/fw-bench-config"

const FEED_RESOURCE = "/feeds/1"
const MQTT_TOPIC = "feeds/1"
const OPEN_TIMEOUT_MS = 10000
/** time for the broker's PUBACKs and the host's counters to settle before the next connection */
const SETTLE_MS = 300
const AT0 = 1763790000000
/** updates summed together: ds.millis() counts whole ms, and one update takes a few */
const CHUNK = 8
/** MQTT: a pause after each publish, for its PUBACK (loopback: well under a ms when the machine is quiet) */
const MQTT_PAUSE_MS = 50

function sample(stream: string, value: string, at: number): Sample {
    return { stream: stream, value: value, at: at }
}

interface Case {
    name: string
    samples: Sample[]
}

function cases(): Case[] {
    const names = ["temp", "hum", "pres", "co2", "pm25", "pm10", "voc", "lux", "batt", "rssi"]
    const values = ["21.5", "48.2", "1013.2", "612", "7.4", "11.9", "0.31", "530", "3.92", "-67"]
    const ten: Sample[] = []
    for (let i = 0; i < names.length; ++i) ten.push(sample(names[i], values[i], AT0))
    const buffered: Sample[] = []
    for (let i = 0; i < 10; ++i) buffered.push(sample("temp", "21." + i, AT0 + i * 60000))
    return [
        { name: "one", samples: [sample("temp", "21.5", AT0)] },
        { name: "ten", samples: ten },
        { name: "buffered", samples: buffered },
    ]
}

function report(path: string, name: string, k: number, round: number, clock: UpdateClock) {
    console.log("FWBENCH " + JSON.stringify({ path: path, case: name, k: k, round: round, ms: clock.totalMs, medianMsPerUpdate: clock.medianPerUpdate() }))
}

/** Counts the lines the host sends on one connection. */
class LineCounter implements SocketSink {
    /** lines the benchmark has seen: the welcome, then acks */
    acked = 1
    opened = false
    closed: string = undefined
    lines = 0
    onOpen() {
        this.opened = true
    }
    onData(b: Buffer) {
        for (let i = 0; i < b.length; ++i) if (b[i] === 10) this.lines++
    }
    onClosed(reason: string) {
        this.closed = reason
    }
}

/** Polls the socket (as the link's ticker does) until `done()` or the connection closed. */
async function until(sock: NativeSocket, c: LineCounter, what: string, done: () => boolean) {
    const deadline = ds.millis() + OPEN_TIMEOUT_MS
    while (!done()) {
        if (c.closed !== undefined || ds.millis() > deadline) throw new Error("ours: " + what + " " + c.closed)
        sock.poll()
        await ds.sleep(10)
    }
}

/** VM time per update: timed sections summed per chunk of CHUNK updates. */
class UpdateClock {
    /** per chunk: ms per update */
    perUpdate: number[] = []
    totalMs = 0
    private chunkMs = 0
    private inChunk = 0
    private t0 = 0
    /** after a yield, so that ds.millis() has caught up */
    start() {
        this.t0 = ds.millis()
    }
    /** after a yield, once one update is done */
    stop() {
        const ms = ds.millis() - this.t0
        this.totalMs += ms
        this.chunkMs += ms
        if (++this.inChunk === CHUNK) this.endChunk()
    }
    /** the median chunk's: a neighbour's burst on this shared machine lands in a few chunks, not in the median */
    medianPerUpdate(): number {
        if (this.inChunk) this.endChunk()
        const s = this.perUpdate.slice(0)
        s.sort((a, b) => a - b)
        return s.length ? s[Math.floor(s.length / 2)] : 0
    }
    private endChunk() {
        this.perUpdate.push(this.chunkMs / this.inChunk)
        this.chunkMs = 0
        this.inChunk = 0
    }
}

/** feedline: welcome, then k `put` lines, each sent once the previous one is acknowledged. */
async function ours(sock: NativeSocket, c: Case, k: number, round: number) {
    const counter = new LineCounter()
    const err = sock.connect(FW_BENCH.host, -FW_BENCH.port, counter)
    if (err) throw new Error("ours: " + err)
    // the welcome, then one ack per update
    await until(sock, counter, "no welcome", () => counter.lines >= 1)
    const clock = new UpdateClock()
    for (let i = 0; i < k; ++i) {
        // off the clock: the socket's gap between writes is over, so this update's write goes at once
        await ds.sleep(WRITE_GAP_MS)
        clock.start()
        sock.send(encodeBatch(FEED_RESOURCE, c.samples, "t" + i, undefined) + "\n")
        while (sock.pending()) await ds.sleep(0) // written at the next turn (the socket's timer)
        clock.stop()
        await until(sock, counter, "ack missing", () => counter.lines > counter.acked)
        counter.acked++
    }
    sock.abandon()
    report("ours", c.name, k, round, clock)
    await ds.sleep(SETTLE_MS)
    sock.poll()
}

/** DeviceScript MQTT client: CONNECT, then k QoS 1 publishes of the same JSON body, one at a time. */
async function mqtt(c: Case, k: number, round: number) {
    const client = await startMQTTClient({ host: FW_BENCH.host, port: FW_BENCH.mqttPort, proto: "tls", clientId: "fwbench" })
    // it returns before the broker's CONNACK, and a publish before it is dropped ("drop pk"): wait for it
    const deadline = ds.millis() + OPEN_TIMEOUT_MS
    while (client.readyState !== MQTTState.Connected) {
        if (ds.millis() > deadline) throw new Error("mqtt: not connected")
        await ds.sleep(10)
    }
    const clock = new UpdateClock()
    for (let i = 0; i < k; ++i) {
        await ds.sleep(MQTT_PAUSE_MS)
        clock.start()
        // the same body as ours carries, built from the same samples for every update as ours is
        await client.publish(MQTT_TOPIC, batchBody(c.samples), 1)
        await ds.sleep(0)
        clock.stop()
    }
    await ds.sleep(SETTLE_MS)
    await client.stop()
    report("mqtt", c.name, k, round, clock)
    await ds.sleep(SETTLE_MS)
}

async function main() {
    const all = cases()
    const sock = startNativeSocket()
    for (let i = 0; i < all.length; ++i) {
        await ours(sock, all[i], 0, 0)
        await ours(sock, all[i], FW_BENCH.updates, 0)
        await mqtt(all[i], 0, 0)
        await mqtt(all[i], FW_BENCH.updates, 0)
    }
    // more rounds for VM time only (their connections come after those the host counts bytes of):
    // ours and MQTT right after each other in every round, so both get the same weather
    for (let r = 1; r < FW_BENCH.rounds; ++r) {
        for (let i = 0; i < all.length; ++i) {
            await ours(sock, all[i], FW_BENCH.updates, r)
            await mqtt(all[i], FW_BENCH.updates, r)
        }
    }
    console.log("FWBENCH_DONE")
    ds.restart()
}

main.start()
