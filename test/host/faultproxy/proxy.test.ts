// The fault-injection proxy (devs/faultproxy): pure parts without sleeps, socket parts on 127.0.0.1
// port 0 through a plain echo server. Each fault class has a test that fails if the fault is not applied.
import { test, describe, after } from "node:test"
import assert from "node:assert/strict"
import net from "node:net"
import { once } from "node:events"
import { performance } from "node:perf_hooks"
import { applyToTable, expiryOf, noDirFaults, noFaults, parseCommand, type DirFaults } from "../../../devs/faultproxy/faults.ts"
import { findCut, freshCursor, freshPace, piecesOf, planChunk, type PaceState } from "../../../devs/faultproxy/pacing.ts"
import { dueSteps, nextDueMs, parseSchedule } from "../../../devs/faultproxy/schedule.ts"
import { MAX_QUEUED_BYTES, startFaultProxy } from "../../../devs/faultproxy/proxy.ts"
import { startControlServer } from "../../../devs/faultproxy/control.ts"
import { until } from "../harness/until.ts"

const WAIT_MS = 5000
const faults = (over: Partial<DirFaults>): DirFaults => ({ ...noDirFaults(), ...over })
const bytes = (s: string) => Buffer.from(s, "latin1")

// ---------------------------------------------------------------- pure parts

describe("fault commands (pure)", () => {
    test("text commands parse to canonical objects", () => {
        assert.deepEqual(parseCommand("blackhole dir=up for=5000"), { fault: "blackhole", dir: "up", forMs: 5000 })
        assert.deepEqual(parseCommand("  latency 200 jitter=50 "), { fault: "latency", ms: 200, jitterMs: 50 })
        assert.deepEqual(parseCommand("throttle 1000 dir=down"), { fault: "throttle", bytesPerSec: 1000, dir: "down" })
        assert.deepEqual(parseCommand("split 1 gap=5"), { fault: "split", bytes: 1, gapMs: 5 })
        assert.deepEqual(parseCommand("cut 10 frame=tls repeat"), { fault: "cut", afterBytes: 10, frame: "tls", repeat: true })
        assert.deepEqual(parseCommand("refuse for=100 mode=reset"), { fault: "refuse", mode: "reset", forMs: 100 })
        assert.deepEqual(parseCommand("accept"), { fault: "off", what: "refuse" })
        assert.deepEqual(parseCommand("clear"), { fault: "off", what: "all" })
        assert.deepEqual(parseCommand("reset"), { fault: "reset" })
        assert.deepEqual(parseCommand("status"), { fault: "status" })
    })

    test("bad commands fail with E_BAD_COMMAND and name what is wrong", () => {
        const cases: [string, RegExp][] = [
            ["", /empty/],
            ["teleport", /unknown fault "teleport"/],
            ["latency", /latency needs a value/],
            ["latency fast", /ms must be a whole number/],
            ["latency -5", /ms must be a whole number/],
            ["throttle 0", /bytesPerSec must be a whole number from 1/],
            ["blackhole dir=sideways", /dir must be one of up, down, both/],
            ["blackhole for=1e12", /forMs must be a whole number from 0 to 86400000/],
            ["cut 0", /afterBytes must be a whole number from 1/],
            ["split 3 colour=red", /unknown option "colour"/],
            ["reset now", /unexpected word "now"/],
        ]
        for (const [text, message] of cases) {
            assert.throws(() => parseCommand(text), (e: any) => e.code === "E_BAD_COMMAND" && message.test(e.message), text)
        }
    })

    test("applying and lifting faults, per direction; the input table is not changed", () => {
        const t0 = noFaults()
        const t1 = applyToTable(t0, { fault: "blackhole", dir: "up" })
        assert.equal(t1.up.blackhole, true)
        assert.equal(t1.down.blackhole, false)
        assert.equal(t0.up.blackhole, false)
        const t2 = applyToTable(t1, { fault: "latency", ms: 100, jitterMs: 20 })
        assert.deepEqual([t2.up.latencyMs, t2.down.jitterMs], [100, 20])
        const t3 = applyToTable(t2, { fault: "off", what: "latency", dir: "down" })
        assert.deepEqual([t3.up.latencyMs, t3.down.latencyMs, t3.up.blackhole], [100, 0, true])
        const t4 = applyToTable(applyToTable(t3, { fault: "refuse" }), { fault: "off", what: "all" })
        assert.deepEqual(t4, noFaults())
        // scope=existing acts on open connections only
        assert.deepEqual(applyToTable(t0, { fault: "blackhole", scope: "existing" }), t0)
    })

    test("a timed fault expires into the matching off command; one-shot commands do not expire", () => {
        assert.deepEqual(expiryOf({ fault: "blackhole", dir: "down", forMs: 300 }), { afterMs: 300, command: { fault: "off", what: "blackhole", dir: "down" } })
        assert.deepEqual(expiryOf({ fault: "refuse", forMs: 50 }), { afterMs: 50, command: { fault: "off", what: "refuse", dir: undefined } })
        assert.equal(expiryOf({ fault: "reset" }), undefined)
        assert.equal(expiryOf({ fault: "latency", ms: 5 }), undefined)
    })
})

