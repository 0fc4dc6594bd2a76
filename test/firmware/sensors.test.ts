// Sampling policy, policy text, the sampler with live config changes, and simulated signal plausibility.
// The simulated sensors' in-VM servers are exercised in actuators.test.ts ("sim board"): servers started
// after the VM's first batch never bind, so one test per VM run may start them.
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { formatDuration, parseDecimal, parseDuration, parsePolicyPatch } from "../../src/foundation/config-text"
import { ErrorReporter } from "../../src/foundation/ports"
import { Sampler, MISSES_BEFORE_ERROR } from "../../src/sensors/sampler"
import { decideSend, formatReading, initialSamplingState, markSent, SamplingPolicy } from "../../src/sensors/sampling"
import { FunctionSensor } from "../../src/sensors/sensor"
import { initialSignalState, nextReading, seededRand } from "../../src/sensors/signal"
import { SIM_SHAPES } from "../../src/sensors/simulated"
import { fakeClock, RecordingSink } from "./io-fakes"

function policy(intervalMs: number, deadband: number, maxSilenceMs: number, decimals: number): SamplingPolicy {
    return { intervalMs: intervalMs, deadband: deadband, maxSilenceMs: maxSilenceMs, decimals: decimals, outbox: "every" }
}

describe("sampling policy", () => {
    test("readings are text with exactly the sensor's decimals", () => {
        expect(formatReading(21.456, 1)).toBe("21.5")
        expect(formatReading(3, 2)).toBe("3.00")
        expect(formatReading(-0.04, 1)).toBe("0.0")
        expect(formatReading(-7.25, 2)).toBe("-7.25")
        expect(formatReading(0.1 + 0.2, 2)).toBe("0.30")
        expect(formatReading(101325.456, 2)).toBe("101325.46")
        expect(formatReading(-61.6, 0)).toBe("-62")
        expect(formatReading(NaN, 1)).toBe(undefined)
    })
    test("first reading is sent, then only moves beyond the deadband", () => {
        const p = policy(1000, 0.2, 60000, 1)
        const s = initialSamplingState(0)
        expect(decideSend(p, s, 21.0, 0)).toBe("first")
        markSent(s, p, 21.0, 0)
        expect(decideSend(p, s, 21.2, 1000)).toBe("skip") // exactly the deadband: not more than it
        expect(decideSend(p, s, 20.84, 2000)).toBe("skip") // rounds to 20.8
        expect(decideSend(p, s, 21.26, 3000)).toBe("moved") // rounds to 21.3
        expect(decideSend(p, s, 20.7, 3000)).toBe("moved")
    })
    test("a quiet sensor is sent after the maximum silence", () => {
        const p = policy(1000, 1, 10000, 1)
        const s = initialSamplingState(0)
        markSent(s, p, 5, 0)
        expect(decideSend(p, s, 5, 9999)).toBe("skip")
        expect(decideSend(p, s, 5, 10000)).toBe("silence")
    })
    test("deadband 0 sends every visible change, never a repeat; silence 0 sends everything", () => {
        const p = policy(1000, 0, 60000, 1)
        const s = initialSamplingState(0)
        markSent(s, p, 1.0, 0)
        expect(decideSend(p, s, 1.04, 1)).toBe("skip")
        expect(decideSend(p, s, 1.06, 1)).toBe("moved")
        expect(decideSend(policy(1000, 5, 0, 1), s, 1.0, 1)).toBe("silence")
    })
})

