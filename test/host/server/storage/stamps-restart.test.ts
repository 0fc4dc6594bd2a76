// [P§8, §9] Server stamps over a restart. A burst of points without `at` runs a feed's stamps ahead of the
// clock (one body's points of one datastream take a millisecond each), and the stamps lived in memory only:
// a point stamped after a restart (or a crash) that came sooner than that lead took the `at` of a point
// stamped before it and replaced that acknowledged point (found with a foreign client: 10 bodies of 1000
// points, a restart, a `put` without `at`: 10 000 points, not 10 001, one of them replaced), and was older
// than the last `at` a subscriber had handled (a `since` replay left it out). Stamps given before a store
// opens are never given again.
import assert from "node:assert/strict"
import { test } from "node:test"
import { SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import { tempStorePath } from "../../harness/temp-dirs.ts"

const T0 = Date.UTC(2026, 11, 7, 3)
const BURST = 500

function scratchPath(): string {
    return tempStorePath("feedline-stamps-")
}

for (const ending of ["a restart", "a crash (the journal not moved)"] as const) {
    for (const writerThread of [false, true]) {
        test(`stamps after ${ending} (${writerThread ? "writer thread" : "in-process"}) come after every stamp given before it: no acknowledged point is replaced`, async () => {
            const path = scratchPath()
            const before = new SqliteStore({ path, synchronous: "NORMAL", writerThread, now: () => T0 })
            const f = (await before.createFeed({})).id
            // one body of BURST points without `at`, at one instant: stamps T0 … T0 + BURST - 1, ahead of the clock
            const burst = await before.writePoints(f, Array.from({ length: BURST }, (_, i) => ({ stream: "s", value: `b${i}` })), T0)
            assert.equal(burst.at(-1)!.atMs, T0 + BURST - 1)
            if (ending === "a restart") await before.close()
            // the process is gone before the clock caught up with its stamps
            const later = T0 + 10
            const store = new SqliteStore({ path, synchronous: "NORMAL", writerThread, now: () => later })
            try {
                const [written] = await store.writePoints(f, [{ stream: "s", value: "after" }], later)
                assert.ok(written.atMs > T0 + BURST - 1, `stamped ${written.atMs - T0} ms after T0, among the stamps given before`)
                const points = await store.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 1000 })
                assert.equal(points.length, BURST + 1, "every acknowledged point is still there")
                assert.deepEqual(points.slice(0, BURST).map((p) => p.value), burst.map((p) => p.value))
                assert.equal((await store.getDatastream(f, "s"))?.currentValue, "after", "the newest write is the current value")
                // a subscriber that handled the burst's last point replays the new one
                assert.deepEqual((await store.replay(f, "s", T0 + BURST - 1, 10)).points.map((p) => p.value), ["after"])
            } finally {
                await store.close()
                if (ending !== "a restart") await before.close().catch(() => {})
            }
        })
    }
}

test("a feed whose points are all behind the clock is stamped at the clock after a restart, as before", async () => {
    const path = scratchPath()
    const first = new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 })
    const f = (await first.createFeed({})).id
    await first.writePoints(f, [{ stream: "s", value: "1" }], T0)
    await first.close()
    const store = new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 + 1000 })
    try {
        assert.equal((await store.writePoints(f, [{ stream: "s", value: "2" }], T0 + 1000))[0].atMs, T0 + 1000)
    } finally {
        await store.close()
    }
})
