import * as ds from "@devicescript/core"
// Fakes for the link's tests: a transport that records what the link sends, and a clock moved by hand.
import { LinkConfig, DEFAULT_CONFIG } from "../../src/net/config"
import { Link, Transport } from "../../src/net/link"
import { requestInLongForm } from "../../src/protocol"

/** Records opens, closes and every line sent; open() answers `openResult` ("" = under way). */
export class RecordingTransport implements Transport {
    opens = 0
    closes = 0
    sent: string[] = []
    openResult = ""
    open(): string {
        this.opens++
        return this.openResult
    }
    send(text: string) {
        this.sent.push(text)
    }
    close() {
        this.closes++
    }
    /** the requests sent (heartbeats left out), parsed, members by their long names (the link writes the short form [P§5a]) */
    requests(): any[] {
        const out: any[] = []
        for (let i = 0; i < this.sent.length; ++i) if (this.sent[i] !== "\n") out.push(requestInLongForm(JSON.parse(this.sent[i])))
        return out
    }
    lastRequest(): any {
        const r = this.requests()
        return r[r.length - 1]
    }
    heartbeats(): number {
        let n = 0
        for (let i = 0; i < this.sent.length; ++i) if (this.sent[i] === "\n") n++
        return n
    }
}

export const SERVER_TIME_MS = 1763790000000

export interface Harness {
    link: Link
    t: RecordingTransport
    clock: { ms: number }
    logs: string[]
    reboots: number[]
    healthy: number
    /** false: deferred work waits in `deferred` until the test runs it (like the runner's setTimeout 0) */
    deferAtOnce: boolean
    deferred: (() => void)[]
}

export function makeLink(overrides?: Partial<LinkConfig>, rand?: number): Harness {
    const cfg: LinkConfig = Object.assign({}, DEFAULT_CONFIG) as LinkConfig
    cfg.apiKey = "KEY"
    cfg.feedId = 7
    if (overrides) Object.assign(cfg, overrides)
    const h: Harness = { link: undefined, t: new RecordingTransport(), clock: { ms: 1000 }, logs: [], reboots: [], healthy: 0, deferAtOnce: true, deferred: [] }
    const r = rand === undefined ? 0.5 : rand
    h.link = new Link(cfg, {
        transport: h.t,
        now: () => h.clock.ms,
        random: () => r,
        reboot: (n: number) => {
            h.reboots.push(n)
        },
        healthy: () => {
            h.healthy++
        },
        flashWrites: () => 3,
        defer: (fn: () => void) => {
            if (h.deferAtOnce) fn() // a test sees the request right after report()
            else h.deferred.push(fn)
        },
        log: (m: string) => {
            h.logs.push(m)
            if (h.logs.length > 50) h.logs.shift()
        },
    })
    return h
}

/** Bytes from the server, as one chunk. */
export function rx(h: Harness, text: string) {
    h.link.onData(Buffer.from(text))
}

export function welcomeLine(timeMs: number): string {
    return `{"welcome":"feedline/0.1.0","session":"s1","time":${timeMs},"heartbeat":300,"faulty":1000,"timeout":3000}\n`
}

/** Moves the clock, ticking every 100 ms like the runner (yielding now and then: the VM panics on long synchronous runs). */
export async function advance(h: Harness, ms: number) {
    const link = h.link
    await advanceClock(h.clock, () => link.tick(), ms)
}

/** Moves `clock` by `ms`, calling `tick` every 100 ms (the link's, the claim step's). */
export async function advanceClock(clock: { ms: number }, tick: () => void, ms: number) {
    await ds.sleep(0)
    const end = clock.ms + ms
    let n = 0
    while (clock.ms < end) {
        clock.ms = Math.min(end, clock.ms + 100)
        tick()
        if (++n % 20 === 0) await ds.sleep(0)
    }
}

/** start → connecting → greeting → up, with the server clock at SERVER_TIME_MS. */
export function bringUp(h: Harness) {
    if (h.link.state === "offline") h.link.start()
    h.link.tick()
    h.link.onOpen()
    rx(h, welcomeLine(SERVER_TIME_MS))
}

/** Acknowledges the last request sent with `status`, in the short form the server answers the link's requests in [P§5a]. */
export function ackLast(h: Harness, status: number) {
    const req = h.t.lastRequest()
    rx(h, `{"t":"${req.token}","s":${status}}\n`)
}
