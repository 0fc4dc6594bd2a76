// Actuator command parsing, applied-state reporting, error reporting; the whole sim board wired to fakes.
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { Actuator } from "../../src/actuators/actuator"
import { commandText, parseSetpointCommand, parseSwitchCommand } from "../../src/actuators/commands"
import { MemoryOutput, Output } from "../../src/actuators/outputs"
import { BoardConfig } from "../../src/foundation/config"
import { simBoard } from "../../src/foundation/config"
import { SIMULATOR_DRIVERS } from "../../src/sensors/simulated"
import { SettingsPolicyStore } from "../../src/app/config-settings"
import { parseDecimal } from "../../src/foundation/config-text"
import { startFieldIo } from "../../src/app/io"
import { ActuatorStore, ErrorReporter, PolicyStore, SavedState } from "../../src/foundation/ports"
import { seededRand } from "../../src/sensors/signal"
import { fakeClock, FakeCommands, RecordingSink } from "./io-fakes"

describe("actuator commands", () => {
    test("switch: on/off words in any case, toggle, everything else is E_CMD_VALUE", () => {
        expect(parseSwitchCommand("1", 0).value).toBe(1)
        expect(parseSwitchCommand(" ON ", 0).value).toBe(1)
        expect(parseSwitchCommand("true", 0).value).toBe(1)
        expect(parseSwitchCommand("off", 1).value).toBe(0)
        expect(parseSwitchCommand("0", 1).value).toBe(0)
        expect(parseSwitchCommand("toggle", 1).value).toBe(0)
        expect(parseSwitchCommand("toggle", 0).value).toBe(1)
        expect(parseSwitchCommand("blink", 0).error).toBe("E_CMD_VALUE")
        expect(parseSwitchCommand("2", 0).error).toBe("E_CMD_VALUE")
        expect(parseSwitchCommand("", 0).error).toBe("E_CMD_EMPTY")
    })
    test("setpoint: a number in range, rounded to its resolution", () => {
        expect(parseSetpointCommand("21.26", 5, 35, 1).value).toBe(21.3)
        expect(parseSetpointCommand("5", 5, 35, 1).value).toBe(5)
        expect(parseSetpointCommand("35.04", 5, 35, 1).value).toBe(35)
        expect(parseSetpointCommand("36", 5, 35, 1).error).toBe("E_CMD_RANGE")
        expect(parseSetpointCommand("-1", 5, 35, 1).error).toBe("E_CMD_RANGE")
        expect(parseSetpointCommand("warm", 5, 35, 1).error).toBe("E_CMD_VALUE")
        expect(parseSetpointCommand("21,5", 5, 35, 1).error).toBe("E_CMD_VALUE")
        expect(parseSetpointCommand(" ", 5, 35, 1).error).toBe("E_CMD_EMPTY")
    })
    test("the command text is taken from a pushed body; a deletion is no command", () => {
        expect(commandText({ id: "led", current_value: "on" }).text).toBe("on")
        expect(commandText({ id: "led", current_value: 1 }).text).toBe("1")
        expect(commandText({ id: "led", current_value: true }).text).toBe("1")
        const del = commandText({ id: "led", deleted: true })
        expect(del.text).toBe(undefined)
        expect(del.error).toBe(undefined)
        expect(commandText({ id: "led" }).error).toBe("E_CMD_BODY")
        expect(commandText("on").error).toBe("E_CMD_BODY")
        expect(commandText(null).error).toBe("E_CMD_BODY")
    })
})

class FailingOutput implements Output {
    async apply(value: number) {
        throw new Error("relay stuck")
    }
}

/** An actuator store in memory, counting writes as the flash would see them. */
class MemoryActuatorStore implements ActuatorStore {
    saved: Record<string, SavedState> = {}
    writes = 0
    async load(id: string): Promise<SavedState | undefined> {
        return this.saved[id]
    }
    async save(id: string, state: number, at: string) {
        this.writes++
        this.saved[id] = { state: state, at: at }
    }
}

const AT1 = "2026-11-22T05:00:01.000Z"
const AT2 = "2026-11-22T05:00:02.000Z"

