// The whole firmware at its heap caps at once, in the simulator (test mode: GC stress, the 64 KB VM heap),
// for the full-heap test (heap.test.ts) and the measurement (`npm run heap`, devs/tools/heap-budget.ts):
//   the device as src/app/device.ts starts it (the simulator board: simulated sensors, three actuators,
//   seven subscriptions) over the real socket layer on the fake ESP32 runtime; the outbox filled to its
//   cap with the server never acknowledging; then, in one read, a replay of REPLAY_LIMIT pushes, a server
//   line of MAX_LINE_BYTES and more pushes, up to the socket's receive cap, all queued before the link
//   handles any; `marginBytes` held in 256-byte blocks all along.
// `probe` measures instead: at that stage the program allocates 256-byte blocks until it runs out of memory,
// printing "HEAP <stage> free>=<bytes>" as it goes (the last line before the panic is the free heap).
// `claimed`: the board starts as a fleet board flashed without a key (PRODUCT_ID and CLAIM_CODE, no API_KEY
// nor FEED_ID): startLink() claims its feed, key and policies over the first connection (src/net/claim.ts)
// before the board's sensors and actuators start, and the rest runs on the claimed feed.
import * as ds from "@devicescript/core"
import { expect } from "@devicescript/test"
import { deleteSetting, writeSetting } from "@devicescript/settings"
import { FieldIo, startBoardIo } from "../../src/app/io"
import { simBoard } from "../../src/foundation/config"
import { SIMULATOR_DRIVERS } from "../../src/sensors/simulated"
import { startLink } from "../../src/net"
import { MAX_LINE_BYTES } from "../../src/net/framer"
import { requestInLongForm } from "../../src/protocol"
import { Link } from "../../src/net/link"
import { RX_CHUNK_CHARGE_BYTES, RX_MAX_BYTES } from "../../src/net/socket"
import { MAX_OUTBOX_BYTES } from "../../src/foundation/outbox-budget"
import { REPLAY_LIMIT } from "../../src/net/subscriptions"
import { FakeEsp32Socket, READ_CHUNK } from "./fake-runtime"

/**
 * Held through the scenario by the full-heap tests (heap.test.ts, heap-claim.test.ts); `npm run heap` (and
 * `-- --claim`) measured 12-13 KB passing, 12.5-13.5 KB running out; `-- --largest` (nine subscriptions, what
 * heap.test.ts runs) 11.8-13.3 KB passing (docs/FIRMWARE.md "Heap budget").
 */
export const HEAP_MARGIN_BYTES = 8192

export const PROBE_NONE = 0
/** [claimed] the claim answered and kept in settings, before the board's sensors and actuators start */
export const PROBE_CLAIMED = 5
/** the device started and connected, its subscriptions acknowledged */
export const PROBE_STARTED = 1
/** the outbox at its cap */
export const PROBE_OUTBOX = 2
/** the receive burst queued, not handled yet */
export const PROBE_RECEIVED = 3
/** everything handled, caps still held */
export const PROBE_HANDLED = 4

const BLOCK_BYTES = 256
const SERVER_TIME_MS = 1763790000000
const PRODUCT_ID = "p0a1b2c3d"
/** what the server answers a claim (devs/server/handlers/claims.ts), at its real sizes: a 32-character key, a policy per sensor */
const CLAIM_ANSWER_BODY =
    '{"device":"d0a1b2c3d4e5f","feed":7,"key":"Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3Jh","resource":"/feeds/7","policies":{"temp":"i=10s d=0.2","humidity":"i=10s d=1","light":"i=30s d=5","rssi":"i=60s"}}'

/** Allocates blocks until the VM runs out of memory (never returns). */
function probeFree(stage: number, held: Buffer[]) {
    let n = 0
    for (;;) {
        held.push(Buffer.alloc(BLOCK_BYTES))
        n++
        console.log(`HEAP ${stage} free>=${n * BLOCK_BYTES}`)
    }
}

/** The fake server's side: acknowledges the subscribe requests the device wrote, never the batches. */
class FakeServer {
    private partial = ""
    /** subscription tokens by resource suffix ("led", "relay", …) */
    tokens: Record<string, string> = {}
    /** claim requests answered */
    claims = 0

    constructor(private rt: FakeEsp32Socket) {}