/** planChunk with its pieces expanded, to assert on every write. */
function planPieces(state: PaceState, nowMs: number, length: number, f: DirFaults, rand01: number) {
    const planned = planChunk(state, nowMs, length, f, rand01)
    return { pieces: piecesOf(planned.plan), state: planned.state }
}

describe("pacing (pure, time as an argument)", () => {
    test("no faults: one piece, now", () => {
        const { pieces } = planPieces(freshPace(), 1000, 500, noDirFaults(), 0.5)
        assert.deepEqual(pieces, [{ start: 0, end: 500, atMs: 1000 }])
    })

    test("latency and jitter delay, and a later chunk never overtakes an earlier one", () => {
        const f = faults({ latencyMs: 100, jitterMs: 50 })
        const a = planPieces(freshPace(), 0, 10, f, 1) // 150
        assert.equal(a.pieces[0].atMs, 150)
        const b = planPieces(a.state, 5, 10, f, 0) // would be 105, but order is kept
        assert.equal(b.pieces[0].atMs, 150)
        const c = planPieces(b.state, 200, 10, f, 0.5)
        assert.equal(c.pieces[0].atMs, 325)
    })

    test("throttle: pieces of 20 ms worth of bytes, spaced by size / rate", () => {
        const f = faults({ bytesPerSec: 1000 }) // 20-byte slices, 20 ms each
        const { pieces, state } = planPieces(freshPace(), 0, 50, f, 0)
        assert.deepEqual(pieces, [
            { start: 0, end: 20, atMs: 0 },
            { start: 20, end: 40, atMs: 20 },
            { start: 40, end: 50, atMs: 40 },
        ])
        assert.equal(state.nextFreeAtMs, 50)
        // the bucket carries over: the next chunk waits for the previous one to drain
        assert.equal(planPieces(state, 10, 5, f, 0).pieces[0].atMs, 50)
        // an idle link does not bank credit
        assert.equal(planPieces(state, 1000, 5, f, 0).pieces[0].atMs, 1000)
    })

    test("a plan takes constant space however small the pieces", () => {
        const { plan } = planChunk(freshPace(), 0, 65536, faults({ splitBytes: 1, splitGapMs: 1 }), 0)
        assert.deepEqual(plan, { length: 65536, pieceBytes: 1, count: 65536, firstAtMs: 0, intervalMs: 1 })
        assert.deepEqual(planChunk(freshPace(), 0, 0, noDirFaults(), 0).plan.count, 0)
    })

    test("split and throttle together: the slower of the two spaces the pieces", () => {
        const f = faults({ splitBytes: 10, splitGapMs: 1, bytesPerSec: 1000 }) // 10 bytes = 10 ms at 1000 B/s
        const { pieces, state } = planPieces(freshPace(), 0, 25, f, 0)
        assert.deepEqual(pieces.map((p) => [p.start, p.end, p.atMs]), [
            [0, 10, 0],
            [10, 20, 10],
            [20, 25, 20],
        ])
        assert.deepEqual(state, { lastAtMs: 20, nextFreeAtMs: 25 })
    })

    test("split: pieces of at most N bytes, gap ms apart", () => {
        const f = faults({ splitBytes: 3, splitGapMs: 2 })
        const { pieces } = planPieces(freshPace(), 10, 7, f, 0)
        assert.deepEqual(pieces, [
            { start: 0, end: 3, atMs: 10 },
            { start: 3, end: 6, atMs: 12 },
            { start: 6, end: 7, atMs: 14 },
        ])
    })
})

