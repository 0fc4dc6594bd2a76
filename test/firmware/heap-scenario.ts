// The whole firmware at its heap caps at once, in the simulator (test mode: GC stress, the 64 KB VM heap),
// for the full-heap test (heap.test.ts) and the measurement (`npm run heap`, devs/tools/heap-budget.ts):
//   the device as src/app/device.ts starts it (the simulator board: simulated sensors, three actuators,
//   seven subscriptions) over the real socket layer on the fake ESP32 runtime; the outbox filled to its
//   cap with the server never acknowledging; then, in one read, a replay of REPLAY_LIMIT pushes, a server
//   line of MAX_LINE_BYTES and more pushes, up to the socket's receive cap, all queued before the link
//   handles any; `marginBytes` held in 256-byte blocks all along.
// `probe` measures instead: at that stage the program allocates 256-byte blocks until it runs out of memory,
// printing "HEAP <stage> free>=<bytes>" as it goes (the last line before the panic is the free heap).
import * as ds from "@devicescript/core"
import { writeSetting } from "@devicescript/settings"
import { FieldIo, startBoardIo } from "../../src/app/io"
import { simBoard } from "../../src/foundation/config"
import { SIMULATOR_DRIVERS } from "../../src/sensors/simulated"
import { startLink } from "../../src/net"
import { MAX_LINE_BYTES } from "../../src/net/framer"
import { requestInLongForm } from "../../src/protocol"
import { Link } from "../../src/net/link"
import { RX_MAX_BYTES } from "../../src/net/socket"
import { REPLAY_LIMIT } from "../../src/net/subscriptions"
import { FakeEsp32Socket } from "./fake-runtime"

export const PROBE_NONE = 0
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

    constructor(private rt: FakeEsp32Socket) {}

    answer() {
        const text = this.partial + this.rt.takeReceived()
        let start = 0
        for (;;) {
            const nl = text.indexOf("\n", start)
            if (nl < 0) break
            // only subscribe requests are parsed: a batch line is not copied out. The device writes the
            // short form [P§5a] ({"m":"subscribe",…) and is answered in it, as the server does
            if (text.indexOf('"subscribe"', start) === start + 5) {
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
}

export async function fillEverything(marginBytes: number, probe: number): Promise<HeapRun> {
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

    await writeSetting("FEED_ID", 7)
    await writeSetting("API_KEY", "key")
    await writeSetting("REBOOT_MIN", 0)
    await writeSetting("DIAG_S", 3600)
    const link = await startLink()
    const io = await startBoardIo(link, simBoard(), SIMULATOR_DRIVERS)

    // connect; a slow keep-alive so that nothing times out while the test takes its time
    while (!rt.cmds.length) await ds.sleep(20)
    rt.take()
    rt.tcpConnected()
    rt.handshakeDone()
    rt.serverSends(`{"welcome":"feedline/0.1.0","session":"h","time":${SERVER_TIME_MS},"heartbeat":600000,"faulty":600000,"timeout":900000}\n`)
    await pump(rt, server)
    if (link.state !== "up") throw new Error("heap scenario: link not up: " + link.state)
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
        if (sent + piece.length > RX_MAX_BYTES) return undefined
        sent += piece.length
        n++
        return piece
    }
    rt.mainPass()
    if (probe === PROBE_RECEIVED) probeFree(probe, held)
    await pump(rt, server)
    for (let i = 0; i < io.actuators.length; ++i) await io.actuators[i].idle()
    if (probe === PROBE_HANDLED) probeFree(probe, held)
    return { link: link, rt: rt, io: io, outboxBytes: link.stats().outboxBytes }
}
