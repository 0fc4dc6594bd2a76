// [P§7] The failed-key lockout of an address (429 E_AUTH_RATE_LIMITED) and the 24 h pass a key proven from that
// address has through it live in this process alone, and ran on the wall clock: a step of the clock forward
// (NTP correcting a drifted clock, a VM resumed) lifted a lockout at once, and one of more than a day ended
// every pass, so a fleet behind one NAT was locked out by one misconfigured board after all; a step back kept
// passes for as long as the step. They run on the monotonic clock (ServerOptions.elapsedMs) now. Found by the
// adversarial audit of 2026-12-07.
import assert from "node:assert/strict"
import { test } from "node:test"
import { serverForThisFile, TlsClient } from "../../harness/server-harness.ts"

const HOUR_MS = 3600_000
let stepMs = 0
// the wall clock the server reads, stepped by the test; its monotonic clock is not
const s = await serverForThisFile({ now: () => Date.now() + stepMs })
const feed = s.credentials.feedId
const deviceKey = s.credentials.deviceKey

async function lockOut(c: TlsClient, from: number): Promise<void> {
    let code
    for (let i = from; i < from + 40 && code !== "E_AUTH_RATE_LIMITED"; ++i) {
        code = (await c.request({ method: "get", resource: `/feeds/${feed}`, headers: { "X-ApiKey": `wrong-key-${i}-xxxx` } })).body.code
    }
    assert.equal(code, "E_AUTH_RATE_LIMITED", "locked out")
}

test("a step of the wall clock neither lifts an address's lockout nor ends a proven key's pass through it", async () => {
    // the device's key proven from this address, then the connection gone (its pass: 24 h from now)
    const device = await TlsClient.open(s, deviceKey)
    assert.equal((await device.request({ method: "get", resource: `/feeds/${feed}` })).status, 200)
    device.close()
    await device.q.untilClosed()
    const guesser = await TlsClient.open(s)
    try {
        await lockOut(guesser, 0)
        // an hour forward: the lockout (10 failed keys a minute) holds, where the wall clock's refill lifted it
        stepMs = HOUR_MS
        const wrong = await guesser.request({ method: "get", resource: `/feeds/${feed}`, headers: { "X-ApiKey": "wrong-key-100-xxxx" } })
        assert.deepEqual([wrong.status, wrong.body.code], [429, "E_AUTH_RATE_LIMITED"], "the lockout holds after the step")
        // 25 hours forward: the device's pass (24 h) still lets it through the lockout
        stepMs = 25 * HOUR_MS
        const back = await TlsClient.open(s)
        try {
            const r = await back.request({ method: "get", resource: `/feeds/${feed}`, headers: { "X-ApiKey": deviceKey } })
            assert.equal(r.status, 200, `the proven key passes after the step: ${JSON.stringify(r.body)}`)
        } finally {
            back.close()
        }
    } finally {
        stepMs = 0
        guesser.close()
    }
})