describe("cut points (pure)", () => {
    const line = (n: number) => ({ afterBytes: n, frame: "line" as const, repeat: false })

    test("line: after N bytes of a line that goes on", () => {
        assert.equal(findCut(freshCursor(), bytes("hello world\n"), line(4)), 4)
        // a line that ends at or before N bytes passes whole; the next long one is cut
        assert.equal(findCut(freshCursor(), bytes("ab\nabcd\nabcdefg"), line(4)), 12)
        // across chunks: the cursor remembers the position in the line
        const c = freshCursor()
        assert.equal(findCut(c, bytes("xx\nab"), undefined), -1)
        assert.equal(findCut(c, bytes("cdef"), line(4)), 2)
        // exactly N bytes at the end of a chunk: the cut lands at the start of the next one
        const d = freshCursor()
        assert.equal(findCut(d, bytes("abcd"), line(4)), -1)
        assert.equal(findCut(d, bytes("\n"), line(4)), -1, "the line ended: nothing to cut")
        const e = freshCursor()
        assert.equal(findCut(e, bytes("abcd"), line(4)), -1)
        assert.equal(findCut(e, bytes("e\n"), line(4)), 0)
    })

    test("tls: N bytes into a record (the 5-byte header counts), never on a record boundary", () => {
        const record = (len: number) => Buffer.concat([Buffer.from([23, 3, 3, len >> 8, len & 255]), Buffer.alloc(len, 7)])
        const tls = (n: number) => ({ afterBytes: n, frame: "tls" as const, repeat: false })
        assert.equal(findCut(freshCursor(), record(100), tls(10)), 10)
        assert.equal(findCut(freshCursor(), record(100), tls(3)), 3, "in the header")
        // a 5-byte record (header + 0... here 2 bytes of body = 7 bytes) is shorter than 10: the next one is cut
        assert.equal(findCut(freshCursor(), Buffer.concat([record(2), record(50)]), tls(10)), 17)
        // header split over chunks
        const c = freshCursor()
        const r = record(300)
        assert.equal(findCut(c, r.subarray(0, 4), undefined), -1)
        assert.equal(findCut(c, r.subarray(4, 200), undefined), -1)
        assert.equal(findCut(c, r.subarray(200), undefined), -1)
        assert.deepEqual([c.tlsPos, c.tlsLen], [0, 0], "back on a record boundary")
        assert.equal(findCut(c, record(20), tls(6)), 6)
        // a record of exactly N bytes is not cut
        assert.equal(findCut(freshCursor(), record(5), tls(10)), -1)
    })

    test("raw: N bytes from arming", () => {
        const c = freshCursor()
        const raw = { afterBytes: 10, frame: "raw" as const, repeat: false }
        assert.equal(findCut(c, Buffer.alloc(6), raw), -1)
        assert.equal(findCut(c, Buffer.alloc(6), raw), 4)
    })
})

