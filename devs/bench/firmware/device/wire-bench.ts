// Firmware-side benchmark, run in the DeviceScript simulator by devs/bench/firmware/wire-bench.ts:
// bytes on the wire and VM time per update for feedline's envelope (the firmware's own encodeBatch
// and socket layer) against a publish of the same data by the DeviceScript MQTT client.
// The host counts the bytes (TLS records included) per connection, in the order connections are made:
// for every case, ours with 0 then K updates, then MQTT with 0 then K updates.
// VM time: ds.millis() stands still while the VM runs without yielding and catches up at the next
// yield, so every timed path ends with `await ds.sleep(0)`; it is timed in chunks of CHUNK updates and
// the median chunk is reported. Test mode has GC stress on (a collection per allocation), which
// inflates both paths: only their ratio means something.
import * as ds from "@devicescript/core"
import { MQTTState, startMQTTClient } from "@devicescript/net"
import { MAX_WRITE_BYTES, NativeSocket, SocketSink, startNativeSocket } from "../../../../src/net/socket"
import { batchBody, encodeBatch, Sample } from "../../../../src/net/outbox"
import { FW_BENCH } from "../../results/tmp/fw-bench-config"

const FEED_RESOURCE = "/feeds/1"
const MQTT_TOPIC = "feeds/1"
const OPEN_TIMEOUT_MS = 10000
/** time for the broker's PUBACKs and the host's counters to settle before the next connection */
const SETTLE_MS = 300
const AT0 = 1763790000000
const YIELD_EVERY = 4
/** updates timed together: ds.millis() counts whole ms, and one update takes about one */
const CHUNK = 8
/** text waiting in the socket beyond which the next update waits for its writes (one write takes at most MAX_WRITE_BYTES) */
const MAX_PENDING_BYTES = 2 * MAX_WRITE_BYTES

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

function report(path: string, name: string, k: number, clock: ChunkClock) {
    console.log("FWBENCH " + JSON.stringify({ path: path, case: name, k: k, ms: clock.total(), medianMsPerUpdate: clock.medianPerUpdate() }))
}

/** Counts the lines the host sends on one connection. */
class LineCounter implements SocketSink {
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

/** Times on the clock, one per chunk of CHUNK updates. */
class ChunkClock {
    chunks: number[] = []
    private t0 = 0
    /** after a yield, so that ds.millis() has caught up */
    start() {
        this.t0 = ds.millis()
    }
    stop() {
        this.chunks.push(ds.millis() - this.t0)
    }
    total(): number {
        let t = 0
        for (let i = 0; i < this.chunks.length; ++i) t += this.chunks[i]
        return t
    }
    /** per update, from the median chunk: a neighbour's burst on this shared machine lands in a few chunks, not in the median */
    medianPerUpdate(): number {
        const s = this.chunks.slice(0)
        s.sort((a, b) => a - b)
        return s.length ? s[Math.floor(s.length / 2)] / CHUNK : 0
    }
}

/** feedline: welcome, then k `put` lines, each acknowledged by the host; VM time of encode + send. */
async function ours(sock: NativeSocket, c: Case, k: number) {
    const counter = new LineCounter()
    const err = sock.connect(FW_BENCH.host, -FW_BENCH.port, counter)
    if (err) throw new Error("ours: " + err)
    // the welcome, then one ack per update
    await until(sock, counter, "no welcome", () => counter.lines >= 1)
    const clock = new ChunkClock()
    for (let i = 0; i < k; i += CHUNK) {
        // what waits to be written lives in the 64 KB heap (40 batches of 10 at once ran out of it): wait
        // for the socket's writes off the clock, as the link, which has one batch in flight, would
        await until(sock, counter, "writes stalled", () => sock.pending() <= MAX_PENDING_BYTES)
        await ds.sleep(0)
        clock.start()
        for (let j = i; j < i + CHUNK && j < k; ++j) {
            sock.send(encodeBatch(FEED_RESOURCE, c.samples, "t" + j, undefined) + "\n")
            // the VM panics after ~128K steps without yielding; the MQTT client yields in every send too
            if (j % YIELD_EVERY === YIELD_EVERY - 1) await ds.sleep(0)
        }
        await ds.sleep(0)
        clock.stop()
    }
    await until(sock, counter, "acks missing", () => counter.lines >= 1 + k)
    sock.abandon()
    report("ours", c.name, k, clock)
    await ds.sleep(SETTLE_MS)
    sock.poll()
}

/** DeviceScript MQTT client: CONNECT, then k QoS 1 publishes of the same JSON body. */
async function mqtt(c: Case, k: number) {
    const client = await startMQTTClient({ host: FW_BENCH.host, port: FW_BENCH.mqttPort, proto: "tls", clientId: "fwbench" })
    // it returns before the broker's CONNACK, and a publish before it is dropped ("drop pk"): wait for it
    const deadline = ds.millis() + OPEN_TIMEOUT_MS
    while (client.readyState !== MQTTState.Connected) {
        if (ds.millis() > deadline) throw new Error("mqtt: not connected")
        await ds.sleep(10)
    }
    const clock = new ChunkClock()
    for (let i = 0; i < k; i += CHUNK) {
        await ds.sleep(0)
        clock.start()
        // the same body as ours carries, built from the same samples for every update as ours is
        for (let j = i; j < i + CHUNK && j < k; ++j) await client.publish(MQTT_TOPIC, batchBody(c.samples), 1)
        await ds.sleep(0)
        clock.stop()
    }
    await ds.sleep(SETTLE_MS)
    await client.stop()
    report("mqtt", c.name, k, clock)
    await ds.sleep(SETTLE_MS)
}

async function main() {
    const all = cases()
    const sock = startNativeSocket()
    for (let i = 0; i < all.length; ++i) {
        await ours(sock, all[i], 0)
        await ours(sock, all[i], FW_BENCH.updates)
        await mqtt(all[i], 0)
        await mqtt(all[i], FW_BENCH.updates)
    }
    console.log("FWBENCH_DONE")
    ds.restart()
}

main.start()
