// End to end for sensors and actuators: the simulator runs the real link and the sim board's
// simulated sensors and actuators (src/app/io.ts) against the real server over TLS. Checked on the
// server side over HTTP: sensor values reach the history, a command written over HTTP switches the
// simulated actuator and its applied state comes back, a config change applies live, a bad command
// lands on _errors. Timings are printed, asserted only with wide margins.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import { startServer, type RunningServer } from "../../devs/server/index.ts"
import { api, datapoints, genEntry, runFirmware, VM_START_MS, type FirmwareRun } from "./firmware-harness.ts"
import { SERVER_POLL_MS, until } from "../host/harness/until.ts"

// exactly what src/main.ts does after startLink(): the simulator's board, its settings applied
const APP = `
import { startBoardIo } from "../../../src/app/io"
import { simBoard } from "../../../src/foundation/config"
import { SIMULATOR_DRIVERS } from "../../../src/sensors/simulated"
await startBoardIo(link, simBoard(), SIMULATOR_DRIVERS)
`
/** a loaded 2-core machine runs the simulator slowly; these bound a test, they do not measure it */
const WAIT_MS = 20_000

describe("sensors and actuators end to end (simulator, TLS, real server)", { timeout: 200_000 }, () => {
    let dataDir: string
    let server: RunningServer
    let fw: FirmwareRun
    let key: string
    let feed: number

    const current = async (id: string): Promise<string | undefined> => {
        const r = await api(server.appPort, key, "GET", `/feeds/${feed}/datastreams/${id}`)
        return r.status === 200 ? r.body.current_value : undefined
    }
    const write = async (id: string, value: string) => {
        const r = await api(server.appPort, key, "PUT", `/feeds/${feed}`, { version: "1.0.0", datastreams: [{ id, current_value: value }] })
        assert.equal(r.status, 200, JSON.stringify(r.body))
    }

    before(async () => {
        dataDir = mkdtempSync(join(tmpdir(), "feedline-io-e2e-"))
        server = await startServer({ dataDir, devicePort: 0, appPort: 0, logLevel: "silent" })
        key = server.credentials.masterKey
        feed = server.credentials.feedId
        const entry = genEntry(
            "sensors-e2e",
            { SRV_HOST: "localhost", SRV_PORT: server.devicePort, FEED_ID: feed, API_KEY: server.credentials.deviceKey, REBOOT_MIN: 0 },
            APP
        )
        fw = runFirmware(entry, server.caCertPath, 180_000)
        await fw.waitFor(/^feedline: board sim/, VM_START_MS)
    })

    after(async () => {
        const code = await fw?.stop()
        await server?.close()
        if (dataDir) rmSync(dataDir, { recursive: true, force: true })
        assert.ok(!/PANIC|OutOfMemory|InfiniteLoop/.test(fw?.output() ?? ""), `the VM panicked (exit ${code}):\n${fw?.output().slice(-3000)}`)
    })

    test("simulated sensor values reach the history, as text with the sensor's precision", async () => {
        const started = Date.now()
        for (const id of ["temp", "humidity", "light", "rssi"]) {
            await until(`${id} in the history`, async () => (await datapoints(server.appPort, key, feed, id)).length > 0, WAIT_MS, SERVER_POLL_MS)
        }
        console.log(`all four sensors in the history ${Date.now() - started} ms after the device started its io`)
        const temp = await datapoints(server.appPort, key, feed, "temp")
        assert.match(temp[0].value, /^\d+\.\d\d$/)
        const t = Number(temp[0].value)
        assert.ok(t > 10 && t < 35, `plausible temperature: ${t}`)
        assert.match((await datapoints(server.appPort, key, feed, "rssi"))[0].value, /^-\d+$/)
        assert.equal(await current("temp.cfg.state"), "i=5s d=0.10 s=1m")
    })

    test("a command written over HTTP switches the actuator and its applied state comes back", async () => {
        assert.equal(await until("led.state at boot", () => current("led.state"), WAIT_MS, SERVER_POLL_MS), "0")
        const sent = Date.now()
        await write("led", "on")
        await until("led.state 1", async () => (await current("led.state")) === "1", WAIT_MS, SERVER_POLL_MS)
        console.log(`led on: applied state back on the server ${Date.now() - sent} ms after the HTTP write`)
        await fw.waitFor(/^feedline: led = 1$/, WAIT_MS)
        await write("setpoint", "22.25")
        await until("setpoint.state 22.3", async () => (await current("setpoint.state")) === "22.3", WAIT_MS, SERVER_POLL_MS)
    })

    test("a config change applies live; a bad command lands on _errors and changes nothing", async () => {
        await write("temp.cfg", "i=1s d=0")
        await until("temp.cfg.state", async () => (await current("temp.cfg.state")) === "i=1s d=0.00 s=1m", WAIT_MS, SERVER_POLL_MS)
        const before = (await datapoints(server.appPort, key, feed, "temp")).length
        // three new values, however long a loaded machine takes to store them; the device's own times
        // of them show the interval (a count of values in a fixed 4 s failed when the VM ran slowly)
        const fresh = await until("3 temp values after the change", async () => {
            const points = (await datapoints(server.appPort, key, feed, "temp")).slice(before)
            return points.length >= 3 ? points : undefined
        }, WAIT_MS, SERVER_POLL_MS)
        const gapsMs = fresh.slice(1).map((p, i) => Date.parse(p.at) - Date.parse(fresh[i].at))
        console.log(`temp at i=1s d=0: sampled ${gapsMs.join(" ms, ")} ms apart`)
        // the first new value may still be on the old 5 s schedule; one gap well under 5 s shows the new one
        assert.ok(Math.min(...gapsMs) < 4000, `faster sampling after the change: values ${gapsMs.join(" ms, ")} ms apart (was every 5 s)`)

        await write("relay", "blink")
        await until("_errors", async () => (await current("_errors")) === "E_CMD_VALUE relay blink", WAIT_MS, SERVER_POLL_MS)
        assert.equal(await current("relay.state"), "0")
    })
})