describe("policy text", () => {
    test("numbers and durations are parsed strictly", () => {
        expect(parseDecimal("-12.5")).toBe(-12.5)
        expect(parseDecimal(" 7 ")).toBe(7)
        expect(parseDecimal("12abc")).toBe(undefined)
        expect(parseDecimal("1.2.3")).toBe(undefined)
        expect(parseDecimal(".")).toBe(undefined)
        expect(parseDecimal("")).toBe(undefined)
        expect(parseDuration("250ms")).toBe(250)
        expect(parseDuration("5s")).toBe(5000)
        expect(parseDuration("1.5m")).toBe(90000)
        expect(parseDuration("2h")).toBe(7200000)
        expect(parseDuration("1500")).toBe(1500)
        expect(parseDuration("5x")).toBe(undefined)
        expect(formatDuration(300000)).toBe("5m")
        expect(formatDuration(1500)).toBe("1500ms")
    })
    test("i= d= s= with any separator; one bad item rejects the whole text", () => {
        const r = parsePolicyPatch("i=5s, d=0.2;s=10m")
        expect(r.error).toBe(undefined)
        expect(r.patch.intervalMs).toBe(5000)
        expect(r.patch.deadband).toBe(0.2)
        expect(r.patch.maxSilenceMs).toBe(600000)
        expect(parsePolicyPatch("d=1").patch.intervalMs).toBe(undefined)
        expect(parsePolicyPatch("i=5s x=1").error).toBe("E_CFG_KEY")
        expect(parsePolicyPatch("i=fast").error).toBe("E_CFG_VALUE")
        expect(parsePolicyPatch("d=-1").error).toBe("E_CFG_VALUE")
        expect(parsePolicyPatch("hello").error).toBe("E_CFG_SYNTAX")
        expect(parsePolicyPatch("  ").error).toBe("E_CFG_EMPTY")
        expect(parsePolicyPatch("i=5s d=0.2 s=10m i=5s d=0.2 s=10m").error).toBe("E_CFG_SYNTAX")
    })
})

/** A sampler over one function sensor whose value the test sets, with a fake clock. */
function rig(p: SamplingPolicy) {
    const clock = fakeClock()
    const sink = new RecordingSink()
    const sampler = new Sampler(sink, new ErrorReporter(sink, clock.read), clock.read)
    const box = { v: 20 as number | undefined }
    sampler.add(new FunctionSensor("temp", "C", () => box.v), p)
    return { clock, sink, sampler, box }
}

describe("sampler", () => {
    test("reads on its interval and sends what the policy lets through", async () => {
        const r = rig(policy(1000, 0.5, 5000, 1))
        expect(await r.sampler.tick()).toBe(1000)
        expect(r.sink.last("temp")).toBe("20.0")
        r.clock.now = 1000
        r.box.v = 20.3
        await r.sampler.tick()
        r.clock.now = 2000
        r.box.v = 20.6
        await r.sampler.tick()
        r.clock.now = 2500 // not due
        r.box.v = 30
        await r.sampler.tick()
        expect(r.sink.values("temp").join(",")).toBe("20.0,20.6")
        r.box.v = 20.6
        for (let t = 3000; t <= 7000; t += 1000) {
            r.clock.now = t
            await r.sampler.tick()
        }
        expect(r.sink.values("temp").join(",")).toBe("20.0,20.6,20.6") // the silence refresh at 7000
        expect(r.sampler.stats.reads).toBe(8)
    })
    test("a config change applies live: shorter interval at once, new deadband on the next read", async () => {
        const r = rig(policy(60000, 5, 600000, 1))
        await r.sampler.tick()
        r.clock.now = 2000
        expect(await r.sampler.tick()).toBe(58000)
        expect(r.sampler.configure("temp", "i=1s d=0.1")).toBe("i=1s d=0.1 s=10m")
        r.box.v = 20.2
        expect(await r.sampler.tick()).toBe(1000) // due since t=1000: read now, no waiting out the old 60 s
        expect(r.sampler.stats.reads).toBe(2)
        expect(r.sink.values("temp").join(",")).toBe("20.0,20.2")
        expect(r.sampler.policyOf("temp").intervalMs).toBe(1000)
    })
    test("out-of-range values are clamped, bad text is reported and changes nothing", async () => {
        const r = rig(policy(5000, 0.1, 60000, 1))
        expect(r.sampler.configure("temp", "i=10ms")).toBe("i=500ms d=0.1 s=1m")
        expect(r.sampler.configure("temp", "i=1s x=2")).toBe(undefined)
        expect(r.sink.last("_errors")).toBe("E_CFG_KEY temp x")
        expect(r.sampler.policyOf("temp").intervalMs).toBe(500)
        expect(r.sampler.configure("nope", "i=1s")).toBe(undefined)
        expect(r.sink.last("_errors")).toBe("E_CFG_SENSOR nope")
    })
    test("a sensor without readings is retried and reported once; one that throws does not stop the loop", async () => {
        const r = rig(policy(5000, 0.1, 60000, 1))
        r.box.v = undefined
        for (let i = 0; i < MISSES_BEFORE_ERROR + 3; i++) {
            await r.sampler.tick()
            r.clock.now += 1000
        }
        expect(r.sink.values("_errors").join(",")).toBe("E_SENSOR_NONE temp")
        expect(r.sink.values("temp").length).toBe(0)
        const clock = fakeClock()
        const sink = new RecordingSink()
        const s = new Sampler(sink, new ErrorReporter(sink, clock.read), clock.read)
        s.add(
            new FunctionSensor("bad", "C", () => {
                throw new Error("i2c")
            }),
            policy(1000, 0, 60000, 0)
        )
        s.add(new FunctionSensor("good", "C", () => 1), policy(1000, 0, 60000, 0))
        await s.tick()
        expect(sink.last("good")).toBe("1")
    })
})