describe("schedules (pure)", () => {
    test("parse: text or object commands, sorted, validated", () => {
        const s = parseSchedule({ repeatMs: 1000, steps: [{ atMs: 500, do: "reset" }, { atMs: 100, do: { fault: "blackhole", forMs: 200 } }] })
        assert.deepEqual(s.steps.map((x) => [x.atMs, x.command.fault]), [
            [100, "blackhole"],
            [500, "reset"],
        ])
        assert.equal(parseSchedule([{ atMs: 0, do: "refuse" }]).repeatMs, 0)
        const bad: [unknown, RegExp][] = [
            [{}, /a schedule is/],
            [[{ atMs: -1, do: "reset" }], /step 0 atMs must be a whole number/],
            [[{ atMs: 0, do: "warp 9" }], /step 0: unknown fault "warp"/],
            [{ repeatMs: 100, steps: [{ atMs: 100, do: "reset" }] }, /must be below repeatMs/],
            [[{ atMs: 0, do: "status" }], /not a fault/],
        ]
        for (const [json, message] of bad) assert.throws(() => parseSchedule(json), (e: any) => e.code === "E_BAD_SCHEDULE" && message.test(e.message))
    })

    test("due steps in (from, to], with repeats expanded", () => {
        const once = parseSchedule([{ atMs: 0, do: "refuse" }, { atMs: 100, do: "accept" }])
        assert.deepEqual(dueSteps(once, -1, 0).map((s) => s.atMs), [0])
        assert.deepEqual(dueSteps(once, 0, 99).length, 0)
        assert.deepEqual(dueSteps(once, 0, 5000).map((s) => s.atMs), [100])
        assert.equal(nextDueMs(once, 0), 100)
        assert.equal(nextDueMs(once, 100), undefined)
        const loop = parseSchedule({ repeatMs: 1000, steps: [{ atMs: 200, do: "reset" }] })
        assert.deepEqual(dueSteps(loop, 150, 2300).map((s) => s.atMs), [200, 1200, 2200])
        assert.equal(nextDueMs(loop, 200), 1200)
        assert.equal(nextDueMs(loop, 1999), 2200)
    })
})

// ---------------------------------------------------------------- sockets

/** A plain echo server that records what each connection received and how. */
async function startEcho() {
    const conns: { socket: net.Socket; chunks: Buffer[]; ended: boolean; error?: string; closed: boolean }[] = []
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
        const rec = { socket, chunks: [] as Buffer[], ended: false, error: undefined as string | undefined, closed: false }
        conns.push(rec)
        socket.on("data", (d) => {
            rec.chunks.push(d)
            if (!socket.writableEnded) socket.write(d)
        })
        socket.on("end", () => {
            rec.ended = true
            socket.end()
        })
        socket.on("error", (e: NodeJS.ErrnoException) => (rec.error = e.code))
        socket.on("close", () => (rec.closed = true))
    })
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
    const port = (server.address() as net.AddressInfo).port
    return {
        port,
        conns,
        received: (i: number) => Buffer.concat(conns[i].chunks).toString("latin1"),
        close: () => {
            for (const c of conns) c.socket.destroy()
            return new Promise<void>((r) => server.close(() => r()))
        },
    }
}

/** A client that collects what it receives and how its connection ended (it may end before it connects). */
function dialRaw(port: number) {
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true })
    const c = { socket, data: "", error: undefined as string | undefined, ended: false, closed: false }
    socket.on("data", (d) => (c.data += d.toString("latin1")))
    socket.on("error", (e: NodeJS.ErrnoException) => (c.error = e.code))
    socket.on("end", () => (c.ended = true))
    socket.on("close", () => (c.closed = true))
    return c
}

