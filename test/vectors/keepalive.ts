// The [P§4] keep-alive decision (keepaliveStep, keepaliveFromWelcome in src/keepalive.ts) as a table.
// Import-free so that both the Node test (test/host/protocol/keepalive.test.ts) and the DeviceScript test
// (test/firmware/netparts.test.ts) run the same cases: the firmware link, the CLI, the dashboard page
// and the server all decide with this one function.

export interface StepVector {
    name: string
    nowMs: number
    lastRxMs: number
    lastTxMs: number
    /** [heartbeatMs, faultyMs, timeoutMs] */
    contract: number[]
    health: string
    sendHeartbeat: boolean
    nextCheckInMs: number
}

/** the protocol defaults [P§2] */
const D = [300, 1000, 3000]
/** the server: it reports no "degraded", so it passes faulty = timeout */
const S = [300, 3000, 3000]

export const STEP_VECTORS: StepVector[] = [
    { name: "fresh connection: next look when a heartbeat is due", nowMs: 1000, lastRxMs: 1000, lastTxMs: 1000, contract: D, health: "ok", sendHeartbeat: false, nextCheckInMs: 300 },
    { name: "quiet for `heartbeat`: send one, look again a heartbeat later", nowMs: 1300, lastRxMs: 1000, lastTxMs: 1000, contract: D, health: "ok", sendHeartbeat: true, nextCheckInMs: 300 },
    { name: "a ms before the heartbeat is due", nowMs: 1299, lastRxMs: 1000, lastTxMs: 1000, contract: D, health: "ok", sendHeartbeat: false, nextCheckInMs: 10 },
    { name: "`faulty` is nearer than the next heartbeat", nowMs: 1900, lastRxMs: 1000, lastTxMs: 1800, contract: D, health: "ok", sendHeartbeat: false, nextCheckInMs: 100 },
    { name: "a ms before `faulty`: still ok", nowMs: 1999, lastRxMs: 1000, lastTxMs: 1999, contract: D, health: "ok", sendHeartbeat: false, nextCheckInMs: 10 },
    { name: "silent for `faulty`: degraded, next look at the heartbeat", nowMs: 2000, lastRxMs: 1000, lastTxMs: 1800, contract: D, health: "degraded", sendHeartbeat: false, nextCheckInMs: 100 },
    { name: "degraded links keep sending heartbeats; `timeout` is nearer", nowMs: 3900, lastRxMs: 1000, lastTxMs: 3500, contract: D, health: "degraded", sendHeartbeat: true, nextCheckInMs: 100 },
    { name: "a ms before `timeout`: degraded", nowMs: 3999, lastRxMs: 1000, lastTxMs: 3999, contract: D, health: "degraded", sendHeartbeat: false, nextCheckInMs: 10 },
    { name: "silent for `timeout`: dead, though we sent just now (our sends are no proof of life)", nowMs: 4000, lastRxMs: 1000, lastTxMs: 3990, contract: D, health: "dead", sendHeartbeat: false, nextCheckInMs: 10 },
    { name: "no heartbeat on a dead link", nowMs: 4000, lastRxMs: 1000, lastTxMs: 1000, contract: D, health: "dead", sendHeartbeat: false, nextCheckInMs: 10 },
    { name: "a clock that jumps back waits a whole period, never spins", nowMs: 0, lastRxMs: 5000, lastTxMs: 5000, contract: D, health: "ok", sendHeartbeat: false, nextCheckInMs: 5300 },
    { name: "server: idle", nowMs: 1000, lastRxMs: 1000, lastTxMs: 1000, contract: S, health: "ok", sendHeartbeat: false, nextCheckInMs: 300 },
    { name: "server: part of the heartbeat period gone", nowMs: 1200, lastRxMs: 1000, lastTxMs: 1000, contract: S, health: "ok", sendHeartbeat: false, nextCheckInMs: 100 },
    { name: "server: heartbeat due", nowMs: 1300, lastRxMs: 1000, lastTxMs: 1000, contract: S, health: "ok", sendHeartbeat: true, nextCheckInMs: 300 },
    { name: "server: silent past the default `faulty` is still ok (faulty = timeout)", nowMs: 2500, lastRxMs: 1000, lastTxMs: 2400, contract: S, health: "ok", sendHeartbeat: false, nextCheckInMs: 200 },
    { name: "server: `timeout` is nearer than the next heartbeat", nowMs: 3900, lastRxMs: 1000, lastTxMs: 3800, contract: S, health: "ok", sendHeartbeat: false, nextCheckInMs: 100 },
    { name: "server: silent for `timeout`", nowMs: 4000, lastRxMs: 1000, lastTxMs: 3800, contract: S, health: "dead", sendHeartbeat: false, nextCheckInMs: 10 },
    { name: "metered link: 25 s heartbeat, 30 s faulty, 60 s timeout", nowMs: 100000, lastRxMs: 80000, lastTxMs: 80000, contract: [25000, 30000, 60000], health: "ok", sendHeartbeat: false, nextCheckInMs: 5000 },
]

