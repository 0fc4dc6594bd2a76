// The server's background work on a clock moved by hand (node:test's mock timers): the look for keys
// changed by another process, which ends a revoked key's idle subscriptions ([P§8]: "within a second",
// "the server looks for such changes every 500 ms"). The servers' own tests call keys.refresh(), the
// look itself, when they need it now (auth/revocation.test.ts); here: that it runs on its interval,
// survives a failure, and stops.
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { test, type TestContext } from "node:test"
import { KEY_REFRESH_MS, retentionNowMs, startBackgroundWork } from "../../../devs/server/background.ts"
import { DEVICE_SEEN_FLUSH_MS } from "../../../devs/server/limits.ts"
import type { KeyRing } from "../../../devs/server/auth/keys.ts"
import type { Fleet } from "../../../devs/server/fleet/fleet.ts"
import type { Logger } from "../../../devs/server/log.ts"
import type { Store } from "../../../devs/server/storage/store.ts"

/** What the background work calls, counted; `failNext` makes the next key look fail. */
function fakes() {
    const calls = { refresh: 0, flushSeen: 0, errors: [] as string[] }
    let failNext = false
    const keys = {
        upgradeLegacyHashes: async () => 0,
        refresh: async () => {
            calls.refresh++
            if (failNext) {
                failNext = false
                throw new Error("store unavailable")
            }
        },
    } as unknown as KeyRing
    const fleet = { flushSeen: async () => void calls.flushSeen++ } as unknown as Fleet
    const log = { info: () => {}, error: (_o: unknown, msg: string) => calls.errors.push(msg) } as unknown as Logger
    return { calls, keys, fleet, log, store: {} as Store, failOnce: () => (failNext = true) }
}

/** The background work on the fakes, its intervals on node:test's mock timers (moved by t.mock.timers.tick), stopped after the test. */
function startedOnMockTimers(t: TestContext) {
    t.mock.timers.enable({ apis: ["setInterval"] })
    const f = fakes()
    const work = startBackgroundWork({ keys: f.keys, store: f.store, fleet: f.fleet, log: f.log, now: () => 0 })
    t.after(() => work.stop())
    return { ...f, work }
}

/** Lets the promise callbacks a tick started run (the fakes resolve at once). */
const settle = () => new Promise<void>((r) => setImmediate(r))

test("the look for other processes' key changes runs every KEY_REFRESH_MS, which keeps the documented promise", () => {
    // a revoked key's idle subscriptions end within a second: one interval to notice, the rest margin
    assert.ok(KEY_REFRESH_MS <= 500, `KEY_REFRESH_MS ${KEY_REFRESH_MS} leaves no margin in "within a second"`)
    const protocol = readFileSync(new URL("../../../docs/PROTOCOL.md", import.meta.url), "utf8").replace(/\s+/g, " ")
    assert.ok(protocol.includes("ends the subscription, on every door, also when nothing is written: within a second"), "PROTOCOL.md's promise")
    assert.ok(protocol.includes(`the server looks for such changes every ${KEY_REFRESH_MS} ms`), "PROTOCOL.md names the interval the code uses")
})

test("each tick of KEY_REFRESH_MS reloads the keys (the reload re-checks every subscription); a failed look is logged and the next tick looks again; stop() ends it", async (t) => {
    const f = startedOnMockTimers(t)
    t.mock.timers.tick(KEY_REFRESH_MS - 1)
    assert.equal(f.calls.refresh, 0)
    t.mock.timers.tick(1)
    assert.equal(f.calls.refresh, 1, "a change is seen at most KEY_REFRESH_MS after it was committed")
    f.failOnce()
    t.mock.timers.tick(KEY_REFRESH_MS)
    await settle()
    assert.equal(f.calls.refresh, 2)
    assert.deepEqual(f.calls.errors, ["reloading keys failed"])
    t.mock.timers.tick(KEY_REFRESH_MS)
    assert.equal(f.calls.refresh, 3, "a failure does not stop the looks")
    f.work.stop()
    t.mock.timers.tick(10 * KEY_REFRESH_MS)
    assert.equal(f.calls.refresh, 3)
})

test("devices' last-seen times are written every DEVICE_SEEN_FLUSH_MS", (t) => {
    const f = startedOnMockTimers(t)
    t.mock.timers.tick(DEVICE_SEEN_FLUSH_MS - 1)
    assert.equal(f.calls.flushSeen, 0)
    t.mock.timers.tick(1)
    assert.equal(f.calls.flushSeen, 1)
})

// [P§9] Found by the audit of 2026-12-07: the retention cut at the wall clock minus its days, so a step of the
// clock forward by more than the retention (NTP correcting a bad clock, a VM resumed) deleted every datapoint at
// the next hourly check, acknowledged ones included.
test("the retention cuts by the time gone by since the start: a step of the wall clock forward deletes nothing more, and is warned of; a step back deletes less", async (t) => {
    const DAY_MS = 86_400_000
    const HOUR_MS = 3_600_000
    t.mock.timers.enable({ apis: ["setInterval"] })
    const f = fakes()
    const cutoffs: number[] = []
    const store = { prune: async (beforeMs: number) => (cutoffs.push(beforeMs), 0) } as unknown as Store
    const warnings: string[] = []
    const log = { ...f.log, warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as Logger
    const started = Date.UTC(2026, 11, 7)
    let wallMs = started
    let goneByMs = 0
    const work = startBackgroundWork({ keys: f.keys, store, fleet: f.fleet, log, now: () => wallMs, elapsedMs: () => 5_000 + goneByMs, retentionDays: 30 })
    t.after(() => work.stop())
    const hourLater = async (stepMs: number) => {
        goneByMs += HOUR_MS
        wallMs += HOUR_MS + stepMs
        t.mock.timers.tick(HOUR_MS)
        await settle()
    }
    assert.deepEqual(cutoffs, [started - 30 * DAY_MS], "at the start: the wall clock's")
    await hourLater(365 * DAY_MS) // the clock steps a year forward
    assert.equal(cutoffs[1], started + HOUR_MS - 30 * DAY_MS, "not a year later")
    assert.equal(warnings.length, 1)
    assert.match(warnings[0], /wall clock is ahead/)
    await hourLater(-365 * DAY_MS - 2 * DAY_MS) // back, and two days behind
    assert.equal(cutoffs[2], started + 2 * HOUR_MS - 32 * DAY_MS, "the earlier of the two")
    assert.equal(warnings.length, 1)
})

test("the retention's time is the wall clock unless the wall clock was stepped ahead of the time gone by since the start", () => {
    const startedMs = 1_700_000_000_000
    // no step: the start's reads a fraction apart and whole milliseconds leave the sum just behind; the wall clock stands
    assert.equal(retentionNowMs(startedMs + 5000, startedMs, 4999.3), startedMs + 5000)
    // a step of a day forward is no time gone by: the start plus the time gone by
    assert.equal(retentionNowMs(startedMs + 5000 + 86_400_000, startedMs, 5000), startedMs + 5000)
    // a step back: the wall clock, as it deletes less
    assert.equal(retentionNowMs(startedMs - 60_000, startedMs, 5000), startedMs - 60_000)
})