class HungSensor {
    readonly id = "hung"
    readonly unit = "C"
    async read(): Promise<number | undefined> {
        await ds.sleep(600000)
        return 1
    }
}

describe("sampler with a hung sensor", () => {
    test("a read that never returns times out, is reported, and the other sensors go on", async () => {
        const clock = fakeClock()
        const sink = new RecordingSink()
        const s = new Sampler(sink, new ErrorReporter(sink, clock.read), clock.read)
        s.readTimeoutMs = 50
        s.add(new HungSensor(), policy(1000, 0, 60000, 0))
        let n = 0
        s.add(new FunctionSensor("good", "C", () => n++), policy(1000, 0, 60000, 0))
        for (let i = 0; i < MISSES_BEFORE_ERROR + 2; i++) {
            await s.tick()
            clock.now += 1000
        }
        expect(sink.values("good").length).toBe(MISSES_BEFORE_ERROR + 2)
        expect(sink.values("_errors").join(",")).toBe("E_SENSOR_READ hung")
    })
})

describe("simulated sensors", () => {
    test("signal stays plausible over a simulated day: drifts, steps, never leaves its range", async () => {
        const shape = SIM_SHAPES["temp"]
        const rand = seededRand(42)
        const st = initialSignalState()
        let min = 1000
        let max = -1000
        let sum = 0
        let biggestJump = 0
        let prev = shape.base
        const n = 720 // every 2 min for 24 h
        for (let i = 0; i < n; i++) {
            if (i % 100 === 0) await ds.sleep(0) // the VM panics after ~128K steps without yielding
            const v = nextReading(shape, st, 120000, rand)
            if (v < min) min = v
            if (v > max) max = v
            sum += v
            const jump = Math.abs(v - prev)
            if (jump > biggestJump) biggestJump = jump
            prev = v
        }
        const mean = sum / n
        console.log(`sim temp 24h: min ${formatReading(min, 2)} max ${formatReading(max, 2)} mean ${formatReading(mean, 2)} biggest 2-min jump ${formatReading(biggestJump, 2)}`)
        expect(mean > 19 && mean < 24).toBe(true)
        expect(min > 14 && max < 29).toBe(true)
        expect(max - min > 1).toBe(true) // it does move
        expect(biggestJump < 5).toBe(true) // a step (1.5) plus two minutes of drift, not a glitch
    })
    test("the same seed gives the same readings", () => {
        const a = seededRand(7)
        const b = seededRand(7)
        const sa = initialSignalState()
        const sb = initialSignalState()
        for (let i = 0; i < 20; i++) expect(nextReading(SIM_SHAPES["humidity"], sa, 5000, a)).toBe(nextReading(SIM_SHAPES["humidity"], sb, 5000, b))
    })
})
