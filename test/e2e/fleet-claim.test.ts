// [fleet] A board provisions itself (docs/FLEET.md "Boards"): the firmware link in the simulator, flashed
// with only the server's address, a product id and its activation code (no API_KEY, no FEED_ID), claims
// its feed and key at its first connection, keeps them in flash (devs/tools/sim-flash.cjs) and reports on its
// own feed; booted again on the same flash, it claims nothing and goes on with what it kept. Its boot
// counter reaches the fleet view (GET /v2/devices/ID reboots: 0 after the first boot, 1 after the second).
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { startServer } from "../../devs/server/index.ts"
import { activationCode, parseProductSecret } from "../../devs/server/fleet/claim-codes.ts"
import { api, datapoints, genEntry, runFirmware, VM_START_MS, type FirmwareRun, type Settings } from "./firmware-harness.ts"
import { SERVER_POLL_MS, until } from "../host/harness/until.ts"

/** Every simulated board reports deviceIdentifier("self") = 12abdd2289421234: this one is named by HW_ID. */
const HW = "sim-e2e-1"

// Each boot numbers its samples "<boot>.<n>", one a 200 ms, and says the policy the claim kept for "temp".
const APP = `
console.log("kept policy temp: " + (await readSetting<string>("CFG_temp", "none")))
const boot = (await readSetting<number>("T_BOOT", 0)) + 1
await writeSetting("T_BOOT", boot)
let n = 0
setInterval(() => {
    link.report("seq", boot + "." + n++)
}, 200)
`

test("a board with only a product id and its activation code claims its feed and key, reports on it, and after a reboot uses what it kept", { timeout: 4 * VM_START_MS }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "feedline-fw-claim-"))
    const flashFile = join(dir, "flash.bin")
    const server = await startServer({ dataDir: join(dir, "data"), devicePort: 0, appPort: 0, logLevel: "silent" })
    const { masterKey } = server.credentials
    let fw: FirmwareRun | undefined
    try {
        const made = await api(server.appPort, masterKey, "POST", "/products", { title: "e2e", datastreams: [{ id: "seq" }, { id: "temp", policy: "i=10s" }] })
        assert.equal(made.status, 201, JSON.stringify(made.body))
        const secret = parseProductSecret(made.body.secret)!
        // what a flashing script puts on the board: no key, no feed
        const settings: Settings = {
            SRV_HOST: "localhost",
            SRV_PORT: server.devicePort,
            PRODUCT_ID: made.body.id,
            CLAIM_CODE: activationCode(secret.signingKey, made.body.id, HW),
            HW_ID: HW,
            BACKOFF_MS: 200,
            BACKOFF_MAX_S: 1,
            REBOOT_MIN: 0,
            DIAG_S: 1, // the diagnostics (_boots among them) every second
        }
        const feedsBefore = (await api(server.appPort, masterKey, "GET", "/feeds")).body.totalResults

        // boot 1: claims, then the link goes up on the claimed feed
        fw = runFirmware(genEntry("claim1", settings, APP), server.caCertPath, 10 * VM_START_MS, { flashFile })
        const claimed = await fw.waitFor(/^claim: claimed device \S+, feed (\d+) \(new\)$/, VM_START_MS)
        const feed = Number(/feed (\d+)/.exec(claimed.text)![1])
        await fw.waitFor(new RegExp(`^link: tls://localhost:\\d+ feed ${feed},`), 30_000) // what the link uses, said after the claim
        const listed = (await api(server.appPort, masterKey, "GET", `/devices?product=${made.body.id}`)).body
        assert.equal(listed.totalResults, 1)
        const deviceId: string = listed.devices[0].id
        const stored1 = await until("boot 1's samples on the claimed feed", async () => {
            const values = (await datapoints(server.appPort, masterKey, feed, "seq")).map((p) => p.value)
            return values.some((v) => v.startsWith("1.")) ? values : undefined
        }, 60_000, SERVER_POLL_MS)
        await fw.waitFor(/^kept policy temp: i=10s$/, 10_000) // the product's policy, kept where the app reads it (CFG_<id>)
        // the fleet view's reboots: the board's boot counter (BOOTS, reported as _boots) less one
        const device1 = await until("boot 1's _boots in the fleet view", async () => {
            const d = (await api(server.appPort, masterKey, "GET", `/devices/${deviceId}`)).body
            return d.reboots === null ? undefined : d
        }, 60_000, SERVER_POLL_MS)
        assert.deepEqual([device1.hardware_id, device1.feed, device1.state, device1.firmware, device1.reboots], [HW, feed, "active", "0.1.0", 0], JSON.stringify(device1))
        const out1 = fw.output()
        await fw.stop()
        assert.ok(!/PANIC|OutOfMemory|InfiniteLoop/.test(out1), out1.slice(-3000))

        // boot 2 on the same flash (the same image: the same settings written again, still no key): no claim
        fw = runFirmware(genEntry("claim2", settings, APP), server.caCertPath, 10 * VM_START_MS, { flashFile })
        await fw.waitFor(new RegExp(`^link: tls://localhost:\\d+ feed ${feed},`), VM_START_MS)
        await fw.waitFor(/^link: greeting -> up/, 60_000)
        await until("boot 2's samples on the same feed", async () => {
            const values = (await datapoints(server.appPort, masterKey, feed, "seq")).map((p) => p.value)
            return values.some((v) => v.startsWith("2.")) ? values : undefined
        }, 60_000, SERVER_POLL_MS)
        const out2 = fw.output()
        assert.ok(!/^claim:/m.test(out2), `boot 2 claimed again:\n${out2.slice(-3000)}`)
        const device2 = await until("boot 2 counted in the fleet view's reboots", async () => {
            const d = (await api(server.appPort, masterKey, "GET", `/devices/${deviceId}`)).body
            return d.reboots === 1 ? d : undefined
        }, 60_000, SERVER_POLL_MS)
        assert.deepEqual([device2.firmware, device2.link], ["0.1.0", "up"], JSON.stringify(device2))
        assert.equal(device2.key_id, device1.key_id, "the key kept in flash, not a new one")
        const devices = (await api(server.appPort, masterKey, "GET", `/devices?product=${made.body.id}`)).body
        assert.equal(devices.totalResults, 1)
        assert.equal((await api(server.appPort, masterKey, "GET", "/feeds")).body.totalResults, feedsBefore + 1, "one feed made, once")
        console.log(`# claim e2e: device ${deviceId} claimed feed ${feed}; boot 1 stored ${stored1.length} samples; boot 2 reused the kept key ${device2.key_id}`)
        assert.ok(!/PANIC|OutOfMemory|InfiniteLoop/.test(out2), out2.slice(-3000))
    } finally {
        await fw?.stop()
        await server.close()
        rmSync(dir, { recursive: true, force: true })
    }
})
