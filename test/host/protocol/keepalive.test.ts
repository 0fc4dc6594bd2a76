// The [P§4] keep-alive decision, Node side (the CLI, the dashboard page and the server use it). The
// DeviceScript twin runs the same table in test/firmware/netparts.test.ts.
import assert from "node:assert/strict"
import { test } from "node:test"
import { keepaliveContractOf, keepaliveFromWelcome, keepaliveStep } from "../../../src/keepalive.ts"
import { decodeServerLine } from "../../../src/protocol.ts"
import { SETTINGS_VECTORS, STEP_VECTORS, WELCOME_LINE_VECTORS, WELCOME_VECTORS } from "../../vectors/keepalive.ts"

test("keepaliveStep: the shared table", () => {
    for (const v of STEP_VECTORS) {
        const [heartbeatMs, faultyMs, timeoutMs] = v.contract
        const step = keepaliveStep(v.nowMs, v.lastRxMs, v.lastTxMs, { heartbeatMs, faultyMs, timeoutMs })
        assert.deepEqual(step, { health: v.health, sendHeartbeat: v.sendHeartbeat, nextCheckInMs: v.nextCheckInMs }, v.name)
    }
})

test("keepaliveFromWelcome: the shared table", () => {
    for (const v of WELCOME_VECTORS) {
        const [heartbeat, faulty, timeout] = v.welcome
        const floors = v.floors && { heartbeatMs: v.floors[0], timeoutMs: v.floors[1], maxTimeoutMs: v.floors[2] }
        const c = keepaliveFromWelcome({ heartbeat, faulty, timeout }, floors)
        assert.deepEqual([c.heartbeatMs, c.faultyMs, c.timeoutMs], v.contract, v.name)
    }
})

test("keepaliveContractOf: the shared table (faulty derived from the heartbeat, contradictions refused)", () => {
    for (const v of SETTINGS_VECTORS) {
        const [h, f, t] = v.given.map((n) => (n === 0 ? undefined : n))
        const got = keepaliveContractOf(h, f, t)
        if (v.contract) assert.deepEqual(got.contract && [got.contract.heartbeatMs, got.contract.faultyMs, got.contract.timeoutMs], v.contract, `${v.name}: ${got.error}`)
        else {
            assert.equal(got.contract, undefined, v.name)
            assert.ok(got.error!.includes(v.error!), `${v.name}: ${got.error}`)
        }
    }
})

test("a welcome without faulty: the client derives it as the server does", () => {
    for (const v of WELCOME_LINE_VECTORS) {
        const c = keepaliveFromWelcome(decodeServerLine(v.line).welcome!)
        assert.deepEqual([c.heartbeatMs, c.faultyMs, c.timeoutMs], v.contract, v.name)
    }
})
