// The link's pure parts: backoff, keep-alive, framer, request table, outbox. No sockets, no sleeps.
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { KeepaliveBounds, keepaliveContractOf, keepaliveFromWelcome, keepaliveStep } from "../../src/keepalive"
import { decodeServerLine, DEVICE_MAX_SEND_BYTES } from "../../src/protocol"
import { attemptAfterDrop, backoffDelayMs, ReconnectConfig, spreadByDevice } from "../../src/backoff"
import { SETTINGS_VECTORS, STEP_VECTORS, WELCOME_LINE_VECTORS, WELCOME_VECTORS } from "../vectors/keepalive"
import { LineFramer, MAX_LINE_BYTES } from "../../src/net/framer"
import { base36 } from "../../src/requests"
import { encodeBatch, Outbox, SAVE_CHUNK_BYTES } from "../../src/net/outbox"
import { ONE_VALUE_UPDATE_SHORT_LINE } from "../vectors/envelope"

const B: ReconnectConfig = { baseMs: 500, capMs: 60000, stableMs: 20000 }

describe("backoff", () => {
    test("full jitter: uniform below min(cap, base*2^n)", () => {
        expect(backoffDelayMs(B, 0, 0.999, 0)).toBe(499)
        expect(backoffDelayMs(B, 3, 0.5, 0)).toBe(2000)
        expect(backoffDelayMs(B, 3, 0, 0)).toBe(0)
        expect(backoffDelayMs(B, 10, 0.5, 0)).toBe(30000) // capped at 60 s
        expect(backoffDelayMs(B, 1000, 0.5, 0)).toBe(30000) // huge attempt counts stay finite
    })
    test("a server retry hint is a floor, even above the cap", () => {
        expect(backoffDelayMs(B, 0, 0.5, 5000)).toBe(5000)
        expect(backoffDelayMs(B, 10, 0.9, 1000)).toBe(54000)
        expect(backoffDelayMs(B, 10, 0.1, 90000)).toBe(90000)
    })
    test("devices with the same random sequence draw different jitter, still in [0, 1)", () => {
        const same = () => 0.75 // what every simulator draws first after a start
        const a = spreadByDevice("1a2b3c4d5e6f7081", same)()
        const b = spreadByDevice("99887766554433ff", same)()
        expect(a === b).toBe(false)
        expect(a >= 0 && a < 1 && b >= 0 && b < 1).toBe(true)
        expect(spreadByDevice("1a2b3c4d5e6f7081", same)()).toBe(a) // a device's own offset is stable
    })
    test("the attempt counter resets only after a stable connection", () => {
        expect(attemptAfterDrop(B, 5, 0)).toBe(5)
        expect(attemptAfterDrop(B, 5, 19999)).toBe(5)
        expect(attemptAfterDrop(B, 5, 20000)).toBe(0)
    })
})