export interface WelcomeVector {
    name: string
    /** the welcome's [heartbeat, faulty, timeout] */
    welcome: number[]
    /** [heartbeatMs, timeoutMs, maxTimeoutMs] bounds, or none */
    floors?: number[]
    /** the contract: [heartbeatMs, faultyMs, timeoutMs] */
    contract: number[]
}

/** a device's bounds: it ticks every 100 ms, a timeout below 1 s would reconnect it in a loop, one above 5 min is no watchdog */
const DEVICE_FLOORS = [100, 1000, 300000]

export const WELCOME_VECTORS: WelcomeVector[] = [
    { name: "a metered link's values are taken", welcome: [25000, 30000, 60000], floors: DEVICE_FLOORS, contract: [25000, 30000, 60000] },
    { name: "a misconfigured server meets the device's floors", welcome: [1, 5000, 3], floors: DEVICE_FLOORS, contract: [100, 1000, 1000] },
    { name: "absurdly long values (1e400 reads as Infinity) are capped: timeout at the ceiling, heartbeat at half of it", welcome: [Infinity, Infinity, Infinity], floors: DEVICE_FLOORS, contract: [150000, 300000, 300000] },
    { name: "a heartbeat too slow for its timeout is kept to half of it", welcome: [60000000, 45000, 60000], floors: DEVICE_FLOORS, contract: [30000, 45000, 60000] },
    { name: "an app client takes short values as they are", welcome: [40, 60, 150], contract: [40, 60, 150] },
    { name: "faulty never exceeds timeout", welcome: [300, 5000, 3000], contract: [300, 3000, 3000] },
]

export interface SettingsVector {
    name: string
    /** a server's settings [heartbeat, faulty, timeout]; 0 = not given */
    given: number[]
    /** the contract it announces: [heartbeatMs, faultyMs, timeoutMs] */
    contract?: number[]
    /** or: refused, and the reason names this */
    error?: string
}

/** keepaliveContractOf [P§4]: what a server announces from its settings, or why it refuses to start */
export const SETTINGS_VECTORS: SettingsVector[] = [
    { name: "nothing given: the protocol defaults", given: [0, 0, 0], contract: [300, 1000, 3000] },
    { name: "metered link, faulty not given: three heartbeats, capped halfway to the timeout", given: [25000, 0, 60000], contract: [25000, 42500, 60000] },
    { name: "a slow heartbeat with room: three heartbeats", given: [5000, 0, 60000], contract: [5000, 15000, 60000] },
    { name: "a fast heartbeat keeps the 1 s floor", given: [100, 0, 3000], contract: [100, 1000, 3000] },
    { name: "a short timeout caps the derived faulty below it", given: [50, 0, 200], contract: [50, 125, 200] },
    { name: "a given faulty is kept", given: [25000, 30000, 60000], contract: [25000, 30000, 60000] },
    { name: "heartbeat given alone against the default timeout", given: [25000, 0, 0], error: "twice" },
    { name: "faulty not above the heartbeat", given: [1000, 1000, 5000], error: "faulty" },
    { name: "faulty not below the timeout", given: [300, 3000, 3000], error: "faulty" },
    { name: "faulty beyond the timeout", given: [300, 5000, 3000], error: "faulty" },
    { name: "a fraction of a ms", given: [300.5, 0, 3000], error: "whole" },
]

export interface WelcomeLineVector {
    name: string
    line: string
    /** keepaliveFromWelcome(decodeServerLine(line).welcome), no floors */
    contract: number[]
}

/** a welcome from a server that leaves out faulty: the client derives it as the server would */
export const WELCOME_LINE_VECTORS: WelcomeLineVector[] = [
    { name: "no faulty, defaults", line: '{"welcome":"feedline/0.1.0","session":"s","time":1,"heartbeat":300,"timeout":3000}', contract: [300, 1000, 3000] },
    { name: "no faulty, metered link", line: '{"welcome":"feedline/0.1.0","session":"s","time":1,"heartbeat":25000,"timeout":60000}', contract: [25000, 42500, 60000] },
    { name: "nothing but the welcome", line: '{"welcome":"feedline/0.1.0","session":"s","time":1}', contract: [300, 1000, 3000] },
    // envelope fuzz, seed 1234386169: {"heartbeat":1,"timeout":5e-324} derived faulty 0 (not positive)
    { name: "a sub-ms timeout: faulty derived positive, at the timeout", line: '{"welcome":"x","session":"s","time":1,"heartbeat":1,"timeout":0.5}', contract: [1, 0.5, 0.5] },
]
