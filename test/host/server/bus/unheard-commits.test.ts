// The decision behind telling subscribers that another process's committed changes never arrived
// (bus/unheard-commits.ts); the same through PostgreSQL and Redis: test/host/server/scale/faults.test.ts.
import assert from "node:assert/strict"
import { test } from "node:test"
import { UnheardCommits } from "../../../../devs/server/bus/unheard-commits.ts"

const LAPSE_MS = 5000
const commits = (entries: Record<string, number>) => new Map(Object.entries(entries))

test("commits from before the first look, and this process's own, are never reported", () => {
    const u = new UnheardCommits("me", LAPSE_MS)
    assert.deepEqual(u.check(commits({ me: 10, a: 7, dead: 3 }), 0), [])
    assert.deepEqual(u.check(commits({ me: 50, a: 7, dead: 3 }), 60_000), [])
})

test("a commit heard within the lapse is not reported; one unheard for the lapse is, once", () => {
    const u = new UnheardCommits("me", LAPSE_MS)
    u.check(commits({ a: 7 }), 0)
    assert.deepEqual(u.check(commits({ a: 9 }), 1000), [], "seen, not yet late")
    u.heardFrom("a", 9)
    assert.deepEqual(u.check(commits({ a: 9 }), 1000 + LAPSE_MS), [], "heard")
    assert.deepEqual(u.check(commits({ a: 12 }), 10_000), [])
    assert.deepEqual(u.check(commits({ a: 12 }), 10_000 + LAPSE_MS - 1), [])
    assert.deepEqual(u.check(commits({ a: 12 }), 10_000 + LAPSE_MS), ["a"])
    assert.deepEqual(u.check(commits({ a: 12 }), 30_000), [], "reported once")
})

test("a publish heard before the store's list shows its commit counts; the wait for a newer commit starts when that one is first seen", () => {
    const u = new UnheardCommits("me", LAPSE_MS)
    u.check(commits({}), 0)
    u.heardFrom("b", 20)
    assert.deepEqual(u.check(commits({ b: 20 }), 1000), [])
    assert.deepEqual(u.check(commits({ b: 25 }), 2000), [])
    u.heardFrom("b", 25)
    assert.deepEqual(u.check(commits({ b: 31 }), 2000 + LAPSE_MS), [], "31 first seen now")
    assert.deepEqual(u.check(commits({ b: 31 }), 2000 + 2 * LAPSE_MS), ["b"])
})

test("after this process's own link came back, what was committed meanwhile counts as heard", () => {
    const u = new UnheardCommits("me", LAPSE_MS)
    u.check(commits({ a: 1 }), 0)
    assert.deepEqual(u.check(commits({ a: 5 }), 1000), [])
    u.rebaseline()
    assert.deepEqual(u.check(commits({ a: 5 }), 1000 + LAPSE_MS), [])
    assert.deepEqual(u.check(commits({ a: 5 }), 1000 + 3 * LAPSE_MS), [])
})
