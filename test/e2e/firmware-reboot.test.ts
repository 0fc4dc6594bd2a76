// A planned reboot loses nothing (docs/FIRMWARE.md "Reboots"): the whole device (src/app/device.ts: link, simulated
// sensors, actuators) in the simulator, its flash in a file that outlives the run (devs/tools/sim-flash.cjs),
// through the fault proxy to the real server. The device is cut off until its last-resort reboot
// (REBOOT_MIN 0.1: 6 s), which saves its outbox to flash; the run ends there (a reboot), a command is
// written while it is off, and a second run on the same flash is the device booting again. Checked on the
// server: every sample of the first boot stored once, the command handled once, after the state saved
// before the reboot was restored.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { startServer } from "../../devs/server/index.ts"
import { FaultProxy } from "../../devs/faultproxy/proxy.ts"
import { api, datapoints, deviceSettings, genEntry, runFirmware, VM_START_MS, type FirmwareRun } from "./firmware-harness.ts"
import { SERVER_POLL_MS, until } from "../host/harness/until.ts"

// Each boot numbers its samples "<boot>.<n>" (every 100 ms) and prints them: the first boot's are the
// ones queued at the reboot.
const APP = `
const boot = (await readSetting<number>("T_BOOT", 0)) + 1
await writeSetting("T_BOOT", boot)
let n = 0
setInterval(() => {
    const v = boot + "." + n++
    console.log("seq " + v)
    link.report("seq", v)
}, 100)
`

test("a planned reboot loses nothing: queued samples resent once, a command written during the reboot handled once", { timeout: 4 * VM_START_MS }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "feedline-fw-reboot-"))
    const flashFile = join(dir, "flash.bin")
    const server = await startServer({ dataDir: join(dir, "data"), devicePort: 0, appPort: 0, logLevel: "silent" })
    const proxy = await new FaultProxy({ target: { port: server.devicePort } }).start()
    const { feedId, masterKey } = server.credentials
    const settings = deviceSettings(proxy.port, server.credentials, { REBOOT_MIN: 0.1, BACKOFF_MS: 100, BACKOFF_MAX_S: 0.5, DIAG_S: 3600 })
    const put = async (v: string) => {
        const r = await api(server.appPort, masterKey, "PUT", `/feeds/${feedId}/datastreams/led`, { current_value: v })
        assert.ok(r.status < 300, JSON.stringify(r))
    }
    const ledStates = async () => (await datapoints(server.appPort, masterKey, feedId, "led.state")).map((p) => p.value)
    let fw: FirmwareRun | undefined
    try {
        // boot 1: up, a command applied, then cut off until the last-resort reboot
        fw = runFirmware(genEntry("reboot1", settings, APP, { device: true }), server.caCertPath, 10 * VM_START_MS, { flashFile })
        await fw.waitFor(/^link: greeting -> up/, VM_START_MS)
        await fw.waitFor(/^feedline: led = 0/, VM_START_MS)
        await put("1")
        await fw.waitFor(/^feedline: led = 1/, 30_000)
        await until("led.state 1 stored", async () => (await ledStates()).includes("1"), 30_000, SERVER_POLL_MS)
        const from = fw.lines.length
        proxy.refuse()
        proxy.reset()
        const rebooting = await fw.waitFor(/^link: saved \d+ queued samples; rebooting/, 60_000, from)
        const boot1 = fw.lines.filter((l) => l.text.startsWith("seq 1.")).map((l) => l.text.slice(4))
        const out1 = fw.output()
        await fw.stop()
        console.log(`# reboot: ${rebooting.text}; the first boot produced ${boot1.length} samples`)
        assert.ok(!/PANIC|OutOfMemory|InfiniteLoop/.test(out1), out1.slice(-3000))

        // off: a command that toggles (handled twice, the led would be back on)
        await put("toggle")

        // boot 2 on the same flash
        proxy.accept()
        fw = runFirmware(genEntry("reboot2", settings, APP, { device: true }), server.caCertPath, 10 * VM_START_MS, { flashFile })
        const queued = await fw.waitFor(/^link: \d+ samples queued again from before the reboot/, VM_START_MS)
        await fw.waitFor(/^link: greeting -> up/, 60_000)
        const firstBoot = async () => (await datapoints(server.appPort, masterKey, feedId, "seq")).map((p) => p.value).filter((v) => v.startsWith("1."))
        const stored = await until("every sample of the first boot on the server", async () => {
            const values = await firstBoot()
            return boot1.every((v) => values.includes(v)) ? values : undefined
        }, 60_000, SERVER_POLL_MS).catch(async (e) => {
            const values = await firstBoot()
            throw new Error(`${e.message}: missing ${boot1.filter((v) => !values.includes(v)).join(" ")}\n${fw!.output().slice(-3000)}`)
        })
        await until("led.state 0 stored", async () => (await ledStates()).slice(-1)[0] === "0", 30_000, SERVER_POLL_MS)
        await new Promise((r) => setTimeout(r, 2000)) // a second handling of the toggle would come now
        const leds = fw.lines.filter((l) => l.text.startsWith("feedline: led = ")).map((l) => l.text.slice(16))
        const out2 = fw.output()
        console.log(`# reboot: ${queued.text}; ${stored.length} first-boot samples stored; led after boot 2: ${leds.join(", ")}; server led.state: ${(await ledStates()).join(", ")}`)
        assert.equal(stored.length, new Set(stored).size, "a sample was stored twice")
        assert.equal(stored.length, boot1.length, "samples stored that the first boot never produced")
        assert.deepEqual(leds, ["1", "0"], "restored on, then the toggle written during the reboot, once")
        assert.ok(!/PANIC|OutOfMemory|InfiniteLoop/.test(out2), out2.slice(-3000))
    } finally {
        await fw?.stop()
        await proxy.close()
        await server.close()
        rmSync(dir, { recursive: true, force: true })
    }
})
