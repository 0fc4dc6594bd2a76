// Sensors and actuators of one board, wired to the link through two small ports (src/foundation/ports.ts).
// In src/main.ts:
//   const link = await startLink()
//   await startBoardIo(link)        // = startFieldIo({ board from settings, sink: link, commands: link.subscribe, store: settings })
// Datastreams: each sensor `<q>` (temp, humidity, …); `<q>.cfg` in (policy text), `<q>.cfg.state` out
// (policy applied); each actuator `<a>` in (command), `<a>.state` out (state applied); `_errors` out.
import * as ds from "@devicescript/core"
import { Actuator, ActuatorSpec, STATE_SUFFIX } from "../actuators/actuator"
import { commandText } from "../actuators/commands"
import { MemoryOutput, startSwitchOutput } from "../actuators/outputs"
import { startHardwareSensors } from "../sensors/hardware"
import { Sampler } from "../sensors/sampler"
import { SamplingPolicy } from "../sensors/sampling"
import { Sensor, SensorDrivers } from "../sensors/sensor"
import { Rand01 } from "../sensors/signal"
import { BoardConfig, QUANTITIES, sensorQuantities } from "../foundation/config"
import { loadBoardConfig, SettingsActuatorStore, SettingsPolicyStore } from "./config-settings"
import { ActuatorStore, CommandSource, ErrorReporter, logLine, PolicyStore, SampleSink } from "../foundation/ports"
import { Link } from "../net/link"

export const CONFIG_SUFFIX = ".cfg"

export interface FieldIoOptions {
    board: BoardConfig
    /** the chip driver or simulated sensors this build carries */
    drivers: SensorDrivers
    /** the device's feed: command resources are /feeds/<feedId>/datastreams/<id>; absent: "datastreams/<id>",
     *  which the link resolves against its own feed */
    feedId?: number | string
    sink: SampleSink
    commands: CommandSource
    store?: PolicyStore
    /** keeps actuator states and the last command handled across reboots */
    actuatorStore?: ActuatorStore
    clock?: () => number
    rand?: Rand01
    /** false: the caller runs `sampler.tick()` itself (tests); default true starts the sampling fiber */
    autoRun?: boolean
    /** log each value sent, with why (first, moved, silence); default true */
    logSamples?: boolean
}

export interface FieldIo {
    sampler: Sampler
    actuators: Actuator[]
    errors: ErrorReporter
    /** the datastream ids read, in order */
    sensorIds: string[]
}

export function defaultPolicy(id: string): SamplingPolicy {
    const q = QUANTITIES[id]
    return { intervalMs: q.intervalMs, deadband: q.deadband, maxSilenceMs: q.maxSilenceMs, decimals: q.decimals, outbox: q.outbox }
}

function resourceOf(feedId: number | string | undefined, id: string): string {
    return feedId === undefined ? `datastreams/${id}` : `/feeds/${feedId}/datastreams/${id}`
}

async function startSensors(opts: FieldIoOptions, errors: ErrorReporter, clock: () => number, rand: Rand01): Promise<Sensor[]> {
    const d = opts.drivers
    if (!opts.board.simulated) return await startHardwareSensors(opts.board, (code, detail) => errors.report(code, detail), d)
    if (!d.simulated) {
        errors.report("E_SENSOR_BUILD", "simulated") // a board build carries no simulated sensors
        return []
    }
    return sensorQuantities(opts.board).map(q => d.simulated(q, rand, clock))
}

/** Subscribes `<id>.cfg`: a pushed policy text is applied at once and its result reported on `<id>.cfg.state`. */
function subscribeConfig(opts: FieldIoOptions, sampler: Sampler, errors: ErrorReporter, id: string) {
    const cfgId = id + CONFIG_SUFFIX
    opts.commands(resourceOf(opts.feedId, cfgId), body => {
        const c = commandText(body)
        if (c.error) return errors.report(c.error, cfgId)
        if (c.text === undefined) return
        const applied = sampler.configure(id, c.text)
        if (applied === undefined) return
        console.log(`feedline: ${id} policy ${applied}`)
        opts.sink.report(cfgId + STATE_SUFFIX, applied, "latest")
        if (opts.store) {
            const save = async () => {
                try {
                    await opts.store.save(id, applied)
                } catch (e) {
                    errors.report("E_CFG_SAVE", id) // applied, but back to the old policy after a reboot
                }
            }
            save.start() // flash writes take a while; the link's reader goes on
        }
    })
}

function subscribeActuator(opts: FieldIoOptions, a: Actuator, since: string) {
    opts.commands(resourceOf(opts.feedId, a.spec.id), a.command, since)
}

export async function startFieldIo(opts: FieldIoOptions): Promise<FieldIo> {
    const clock = opts.clock || ds.millis
    const rand = opts.rand || Math.random
    const errors = new ErrorReporter(opts.sink, clock)
    const sampler = new Sampler(opts.sink, errors, clock)
    if (opts.logSamples !== false) sampler.log = logLine

    for (const s of await startSensors(opts, errors, clock, rand)) {
        sampler.add(s, defaultPolicy(s.id))
        const saved = opts.store ? await opts.store.load(s.id) : undefined
        if (saved !== undefined) sampler.configure(s.id, saved)
        opts.sink.report(s.id + CONFIG_SUFFIX + STATE_SUFFIX, sampler.describe(s.id), "latest")
    }
    for (const id of sampler.ids()) subscribeConfig(opts, sampler, errors, id)

    const actuators: Actuator[] = []
    const st = opts.actuatorStore
    for (const sw of opts.board.switches) {
        actuators.push(new Actuator({ id: sw.id, kind: "switch", initial: 0 }, startSwitchOutput(sw), opts.sink, errors, st))
    }
    for (const sp of opts.board.setpoints) {
        const spec: ActuatorSpec = { id: sp.id, kind: "setpoint", min: sp.min, max: sp.max, decimals: sp.decimals, initial: sp.initial }
        // the setpoint is a target kept for local control; no pin of its own
        actuators.push(new Actuator(spec, new MemoryOutput(), opts.sink, errors, st))
    }
    const names = actuators.map(a => a.spec.id).join(",")
    console.log(`feedline: board ${opts.board.id}${opts.board.simulated ? " (simulated sensors)" : ""}, sensors ${sampler.ids().join(",")}, actuators ${names}`)
    // the state saved before a reboot first, then the commands written since its `at`: subscribed only
    // once the output is in its start state, or a replayed command (the link may already be up) could be
    // applied first and start() apply and report it again (test/e2e/firmware-reboot.test.ts, 3 of 6 runs)
    for (const a of actuators) {
        const since = await a.restore()
        await a.start()
        subscribeActuator(opts, a, since)
    }

    if (opts.autoRun !== false) sampler.run.start()
    return { sampler: sampler, actuators: actuators, errors: errors, sensorIds: sampler.ids() }
}

/**
 * The device's sensors and actuators as configured by its board and settings, reporting through and
 * commanded by `link` (the object startLink() returns). Sampling policies changed from the server are
 * kept in settings across reboots.
 */
export async function startBoardIo(link: Link, board: BoardConfig, drivers: SensorDrivers): Promise<FieldIo> {
    // link.subscribe read off the class (bound): marks that one method used, not every `subscribe` (ports.ts)
    return await startFieldIo({ board: await loadBoardConfig(board), drivers: drivers, sink: link, commands: link.subscribe, store: new SettingsPolicyStore(), actuatorStore: new SettingsActuatorStore() })
}
