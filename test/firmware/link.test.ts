// The link's state machine, driven through a recording transport and a hand-moved clock.
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { DEFAULT_CONFIG } from "../../src/net/config"
import { ackLast, advance, bringUp, makeLink, rx, SERVER_TIME_MS, welcomeLine } from "./netfakes"

describe("link states", () => {
    test("offline -> connecting -> greeting -> up; samples before the welcome get server time", async () => {
        const h = makeLink()
        const states: string[] = []
        h.link.onState((s, why) => {
            states.push(s)
        })
        h.link.report("temp", 21.5) // no clock yet
        h.link.start()
        h.link.tick()
        expect(h.link.state).toBe("connecting")
        h.clock.ms = 1200
        h.link.onOpen()
        expect(h.link.state).toBe("greeting")
        h.clock.ms = 1500
        rx(h, welcomeLine(SERVER_TIME_MS))
        expect(h.link.state).toBe("up")
        expect(states.join(",")).toBe("connecting,greeting,up")
        const req = h.t.lastRequest()
        expect(req.method).toBe("put")
        expect(req.resource).toBe("/feeds/7")
        expect(req.headers["X-ApiKey"]).toBe("KEY")
        const dp = req.body.datastreams[0].datapoints[0]
        expect(dp.value).toBe("21.5")
        expect(dp.at).toBe(SERVER_TIME_MS - 500) // taken 500 ms before the welcome
        h.clock.ms = 1520
        ackLast(h, 200)
        expect(h.link.stats().outbox).toBe(0)
        expect(h.link.stats().rttMs).toBe(20)
    })
    test("the key is sent until a request is acknowledged, then left out: a one-value update is compact", async () => {
        const h = makeLink()
        bringUp(h)
        h.link.report("temp", 1)
        expect(h.t.lastRequest().headers["X-ApiKey"]).toBe("KEY")
        ackLast(h, 200)
        h.link.report("temp", 21.5)
        expect(h.t.lastRequest().headers).toBe(undefined)
        const line = h.t.sent[h.t.sent.length - 1]
        console.log(`link: one-value update ${line.length} bytes on the wire`)
        expect(line.length <= 142).toBe(true) // the protocol vector's size; `at` makes it idempotent
    })
    test("samples reported in one run leave in one batch", async () => {
        const h = makeLink()
        bringUp(h)
        h.deferAtOnce = false
        h.link.report("temp", 21.5)
        h.link.report("humidity", 40)
        h.link.report("light", 3)
        expect(h.t.requests().length).toBe(0)
        h.deferred.shift()()
        expect(h.deferred.length).toBe(0) // one flush was scheduled, not three
        const req = h.t.lastRequest()
        expect(req.body.datastreams.length).toBe(3)
    })
    test("heartbeat after `heartbeat` ms without sending", async () => {
        const h = makeLink()
        bringUp(h)
        const before = h.t.heartbeats()
        await advance(h, 300)
        expect(h.t.heartbeats()).toBe(before + 1)
    })
    test("silence: degraded after faulty, up again on any byte, dead after timeout", async () => {
        const h = makeLink()
        bringUp(h)
        await advance(h, 1000)
        expect(h.link.state).toBe("degraded")
        rx(h, "\n")
        expect(h.link.state).toBe("up")
        await advance(h, 2900)
        expect(h.link.state).toBe("degraded")
        await advance(h, 100)
        expect(h.link.state).toBe("down")
        expect(h.link.stats().lastDisconnect).toBe("E_SILENT")
        expect(h.t.closes).toBe(1)
    })
    test("down waits the jittered backoff, then connects again (counted)", async () => {
        const h = makeLink({}, 0.5)
        bringUp(h)
        await advance(h, 3000) // dead; attempt 0: delay 0.5 * 500 = 250 ms
        expect(h.link.state).toBe("down")
        await advance(h, 200)
        expect(h.t.opens).toBe(1)
        await advance(h, 100)
        expect(h.t.opens).toBe(2)
        expect(h.link.state).toBe("connecting")
        expect(h.link.stats().reconnects).toBe(1)
    })
    test("no welcome within timeout: E_NO_WELCOME", async () => {
        const h = makeLink()
        h.link.start()
        h.link.tick()
        h.link.onOpen()
        await advance(h, 3000)
        expect(h.link.stats().lastDisconnect).toBe("E_NO_WELCOME")
    })
    test("no welcome within timeout of the open, whatever else comes (heartbeats, bytes without a newline): E_NO_WELCOME", async () => {
        const h = makeLink()
        h.link.start()
        h.link.tick()
        h.link.onOpen()
        for (let i = 0; i < 15; ++i) {
            rx(h, i % 2 ? "\n" : "xxxxxxxx")
            await advance(h, 200)
        }
        expect(h.link.stats().lastDisconnect).toBe("E_NO_WELCOME")
    })
    test("a welcome's timeout too long to be a watchdog (1e400 reads as Infinity) is capped at 5 min: silence and a missing ack are still found", async () => {
        const h = makeLink()
        h.link.start()
        h.link.tick()
        h.link.onOpen()
        rx(h, `{"welcome":"x","session":"s","time":${SERVER_TIME_MS},"heartbeat":60000000,"timeout":1e400}\n`)
        expect(h.link.state).toBe("up")
        h.link.report("temp", 1) // a batch in flight, never answered
        await advance(h, 300000)
        expect(h.link.state).toBe("down")
        expect(h.link.stats().lastDisconnect).toBe("E_SILENT")
    })
    test("a welcome's heartbeat too slow for its timeout (60000000, 1e400) is kept to half the timeout: the device is never silent long enough to be closed", async () => {
        const h = makeLink()
        h.link.start()
        h.link.tick()
        h.link.onOpen()
        rx(h, `{"welcome":"x","session":"s","time":${SERVER_TIME_MS},"heartbeat":60000000,"faulty":3000,"timeout":4000}\n`)
        expect(h.link.state).toBe("up")
        const before = h.t.heartbeats()
        rx(h, "\n")
        await advance(h, 2100)
        expect(h.t.heartbeats()).toBe(before + 1)
        const g = makeLink({ diagMs: 3600000 }) // no diagnostics batch meanwhile
        g.link.start()
        g.link.tick()
        g.link.onOpen()
        rx(g, `{"welcome":"x","session":"s","time":${SERVER_TIME_MS},"heartbeat":1e400,"timeout":1e400}\n`)
        for (let i = 0; i < 16; ++i) {
            rx(g, "\n") // the server is heard: only our own silence counts
            await advance(g, 10000)
        }
        expect(g.link.state).toBe("up")
        expect(g.t.heartbeats()).toBe(1) // 150 s: half the 5 min cap
    })
    test("a welcome whose time is not ms since the epoch (seconds, 1e400) is not taken: nothing is stamped with it", async () => {
        const h = makeLink()
        h.link.report("temp", 1) // waits for the server's clock
        h.link.start()
        h.link.tick()
        h.link.onOpen()
        rx(h, `{"welcome":"x","session":"s","time":1765000000}\n{"welcome":"x","session":"s","time":1e400}\n`)
        expect(h.link.state).toBe("greeting")
        await advance(h, 3000)
        expect(h.link.stats().lastDisconnect).toBe("E_NO_WELCOME")
        await advance(h, 500)
        h.link.onOpen()
        rx(h, welcomeLine(SERVER_TIME_MS))
        const at = h.t.lastRequest().body.datastreams[0].datapoints[0].at
        expect(at > SERVER_TIME_MS - 10000 && at < SERVER_TIME_MS).toBe(true)
    })
    test("connect that never completes: E_CONNECT_TIMEOUT", async () => {
        const h = makeLink({ connectTimeoutMs: 5000 })
        h.link.start()
        h.link.tick()
        await advance(h, 5000)
        expect(h.link.stats().lastDisconnect).toBe("E_CONNECT_TIMEOUT")
    })
    test("no network: offline, polled every second without growing the backoff", async () => {
        const h = makeLink()
        h.t.openResult = "E_NO_NETWORK"
        h.link.start()
        h.link.tick()
        expect(h.link.state).toBe("offline")
        await advance(h, 5000)
        expect(h.t.opens).toBe(6)
        h.t.openResult = ""
        await advance(h, 1000)
        expect(h.link.state).toBe("connecting")
        expect(h.link.stats().reconnects).toBe(0)
    })
    test("a missed acknowledgement is treated like silence; the batch is resent with the same at", async () => {
        const h = makeLink({}, 0)
        bringUp(h)
        h.link.report("temp", 5)
        const first = h.t.lastRequest()
        for (let i = 0; i < 30; ++i) {
            await advance(h, 100)
            rx(h, "\n") // the server is alive, but never acknowledges
        }
        expect(h.link.stats().lastDisconnect).toBe("E_ACK_TIMEOUT")
        await advance(h, 100)
        bringUp(h)
        const again = h.t.lastRequest()
        expect(again.token === first.token).toBe(false)
        expect(again.body.datastreams[0].datapoints[0].at).toBe(first.body.datastreams[0].datapoints[0].at)
        ackLast(h, 200)
        expect(h.link.stats().outbox).toBe(0)
    })
    test("a reply without token is not a notice: the link stays up [P§6]", async () => {
        const h = makeLink({}, 0)
        bringUp(h)
        rx(h, '{"status":400,"body":{"title":"Bad Request","errors":"x","code":"E_BAD_JSON"}}\n')
        rx(h, '{"status":200,"resource":"/feeds/1"}\n')
        expect(h.link.state).toBe("up")
        expect(h.t.opens).toBe(1)
    })
    test("a notice with retry_after_ms sets the next wait", async () => {
        const h = makeLink({}, 0)
        bringUp(h)
        rx(h, '{"notice":true,"status":503,"body":{"title":"Shutting down","errors":"restart","code":"E_SHUTDOWN","retry_after_ms":4000}}\n')
        expect(h.link.state).toBe("down")
        expect(h.link.stats().lastDisconnect).toBe("E_NOTICE_503")
        await advance(h, 3900)
        expect(h.t.opens).toBe(1)
        await advance(h, 100)
        expect(h.t.opens).toBe(2)
    })
    test("a batch refused with a wait (429 retry_after_ms, 401) and the connection closed: the next connection waits it out", async () => {
        const h = makeLink({}, 0)
        bringUp(h)
        h.link.report("temp", 1)
        rx(h, '{"t":"' + h.t.lastRequest().token + '","s":429,"b":{"code":"E_AUTH_RATE_LIMITED","retry_after_ms":5000}}\n')
        h.link.onClosed("E_CLOSED_BY_SERVER") // the server's auth deadline, with no hint of its own
        await advance(h, 4900)
        expect(h.t.opens).toBe(1)
        await advance(h, 200)
        expect(h.t.opens).toBe(2)
        h.link.onOpen()
        rx(h, welcomeLine(SERVER_TIME_MS))
        ackLast(h, 401)
        h.link.onClosed("E_CLOSED_BY_SERVER")
        await advance(h, 29900)
        expect(h.t.opens).toBe(2) // someone has to fix the key: not every backoff step
        await advance(h, 200)
        expect(h.t.opens).toBe(3)
    })
    test("a retry hint longer than 10 min (1e400 reads as Infinity) is honoured for 10 min, not for ever", async () => {
        const h = makeLink({}, 0)
        h.link.start()
        h.link.tick()
        h.link.onOpen()
        // a slow keep-alive, so that the recorded heartbeats stay few
        rx(h, '{"welcome":"x","session":"s","time":' + SERVER_TIME_MS + ',"heartbeat":250000,"faulty":280000,"timeout":300000}\n')
        h.link.report("temp", 1)
        const held = h.t.lastRequest().token
        rx(h, '{"t":"' + held + '","s":429,"b":{"retry_after_ms":1e400}}\n')
        for (let ms = 0; ms < 600000; ms += 100000) {
            rx(h, "\n") // the server's heartbeats
            await advance(h, ms < 500000 ? 100000 : 99000)
        }
        expect(h.t.lastRequest().token).toBe(held)
        rx(h, "\n")
        await advance(h, 2000)
        expect(h.t.lastRequest().token === held).toBe(false) // the batch again, after 10 min
        rx(h, '{"notice":true,"status":503,"body":{"retry_after_ms":1e400}}\n')
        await advance(h, 599900)
        expect(h.t.opens).toBe(1)
        await advance(h, 200)
        expect(h.t.opens).toBe(2)
    })
    test("backoff grows while flapping and resets after 20 s up", async () => {
        const h = makeLink({}, 0.999)
        let t = 0
        for (let i = 0; i < 4; ++i) {
            bringUp(h)
            rx(h, '{"notice":true,"status":503}\n') // drops at once: attempts 0,1,2,3
            t = h.link.stats().transitions
            await advance(h, 5000)
        }
        expect(h.logs.join("|").indexOf("retry in 3996 ms") >= 0).toBe(true)
        bringUp(h)
        for (let i = 0; i < 200; ++i) {
            await advance(h, 100)
            rx(h, "\n")
        }
        rx(h, '{"notice":true,"status":503}\n')
        expect(h.logs[h.logs.length - 1].indexOf("retry in 499 ms") >= 0).toBe(true)
    })
    test("batch refused with 4xx: dropped and counted; 503: kept and resent after retry_after_ms and a random spread", async () => {
        const h = makeLink()
        bringUp(h)
        h.link.report("temp", 1)
        ackLast(h, 422)
        expect(h.link.stats().rejected).toBe(1)
        expect(h.link.stats().outbox).toBe(0)
        h.link.report("temp", 2)
        const req = h.t.lastRequest()
        rx(h, '{"token":"' + req.token + '","status":503,"body":{"retry_after_ms":500}}\n')
        expect(h.link.stats().outbox).toBe(1)
        // retry_after_ms and half of the 1 s spread (random 0.5): a fleet refused at once does not resend at once
        await advance(h, 900)
        expect(h.t.lastRequest().token).toBe(req.token)
        await advance(h, 200)
        expect(h.t.lastRequest().token === req.token).toBe(false)
    })
    test("batch answered with a status that is neither success nor refusal (0, 1xx, 3xx): kept and resent, never taken as stored", async () => {
        const h = makeLink()
        bringUp(h)
        h.link.report("temp", 1)
        for (const st of [0, 100, 302]) {
            const req = h.t.lastRequest()
            ackLast(h, st)
            expect(h.link.stats().rejected).toBe(0)
            await advance(h, 1500) // 1 s and half of the spread (random 0.5)
            const again = h.t.lastRequest()
            expect(again.token === req.token).toBe(false)
            expect(again.body.datastreams[0].id).toBe("temp")
            expect(again.body.datastreams[0].datapoints[0].at).toBe(req.body.datastreams[0].datapoints[0].at)
        }
        const last = h.t.lastRequest()
        ackLast(h, 200)
        expect(h.t.lastRequest().token === last.token || h.t.lastRequest().body.datastreams[0].id !== "temp").toBe(true) // stored: not sent again
        expect(h.link.stats().rejected).toBe(0)
    })
    test("batch answered 429 E_FANOUT_BUSY (the feed's subscribers are behind): kept, resent after retry_after_ms", async () => {
        const h = makeLink({}, 0) // no spread drawn
        bringUp(h)
        h.link.report("temp", 3)
        const req = h.t.lastRequest()
        rx(h, '{"token":"' + req.token + '","status":429,"body":{"title":"Too Many Requests","errors":"busy; nothing was stored","code":"E_FANOUT_BUSY","retry_after_ms":800}}\n')
        expect(h.link.stats().outbox).toBe(1)
        expect(h.link.stats().rejected).toBe(0)
        await advance(h, 700)
        expect(h.t.lastRequest().token).toBe(req.token)
        await advance(h, 200)
        expect(h.t.lastRequest().token === req.token).toBe(false)
        ackLast(h, 200)
        expect(h.link.stats().outbox).toBe(0)
    })
    test("last resort: reboot after rebootMin without success, stretched by earlier reboots", async () => {
        const h = makeLink({ rebootMin: 1, reboots: 1 })
        h.t.openResult = "E_OPEN -1"
        h.link.start()
        await advance(h, 60000)
        expect(h.reboots.length).toBe(0) // 1 earlier reboot: the wait doubles
        await advance(h, 60000)
        expect(h.reboots.length).toBe(1)
        expect(h.reboots[0]).toBe(2)
    })
    test("no Wi-Fi does not count toward the last resort: a reboot cannot bring the network back", async () => {
        const h = makeLink({ rebootMin: 1 })
        h.t.openResult = "E_NO_NETWORK"
        h.link.start()
        await advance(h, 5 * 60000)
        expect(h.link.state).toBe("offline")
        expect(h.reboots.length).toBe(0)
        h.t.openResult = "E_OPEN -1" // Wi-Fi back, the server still unreachable: now it counts
        await advance(h, 60000)
        expect(h.reboots.length).toBe(1)
    })
    test("an idle link that hears the server is not rebooted", async () => {
        const h = makeLink({ rebootMin: 0.05 }) // 3 s
        bringUp(h)
        for (let i = 0; i < 60; ++i) {
            await advance(h, 100)
            rx(h, "\n")
        }
        expect(h.reboots.length).toBe(0)
        expect(h.link.state).toBe("up")
    })
    test("after 6 h up the connection is renewed (idle) to take the server's clock again", async () => {
        const h = makeLink({ rebootMin: 0, diagMs: 1e9 }, 0)
        bringUp(h)
        h.clock.ms += 6 * 3600 * 1000 - 100
        rx(h, "\n")
        h.link.report("temp", 1) // in flight: the renewal waits for its acknowledgement
        await advance(h, 100)
        expect(h.link.state).toBe("up")
        ackLast(h, 200)
        await advance(h, 100)
        expect(h.link.stats().lastDisconnect).toBe("E_CLOCK_REFRESH")
    })
    test("a successful exchange after reboots resets the counter", async () => {
        const h = makeLink({ reboots: 3 })
        bringUp(h)
        expect(h.healthy).toBe(1)
        expect(h.link.stats().reboots).toBe(0)
    })
    test("invalid samples are refused, counted, never queued", async () => {
        const h = makeLink()
        expect(h.link.report("bad id", 1)).toBe(false)
        expect(h.link.report("t", "x123456789x123456789x123456789x12")).toBe(false)
        expect(h.link.stats().rejected).toBe(2)
        expect(h.link.stats().outbox).toBe(0)
    })
    test("offline for long: the outbox stays within its default budget, drops are counted, the heap holds", async () => {
        const h = makeLink() // DEFAULT_CONFIG.outboxBytes
        for (let i = 0; i < 1000; ++i) {
            h.link.report(i % 2 ? "temp" : "humidity", 20 + i / 100)
            if (i % 50 === 0) await ds.sleep(0)
        }
        const s = h.link.stats()
        console.log(`link: offline outbox holds ${s.outbox} samples in ~${s.outboxBytes} bytes, ${s.drops} dropped`)
        expect(s.outbox + s.drops).toBe(1000)
        expect(s.outboxBytes <= DEFAULT_CONFIG.outboxBytes).toBe(true)
        bringUp(h) // what survived goes out oldest first
        expect(h.t.lastRequest().body.datastreams[0].datapoints[0].value).toBe("" + (20 + s.drops / 100))
    })
    test("diagnostics datastreams go out while up; _boots is the boot counter the link started with", async () => {
        const h = makeLink({ diagMs: 1000, boots: 3 })
        bringUp(h)
        await advance(h, 1000)
        const ids: string[] = []
        let boots = ""
        const reqs = h.t.requests()
        for (let i = 0; i < reqs.length; ++i) {
            const ds = reqs[i].body ? reqs[i].body.datastreams : undefined
            if (ds)
                for (let j = 0; j < ds.length; ++j) {
                    ids.push(ds[j].id)
                    if (ds[j].id === "_boots") boots = ds[j].datapoints[0].value
                }
        }
        expect(ids.join(",")).toBe("_reconnects,_disconnect,_rtt_ms,_outbox,_drops,_uptime_s,_reboots,_boots,_flash_writes,_state")
        expect(boots).toBe("3")
    })
    test("_state: degraded and up again go out once each; a healthy reconnect adds no send", async () => {
        const h = makeLink()
        bringUp(h)
        const before = h.t.requests().length // a healthy welcome sends no _state
        await advance(h, 1000) // silent for `faulty`
        expect(h.link.state).toBe("degraded")
        expect(h.t.requests().length).toBe(before + 1)
        expect(stateIn(h.t.lastRequest())).toBe("degraded")
        ackLast(h, 200) // the answer is traffic: up again
        expect(h.link.state).toBe("up")
        await advance(h, 100)
        expect(h.t.requests().length).toBe(before + 2)
        expect(stateIn(h.t.lastRequest())).toBe("up")
        ackLast(h, 200)
        h.link.onClosed("E_CLOSED_BY_SERVER")
        await advance(h, 1000)
        h.link.onOpen()
        rx(h, welcomeLine(SERVER_TIME_MS))
        await advance(h, 500)
        expect(h.link.state).toBe("up")
        expect(h.t.requests().length).toBe(before + 2)
    })
})

/** the `_state` value a request carries, "" when none */
function stateIn(req: any): string {
    const streams = req && req.body ? req.body.datastreams : undefined
    if (streams) for (let i = 0; i < streams.length; ++i) if (streams[i].id === "_state") return streams[i].datapoints[0].value
    return ""
}
