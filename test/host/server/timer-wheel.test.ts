// One timer for every connection's keep-alive (devs/server/timer-wheel.ts): callbacks run in the order
// of their due times, a cancelled or replaced one does not run, and one that schedules itself again
// from its callback runs again later (never spinning in the same slot). Only order is asserted: a loaded
// machine may run the timer late, and then several slots in one pass.
import assert from "node:assert/strict"
import { test } from "node:test"
import { TimerWheel, WheelTimer } from "../../../devs/server/timer-wheel.ts"
import { hubClockOn } from "../../../devs/server/hub/index.ts"

test("timer wheel: due order, cancel, replace, re-schedule from the callback", async () => {
    // due times count from the moment each is scheduled: the clock stands still while they are, or a
    // loaded machine pausing between two schedule() calls would reorder them (CI: "late" ran before
    // "replaced", scheduled at 60 and 45 ms a moment apart); then it runs on with real time
    let frozenMs: number | undefined = performance.now()
    const wheel = new TimerWheel(5, () => frozenMs ?? performance.now())
    const ran: string[] = []
    let done!: () => void
    const finished = new Promise<void>((r) => (done = r))
    const check = () => ran.includes("last") && ran.includes("repeat2") && done()
    const named = (name: string) =>
        new WheelTimer(() => {
            ran.push(name)
            check()
        })
    const late = named("late")
    const cancelled = named("cancelled")
    const replaced = named("replaced")
    let again = 0
    const repeating: WheelTimer = new WheelTimer(() => {
        ran.push(`repeat${again}`)
        if (++again < 3) wheel.schedule(repeating, 0)
        check()
    })
    wheel.schedule(late, 60)
    wheel.schedule(named("first"), 1)
    wheel.schedule(cancelled, 30)
    wheel.schedule(replaced, 10)
    wheel.schedule(replaced, 45) // replaces the 10 ms one
    wheel.schedule(repeating, 20)
    wheel.schedule(named("last"), 90)
    wheel.cancel(cancelled)
    assert.equal(wheel.size, 5)
    frozenMs = undefined
    const keepAlive = setInterval(() => {}, 1000) // the wheel's own timer does not keep a process alive
    await finished
    clearInterval(keepAlive)
    assert.deepEqual(
        ran.filter((n) => !n.startsWith("repeat")),
        ["first", "replaced", "late", "last"],
    )
    assert.deepEqual(
        ran.filter((n) => n.startsWith("repeat")),
        ["repeat0", "repeat1", "repeat2"],
    )
    assert.ok(ran.indexOf("repeat0") > ran.indexOf("first") && ran.indexOf("repeat0") < ran.indexOf("replaced"))
    assert.equal(wheel.size, 0)
})

test("timer wheel: the server's hub clock puts subscriptions' timers (timeouts, token expiries) on the wheel, not on timers of their own", async () => {
    const wheel = new TimerWheel(5)
    const clock = hubClockOn(wheel)
    const ran: string[] = []
    const kept = clock.setTimer(() => ran.push("kept"), 10)
    const cleared = clock.setTimer(() => ran.push("cleared"), 10)
    assert.equal(wheel.size, 2)
    clock.clearTimer(cleared)
    assert.equal(wheel.size, 1)
    const hold = setInterval(() => {}, 1000) // the wheel's own interval does not keep the process alive
    await new Promise<void>((resolve) => clock.setTimer(resolve, 20))
    clearInterval(hold)
    assert.deepEqual(ran, ["kept"])
    assert.ok(kept instanceof WheelTimer)
})
