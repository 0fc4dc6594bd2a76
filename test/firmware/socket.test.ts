// The link's socket layer over a fake runtime: the hooks (_socketOpen/_socketWrite/_socketClose) are
// replaced for the test, events are injected through _socketOnEvent as the runtime would.
import * as ds from "@devicescript/core"
import { describe, expect, test, afterEach } from "@devicescript/test"
import { LinkSocket } from "../../src/net/socket"

const rt = ds as any
const real = { open: rt._socketOpen, write: rt._socketWrite, close: rt._socketClose }
let written: string[] = []
let writeResults: number[] = []
let closes = 0

function fakeRuntime() {
    written = []
    writeResults = []
    closes = 0
    rt._socketOpen = (host: string, port: number) => 0
    rt._socketWrite = (b: any) => {
        const r = writeResults.length ? writeResults.shift() : 0
        if (r === 0) written.push("" + b)
        return r
    }
    rt._socketClose = () => {
        closes++
        return 0
    }
}

function event(name: string, arg?: any) {
    rt._socketOnEvent(name, arg)
}

describe("link socket", () => {
    afterEach(() => {
        rt._socketOpen = real.open
        rt._socketWrite = real.write
        rt._socketClose = real.close
    })
    test("data that arrives before `open` was consumed is kept (the server speaks first)", async () => {
        fakeRuntime()
        const s = LinkSocket.open("h", 1, true)
        event("open")
        event("data", Buffer.from("welcome\n"))
        expect(await s.waitOpen(1000)).toBe(true)
        const b = await s.recv()
        expect(b.toString()).toBe("welcome\n")
    })
    test("close() wakes a blocked reader with null and the reason", async () => {
        fakeRuntime()
        const s = LinkSocket.open("h", 1, true)
        event("open")
        let got: any = "pending"
        const reader = async () => {
            got = await s.recv()
        }
        reader.start()
        await ds.sleep(10)
        expect(got).toBe("pending")
        s.close("E_SILENT")
        await ds.sleep(10)
        expect(got).toBe(null)
        expect(s.reason).toBe("E_SILENT")
        expect(closes).toBe(1)
    })
    test("a full native send queue (-1) is retried, in order", async () => {
        fakeRuntime()
        const s = LinkSocket.open("h", 1, true)
        event("open")
        writeResults = [-1, -1, 0, 0]
        s.send("a")
        s.send("b")
        await ds.sleep(100)
        expect(written.join(",")).toBe("a,b")
        expect(s.closed).toBe(false)
    })
    test("a send error closes the socket with E_SEND; opening another replaces the old one", async () => {
        fakeRuntime()
        const s = LinkSocket.open("h", 1, true)
        event("open")
        writeResults = [-10]
        s.send("a")
        await ds.sleep(20)
        expect(s.closed).toBe(true)
        expect(s.reason).toBe("E_SEND -10")
        const s2 = LinkSocket.open("h", 1, true)
        const s3 = LinkSocket.open("h", 1, true)
        expect(s2.reason).toBe("E_REPLACED")
        event("data", Buffer.from("x"))
        expect((await s3.recv()).toString()).toBe("x") // events go to the newest socket only
    })
    test("server close and socket errors end the socket with a reason", async () => {
        fakeRuntime()
        const s = LinkSocket.open("h", 1, true)
        event("open")
        event("error", "tls://h:1: unable to verify the first certificate")
        expect(await s.recv()).toBe(null)
        expect(s.reason).toBe("E_SOCKET unable to verify the first certificate")
        const t = LinkSocket.open("h", 1, true)
        event("close")
        expect(t.reason).toBe("E_CLOSED_BY_SERVER")
        expect(await t.waitOpen(100)).toBe(false)
    })
})