describe("keepalive", () => {
    // the same table as test/host/protocol/keepalive.test.ts: one decision for the device, the CLI, the page and the server
    test("keepaliveStep: the shared table", () => {
        for (let i = 0; i < STEP_VECTORS.length; ++i) {
            const v = STEP_VECTORS[i]
            const c = v.contract
            const step = keepaliveStep(v.nowMs, v.lastRxMs, v.lastTxMs, { heartbeatMs: c[0], faultyMs: c[1], timeoutMs: c[2] })
            const got = step.health + " " + step.sendHeartbeat + " " + step.nextCheckInMs
            expect(v.name + ": " + got).toBe(v.name + ": " + v.health + " " + v.sendHeartbeat + " " + v.nextCheckInMs)
        }
    })
    test("keepaliveFromWelcome: the shared table", () => {
        for (let i = 0; i < WELCOME_VECTORS.length; ++i) {
            const v = WELCOME_VECTORS[i]
            const w = v.welcome
            const floors: KeepaliveBounds = v.floors ? { heartbeatMs: v.floors[0], timeoutMs: v.floors[1], maxTimeoutMs: v.floors[2] } : undefined
            const c = keepaliveFromWelcome({ heartbeat: w[0], faulty: w[1], timeout: w[2] }, floors)
            expect(v.name + ": " + c.heartbeatMs + "," + c.faultyMs + "," + c.timeoutMs).toBe(v.name + ": " + v.contract.join(","))
        }
    })
    test("keepaliveContractOf: the shared table", () => {
        for (let i = 0; i < SETTINGS_VECTORS.length; ++i) {
            const v = SETTINGS_VECTORS[i]
            const g = v.given
            // not `g[0] || undefined`: DeviceScript turns `300.5 || undefined` into undefined
            const got = keepaliveContractOf(g[0] === 0 ? undefined : g[0], g[1] === 0 ? undefined : g[1], g[2] === 0 ? undefined : g[2])
            if (v.contract) {
                const c = got.contract
                expect(v.name + ": " + (c ? c.heartbeatMs + "," + c.faultyMs + "," + c.timeoutMs : got.error)).toBe(v.name + ": " + v.contract.join(","))
            } else expect(v.name + ": " + (got.error !== undefined && got.error.indexOf(v.error) >= 0)).toBe(v.name + ": true")
        }
    })
    test("a welcome without faulty: derived as the server does", () => {
        for (let i = 0; i < WELCOME_LINE_VECTORS.length; ++i) {
            const v = WELCOME_LINE_VECTORS[i]
            const c = keepaliveFromWelcome(decodeServerLine(v.line).welcome)
            expect(v.name + ": " + c.heartbeatMs + "," + c.faultyMs + "," + c.timeoutMs).toBe(v.name + ": " + v.contract.join(","))
        }
    })
})

function framerWith(lines: string[]) {
    return new LineFramer(l => {
        lines.push(l)
    })
}

describe("framer", () => {
    test("lines split over chunks, coalesced, CRLF, blank heartbeats", () => {
        const lines: string[] = []
        const f = framerWith(lines)
        f.push(Buffer.from('{"a":1}\n{"b"'))
        f.push(Buffer.from(':2}\r\n\n{"c":3}\n'))
        expect(lines.length).toBe(4)
        expect(lines[0]).toBe('{"a":1}')
        expect(lines[1]).toBe('{"b":2}')
        expect(lines[2]).toBe("")
        expect(lines[3]).toBe('{"c":3}')
    })
    test("one byte at a time", () => {
        const lines: string[] = []
        const f = framerWith(lines)
        const b = Buffer.from('{"token":"1","status":200}\n')
        for (let i = 0; i < b.length; ++i) f.push(b.slice(i, i + 1))
        expect(lines.length).toBe(1)
        expect(lines[0]).toBe('{"token":"1","status":200}')
    })
    test("a maximum line dripped one byte a chunk is held in a few pieces (each piece costs ~20 B of heap) and arrives whole", async () => {
        const lines: string[] = []
        const f = framerWith(lines)
        const b = Buffer.alloc(MAX_LINE_BYTES + 1)
        b.fillAt(0, MAX_LINE_BYTES, 97)
        b[MAX_LINE_BYTES] = 10
        let most = 0
        for (let i = 0; i < b.length; ++i) {
            f.push(b.slice(i, i + 1))
            const held = (f as any).parts.length
            if (held > most) most = held
            if (i % 64 === 0) await ds.sleep(0)
        }
        expect(most <= 9).toBe(true)
        expect(f.overlong).toBe(0)
        expect(lines.length).toBe(1)
        expect(lines[0].length).toBe(MAX_LINE_BYTES)
    })
    test("an over-long line is dropped and counted; the next line is intact", () => {
        const lines: string[] = []
        const f = framerWith(lines)
        const chunk = Buffer.alloc(1000)
        chunk.fillAt(0, chunk.length, 120) // "x"
        for (let i = 0; i < 6; ++i) f.push(chunk) // 6000 bytes, no newline
        f.push(Buffer.from('xx\n{"ok":1}\n'))
        expect(f.overlong).toBe(1)
        expect(lines.length).toBe(1)
        expect(lines[0]).toBe('{"ok":1}')
    })
    test("an over-long line cut by a reconnect: the next connection's first line (its welcome) is intact", () => {
        const lines: string[] = []
        const f = framerWith(lines)
        const chunk = Buffer.alloc(MAX_LINE_BYTES + 1)
        chunk.fillAt(0, chunk.length, 120) // no newline: the connection ends inside the line
        f.push(chunk)
        f.reset()
        f.push(Buffer.from('{"welcome":"w"}\n'))
        expect(lines.length).toBe(1)
        expect(lines[0]).toBe('{"welcome":"w"}')
    })
    test("a line of exactly MAX_LINE_BYTES is kept", () => {
        const lines: string[] = []
        const f = framerWith(lines)
        const b = Buffer.alloc(MAX_LINE_BYTES + 1)
        b.fillAt(0, MAX_LINE_BYTES, 97)
        b[MAX_LINE_BYTES] = 10
        f.push(b)
        expect(f.overlong).toBe(0)
        expect(lines[0].length).toBe(MAX_LINE_BYTES)
    })
})