    answer() {
        const text = this.partial + this.rt.takeReceived()
        let start = 0
        for (;;) {
            const nl = text.indexOf("\n", start)
            if (nl < 0) break
            // only subscribe requests are parsed: a batch line is not copied out. The device writes the
            // short form [P§5a] ({"m":"subscribe",…) and is answered in it, as the server does
            if (text.indexOf('"post","r":"/products/', start) === start + 5) {
                // the claim [fleet]: answered with the feed and key, in the short form
                this.rt.serverSends('{"t":"' + JSON.parse(text.slice(start, nl))["t"] + '","s":201,"b":' + CLAIM_ANSWER_BODY + "}\n")
                this.claims++
            } else if (text.indexOf('"subscribe"', start) === start + 5) {
                const req = requestInLongForm(JSON.parse(text.slice(start, nl)))
                const res: string = req["resource"]
                this.tokens[res.slice(res.lastIndexOf("/") + 1)] = req["token"]
                this.rt.serverSends(`{"t":"${req["token"]}"}\n`)
            }
            start = nl + 1
        }
        this.partial = text.slice(start)
    }
}

function push(token: string, id: string, value: string, atMs: number, pad: string): string {
    const at = "2025-11-22T05:40:" + (10 + Math.floor(atMs / 1000)) + "." + (100 + (atMs % 900)) + "Z"
    // concatenated: a template ending in "}}" loses a brace in DeviceScript (measured)
    return '{"token":"' + token + '","status":200,"resource":"/feeds/7/datastreams/' + id + '","body":{"id":"' + id + '","current_value":"' + value + '","at":"' + at + '"' + pad + "}}\n"
}

/** Moves the fake worker and main loop until nothing is left to do. */
async function pump(rt: FakeEsp32Socket, server: FakeServer) {
    for (let i = 0; i < 20; ++i) {
        rt.writeAll()
        server.answer()
        rt.mainPass()
        await ds.sleep(20)
    }
}

export interface HeapRun {
    link: Link
    rt: FakeEsp32Socket
    io: FieldIo
    outboxBytes: number
    /** claim requests the server answered (0 on a board with a key) */
    claims: number
}

/** startLink() in a fiber of its own: on a board that claims, it returns only once the claim was answered and kept. */
async function startLinkInto(box: { link: Link }) {
    box.link = await startLink()
}

/** The connection comes up: the worker connects and shakes hands, the server welcomes (a slow keep-alive: nothing times out while the test takes its time). */
async function connect(rt: FakeEsp32Socket) {
    while (!rt.cmds.length) await ds.sleep(20)
    rt.take()
    rt.tcpConnected()
    rt.handshakeDone()
    rt.serverSends(`{"welcome":"feedline/0.1.0","session":"h","time":${SERVER_TIME_MS},"heartbeat":600000,"faulty":600000,"timeout":900000}\n`)
}

/**
 * The most a build lets settings configure: a BME680 (temp, humidity, pressure), light, soil and rssi, with
 * the led, relay and setpoint: nine subscriptions (six `<sensor>.cfg`, three commands) and six samplers. The
 * boards' own wirings make eight (feedline_c3, feedline_s3), the simulator's seven; SOIL_PIN on an S3 makes nine.
 */
export const LARGEST_IO_SUBSCRIPTIONS = 9

