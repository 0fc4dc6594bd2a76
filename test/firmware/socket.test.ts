// The socket layer (src/net/socket.ts) against a fake of the ESP32 runtime (fake-runtime.ts): each rule
// R1-R7 has a test that fails without it. The clock is moved by hand; the worker task and the main loop
// of the fake are moved by the test, so the interleavings the C code allows are set up on purpose.
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { MAX_WRITE_BYTES, NativeSocket, OPEN_STUCK_MS, RX_CHUNK_CHARGE_BYTES, RX_MAX_BYTES, SETTLE_MS, SocketSink, WRITE_GAP_MS } from "../../src/net/socket"
import { FakeEsp32Socket } from "./fake-runtime"
import { DEFAULT_CONFIG, LinkConfig } from "../../src/net/config"
import { Link } from "../../src/net/link"
import { bringUp, makeLink, SERVER_TIME_MS, welcomeLine } from "./netfakes"

/** Records what reaches the link, as "open", "data:<text>", "closed:<reason>". */
class RecordingSink implements SocketSink {
    seen: string[] = []
    onOpen() {
        this.seen.push("open")
    }
    onData(chunk: Buffer) {
        this.seen.push("data:" + chunk.toString())
    }
    onClosed(reason: string) {
        this.seen.push("closed:" + reason)
    }
    text(): string {
        return this.seen.join(",")
    }
}

interface Rig {
    rt: FakeEsp32Socket
    sock: NativeSocket
    clock: { ms: number }
}

function rig(): Rig {
    const rt = new FakeEsp32Socket()
    const clock = { ms: 1000 }
    const sock = new NativeSocket(rt, () => clock.ms)
    rt.onEvent = (e: string, a?: any) => sock.onEvent(e, a)
    return { rt: rt, sock: sock, clock: clock }
}

/** Lets the receive fiber hand queued entries to the sink. */
async function settle() {
    for (let i = 0; i < 20; ++i) await ds.sleep(1)
}

/** Moves the clock and polls, as the link's ticker does. */
function later(r: Rig, ms: number) {
    r.clock.ms += ms
    r.sock.poll()
}

/** A connection all the way up: issued, connected, handshake done, `open` delivered. */
async function up(r: Rig, sink: SocketSink) {
    expect(r.sock.connect("h", -7443, sink)).toBe("")
    r.rt.take()
    r.rt.tcpConnected()
    r.rt.handshakeDone()
    r.rt.mainPass()
    await settle()
}