describe("actuators", () => {
    test("across a reboot: state and command at saved once per command applied, restored, subscribed from that at", async () => {
        const store = new MemoryActuatorStore()
        const sink = new RecordingSink()
        const led = new Actuator({ id: "led", kind: "switch", initial: 0 }, new MemoryOutput(), sink, new ErrorReporter(sink), store)
        expect(await led.restore()).toBe(undefined) // first boot: nothing saved
        await led.start()
        expect(store.writes).toBe(0)
        led.command({ id: "led", current_value: "on", at: AT1 })
        await led.idle()
        expect(store.writes).toBe(1)
        led.command({ id: "led", current_value: "on", at: AT1 }) // the same push again: no new write
        led.command({ id: "led", current_value: "blink", at: AT2 }) // refused: not applied, not saved
        await led.idle()
        expect(store.writes).toBe(1)
        // reboot: a new actuator on the same store starts in the saved state; a toggle written meanwhile
        const out = new MemoryOutput()
        const again = new Actuator({ id: "led", kind: "switch", initial: 0 }, out, sink, new ErrorReporter(sink), store)
        expect(await again.restore()).toBe(AT1)
        await again.start()
        expect(out.value).toBe(1)
        again.command({ id: "led", current_value: "toggle", at: AT2 })
        await again.idle()
        expect(out.value).toBe(0)
        expect(store.saved["led"].at).toBe(AT2)
        expect(store.writes).toBe(2)
        // the board wiring subscribes each actuator from its saved at
        const cmds = new FakeCommands()
        await startFieldIo({ board: simBoard(), drivers: SIMULATOR_DRIVERS, sink: sink, commands: cmds.subscribe, actuatorStore: store, autoRun: false, logSamples: false, rand: seededRand(1) })
        expect(cmds.sinces[cmds.resources.indexOf("datastreams/led")]).toBe(AT2)
        expect(cmds.sinces[cmds.resources.indexOf("datastreams/relay")]).toBe(undefined)
    })
    test("a command is applied and the applied state reported; bad ones go to _errors only", async () => {
        const sink = new RecordingSink()
        const out = new MemoryOutput()
        const led = new Actuator({ id: "led", kind: "switch", initial: 0 }, out, sink, new ErrorReporter(sink, fakeClock().read))
        await led.start()
        expect(sink.last("led.state")).toBe("0")
        led.command({ id: "led", current_value: "on" })
        await led.idle()
        expect(out.value).toBe(1)
        expect(sink.last("led.state")).toBe("1")
        led.command({ id: "led", current_value: "blink" })
        led.command({ id: "led", deleted: true })
        await led.idle()
        expect(sink.last("_errors")).toBe("E_CMD_VALUE led blink")
        expect(sink.values("led.state").join(",")).toBe("0,1")
        expect(led.state).toBe(1)
    })
    test("commands arriving while one is applied collapse to the newest", async () => {
        const sink = new RecordingSink()
        const relay = new Actuator({ id: "relay", kind: "switch", initial: 0 }, new MemoryOutput(), sink, new ErrorReporter(sink))
        relay.command({ current_value: "1" })
        relay.command({ current_value: "0" })
        relay.command({ current_value: "1" })
        await relay.idle()
        expect(relay.state).toBe(1)
        expect(sink.last("relay.state")).toBe("1")
    })
    test("an output that fails is reported, the old state stays", async () => {
        const sink = new RecordingSink()
        const a = new Actuator({ id: "relay", kind: "switch", initial: 0 }, new FailingOutput(), sink, new ErrorReporter(sink))
        a.command({ current_value: "on" })
        await a.idle()
        expect(a.state).toBe(0)
        expect(sink.last("_errors")).toBe("E_ACT_APPLY relay")
        expect(sink.values("relay.state").length).toBe(0)
    })
    test("setpoint reports its value with its resolution", async () => {
        const sink = new RecordingSink()
        const sp = new Actuator({ id: "setpoint", kind: "setpoint", min: 5, max: 35, decimals: 1, initial: 20 }, new MemoryOutput(), sink, new ErrorReporter(sink))
        await sp.start()
        sp.command({ current_value: "22.25" })
        await sp.idle()
        sp.command({ current_value: "99" })
        await sp.idle()
        expect(sink.values("setpoint.state").join(",")).toBe("20.0,22.3")
        expect(sink.last("_errors")).toBe("E_CMD_RANGE setpoint 99")
    })
})

// The only test in the VM run that starts in-VM sensor servers: a second batch of servers started after
// the first has been announced never binds (measured), so every simulated sensor starts here, at once.
describe("sim board wired to the ports", () => {
    test("subscribes commands and configs, reports sensors, applies live config and commands", async () => {
        const sink = new RecordingSink()
        const cmds = new FakeCommands()
        const clock = fakeClock()
        const io = await startFieldIo({ board: simBoard(), drivers: SIMULATOR_DRIVERS, feedId: 7, sink: sink, commands: cmds.subscribe, clock: clock.read, rand: seededRand(3), autoRun: false })
        expect(io.sensorIds.join(",")).toBe("temp,humidity,light,rssi")
        expect(cmds.resources.indexOf("/feeds/7/datastreams/temp.cfg") >= 0).toBe(true)
        expect(cmds.resources.indexOf("/feeds/7/datastreams/led") >= 0).toBe(true)
        expect(cmds.resources.indexOf("/feeds/7/datastreams/setpoint") >= 0).toBe(true)
        expect(sink.last("temp.cfg.state")).toBe("i=5s d=0.10 s=1m")
        expect(sink.last("relay.state")).toBe("0")

        // the in-VM servers bind after ~1 s of real time; the fake clock keeps pace with it, so a slow
        // machine gives more retries, not a sensor error (that takes 10 misses 1 s apart)
        const allReported = () => io.sensorIds.every(id => sink.values(id).length > 0)
        for (let i = 0; i < 150 && !allReported(); i++) {
            await ds.sleep(100)
            clock.now += 100
            await io.sampler.tick()
        }
        for (const id of io.sensorIds) expect(sink.values(id).length > 0).toBe(true)
        expect(sink.values("_errors").length).toBe(0)
        const t = parseDecimal(sink.last("temp"))
        const h = parseDecimal(sink.last("humidity"))
        const l = parseDecimal(sink.last("light"))
        const r = parseDecimal(sink.last("rssi"))
        console.log(`sim board: temp ${t} C, humidity ${h} %RH, light ${l} %, rssi ${r} dBm`)
        expect(t > 10 && t < 35 && h > 10 && h < 90 && l >= 0 && l <= 100 && r < -20 && r > -100).toBe(true)
        expect(sink.last("temp").indexOf(".") === sink.last("temp").length - 3).toBe(true) // two decimals

        expect(cmds.push("/feeds/7/datastreams/temp.cfg", { id: "temp.cfg", current_value: "i=1s d=0" })).toBe(true)
        expect(io.sampler.policyOf("temp").intervalMs).toBe(1000)
        expect(sink.last("temp.cfg.state")).toBe("i=1s d=0.00 s=1m")
        cmds.push("/feeds/7/datastreams/temp.cfg", { id: "temp.cfg", current_value: "i=soon" })
        expect(sink.last("_errors")).toBe("E_CFG_VALUE temp i=soon")

        cmds.push("/feeds/7/datastreams/relay", { id: "relay", current_value: "on" })
        for (const a of io.actuators) await a.idle()
        expect(sink.last("relay.state")).toBe("1")
    })
})