describe("request table", () => {
    test("tokens are short base-36 counters", () => {
        expect(base36(1)).toBe("1")
        expect(base36(35)).toBe("z")
        expect(base36(36)).toBe("10")
        expect(base36(60466175)).toBe("zzzzz")
    })
})

describe("outbox", () => {
    test("samples before the clock wait unstamped, then get server time", () => {
        const o = new Outbox(10000)
        o.add("temp", "21.5", "every", 500, undefined)
        expect(o.takeBatch(1, 64, 2048).length).toBe(0) // no `at` yet: cannot be sent
        o.stampAll(SERVER_OFFSET)
        const b = o.takeBatch(2, 64, 2048)
        expect(b.length).toBe(1)
        expect(b[0].at).toBe(500 + SERVER_OFFSET)
    })
    test("two samples of one stream in the same ms get distinct at", () => {
        const o = new Outbox(10000)
        o.add("t", "1", "every", 500, 0)
        o.add("t", "2", "every", 500, 0)
        o.add("u", "3", "every", 500, 0)
        const b = o.takeBatch(1, 64, 2048)
        expect(b[0].at).toBe(500)
        expect(b[1].at).toBe(501)
        expect(b[2].at).toBe(500)
    })
    test("latest keeps only the newest waiting value, but never touches one in flight", () => {
        const o = new Outbox(10000)
        o.add("led", "1", "latest", 1, 0)
        o.add("led", "0", "latest", 2, 0)
        expect(o.depth()).toBe(1)
        const b = o.takeBatch(1, 64, 2048)
        expect(b[0].value).toBe("0")
        o.add("led", "1", "latest", 3, 0)
        expect(o.depth()).toBe(2) // the in-flight one stays until acked
        expect(o.ack(1)).toBe(1)
        expect(o.depth()).toBe(1)
    })
    test("full: the oldest keep-every sample is dropped and counted; latest ones survive", () => {
        const o = new Outbox(700) // room for about 10 samples
        o.add("state", "on", "latest", 0, SERVER_OFFSET)
        for (let i = 0; i < 20; ++i) o.add("t", "" + i, "every", i + 1, SERVER_OFFSET)
        expect(o.bytes <= 700).toBe(true)
        expect(o.drops > 0).toBe(true)
        expect(o.drops + o.depth()).toBe(21)
        const b = o.takeBatch(1, 64, 2048)
        expect(b[0].stream).toBe("state")
        expect(b[1].value).toBe("" + o.drops) // the oldest went first
        expect(b[b.length - 1].value).toBe("19")
    })
    // [#18 item 6] each of the next three kills a mutant the tests above let live
    test("full while samples are in flight: only waiting ones are dropped, the batch in flight stays whole", () => {
        const o = new Outbox(700) // room for 11 samples of 58-59 bytes
        for (let i = 0; i < 8; ++i) o.add("t", "" + i, "every", i + 1, SERVER_OFFSET)
        expect(o.takeBatch(1, 4, 2048).length).toBe(4) // 0..3 in flight
        for (let i = 8; i < 30; ++i) o.add("t", "" + i, "every", i + 1, SERVER_OFFSET)
        expect(o.bytes <= 700).toBe(true)
        expect(o.drops + o.depth()).toBe(30)
        expect(o.ack(1)).toBe(4) // nothing of the batch in flight was dropped
        const next = o.takeBatch(2, 64, 2048)
        expect(next[0].value).toBe("" + (4 + o.drops)) // the oldest waiting went first
        expect(next[next.length - 1].value).toBe("29")
    })
    test("a sample bigger than the oldest drops as many as it takes: the byte budget holds", () => {
        const o = new Outbox(700)
        for (let i = 0; i < 11; ++i) o.add("t", "" + i, "every", i + 1, SERVER_OFFSET)
        const big = "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" // 100 chars
        o.add("t", big, "every", 12, SERVER_OFFSET)
        expect(o.bytes <= 700).toBe(true)
        expect(o.drops).toBe(2) // 157 bytes needed: two samples of 57-58 bytes were not enough room alone
        const b = o.takeBatch(1, 64, 4096)
        expect(b[b.length - 1].value).toBe(big)
        expect(b.length).toBe(10)
    })
    test("full of samples that cannot be dropped (in flight, latest): a new keep-every sample is dropped and counted", () => {
        const o = new Outbox(300) // 5 samples of 58 bytes
        o.add("t", "0", "every", 1, SERVER_OFFSET)
        expect(o.takeBatch(1, 64, 2048).length).toBe(1) // in flight
        for (let i = 1; i < 5; ++i) o.add("s" + i, "1", "latest", i + 1, SERVER_OFFSET)
        const bytes = o.bytes
        const depth = o.depth()
        o.add("t", "9", "every", 10, SERVER_OFFSET)
        expect(o.drops).toBe(1)
        expect(o.depth()).toBe(depth)
        expect(o.bytes).toBe(bytes)
        expect(o.bytes <= 300).toBe(true)
    })
    test("a released batch is resent with the same at; an acked one is gone", () => {
        const o = new Outbox(10000)
        o.add("t", "1", "every", 10, 100)
        const a = o.takeBatch(1, 64, 2048)
        o.release(1)
        const again = o.takeBatch(2, 64, 2048)
        expect(again[0].at).toBe(a[0].at)
        expect(o.ack(2)).toBe(1)
        expect(o.depth()).toBe(0)
        expect(o.bytes).toBe(0)
    })
    test("a batch is one line in the short form [P§5a], JSON.stringify's own text", () => {
        const line = encodeBatch("/feeds/1", [{ stream: "temp", value: "21.5", at: 1732250000000 }], "a1", undefined)
        expect(line).toBe(ONE_VALUE_UPDATE_SHORT_LINE)
        const withKey = encodeBatch("/feeds/1", [{ stream: "temp", value: "21.5", at: 1732250000000 }], "a1", { "X-ApiKey": "KEY" })
        expect(withKey).toBe(JSON.stringify({ r: "/feeds/1", h: { "X-ApiKey": "KEY" }, b: { datastreams: [{ id: "temp", datapoints: [{ at: 1732250000000, value: "21.5" }] }] }, t: "a1" }))
        console.log(`protocol: one-value update ${line.length + 1} bytes on the wire in the short form`)
    })
    test("batches stay under DEVICE_MAX_SEND_BYTES and take everything in order", async () => {
        const o = new Outbox(40000)
        const long = "abcdefghijklmnopqrstuvwxyz012345" // 32 chars, the longest value
        for (let i = 0; i < 150; ++i) {
            o.add(i % 2 ? "temperature_outside" : "humidity_outside", long, "every", i, SERVER_OFFSET)
            if (i % 50 === 0) await ds.sleep(0)
        }
        let sent = 0
        let id = 0
        for (;;) {
            const b = o.takeBatch(++id, 64, DEVICE_MAX_SEND_BYTES)
            if (!b.length) break
            const line = encodeBatch("/feeds/123456", b, "123456", { "X-ApiKey": "0123456789012345678901234567890123456789" })
            expect(line.length + 1 < DEVICE_MAX_SEND_BYTES).toBe(true)
            sent += b.length
            o.ack(id)
            await ds.sleep(0) // long synchronous runs trip the VM's InfiniteLoop guard
        }
        expect(sent).toBe(150)
    })
    test("saved before a reboot and queued again after it: same at, unstamped ones keep their age, latest stays latest", () => {
        const o = new Outbox(16000)
        o.add("pre", "1", "every", 1000, undefined) // taken before the clock was known, at device time 1000
        for (let i = 0; i < 30; ++i) o.add("temp", "21." + i, "every", 2000 + i, SERVER_OFFSET)
        o.add("relay.state", "1", "latest", 3000, SERVER_OFFSET)
        o.takeBatch(1, 5, 2048) // in flight when the reboot comes: saved as well
        const chunks: any[][] = []
        for (let c = o.savedChunk(61000); c.length; c = o.savedChunk(61000)) { // 60 s after the unstamped one
            expect(JSON.stringify(c).length <= SAVE_CHUNK_BYTES).toBe(true)
            chunks.push(c)
        }
        expect(chunks.length > 2).toBe(true)
        const after = new Outbox(16000)
        for (let i = 0; i < chunks.length; ++i) after.restore(JSON.parse(JSON.stringify(chunks[i])), 500) // 500 ms after boot
        expect(after.depth()).toBe(32)
        after.add("temp", "22", "every", 600, SERVER_OFFSET) // 600 ms: before the restored ones of its stream
        after.stampAll(SERVER_OFFSET + 100000)
        const b = after.takeBatch(1, 64, 4000)
        expect(b[0].stream).toBe("pre")
        expect(b[0].at).toBe(SERVER_OFFSET + 100000 + 500 - 60000) // its age kept across the reboot
        expect(b[1].at).toBe(SERVER_OFFSET + 2000)
        expect(b[30].value).toBe("21.29")
        expect(b[31].stream).toBe("relay.state")
        expect(b[32].at).toBe(SERVER_OFFSET + 2030) // still after them: two samples never share an at
        after.release(1)
        after.add("relay.state", "0", "latest", 700, SERVER_OFFSET)
        expect(after.depth()).toBe(33) // the restored latest one was replaced
    })
    test("a sample leaving while the outbox is being saved (a latest one replaced) does not make the save skip another", () => {
        const o = new Outbox(16000)
        o.add("light", "50", "latest", 1000, SERVER_OFFSET)
        for (let i = 0; i < 30; ++i) o.add("seq", "1." + i, "every", 2000 + i * 100, SERVER_OFFSET)
        const saved: any[] = []
        for (let c = o.savedChunk(9000); c.length; c = o.savedChunk(9000)) {
            // the save yields between chunks (flash writes): a new light value replaces the waiting one
            if (!saved.length) o.add("light", "60", "latest", 5000, SERVER_OFFSET)
            for (let j = 0; j < c.length; ++j) saved.push(c[j])
        }
        const after = new Outbox(16000)
        after.restore(JSON.parse(JSON.stringify(saved)), 500)
        const values: string[] = []
        const b = after.takeBatch(1, 64, 4000)
        for (let i = 0; i < b.length; ++i) if (b[i].stream === "seq") values.push(b[i].value)
        expect(values.length).toBe(30)
        expect(b[b.length - 1].value).toBe("60")
    })
})

const SERVER_OFFSET = 1763790000000