export async function fillEverything(marginBytes: number, probe: number, claimed?: boolean, largestIo?: boolean): Promise<HeapRun> {
    const held: Buffer[] = []
    for (let b = 0; b < marginBytes; b += BLOCK_BYTES) held.push(Buffer.alloc(BLOCK_BYTES))

    // the runtime's socket hooks, faked
    const rt = new FakeEsp32Socket()
    const d = ds as any
    d._socketOpen = (h: string, p: number) => rt.open(h, p)
    d._socketWrite = (t: string) => rt.write(t)
    d._socketClose = () => rt.close()
    rt.onEvent = (e: string, a?: any) => d._socketOnEvent(e, a)
    const server = new FakeServer(rt)

    await writeSetting("REBOOT_MIN", 0)
    await writeSetting("DIAG_S", 3600)
    if (largestIo) {
        await writeSetting("CLIMATE", "bme680")
        await writeSetting("SOIL_PIN", 1)
    }
    let link: Link
    if (claimed) {
        // as flashed for a fleet: the product and this board's activation code (an Ed25519 signature, 86 characters)
        await deleteSetting("API_KEY")
        await deleteSetting("FEED_ID")
        await writeSetting("PRODUCT_ID", PRODUCT_ID)
        await writeSetting("CLAIM_CODE", "Q2xhaW1Db2RlQ2xhaW1Db2RlQ2xhaW1Db2RlQ2xhaW1Db2RlQ2xhaW1Db2RlQ2xhaW1Db2RlQ2xhaW1Db2RlQ2")
        const box: { link: Link } = { link: undefined }
        startLinkInto.start(box)
        await connect(rt)
        while (!box.link) await pump(rt, server)
        link = box.link
        if (server.claims !== 1 || link.state !== "up") throw new Error("heap scenario: claim: " + server.claims + " answered, link " + link.state)
        if (probe === PROBE_CLAIMED) probeFree(probe, held)
    } else {
        await writeSetting("FEED_ID", 7)
        await writeSetting("API_KEY", "key")
        link = await startLink()
    }
    const io = await startBoardIo(link, simBoard(), SIMULATOR_DRIVERS)
    if (!claimed) await connect(rt)
    await pump(rt, server)
    if (link.state !== "up") throw new Error("heap scenario: link not up: " + link.state)
    if (largestIo && Object.keys(server.tokens).length !== LARGEST_IO_SUBSCRIPTIONS) throw new Error("heap scenario: " + Object.keys(server.tokens).length + " subscriptions")
    if (probe === PROBE_STARTED) probeFree(probe, held)

    // the outbox at its cap (the batch in flight is never acknowledged)
    for (let i = 0; link.stats().drops === 0; ++i) {
        link.report("fill", 20 + (i % 1000) / 100)
        if (i % 20 === 0) await ds.sleep(0)
    }
    await pump(rt, server)
    if (probe === PROBE_OUTBOX) probeFree(probe, held)

    // one read: a replay, a maximum line, more pushes up to the receive cap. The maximum line is a valid
    // push of exactly MAX_LINE_BYTES (newline included) padded with a field the device ignores; it is
    // handed over in pieces, so the test holds no copy of it.
    const led = server.tokens["led"]
    const relay = server.tokens["relay"]
    const X = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    const maxLine = push(led, "led", "on", REPLAY_LIMIT, ',"note":"')
    const head = maxLine.slice(0, maxLine.length - 3) // up to the opening quote of the pad
    let padLeft = MAX_LINE_BYTES - head.length - 4 // the pad, then '"}}' and the newline
    let n = 0
    let sent = 0
    rt.serverSource = () => {
        let piece: string
        if (n < REPLAY_LIMIT) piece = push(led, "led", n % 2 ? "on" : "off", n, "")
        else if (n === REPLAY_LIMIT) piece = head
        else if (padLeft > 0) {
            piece = padLeft >= X.length ? X : X.slice(0, padLeft)
            padLeft -= piece.length
            sent += piece.length
            return piece
        } else if (n === REPLAY_LIMIT + 1) piece = '"}}\n'
        else piece = push(relay, "relay", n % 2 ? "1" : "0", n, "")
        // the socket charges each read (READ_CHUNK) RX_CHUNK_CHARGE_BYTES beside its bytes
        const queued = sent + piece.length
        if (queued + Math.ceil(queued / READ_CHUNK) * RX_CHUNK_CHARGE_BYTES > RX_MAX_BYTES) return undefined
        sent += piece.length
        n++
        return piece
    }
    rt.mainPass()
    if (probe === PROBE_RECEIVED) probeFree(probe, held)
    await pump(rt, server)
    for (let i = 0; i < io.actuators.length; ++i) await io.actuators[i].idle()
    if (probe === PROBE_HANDLED) probeFree(probe, held)
    return { link: link, rt: rt, io: io, outboxBytes: link.stats().outboxBytes, claims: server.claims }
}

/** What the full-heap tests ask of a run: the link up, the outbox at its cap, every line handled, the maximum line too. */
export function expectEverythingHandled(r: HeapRun) {
    const s = r.link.stats()
    expect(r.link.state).toBe("up")
    expect(r.outboxBytes > MAX_OUTBOX_BYTES - 200).toBe(true)
    expect(s.badLines).toBe(0)
    expect(s.overlongLines).toBe(0)
    expect(r.io.actuators[0].state).toBe(1) // the maximum line was the last led push: "on"
}