/** A store in memory, recording saves. */
class MemoryStore implements PolicyStore {
    saved: string[] = []
    constructor(private texts: Record<string, string>) {}
    async load(id: string) {
        return this.texts[id]
    }
    async save(id: string, text: string) {
        this.texts[id] = text
        this.saved.push(`${id}:${text}`)
    }
}

describe("policies kept across reboots", () => {
    // rssi only: simulated without an in-VM server, so this test starts no second batch of servers
    const RSSI_ONLY: BoardConfig = { id: "t", simulated: true, rssi: true, switches: [], setpoints: [] }

    test("a saved policy applies at start; a server change is saved as applied", async () => {
        const sink = new RecordingSink()
        const cmds = new FakeCommands()
        const store = new MemoryStore({ rssi: "i=30s d=5" })
        const io = await startFieldIo({ board: RSSI_ONLY, drivers: SIMULATOR_DRIVERS, feedId: 1, sink: sink, commands: cmds.subscribe, store: store, clock: fakeClock().read, autoRun: false })
        expect(sink.last("rssi.cfg.state")).toBe("i=30s d=5 s=5m")
        cmds.push("/feeds/1/datastreams/rssi.cfg", { current_value: "s=1h" })
        await ds.sleep(20) // the save runs in its own fiber
        expect(store.saved.join(",")).toBe("rssi:i=30s d=5 s=1h")
        expect(io.sampler.policyOf("rssi").maxSilenceMs).toBe(3600000)
        cmds.push("/feeds/1/datastreams/rssi.cfg", { current_value: "s=often" })
        await ds.sleep(20)
        expect(store.saved.length).toBe(1)
    })
    test("a policy that cannot be saved still applies, and the failure is reported", async () => {
        const sink = new RecordingSink()
        const cmds = new FakeCommands()
        const store = new MemoryStore({})
        store.save = async (id: string, text: string) => {
            throw new RangeError("flash full")
        }
        await startFieldIo({ board: RSSI_ONLY, drivers: SIMULATOR_DRIVERS, feedId: 1, sink: sink, commands: cmds.subscribe, store: store, clock: fakeClock().read, autoRun: false })
        cmds.push("/feeds/1/datastreams/rssi.cfg", { current_value: "i=20s" })
        await ds.sleep(20)
        expect(sink.last("rssi.cfg.state")).toBe("i=20s d=3 s=5m")
        expect(sink.last("_errors")).toBe("E_CFG_SAVE rssi")
    })
    test("settings store: CFG_<id> round trip", async () => {
        const s = new SettingsPolicyStore()
        await s.save("rssi", "i=1m")
        expect(await s.load("rssi")).toBe("i=1m")
        expect(await s.load("nothing")).toBe(undefined)
    })
})

describe("error reporter", () => {
    test("the same error within 10 s is sent once; later or different ones again", () => {
        const clock = fakeClock()
        const sink = new RecordingSink()
        const e = new ErrorReporter(sink, clock.read)
        e.report("E_CMD_VALUE", "led x")
        e.report("E_CMD_VALUE", "led x")
        clock.now = 9999
        e.report("E_CMD_VALUE", "led x")
        e.report("E_CMD_RANGE", "setpoint 99")
        clock.now = 30000
        e.report("E_CMD_RANGE", "setpoint 99")
        e.report("E_CFG_SYNTAX", "a-very-long-detail-that-goes-beyond-the-value-limit")
        expect(sink.values("_errors").join("|")).toBe("E_CMD_VALUE led x|E_CMD_RANGE setpoint 99|E_CMD_RANGE setpoint 99|E_CFG_SYNTAX a-very-long-detail-") // cut at 32 characters [P§10]
        expect(e.suppressed).toBe(2)
    })
})
