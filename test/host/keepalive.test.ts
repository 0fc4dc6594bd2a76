// The [P§4] keep-alive decision, Node side (the CLI, the dashboard page and the server use it). The
// DeviceScript twin runs the same table in test/firmware/netparts.test.ts.
import assert from "node:assert/strict"
import { test } from "node:test"
import { keepaliveFromWelcome, keepaliveStep } from "../../src/protocol.ts"
import { STEP_VECTORS, WELCOME_VECTORS } from "../vectors/keepalive.ts"

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
        const floors = v.floors && { heartbeatMs: v.floors[0], timeoutMs: v.floors[1] }
        const c = keepaliveFromWelcome({ welcome: "feedline/test", session: "s", time: 1, heartbeat, faulty, timeout }, floors)
        assert.deepEqual([c.heartbeatMs, c.faultyMs, c.timeoutMs], v.contract, v.name)
    }
})