/** dialRaw, once connected. */
async function dial(port: number) {
    const c = dialRaw(port)
    await once(c.socket, "connect", { signal: AbortSignal.timeout(WAIT_MS) })
    return c
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Seeded [0,1) generator (mulberry32) so jitter is reproducible. */
function seeded(seed: number): () => number {
    return () => {
        seed = (seed + 0x6d2b79f5) | 0
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
}

describe("fault proxy over loopback", () => {
    const cleanups: (() => Promise<void>)[] = []
    after(async () => {
        for (const c of cleanups.reverse()) await c()
    })
    async function setup(opts: { random?: () => number } = {}) {
        const echo = await startEcho()
        const proxy = await startFaultProxy({ target: { port: echo.port }, random: opts.random })
        cleanups.push(() => proxy.close(), () => echo.close())
        return { echo, proxy }
    }
    async function roundTrip(port: number, text = "ping\n") {
        const c = await dial(port)
        c.socket.write(text)
        await until("the echo", () => c.data.length >= text.length)
        return c
    }

    test("clean pass-through: bytes, half-close and counters; throughput and added round-trip time printed", async () => {
        const { echo, proxy } = await setup()
        const c = await roundTrip(proxy.port, "hello\n")
        assert.equal(c.data, "hello\n")
        c.socket.end()
        await until("the close to propagate", () => c.closed)
        assert.equal(echo.conns[0].ended, true, "FIN reached the server")
        await until("the link to be released", () => proxy.stats().open === 0)
        assert.deepEqual([proxy.stats().bytesUp, proxy.stats().bytesDown, proxy.stats().accepted], [6, 6, 1])

        // measurements (printed, not asserted): 16 MiB through, and 200 one-line round trips
        const MiB = 16
        const big = await dial(proxy.port)
        const start = performance.now()
        const block = Buffer.alloc(1 << 20, 0x61)
        for (let i = 0; i < MiB; ++i) big.socket.write(block)
        await until("16 MiB echoed", () => big.data.length >= MiB << 20, 30_000)
        const secs = (performance.now() - start) / 1000
        big.socket.destroy()
        const rtt = async (port: number) => {
            const s = await dial(port)
            const times: number[] = []
            for (let i = 0; i < 200; ++i) {
                const t = performance.now()
                s.socket.write("x\n")
                while (s.data.length < 2 * (i + 1)) await once(s.socket, "data", { signal: AbortSignal.timeout(WAIT_MS) })
                times.push(performance.now() - t)
            }
            s.socket.destroy()
            times.sort((a, b) => a - b)
            return times[100]
        }
        const direct = await rtt(echo.port)
        const via = await rtt(proxy.port)
        console.log(`# fault proxy pass-through: ${((2 * MiB) / secs).toFixed(0)} MiB/s (both directions), round trip p50 ${via.toFixed(2)} ms via proxy vs ${direct.toFixed(2)} ms direct`)
    })

    test("refuse: the listener closes (ECONNREFUSED), accept re-opens the same port", async () => {
        const { proxy } = await setup()
        const port = proxy.port
        proxy.refuse()
        await assert.rejects(dial(port), (e: any) => e.code === "ECONNREFUSED")
        proxy.accept()
        await until("accept", () => proxy.activeFaults().length === 0)
        // re-listening is asynchronous: retry a few times
        let c
        for (let i = 0; i < 100 && !c; ++i) c = await dial(port).catch(() => sleep(10).then(() => undefined))
        assert.ok(c, "accepting again on the same port")
        assert.equal(proxy.port, port)
        c.socket.destroy()
    })

    test("refuse mode=reset: connections are accepted then reset; for= lifts it", async () => {
        const { echo, proxy } = await setup()
        proxy.refuse({ mode: "reset", forMs: 300 })
        const c = dialRaw(proxy.port)
        await until("the reset", () => c.closed)
        assert.equal(c.error, "ECONNRESET")
        assert.equal(proxy.stats().refused, 1)
        assert.equal(echo.conns.length, 0, "nothing reached the server")
        await until("the refusal to expire", () => proxy.activeFaults().length === 0)
        const ok = await roundTrip(proxy.port)
        assert.equal(ok.data, "ping\n")
        ok.socket.destroy()
    })

    test("reset: RST on both sides of every open connection", async () => {
        const { echo, proxy } = await setup()
        const c = await roundTrip(proxy.port)
        proxy.reset()
        await until("both sides to close", () => c.closed && echo.conns[0].closed)
        assert.equal(c.error, "ECONNRESET", "the client sees a reset, not a clean close")
        assert.equal(echo.conns[0].error, "ECONNRESET", "the server sees a reset")
        assert.equal(proxy.stats().resets, 1)
    })

    test("a peer's reset is passed on as a reset", async () => {
        const { echo, proxy } = await setup()
        const c = await roundTrip(proxy.port)
        c.socket.resetAndDestroy()
        await until("the server side to close", () => echo.conns[0].closed)
        assert.equal(echo.conns[0].error, "ECONNRESET")
    })

    test("target down: the client is reset and the error is counted", async () => {
        const echo = await startEcho()
        const port = echo.port
        await echo.close()
        const proxy = await startFaultProxy({ target: { port } })
        cleanups.push(() => proxy.close())
        const c = await dial(proxy.port)
        await until("the reset", () => c.closed)
        assert.equal(c.error, "ECONNRESET")
        assert.equal(proxy.stats().targetErrors, 1)
    })

    test("blackhole: nothing passes, nothing closes; lifting it delivers the held bytes in order", async () => {
        const { echo, proxy } = await setup()
        const c = await roundTrip(proxy.port, "before\n")
        proxy.blackhole()
        c.socket.write("during-1\n")
        c.socket.write("during-2\n")
        await sleep(300)
        assert.equal(c.data, "before\n", "nothing came back through the blackhole")
        assert.equal(echo.received(0), "before\n", "nothing reached the server")
        assert.equal(c.closed || c.ended || echo.conns[0].closed, false, "nobody was told")
        // a new connection does not even reach the server (no SYN through a dead link)
        const late = await dial(proxy.port)
        late.socket.write("late\n")
        await sleep(100)
        assert.equal(echo.conns.length, 1)
        proxy.apply("off blackhole")
        await until("the held bytes", () => c.data === "before\nduring-1\nduring-2\n" && late.data === "late\n")
        c.socket.destroy()
        late.socket.destroy()
    })

    test("blackhole one direction: up held while down flows", async () => {
        const { echo, proxy } = await setup()
        const c = await roundTrip(proxy.port)
        proxy.blackhole({ dir: "up", forMs: 200 })
        echo.conns[0].socket.write("from-server\n")
        c.socket.write("from-client\n")
        await until("the down direction", () => c.data === "ping\nfrom-server\n")
        assert.equal(echo.received(0), "ping\n", "up is held")
        await until("up after the blackhole expired", () => echo.received(0) === "ping\nfrom-client\n")
        c.socket.destroy()
    })

    test("blackhole scope=existing: the open link goes silent for good, new connections work", async () => {
        const { echo, proxy } = await setup()
        const old = await roundTrip(proxy.port)
        proxy.blackhole({ scope: "existing" })
        old.socket.write("lost\n")
        const fresh = await roundTrip(proxy.port, "fresh\n")
        assert.equal(fresh.data, "fresh\n")
        await sleep(100)
        assert.equal(old.data, "ping\n")
        assert.equal(echo.received(0), "ping\n")
        // the device gives up (as its keep-alive would): the server is not told, the link is half-open
        old.socket.destroy()
        await sleep(100)
        assert.equal(echo.conns[0].closed, false, "the server side stays open: a half-open link")
        echo.conns[0].socket.destroy()
        await until("the swallowed link to be released once both ends closed", () => proxy.stats().open === 1)
        fresh.socket.destroy()
    })

    test("latency and jitter: every round trip takes at least 2 × latency; order is kept", async () => {
        const { proxy } = await setup({ random: seeded(42) })
        proxy.latency(100, { jitterMs: 50 })
        const c = await dial(proxy.port)
        const start = performance.now()
        const expect: string[] = []
        for (let i = 0; i < 40; ++i) {
            expect.push(`line-${i}\n`)
            c.socket.write(`line-${i}\n`)
            await sleep(1)
        }
        await until("all lines", () => c.data.length >= expect.join("").length)
        const first = performance.now() - start
        assert.equal(c.data, expect.join(""), "jitter never reorders bytes")
        assert.ok(first >= 200, `took ${first.toFixed(0)} ms, latency is 100 ms each way`)
        console.log(`# latency 100 ms + jitter 50 ms each way: 40 lines echoed in ${first.toFixed(0)} ms`)
        c.socket.destroy()
    })

    test("throttle: 20 kB at 40 kB/s takes at least half a second", async () => {
        const { proxy } = await setup()
        proxy.throttle(40_000, { dir: "up" })
        const c = await dial(proxy.port)
        const start = performance.now()
        c.socket.write(Buffer.alloc(20_000, 0x62))
        await until("20 kB", () => c.data.length >= 20_000)
        const ms = performance.now() - start
        assert.ok(ms >= 450, `20 kB took only ${ms.toFixed(0)} ms`)
        console.log(`# throttle 40000 B/s: measured ${((20_000 / ms) * 1000).toFixed(0)} B/s`)
        c.socket.destroy()
    })

    test("throttle holds at most MAX_QUEUED_BYTES: the sender is slowed by TCP backpressure, not buffered", async () => {
        const { proxy } = await setup()
        proxy.throttle(50_000, { dir: "up" })
        const c = await dial(proxy.port)
        const MiB = Buffer.alloc(1 << 20, 0x63)
        c.socket.write(MiB)
        c.socket.write(MiB)
        await until("the proxy's queue to fill", () => proxy.stats().queuedBytes >= MAX_QUEUED_BYTES)
        await sleep(200)
        const held = proxy.stats().queuedBytes
        assert.ok(held <= MAX_QUEUED_BYTES + (1 << 20), `the proxy holds ${held} bytes`)
        assert.ok(c.socket.writableLength > 0 || c.data.length < 2 << 20, "the rest waits in the sender and the kernel")
        console.log(`# throttle 50000 B/s with 2 MiB sent at once: ${held} bytes held in the proxy (bound ${MAX_QUEUED_BYTES} + one read)`)
        c.socket.destroy()
    })

    test("split: every write arrives in pieces of the given size, intact", async () => {
        const { echo, proxy } = await setup()
        proxy.split(2, { dir: "up", gapMs: 2 })
        const c = await dial(proxy.port)
        const text = "0123456789abcdefghijklmnopqrstuvwxyz\n"
        c.socket.write(text)
        await until("the echo", () => c.data === text)
        const sizes = echo.conns[0].chunks.map((b) => b.length)
        assert.ok(sizes.length >= 8, `the server read ${sizes.length} chunks (${sizes.join(",")}); without the fault it reads 1`)
        assert.equal(echo.received(0), text)
        c.socket.destroy()
    })

    test("split 1 gap=0 on 4 KiB: one byte per event-loop turn, intact", async () => {
        const { echo, proxy } = await setup()
        proxy.split(1, { dir: "up", gapMs: 0 })
        const c = await dial(proxy.port)
        const text = Buffer.alloc(4 * 1024, 0x64).toString("latin1")
        const t0 = performance.now()
        c.socket.write(text)
        await until("4 KiB through", () => c.data.length >= text.length, 30_000)
        assert.equal(echo.received(0), text)
        const reads = echo.conns[0].chunks.length
        assert.ok(reads > 100, `the server read ${reads} times`)
        console.log(`# split 1 gap=0: 4 KiB in ${(performance.now() - t0).toFixed(0)} ms, the server read ${reads} times`)
        c.socket.destroy()
    })

    test("cut mid-line: the receiver gets exactly N bytes of the line then FIN; the sender a reset; one-shot", async () => {
        const { echo, proxy } = await setup()
        proxy.cut(4) // both directions: whichever reaches 4 bytes of a line first
        const c = await dial(proxy.port)
        c.socket.write("ok\n")
        await until("a short line to pass whole", () => c.data === "ok\n")
        c.socket.write('{"method":"put"}\n')
        await until("the cut", () => echo.conns[0].ended && c.closed)
        assert.equal(echo.received(0), 'ok\n{"me', "the server got 4 bytes of the second line, then FIN")
        assert.equal(c.error, "ECONNRESET")
        assert.equal(proxy.stats().cuts, 1)
        // one-shot: the next connection is not cut
        assert.deepEqual(proxy.activeFaults(), [])
        const next = await roundTrip(proxy.port, '{"method":"put"}\n')
        assert.equal(next.data, '{"method":"put"}\n')
        next.socket.destroy()
    })

    test("cut down, repeat: every connection loses its first long server line", async () => {
        const { proxy } = await setup()
        proxy.cut(3, { dir: "down", repeat: true })
        for (let i = 0; i < 2; ++i) {
            const c = await dial(proxy.port)
            c.socket.write("abcdef\n")
            await until("the FIN after the partial line", () => c.ended)
            assert.equal(c.data, "abc")
            c.socket.destroy()
        }
        assert.equal(proxy.stats().cuts, 2)
    })

    test("schedule: refuse from 0 ms, accept at 150 ms", async () => {
        const echo = await startEcho()
        const proxy = await startFaultProxy({
            target: { port: echo.port },
            schedule: parseSchedule([{ atMs: 0, do: "refuse mode=reset" }, { atMs: 150, do: "accept" }]),
        })
        cleanups.push(() => proxy.close(), () => echo.close())
        const refused = dialRaw(proxy.port)
        await until("the reset", () => refused.closed)
        assert.equal(refused.error, "ECONNRESET")
        await until("the accept step", () => proxy.activeFaults().length === 0)
        const c = await roundTrip(proxy.port)
        c.socket.destroy()
    })

    test("HTTP control: POST a command, GET the status, 400 with a code for a bad one", async () => {
        const { proxy } = await setup()
        const control = await startControlServer(proxy, "127.0.0.1", 0)
        cleanups.push(() => new Promise((r) => control.close(() => r())))
        const url = `http://127.0.0.1:${(control.address() as net.AddressInfo).port}/`
        const post = await fetch(url, { method: "POST", body: "latency 25 dir=down" })
        assert.equal(post.status, 200)
        assert.deepEqual(((await post.json()) as any).faults, ["latency 25 jitter=0 dir=down"])
        const json = await fetch(url, { method: "POST", body: '{"fault":"off","what":"all"}' })
        assert.deepEqual(((await json.json()) as any).faults, [])
        const bad = await fetch(url, { method: "POST", body: "latency soon" })
        assert.equal(bad.status, 400)
        assert.equal(((await bad.json()) as any).code, "E_BAD_COMMAND")
        const status = (await (await fetch(url)).json()) as any
        assert.equal(status.ok, true)
        assert.equal(typeof status.stats.accepted, "number")
    })

    test("close() with faults, queued bytes and timers pending: every socket destroyed, nothing left running", async () => {
        const echo = await startEcho()
        const proxy = await startFaultProxy({
            target: { port: echo.port },
            schedule: parseSchedule({ repeatMs: 10_000, steps: [{ atMs: 5000, do: "reset" }] }),
        })
        cleanups.push(() => echo.close())
        const c = await roundTrip(proxy.port)
        proxy.latency(60_000) // bytes queued for a minute
        proxy.blackhole({ dir: "down", forMs: 60_000 })
        c.socket.write("queued\n")
        await sleep(20)
        await proxy.close()
        await until("both sides closed", () => (c.ended || c.closed) && echo.conns[0].closed)
        assert.equal(proxy.stats().open, 0)
        // if a timer were left, this test file would not exit and node --test would time out
    })
})
