// Later (devs/server/later.ts): the hot path's one-listener value. Its listener hears the outcome in the call
// that settles it (no microtask between), whether it listened before or after; the first outcome is the one;
// it has one listener; awaited or returned from a `.then` callback it is adopted as a promise would be.
import assert from "node:assert/strict"
import { test } from "node:test"
import { Later, listenTo } from "../../../devs/server/later.ts"

test("Later: the listener hears the outcome within the settling call, before or after it listened; the first outcome wins", () => {
    const heard: string[] = []
    const later = new Later<number>()
    later.listen({ resolve: (v) => heard.push(`value ${v}`), reject: (e) => heard.push(`error ${String(e)}`) })
    assert.equal(heard.length, 0)
    later.resolve(1)
    assert.deepEqual(heard, ["value 1"], "told at once, not in a later microtask")
    later.resolve(2)
    later.reject("late")
    assert.deepEqual(heard, ["value 1"])

    const failed = new Later<number>()
    failed.reject("no")
    failed.listen({ resolve: (v) => heard.push(`value ${v}`), reject: (e) => heard.push(`error ${String(e)}`) })
    assert.deepEqual(heard, ["value 1", "error no"], "settled before it listened: told as it listens")
    assert.throws(() => failed.listen({ resolve: () => {}, reject: () => {} }), /one listener/)
})

test("Later: awaited, or returned from a promise's callback, it is a promise; listenTo takes either", async () => {
    const later = new Later<string>()
    setImmediate(() => later.resolve("done"))
    assert.equal(await later, "done")
    const refused = new Later<string>()
    refused.reject(new Error("refused"))
    await assert.rejects(Promise.resolve().then(() => refused), /refused/)

    const heard: unknown[] = []
    const to = { resolve: (v: string) => heard.push(v), reject: (e: unknown) => heard.push(e) }
    const now = new Later<string>()
    listenTo(now, to)
    now.resolve("at once")
    assert.deepEqual(heard, ["at once"])
    listenTo(Promise.resolve("a promise's"), to)
    assert.deepEqual(heard, ["at once"], "a promise's outcome comes after its step")
    await new Promise((r) => setImmediate(r))
    assert.deepEqual(heard, ["at once", "a promise's"])
})