describe("socket layer over the ESP32 runtime (fake)", () => {
    test("R1+R3: a late `open` of an abandoned attempt never reaches the next connection; the next open waits for it", async () => {
        const r = rig()
        const a = new RecordingSink()
        expect(r.sock.connect("h", -7443, a)).toBe("")
        r.rt.take()
        r.rt.tcpConnected() // the worker is inside the handshake (it has no timeout)
        r.sock.abandon() // the link's connect timeout
        const b = new RecordingSink()
        expect(r.sock.connect("h", -7443, b)).toBe("")
        expect(r.rt.cmds.length).toBe(0) // B is not queued behind A
        r.rt.handshakeDone() // A's open, late
        r.rt.mainPass()
        await settle()
        expect(b.text()).toBe("") // A's open went to nobody
        expect(a.text()).toBe("")
        expect(r.rt.closes).toBe(1) // A closed once its handshake was over
        later(r, SETTLE_MS)
        expect(r.rt.cmds.length).toBe(1) // now B
        r.rt.take()
        r.rt.tcpConnected()
        r.rt.handshakeDone()
        r.rt.mainPass()
        await settle()
        expect(b.text()).toBe("open")
        expect(r.rt.hazards.length).toBe(0)
    })

    test("R2: a connection abandoned during its handshake is not closed under the worker", async () => {
        const r = rig()
        const a = new RecordingSink()
        r.sock.connect("h", -7443, a)
        r.rt.take()
        r.rt.tcpConnected()
        later(r, 15000)
        r.sock.abandon()
        later(r, 15000)
        expect(r.rt.closes).toBe(0)
        expect(r.rt.hazards.length).toBe(0)
        expect(r.sock.deferredCloses).toBe(1)
        r.rt.handshakeFailed("mbedtls_ssl_handshake") // the runtime closes it itself: nothing to do
        r.rt.mainPass()
        await settle()
        expect(r.rt.closes).toBe(0)
        expect(a.text()).toBe("")
        expect(r.rt.hazards.length).toBe(0)
    })

    test("R2: an attempt whose handshake never ends (the server accepted and went silent) is closed after OPEN_STUCK_MS, and the next open goes out", async () => {
        const r = rig()
        const a = new RecordingSink()
        r.sock.connect("h", -7443, a)
        r.rt.take()
        r.rt.tcpConnected() // the worker blocks in the handshake's read: no timeout, no TCP keep-alive
        later(r, 15000)
        r.sock.abandon() // the link's E_CONNECT_TIMEOUT
        const b = new RecordingSink()
        expect(r.sock.connect("h", -7443, b)).toBe("") // waits for A (R1)
        later(r, OPEN_STUCK_MS - 15000 - 100)
        expect(r.rt.closes).toBe(0) // not yet: the worker might still be computing
        later(r, 100)
        expect(r.rt.closes).toBe(1) // closed under the blocked worker: the one close R2 allows
        r.rt.handshakeFailed("mbedtls_ssl_handshake") // its read fails; with the socket closed nothing is pushed
        later(r, SETTLE_MS)
        expect(r.rt.cmds.length).toBe(1) // B's open
        r.rt.take()
        r.rt.tcpConnected()
        r.rt.handshakeDone()
        r.rt.mainPass()
        await settle()
        expect(b.text()).toBe("open")
        expect(a.text()).toBe("")
        expect(r.rt.hazards.join(",")).toBe("close during handshake")
    })

    test("the link over the socket: a handshake that never ends costs one stuck period, then the link connects again with its backoff and is up", async () => {
        const r = rig()
        const cfg: LinkConfig = Object.assign({}, DEFAULT_CONFIG) as LinkConfig
        cfg.apiKey = "KEY"
        const states: string[] = []
        const sock = r.sock
        const link: Link = new Link(cfg, {
            transport: { open: () => sock.connect("h", -7443, link), send: (t: string) => sock.send(t), close: () => sock.abandon() },
            now: () => r.clock.ms,
            random: () => 0.5,
            reboot: (n: number) => {
                states.push("reboot")
            },
            healthy: () => {},
            flashWrites: () => 0,
            defer: (fn: () => void) => fn(),
            log: (m: string) => {},
        })
        link.onState((st: string, why: string) => {
            states.push(why.indexOf("E_CONNECT_TIMEOUT") === 0 ? "timeout" : st)
        })
        link.start()
        /** ticks as the runner does (poll, then tick) until `done` or `ms` have passed */
        const runUntil = async (done: () => boolean, ms: number) => {
            const end = r.clock.ms + ms
            for (let n = 1; !done() && r.clock.ms < end; ++n) {
                r.clock.ms += 100
                sock.poll()
                link.tick()
                if (n % 20 === 0) await ds.sleep(0)
            }
        }
        await runUntil(() => r.rt.cmds.length > 0, 1000)
        r.rt.take()
        r.rt.tcpConnected() // and the server says nothing: the handshake's read blocks for ever
        await runUntil(() => r.rt.closes > 0, 200000)
        expect(r.rt.closes).toBe(1)
        r.rt.handshakeFailed("mbedtls_ssl_handshake") // the close ends the worker's read
        // the next attempt: the link's backoff (at most BACKOFF_MAX_S) and one connect timeout at most
        await runUntil(() => r.rt.cmds.length > 0, cfg.backoff.capMs + cfg.connectTimeoutMs)
        expect(r.rt.cmds.length).toBe(1)
        r.rt.take()
        r.rt.tcpConnected()
        r.rt.handshakeDone()
        r.rt.mainPass()
        await settle()
        r.rt.serverSends(welcomeLine(SERVER_TIME_MS))
        r.rt.mainPass()
        await settle()
        expect(link.state).toBe("up")
        expect(states.indexOf("timeout") > 0).toBe(true)
        expect(states.indexOf("reboot")).toBe(-1)
        expect(r.rt.hazards.join(",")).toBe("close during handshake")
    })

    test("R2: a connection is not closed while the worker may still be inside a write", async () => {
        const r = rig()
        const a = new RecordingSink()
        await up(r, a)
        r.sock.send("batch\n")
        r.rt.take() // the worker is writing
        r.sock.abandon()
        expect(r.rt.closes).toBe(0)
        r.rt.wrote()
        later(r, WRITE_GAP_MS)
        expect(r.rt.closes).toBe(1)
        expect(r.rt.hazards.length).toBe(0)
        expect(r.rt.received["1"]).toBe("batch\n")
    })

    test("R3: events when no connection is open (after a VM restart, a late close) are dropped and counted", async () => {
        const r = rig()
        const a = new RecordingSink()
        r.sock.onEvent("data", Buffer.from("left over from the previous program\n"))
        r.sock.onEvent("close")
        expect(r.sock.stale).toBe(2)
        await up(r, a)
        r.sock.abandon()
        r.sock.onEvent("data", Buffer.from("x")) // between our close and the runtime dropping events
        await settle()
        expect(a.text()).toBe("open")
    })

    test("R4: writes are coalesced, one in flight, WRITE_GAP_MS apart; reads in between still arrive in order", async () => {
        const r = rig()
        const a = new RecordingSink()
        await up(r, a)
        r.sock.send("one\n")
        r.sock.send("two\n")
        r.sock.send("three\n")
        expect(r.rt.cmds.length).toBe(1) // "one" at once; two and three wait for the gap
        r.rt.take()
        r.rt.serverSends("ack1\n")
        r.rt.mainPass() // the main task reads while the worker writes: the runtime does that, it must be harmless
        r.sock.send("four\n")
        expect(r.rt.cmds.length).toBe(0)
        r.rt.wrote()
        later(r, WRITE_GAP_MS)
        expect(r.rt.cmds.length).toBe(1)
        r.rt.writeAll()
        await settle()
        expect(r.rt.got()).toBe("one\ntwo\nthree\nfour\n")
        expect(r.rt.maxWrites).toBe(1)
        expect(r.rt.readsDuringWrite).toBe(1)
        expect(a.text()).toBe("open,data:ack1\n")
    })

    test("R4: a long backlog leaves in writes of at most MAX_WRITE_BYTES (the ESP32 asserts at 4096)", async () => {
        const r = rig()
        await up(r, new RecordingSink())
        let line = ""
        while (line.length < 700) line += "0123456789"
        r.sock.send("first\n")
        for (let i = 0; i < 6; ++i) r.sock.send(line + "\n")
        let writes = 0
        for (let i = 0; i < 10 && r.rt.got().length < 6 + 6 * 701; ++i) {
            r.rt.writeAll()
            writes++
            later(r, WRITE_GAP_MS)
        }
        expect(r.rt.got().length).toBe(6 + 6 * 701)
        expect(writes > 2).toBe(true)
        expect(r.rt.maxWrites).toBe(1)
        expect(MAX_WRITE_BYTES < 4096).toBe(true)
    })

    test("R5: a heartbeat is dropped when other text is waiting", async () => {
        const r = rig()
        await up(r, new RecordingSink())
        r.sock.send("a\n")
        r.sock.send("b\n")
        r.sock.send("\n")
        r.rt.writeAll()
        later(r, WRITE_GAP_MS)
        r.rt.writeAll()
        expect(r.rt.got()).toBe("a\nb\n")
        later(r, WRITE_GAP_MS)
        r.sock.send("\n") // nothing waiting: it goes
        r.rt.writeAll()
        expect(r.rt.got()).toBe("a\nb\n\n")
    })

    test("R6: an open the runtime dropped (worker queue full) fails at once instead of waiting forever", async () => {
        const r = rig()
        for (let i = 0; i < 50; ++i) r.rt.cmds.push({ open: false, text: "stuck" })
        const a = new RecordingSink()
        expect(r.sock.connect("h", -7443, a)).toBe("E_OPEN_QUEUE_FULL")
        r.rt.cmds = []
        later(r, SETTLE_MS)
        expect(r.sock.connect("h", -7443, a)).toBe("") // the next attempt is not blocked by the dropped one
        expect(r.rt.cmds.length).toBe(1)
    })

    test("R7: more received data than RX_MAX_BYTES before the link takes it drops the connection", async () => {
        const r = rig()
        const a = new RecordingSink()
        await up(r, a)
        let big = "x"
        while (big.length <= RX_MAX_BYTES) big += big
        r.rt.serverSends(big)
        r.rt.mainPass()
        await settle()
        expect(r.sock.overflows).toBe(1)
        expect(a.seen[a.seen.length - 1]).toBe("closed:E_RX_OVERFLOW")
        later(r, WRITE_GAP_MS)
        expect(r.rt.closes).toBe(1)
    })

    test("R7: a server that drips (one byte a read) faster than the link takes it: each read is charged its bookkeeping, the connection dropped before the queue runs the heap out", async () => {
        const r = rig()
        const a = new RecordingSink()
        await up(r, a)
        // 1000 one-byte reads queued ran the VM out of memory while their bytes were 1 KB of the 6 KB allowed
        const reads = Math.ceil(RX_MAX_BYTES / (1 + RX_CHUNK_CHARGE_BYTES)) + 1
        for (let i = 0; i < reads; ++i) {
            r.rt.serverSends("x")
            r.rt.mainPass()
        }
        expect(r.sock.overflows).toBe(1)
        // the reads queued before it are handed over one per yield: wait for the close behind them (bounded)
        for (let i = 0; i < 1000 && a.seen[a.seen.length - 1] !== "closed:E_RX_OVERFLOW"; ++i) await ds.sleep(1)
        expect(a.seen[a.seen.length - 1]).toBe("closed:E_RX_OVERFLOW")
    })

    test("a drip the link keeps up with is no overflow: a line in one-byte reads arrives whole", async () => {
        const r = rig()
        const h = makeLink()
        bringUp(h)
        await up(r, h.link)
        h.link.report("temp", 1)
        const put = h.t.lastRequest()
        const ack = '{"t":"' + put.token + '","s":200}\n'
        for (let i = 0; i < ack.length; ++i) {
            r.rt.serverSends(ack.charAt(i))
            r.rt.mainPass()
            if (i % 4 === 3) await settle()
        }
        for (let i = 0; i < 1000 && h.link.stats().outbox > 0; ++i) await ds.sleep(1) // bounded: a loaded machine hands over slowly
        expect(r.sock.overflows).toBe(0)
        expect(h.link.stats().outbox).toBe(0)
        expect(h.link.state).toBe("up")
    })

    test("a read of 1 KB of blank lines (a server's heartbeat flood) reaches the link in pieces it handles within the VM's step budget", async () => {
        const r = rig()
        const h = makeLink()
        bringUp(h)
        await up(r, h.link) // the link is up already: the socket only carries its data
        let flood = "\n"
        while (flood.length < 1024) flood += flood
        r.rt.serverSends(flood) // one read on the device: 1 KB
        r.rt.mainPass()
        await settle()
        expect(h.link.state).toBe("up")
    })
    test("data read before `open` is delivered (S3: main reads on another core) opens the connection", async () => {
        const r = rig()
        const a = new RecordingSink()
        r.sock.connect("h", -7443, a)
        r.rt.take()
        r.rt.tcpConnected()
        r.rt.serverSends("welcome\n")
        r.rt.handshakeDone()
        r.rt.read() // before the pass delivers the queued `open`
        r.rt.mainPass()
        await settle()
        expect(a.text()).toBe("open,data:welcome\n")
    })

    test("errors and the server's close reach the link with a reason; the runtime closed already", async () => {
        const r = rig()
        const a = new RecordingSink()
        r.sock.connect("h", -7443, a)
        r.rt.take()
        r.rt.connectFailed("tls://h:7443: can't connect")
        r.rt.mainPass()
        await settle()
        expect(a.text()).toBe("closed:E_SOCKET can't connect")
        later(r, SETTLE_MS)
        const b = new RecordingSink()
        await up(r, b)
        r.rt.serverSends("bye\n")
        r.rt.serverCloses()
        r.rt.mainPass()
        r.rt.mainPass()
        await settle()
        expect(b.text()).toBe("open,data:bye\n,closed:E_CLOSED_BY_SERVER")
        expect(r.rt.closes).toBe(0)
        expect(r.rt.hazards.length).toBe(0)
    })

    test("no Wi-Fi: E_NO_NETWORK at once, also for an open that had to wait", async () => {
        const r = rig()
        r.rt.wifi = false
        expect(r.sock.connect("h", -7443, new RecordingSink())).toBe("E_NO_NETWORK")
        r.rt.wifi = true
        const a = new RecordingSink()
        await up(r, a)
        r.sock.abandon()
        const b = new RecordingSink()
        expect(r.sock.connect("h", -7443, b)).toBe("") // waits for the close and the settling
        r.rt.wifi = false
        later(r, WRITE_GAP_MS)
        later(r, SETTLE_MS)
        await settle()
        expect(b.text()).toBe("closed:E_NO_NETWORK")
    })
})
