// The Store contract (devs/server/storage/store.ts): what any store must do for the router, run against
// SQLite and PostgreSQL alike (test/host/harness/stores.ts; PostgreSQL skips, counted, where it is not
// installed). Then what another process on the same data sees (another server, the `feedline keys` CLI),
// and what two processes writing at once must get right: stamps never shared, feed ids never given
// twice, and a replay that knows which changes it saw even when commits land out of order.
import assert from "node:assert/strict"
import { after, afterEach, describe, test } from "node:test"
import { KeyRing } from "../../../../devs/server/auth/keys.ts"
import { asApiError } from "../../../../devs/server/errors.ts"
import type { KeyRecord, ProductRecord, Store } from "../../../../devs/server/storage/store.ts"
import { closeStoreBackends, storeBackends, type OpenedStore, type StoreBackend } from "../../harness/stores.ts"
import { until } from "../../harness/until.ts"

const T0 = Date.UTC(2026, 10, 22, 5)
after(closeStoreBackends)

/**
 * The stores the test running now opened (another()'s too): each closed after it, passed or failed (close
 * is idempotent). A failed assertion skips a test's own close(), and PostgreSQL's open connections would
 * keep the file from ending until the lane's timeout.
 */
const opened: Store[] = []
afterEach(() => Promise.all(opened.splice(0).map((s) => s.close())))

async function openClosedAfter(backend: StoreBackend, o?: { now?: () => number }): Promise<OpenedStore> {
    const s = await backend.open(o)
    opened.push(s.store)
    return {
        ...s,
        async another() {
            const other = await s.another()
            opened.push(other)
            return other
        },
    }
}

/** Until `store` has heard that another process changed keys or deleted a feed (SQLite: its next turn; PostgreSQL: the NOTIFY). */
async function noticed(store: Store, versionBefore: number): Promise<void> {
    await until("the store to notice another process's change", () => store.keysVersion() !== versionBefore)
}

for (const backend of storeBackends()) {
    const now = () => T0
    describe(`store contract: ${backend.name}`, { skip: backend.skip }, () => {
        test("feeds: create with or without an id, conflict, rename, delete with everything under it", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const a = await store.createFeed({ title: "a" })
            const b = await store.createFeed({ id: 504, title: "b" })
            assert.equal(b.id, 504)
            await assert.rejects(store.createFeed({ id: 504 }), (e) => asApiError(e).code === "E_CONFLICT")
            await store.updateFeed(a.id, { title: "renamed" })
            assert.equal((await store.getFeed(a.id))!.title, "renamed")
            assert.deepEqual((await store.listFeeds([504])).map((f) => f.id), [504])
            await store.writePoints(504, [{ stream: "t", atMs: T0, value: "1" }])
            assert.deepEqual(await store.deleteFeed(504), { revokedKeys: [], detachedKeys: [] })
            assert.equal(await store.getFeed(504), undefined)
            assert.deepEqual(await store.listDatastreams(504), [])
            assert.deepEqual((await store.replay(504, undefined, 0, 10)).points, [])
            assert.equal(await store.deleteFeed(504), undefined)
            await store.close()
        })

        test("feed ids are never given out twice: not after a delete, not by an explicit id, not one a key was made for", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const a = (await store.createFeed({})).id
            const b = (await store.createFeed({})).id
            await store.deleteFeed(b) // the highest: SQLite alone would give it out again
            const c = (await store.createFeed({})).id
            assert.ok(c > b, `${c} after deleting ${b}`)
            await assert.rejects(store.createFeed({ id: b }), (e) => asApiError(e).status === 409 && asApiError(e).code === "E_FEED_ID_RETIRED")
            // a key made for a feed that does not exist yet: a new feed never gets that id by chance
            await store.insertKey({ id: "k", hash: Buffer.alloc(32, 2), hashKind: "sha256", label: "", permissions: ["read"], feeds: [c + 5], master: false, createdMs: T0 })
            assert.ok((await store.createFeed({})).id > c + 5)
            assert.equal((await store.createFeed({ id: c + 5 })).id, c + 5, "the feed the key was made for can be made with its id")
            assert.ok(a < b)
            await store.close()
        })

        test("deleting a feed revokes the keys scoped to it alone and takes it out of the others' lists", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            const g = (await store.createFeed({})).id
            let n = 0
            const key = (id: string, feeds?: number[]) => store.insertKey({ id, hash: Buffer.alloc(32, ++n), hashKind: "sha256", label: id, permissions: ["read"], feeds, master: false, createdMs: T0 })
            await key("only", [f])
            await key("both", [f, g])
            await key("other", [g])
            await key("all")
            const v0 = store.keysVersion()
            assert.deepEqual(await store.deleteFeed(f), { revokedKeys: ["only"], detachedKeys: ["both"] })
            assert.notEqual(store.keysVersion(), v0, "the key ring must reload")
            const keys = new Map((await store.listKeys()).map((k) => [k.id, k]))
            assert.equal(keys.get("only")!.revokedMs, T0)
            assert.deepEqual([keys.get("both")!.feeds, keys.get("both")!.revokedMs], [[g], undefined])
            assert.deepEqual([keys.get("other")!.feeds, keys.get("all")!.feeds], [[g], undefined])
            await store.close()
        })

        test("writes: idempotent on (feed, stream, at), later value wins, identical rewrites are no change", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            const first = await store.writePoints(f, [
                { stream: "t", atMs: T0 + 2, value: "5" },
                { stream: "t", atMs: T0 + 1, value: "7" },
                { stream: "t", atMs: T0 + 1, value: "8" }, // same identity in one request: the last wins
            ])
            assert.deepEqual(first.map((p) => [p.atMs, p.value]), [[T0 + 1, "8"], [T0 + 2, "5"]])
            assert.ok(first[0].seq < first[1].seq)
            assert.deepEqual(await store.writePoints(f, [{ stream: "t", atMs: T0 + 1, value: "8" }]), [])
            const changed = await store.writePoints(f, [{ stream: "t", atMs: T0 + 1, value: "9" }])
            assert.equal(changed.length, 1)
            assert.ok(changed[0].seq > first[1].seq)
            const ds = (await store.getDatastream(f, "t"))!
            // current = newest `at`, not the latest write; min/max over numeric values
            assert.deepEqual([ds.currentValue, ds.atMs, ds.minValue, ds.maxValue], ["5", T0 + 2, 5, 9])
            await store.writePoints(f, [{ stream: "t", atMs: T0 + 3, value: "high" }])
            assert.deepEqual([(await store.getDatastream(f, "t"))!.currentValue, (await store.getDatastream(f, "t"))!.maxValue], ["high", 9])
            await store.close()
        })

        test("[P§8][P§9] server stamps increase per feed: after a burst on one datastream ran its stamps ahead of the clock, another datastream's later point is stamped after them, so a whole feed's replay from the last `at` handled holds it; datastreams written together share a stamp", async () => {
            const { store } = await openClosedAfter(backend, { now })
            try {
                const f = (await store.createFeed({})).id
                const burst = await store.writePoints(f, Array.from({ length: 5 }, (_, i) => ({ stream: "x", value: String(i) })), T0)
                assert.deepEqual(burst.map((p) => p.atMs), [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4])
                const [later] = await store.writePoints(f, [{ stream: "y", value: "later" }], T0 + 1)
                assert.equal(later.atMs, T0 + 5)
                assert.deepEqual((await store.replay(f, undefined, T0 + 4, 16)).points.map((p) => p.value), ["later"])
                const together = await store.writePoints(f, [{ stream: "x", value: "a" }, { stream: "y", value: "b" }, { stream: "z", value: "c" }], T0 + 2)
                assert.deepEqual(together.map((p) => p.atMs), [T0 + 6, T0 + 6, T0 + 6])
                // another feed's stamps are its own; the clock past them all is its time again
                const g = (await store.createFeed({})).id
                assert.deepEqual((await store.writePoints(g, [{ stream: "x", value: "g" }], T0)).map((p) => p.atMs), [T0])
                assert.deepEqual((await store.writePoints(f, [{ stream: "x", value: "f" }], T0 + 100)).map((p) => p.atMs), [T0 + 100])
            } finally {
                await store.close()
            }
        })

        test("writes: batched into one commit per turn; a write to a missing feed fails alone", async () => {
            const { store, commits } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            const before = commits()
            const results = await Promise.allSettled([
                ...Array.from({ length: 50 }, (_, i) => store.writePoints(f, [{ stream: "s", atMs: T0 + i, value: String(i) }])),
                store.writePoints(999, [{ stream: "s", atMs: T0, value: "x" }]),
            ])
            assert.equal(commits() - before, 1, "one transaction for the whole turn")
            assert.equal(results.filter((r) => r.status === "fulfilled").length, 50)
            assert.equal(asApiError((results[50] as PromiseRejectedResult).reason).code, "E_NOT_FOUND")
            assert.equal((await store.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 1000 })).length, 50)
            await store.close()
        })

        test("history: inclusive range, newest first or oldest first, one point per interval", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            await store.writePoints(f, Array.from({ length: 10 }, (_, i) => ({ stream: "h", atMs: T0 + i * 1000, value: String(i) })))
            const v = (q: Parameters<Store["history"]>[2]) => store.history(f, "h", q).then((r) => r.map((p) => p.value))
            assert.deepEqual(await v({ startMs: T0 + 1000, endMs: T0 + 3000, limit: 100 }), ["1", "2", "3"])
            assert.deepEqual(await v({ startMs: 0, endMs: T0 * 2, limit: 3 }), ["0", "1", "2"])
            assert.deepEqual(await v({ startMs: 0, endMs: T0 * 2, limit: 3, newest: true }), ["7", "8", "9"])
            assert.deepEqual(await v({ startMs: T0, endMs: T0 * 2, limit: 100, intervalMs: 4000 }), ["0", "4", "8"])
            assert.deepEqual(await v({ startMs: T0, endMs: T0 * 2, limit: 2, intervalMs: 4000, newest: true }), ["4", "8"])
            await store.close()
        })

        test("history with an interval: the first point of each interval of the range, as a GROUP BY at_ms / interval would give", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            // irregular times with gaps longer than an interval, some sharing an interval, some in the journal still
            const ats = [0, 1, 999, 1000, 1500, 4200, 4201, 9000, 9999, 10_000, 25_000, 25_001, 31_999].map((d) => T0 + 7 + d)
            await store.writePoints(f, ats.slice(0, 8).map((atMs, i) => ({ stream: "i", atMs, value: String(i) })))
            await store.history(f, "i", { startMs: 0, endMs: T0 * 2, limit: 1 }) // reads see the journal too
            await store.writePoints(f, ats.slice(8).map((atMs, i) => ({ stream: "i", atMs, value: String(i + 8) })))
            const expected = (q: { startMs: number; endMs: number; limit: number; intervalMs: number; newest?: boolean }) => {
                const firsts = new Map<number, string>()
                ats.forEach((at, i) => {
                    const bucket = Math.trunc(at / q.intervalMs)
                    if (at >= q.startMs && at <= q.endMs && !firsts.has(bucket)) firsts.set(bucket, String(i))
                })
                const all = [...firsts.values()]
                return q.newest ? all.slice(Math.max(0, all.length - q.limit)) : all.slice(0, q.limit)
            }
            for (const intervalMs of [1, 1000, 3000, 10_000, 1e9])
                for (const [startMs, endMs] of [[0, T0 * 2], [T0 + 1000, T0 + 25_000], [T0 + 1007, T0 + 1008], [T0 + 5000, T0 + 8000]])
                    for (const limit of [1, 3, 1000])
                        for (const newest of [false, true]) {
                            const q = { startMs, endMs, limit, intervalMs, newest }
                            const got = (await store.history(f, "i", q)).map((p) => p.value)
                            assert.deepEqual(got, expected(q), JSON.stringify(q))
                        }
            await store.close()
        })

        test("deleting a range: the current value falls back to the newest point left", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            await store.writePoints(f, [1, 2, 3].map((i) => ({ stream: "d", atMs: T0 + i, value: String(i) })))
            assert.equal(await store.deletePoints(f, "d", T0 + 2, T0 + 3), 2)
            const ds = (await store.getDatastream(f, "d"))!
            assert.deepEqual([ds.currentValue, ds.atMs], ["1", T0 + 1])
            await store.writePoints(f, Array.from({ length: 11_000 }, (_, i) => ({ stream: "d", atMs: T0 + 10 + i, value: "x" })))
            assert.ok(await store.deleteDatastream(f, "d")) // in chunks
            assert.equal(await store.getDatastream(f, "d"), undefined)
            await store.close()
        })

        test("replay: after `at`, oldest first, per feed or stream, with the high-water sequence", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            await store.writePoints(f, [
                { stream: "b", atMs: T0 + 1, value: "b1" },
                { stream: "a", atMs: T0 + 2, value: "a2" },
                { stream: "a", atMs: T0 + 1, value: "a1" },
            ])
            const written = await store.writePoints(f, [{ stream: "c", atMs: T0 - 1, value: "old" }])
            const all = await store.replay(f, undefined, T0, 10)
            assert.deepEqual(all.points.map((p) => p.value), ["a1", "b1", "a2"])
            assert.ok(all.seen(written[0]), "a change committed before the replay was read is seen, also when its `at` is not in it")
            assert.ok(all.highSeq >= written[0].seq, "[P§8] the feed's cursor in the replay's snapshot (a subscribe with since and after: latest)")
            assert.deepEqual((await store.replay(f, "a", T0 + 1, 10)).points.map((p) => p.value), ["a2"])
            const later = await store.writePoints(f, [{ stream: "a", atMs: T0 + 3, value: "a3" }])
            assert.equal(all.seen(later[0]), false, "a change committed after the replay was read is not seen")
            assert.ok(later[0].seq > all.highSeq, "nor within its cursor")
            await store.close()
        })

        test("[P§8] replayAfterSeq: the changes after a seq in commit order, backfills (older `at`s) included, per feed or stream; a rewrite moves its point; the cursor", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            const g = (await store.createFeed({})).id
            const start = await store.replayAfterSeq(f, undefined, undefined, 10)
            assert.deepEqual(start.points, [], "no afterSeq: only the cursor")
            const [handled] = await store.writePoints(f, [{ stream: "a", atMs: T0 + 10, value: "handled" }])
            await store.writePoints(g, [{ stream: "a", atMs: T0 + 20, value: "other feed" }])
            const [backfill] = await store.writePoints(f, [{ stream: "a", atMs: T0 + 5, value: "backfill" }])
            await store.writePoints(f, [{ stream: "b", atMs: T0 + 1, value: "b" }])
            await store.writePoints(f, [{ stream: "a", atMs: T0 + 10, value: "rewritten" }])
            assert.ok(handled.seq > start.highSeq && backfill.seq > handled.seq)
            assert.equal(start.seen(handled), false, "written after the cursor was read")
            const r = await store.replayAfterSeq(f, undefined, handled.seq, 10)
            assert.deepEqual(r.points.map((p) => `${p.stream}@${p.atMs - T0}:${p.value}`), ["a@5:backfill", "b@1:b", "a@10:rewritten"], "in commit order")
            assert.equal(r.highSeq, r.points[2].seq)
            assert.ok(r.seen(backfill))
            assert.deepEqual((await store.replayAfterSeq(f, "a", handled.seq, 10)).points.map((p) => p.value), ["backfill", "rewritten"])
            assert.deepEqual((await store.replayAfterSeq(f, undefined, handled.seq, 2)).points.map((p) => p.value), ["backfill", "b"], "at most limit")
            assert.deepEqual((await store.replayAfterSeq(f, undefined, r.highSeq, 10)).points, [])
            const later = await store.writePoints(f, [{ stream: "a", atMs: T0 - 100, value: "later" }])
            assert.equal(r.seen(later[0]), false)
            assert.ok(later[0].seq > r.highSeq)
            await store.close()
        })

        test("[P§8] the cursor (after: latest, a replay's) is the feed's newest seq ever given: deleting its newest points, by range or by the retention, does not move it back below a seq a client may hold", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            await store.writePoints(f, [{ stream: "a", atMs: T0 + 1, value: "kept" }])
            const [newest] = await store.writePoints(f, [{ stream: "a", atMs: T0 + 2, value: "deleted" }])
            assert.equal((await store.replayAfterSeq(f, undefined, undefined, 10)).highSeq, newest.seq)
            assert.equal(await store.deletePoints(f, "a", T0 + 2, T0 + 2), 1)
            assert.equal((await store.replayAfterSeq(f, undefined, undefined, 10)).highSeq, newest.seq, "after: latest after a range delete of the newest point")
            assert.equal((await store.replay(f, undefined, T0, 10)).highSeq, newest.seq, "a `since` replay's cursor too")
            // the retention: a backfill (an old `at`) is the feed's newest seq, and the first to go
            const [backfill] = await store.writePoints(f, [{ stream: "a", atMs: T0 - 10, value: "backfill" }])
            assert.ok(backfill.seq > newest.seq)
            assert.equal(await store.prune(T0 - 5), 1)
            assert.equal((await store.replayAfterSeq(f, "a", undefined, 10)).highSeq, backfill.seq, "after: latest after the retention deleted the newest point")
            const resumed = await store.replayAfterSeq(f, undefined, backfill.seq, 10)
            assert.deepEqual([resumed.points, resumed.highSeq], [[], backfill.seq], "a resume from the last seq handled: nothing, and the cursor stays")
            const [next] = await store.writePoints(f, [{ stream: "a", atMs: T0 + 3, value: "next" }])
            assert.equal(next.seq, backfill.seq + 1, "the feed counts on from it")
            await store.close()
        })

        // [P§8] A `since` replay's retention_gap went by the configured retention (--retention-days, by the clock), not by
        // what was deleted: a retention not run yet announced a gap for points still stored, one turned off after it
        // deleted announced none. Now each replay says, from the same snapshot as its points, the newest `at` the
        // retention deleted (recorded with the deletion, as the seq an `after` replay goes by).
        test("[P§8] a replay says the newest `at` and seq the retention deleted from the datastream, or the feed (its streams' newest): not a range the client deleted, never lowered", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            const trims = async (stream: string | undefined) => {
                const [bySince, bySeq] = [await store.replay(f, stream, 0, 10), await store.replayAfterSeq(f, stream, 0, 10)]
                assert.deepEqual([bySince.trimmedAtMs, bySince.trimmedSeq ?? 0], [bySeq.trimmedAtMs, bySeq.trimmedSeq ?? 0], "both replays read the same record")
                return [bySince.trimmedAtMs, bySince.trimmedSeq ?? 0]
            }
            // a's old point is written after b's, whose `at` is newer: the feed's newest `at` and newest seq are apart
            const [b1] = await store.writePoints(f, [{ stream: "b", atMs: T0 - 8, value: "b-old" }])
            const [a1] = await store.writePoints(f, [{ stream: "a", atMs: T0 - 10, value: "a-old" }])
            await store.writePoints(f, [{ stream: "a", atMs: T0 - 2, value: "a-new" }, { stream: "b", atMs: T0 - 1, value: "b-new" }, { stream: "c", atMs: T0 - 20, value: "c-old" }])
            assert.deepEqual(await trims(undefined), [undefined, 0], "nothing deleted: nothing said, however old the points")
            assert.equal(await store.deletePoints(f, "c", T0 - 30, T0 - 10), 1, "the client deletes c's old point itself")
            assert.deepEqual(await trims("c"), [undefined, 0], "a range the client deleted is not the retention's")
            assert.equal(await store.prune(T0 - 5), 2)
            assert.deepEqual(await trims("a"), [T0 - 10, a1.seq])
            assert.deepEqual(await trims("b"), [T0 - 8, b1.seq])
            assert.deepEqual(await trims(undefined), [T0 - 8, a1.seq], "the feed: each its streams' newest")
            assert.deepEqual(await trims("c"), [undefined, 0])
            // a later retention with a longer period (an earlier cutoff) deletes nothing and lowers nothing
            assert.equal(await store.prune(T0 - 100), 0)
            assert.deepEqual(await trims(undefined), [T0 - 8, a1.seq])
            // a backfill older than what was deleted, deleted after: the newest `at` stays
            const [a2] = await store.writePoints(f, [{ stream: "a", atMs: T0 - 50, value: "a-backfill" }])
            assert.equal(await store.prune(T0 - 5), 1)
            assert.deepEqual(await trims("a"), [T0 - 10, a2.seq])
            assert.deepEqual((await store.replay(f, "a", 0, 10)).points.map((p) => p.value), ["a-new"])
            await store.close()
        })

        // [P§8] Deleting a datastream left what the retention had deleted from it in retention_trims: one re-created under
        // its name was told of the old one's deleted points, by `since` and by `after`. Its trims go with it now, in its
        // deletion's transaction.
        test("[P§8] a datastream deleted takes what the retention deleted from it along: re-created under its name, it is told of no gap until the retention deletes from it", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            const trims = async (stream: string | undefined) => {
                const [bySince, bySeq] = [await store.replay(f, stream, 0, 10), await store.replayAfterSeq(f, stream, 0, 10)]
                return [bySince.trimmedAtMs, bySeq.trimmedSeq ?? 0]
            }
            const [old] = await store.writePoints(f, [{ stream: "a", atMs: T0 - 10, value: "old" }])
            await store.writePoints(f, [{ stream: "a", atMs: T0 - 2, value: "kept" }, { stream: "b", atMs: T0 - 2, value: "b" }])
            assert.equal(await store.prune(T0 - 5), 1)
            assert.deepEqual(await trims("a"), [T0 - 10, old.seq])
            assert.ok(await store.deleteDatastream(f, "a"))
            // re-created by a write: a point older than the one deleted from the old datastream
            const [again] = await store.writePoints(f, [{ stream: "a", atMs: T0 - 20, value: "again" }])
            assert.deepEqual(await trims("a"), [undefined, 0], "the old datastream's trims went with it")
            assert.deepEqual(await trims(undefined), [undefined, 0], "the feed's too")
            assert.deepEqual((await store.replay(f, "a", T0 - 30, 10)).points.map((p) => p.value), ["again"])
            assert.equal(await store.prune(T0 - 5), 1)
            assert.deepEqual(await trims("a"), [T0 - 20, again.seq], "the retention records what it deletes from the new one")
            await store.close()
        })

        test("retention and keys: prune old points, keep current values; keys insert, list, revoke, version", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            await store.writePoints(f, [{ stream: "r", atMs: T0 - 10, value: "old" }, { stream: "r", atMs: T0, value: "new" }])
            assert.equal(await store.prune(T0 - 5), 1)
            // more than one chunk (5000 rows per statement)
            await store.writePoints(f, Array.from({ length: 12_000 }, (_, i) => ({ stream: "p", atMs: T0 - 100_000 + i, value: "x" })))
            assert.equal(await store.prune(T0 - 50_000), 12_000)
            assert.equal((await store.getDatastream(f, "r"))!.currentValue, "new")
            const v0 = store.keysVersion()
            await store.insertKey({ id: "k1", hash: Buffer.alloc(32, 1), hashKind: "sha256", label: "x", permissions: ["read"], feeds: [f], master: false, createdMs: T0 })
            assert.notEqual(store.keysVersion(), v0)
            const [k] = await store.listKeys()
            assert.deepEqual([k.id, k.permissions, k.feeds, k.master, k.hash.equals(Buffer.alloc(32, 1))], ["k1", ["read"], [f], false, true])
            assert.equal(await store.revokeKey("k1", T0 + 1), true)
            assert.equal(await store.revokeKey("k1", T0 + 2), false)
            assert.equal((await store.listKeys())[0].revokedMs, T0 + 1)
            await store.close()
        })

        test("a commit that fails refuses the writes in it (503 E_STORE_FAILED), stores none of them, and the next one works (PostgreSQL: the write at fault alone)", async () => {
            const { store, errors, failWritesOf } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            await failWritesOf("boom")
            const results = await Promise.allSettled([
                store.writePoints(f, [{ stream: "s", atMs: T0, value: "fine" }]),
                store.writePoints(f, [{ stream: "s", atMs: T0 + 1, value: "boom" }]),
            ])
            // SQLite's commit fails for the whole database (a full disk): every write in it; PostgreSQL's batch is
            // tried again in parts until the write at fault is alone (postgres-refused-value.test.ts)
            if (backend.name === "postgres") {
                assert.equal(results.shift()!.status, "fulfilled")
                await store.deletePoints(f, "s", T0, T0 + 1)
            }
            for (const r of results) {
                assert.equal(r.status, "rejected")
                const e = asApiError((r as PromiseRejectedResult).reason)
                assert.deepEqual([e.status, e.code], [503, "E_STORE_FAILED"])
                assert.ok(!e.message.includes("fire"), "internal errors are logged, not sent to clients")
            }
            assert.equal(errors.length, 1)
            assert.deepEqual(await store.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 10 }), [])
            assert.equal((await store.writePoints(f, [{ stream: "s", atMs: T0, value: "fine" }])).length, 1)
            await store.close()
        })

        test("[P§9] points without `at` are stamped max(now, last stamp + 1) per datastream: in one request and over a batch", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const f = (await store.createFeed({})).id
            const one = await store.writePoints(f, [{ stream: "s", value: "a" }, { stream: "s", value: "b" }, { stream: "t", value: "c" }, { stream: "s", atMs: T0 - 5, value: "given" }], T0)
            assert.deepEqual(one.map((p) => [p.stream, p.atMs, p.value]), [["s", T0 - 5, "given"], ["s", T0, "a"], ["s", T0 + 1, "b"], ["t", T0, "c"]])
            // one batch of requests in the same millisecond: each gets its own stamp, in order
            const batch = await Promise.all(Array.from({ length: 5 }, (_, i) => store.writePoints(f, [{ stream: "s", value: `v${i}` }], T0)))
            const ats = batch.map((r) => r[0].atMs)
            assert.deepEqual(ats, [T0 + 2, T0 + 3, T0 + 4, T0 + 5, T0 + 6])
            // the clock ahead of the last stamp: the clock's time
            assert.equal((await store.writePoints(f, [{ stream: "s", value: "later" }], T0 + 100))[0].atMs, T0 + 100)
            assert.equal((await store.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 100 })).length, 9)
            await store.close()
        })

        test("a feed deleted by another process: gone for feedExists once noticed, and a write to it is a 404, not a failed commit", async () => {
            const { store: server, another } = await openClosedAfter(backend, { now })
            const cli = await another()
            try {
                const a = (await server.createFeed({})).id
                const b = (await server.createFeed({})).id
                assert.equal(await server.feedExists(a), true) // now remembered
                const v0 = server.keysVersion()
                assert.ok(await cli.deleteFeed(a))
                await noticed(server, v0)
                assert.equal(await server.feedExists(a), false)
                // the write path looks in its own transaction: nothing needs noticing first
                assert.equal(await server.feedExists(b), true)
                await cli.deleteFeed(b)
                const err = asApiError(await server.writePoints(b, [{ stream: "s", atMs: T0, value: "1" }]).catch((e) => e))
                assert.equal(err.code, "E_NOT_FOUND")
                // this store's own deletes count at once
                const c = (await server.createFeed({})).id
                assert.equal(await server.feedExists(c), true)
                await server.deleteFeed(c)
                assert.equal(await server.feedExists(c), false)
                assert.equal(await server.feedExists(999), false)
            } finally {
                await server.close()
                await cli.close()
            }
        })

        test("a key made by another process is accepted at once, without waiting for its announcement (catchUp)", async () => {
            const { store: server, another } = await openClosedAfter(backend, { now })
            const cli = await another()
            try {
                const ring = new KeyRing(server, now)
                const other = new KeyRing(cli, now)
                assert.equal(await ring.authenticate("not-a-key-at-all-000000000000000"), undefined)
                // presented the moment the other's create returned (a user got it from one server and gave it to a device on another)
                for (let i = 0; i < 5; i++) {
                    const { record, secret } = await other.create({ permissions: ["read"] })
                    assert.equal((await ring.authenticate(secret))?.keyId, record.id)
                }
                // and by its id (a token minted for it on the other server is checked so)
                const byId = await other.create({ permissions: ["read"] })
                assert.equal((await ring.findKey(byId.record.id))?.id, byId.record.id)
                // the store notices the other's commit when asked to catch up, not some milliseconds later
                const v0 = server.keysVersion()
                await other.create({ permissions: ["read"] })
                await server.catchUp()
                assert.notEqual(server.keysVersion(), v0)
            } finally {
                await server.close()
                await cli.close()
            }
        })

        test("a key revoked by another process is refused once noticed; one revoked through the ring at once, remembered grant or not", async () => {
            const { store: server, another } = await openClosedAfter(backend, { now })
            const cli = await another()
            try {
                const ring = new KeyRing(server, now)
                const other = new KeyRing(cli, now)
                const { record, secret } = await ring.create({ permissions: ["read"] })
                const grant = await ring.authenticate(secret)
                assert.ok(grant)
                // the remembered grant is reused while the keys are unchanged, and only for its own key
                assert.equal(await ring.authenticate(secret, grant), grant)
                const second = await ring.create({ permissions: ["read"] })
                assert.equal(await ring.authenticate(second.secret, grant).then((g) => g?.keyId), second.record.id)
                assert.ok(await ring.authenticate(secret, grant))
                const v0 = server.keysVersion()
                await other.revoke(record.id)
                await noticed(server, v0)
                assert.equal(await ring.authenticate(secret, grant), undefined)
                assert.equal(await ring.authenticate(secret), undefined)
                const g2 = await ring.authenticate(second.secret)
                assert.ok(g2)
                await ring.revoke(second.record.id)
                assert.equal(await ring.authenticate(second.secret, g2), undefined)
                // a token family signed out by another process, too
                const v1 = server.keysVersion()
                await other.revokeTokenFamily("fam", T0 + 60_000)
                await noticed(server, v1)
                assert.equal(await ring.isTokenFamilyRevoked("fam"), true)
            } finally {
                await server.close()
                await cli.close()
            }
        })

        test("fleet: products insert, list, revoke; a new device's feed, datastreams, key and record in one transaction, or nothing", async () => {
            const { store } = await openClosedAfter(backend, { now })
            const product = (id: string, extra: Partial<ProductRecord> = {}): ProductRecord => ({
                id,
                title: id,
                verifyKey: Buffer.alloc(32, 7),
                datastreams: [{ id: "temp", policy: "i=5s" }, { id: "humidity" }],
                createdMs: T0,
                ...extra,
            })
            await store.insertProduct(product("p1"))
            await store.insertProduct(product("p2", { allowList: ["a"], claimLimit: 1 }))
            assert.deepEqual(await store.getProduct("p2"), product("p2", { allowList: ["a"], claimLimit: 1 }))
            assert.deepEqual((await store.listProducts()).map((p) => p.id), ["p1", "p2"])
            let n = 0
            const key = (): KeyRecord => ({ id: `k${++n}`, hash: Buffer.alloc(32, 100 + n), hashKind: "sha256", label: "", permissions: ["read", "update"], master: false, createdMs: T0 })
            const claim = (deviceId: string, p: string, hw: string) =>
                store.claimNewDevice({ deviceId, product: p, hardwareId: hw, firmware: "1", atMs: T0, feedTitle: `t ${hw}`, datastreams: ["temp", "humidity"], key: key() })
            const v0 = store.keysVersion()
            const d = await claim("d1", "p1", "hw1")
            assert.notEqual(store.keysVersion(), v0, "the key ring must reload")
            assert.deepEqual([d.id, d.product, d.hardwareId, d.keyId, d.firmware, d.claimedMs, d.name], ["d1", "p1", "hw1", "k1", "1", T0, ""])
            assert.equal((await store.getFeed(d.feed))!.title, "t hw1")
            assert.deepEqual((await store.listDatastreams(d.feed)).map((s) => s.id), ["humidity", "temp"])
            assert.deepEqual((await store.listKeys()).find((k) => k.id === "k1")!.feeds, [d.feed])
            assert.deepEqual(await store.findDevice("p1", "hw1"), d)
            const counts = async () => [(await store.listFeeds()).length, (await store.listKeys()).length, (await store.listDevices()).length]
            const before = await counts()
            const refused = async (what: Promise<unknown>, code: string) => assert.rejects(what, (e) => asApiError(e).code === code)
            await refused(claim("d2", "p1", "hw1"), "E_ALREADY_CLAIMED")
            await refused(claim("d2", "nope", "hw2"), "E_NO_SUCH_PRODUCT")
            const d3 = await claim("d3", "p2", "a")
            assert.equal(d3.product, "p2")
            const before2 = await counts()
            await refused(claim("d4", "p2", "b"), "E_CLAIM_LIMIT")
            assert.equal(await store.revokeProduct("p1", T0 + 1), true)
            assert.equal(await store.revokeProduct("p1", T0 + 2), false)
            assert.equal((await store.getProduct("p1"))!.revokedMs, T0 + 1)
            await refused(claim("d5", "p1", "hw9"), "E_PRODUCT_REVOKED")
            assert.deepEqual(await counts(), before2)
            assert.deepEqual(before2, before.map((c) => c + 1))
            // a revoked device frees its place under the limit
            assert.equal((await store.revokeDevice("d3", T0))!.keyId, d3.keyId)
            assert.equal((await store.listKeys()).find((k) => k.id === d3.keyId)!.revokedMs, T0)
            assert.equal(await store.revokeDevice("d3", T0), undefined)
            assert.equal((await claim("d6", "p2", "c")).id, "d6")
            assert.deepEqual((await store.listDevices("p2")).map((d) => d.id), ["d3", "d6"])
            // re-arming the revoked d3 would make two devices under a limit of one
            await refused(store.rearmDevice("d3", T0 + 3), "E_CLAIM_LIMIT")
            assert.equal((await store.getDevice("d3"))!.revokedMs, T0)
            assert.equal((await store.revokeDevice("d6", T0 + 4))!.id, "d6")
            assert.equal(await store.rearmDevice("d3", T0 + 5), true)
            assert.deepEqual([(await store.getDevice("d3"))!.revokedMs, (await store.getDevice("d3"))!.rearmedMs], [undefined, T0 + 5])
            await store.close()
        })

        test("fleet: a device's key reissued only while it is the one decided on; rename, re-arm, first use, last seen", async () => {
            const { store } = await openClosedAfter(backend, { now })
            await store.insertProduct({ id: "p1", title: "p", verifyKey: Buffer.alloc(32), datastreams: [{ id: "temp" }], createdMs: T0 })
            let n = 0
            const key = (): KeyRecord => ({ id: `k${++n}`, hash: Buffer.alloc(32, 100 + n), hashKind: "sha256", label: "", permissions: ["read", "update"], master: false, createdMs: T0 })
            const d = await store.claimNewDevice({ deviceId: "d1", product: "p1", hardwareId: "hw", firmware: "1", atMs: T0, feedTitle: "f", datastreams: ["temp"], key: key() })
            const reissue = (expectKeyId: string) => store.reissueDeviceKey({ deviceId: "d1", expectKeyId, firmware: "2", atMs: T0 + 5, feedTitle: "f", datastreams: ["temp"], key: key() })
            await store.markDeviceKeyUsed("d1", "k1", T0 + 1)
            await store.markDeviceKeyUsed("d1", "k1", T0 + 2) // the first use stays
            assert.equal((await store.getDevice("d1"))!.keyUsedMs, T0 + 1)
            assert.equal(await store.rearmDevice("d1", T0 + 3), true)
            assert.equal(await store.rearmDevice("nope", T0 + 3), false)
            const r = await reissue("k1")
            assert.deepEqual([r.keyId, r.feed, r.firmware, r.keyUsedMs, r.rearmedMs, r.claimedMs], ["k2", d.feed, "2", undefined, undefined, T0])
            const keys = new Map((await store.listKeys()).map((k) => [k.id, k]))
            assert.deepEqual([keys.get("k1")!.revokedMs, keys.get("k2")!.revokedMs, keys.get("k2")!.feeds], [T0 + 5, undefined, [d.feed]])
            await assert.rejects(reissue("k1"), (e) => asApiError(e).code === "E_CLAIM_CONFLICT", "another claim won: nothing written")
            assert.equal((await store.listKeys()).length, 2)
            await store.markDeviceKeyUsed("d1", "k1", T0 + 6) // the old key: nothing
            assert.equal((await store.getDevice("d1"))!.keyUsedMs, undefined)
            assert.equal(await store.renameDevice("d1", "north 3", T0 + 7), true)
            assert.deepEqual([(await store.getDevice("d1"))!.name, (await store.getFeed(d.feed))!.title], ["north 3", "north 3"])
            await store.noteDevicesSeen([{ deviceId: "d1", atMs: T0 + 9 }])
            await store.noteDevicesSeen([{ deviceId: "d1", atMs: T0 + 8 }]) // older: kept as it was
            assert.equal((await store.getDevice("d1"))!.lastSeenMs, T0 + 9)
            // its feed deleted: the next reissue makes a new one, with the product's datastreams
            await store.deleteFeed(d.feed)
            const moved = await reissue("k2")
            assert.ok(moved.feed > d.feed)
            assert.deepEqual((await store.listDatastreams(moved.feed)).map((s) => s.id), ["temp"])
            await store.revokeProduct("p1", T0 + 10)
            await assert.rejects(reissue(moved.keyId), (e) => asApiError(e).code === "E_PRODUCT_REVOKED")
            await store.close()
        })
    })

    // What only a store that several processes share must get right (PostgreSQL; SQLite serves one process,
    // so there is nothing to run for it, and a permanent skip would only blur npm test's skip count)
    if (backend.name !== "postgres") continue
    describe(`several processes on one store: ${backend.name}`, { skip: backend.skip }, () => {
        test("[P§9] two processes stamping one datastream at once never share a stamp, and each one's stamps increase", async () => {
            const { store: a, another } = await openClosedAfter(backend, { now })
            const b = await another()
            try {
                const f = (await a.createFeed({})).id
                // both stamp at the same clock reading, many batches each, interleaved
                const writes = (s: Store, who: string) => Promise.all(Array.from({ length: 60 }, (_, i) => s.writePoints(f, [{ stream: "s", value: `${who}${i}` }], T0)))
                const [fromA, fromB] = await Promise.all([writes(a, "a"), writes(b, "b")])
                const atsA = fromA.map((r) => r[0].atMs)
                const atsB = fromB.map((r) => r[0].atMs)
                assert.equal(new Set([...atsA, ...atsB]).size, 120, "every stamp distinct")
                for (const ats of [atsA, atsB]) assert.ok(ats.every((at, i) => i === 0 || at > ats[i - 1]), `increasing: ${ats}`)
                assert.equal((await a.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 1000 })).length, 120, "nothing overwritten")
            } finally {
                await a.close()
                await b.close()
            }
        })

        test("[P§8][P§9] a datastream's stamps increase over processes whatever their clocks: a `since` replay after a point stamped by a process whose clock runs a minute ahead holds the next one, stamped by a process whose clock does not", async () => {
            const { store: a, another } = await openClosedAfter(backend, { now })
            const b = await another()
            try {
                const f = (await a.createFeed({})).id
                const [ahead] = await a.writePoints(f, [{ stream: "cmd", value: "from a" }], T0 + 60_000)
                const [behind] = await b.writePoints(f, [{ stream: "cmd", value: "from b" }], T0)
                assert.ok(behind.atMs > ahead.atMs, `${behind.atMs} after ${ahead.atMs}`)
                for (const s of [a, b]) assert.deepEqual((await s.replay(f, "cmd", ahead.atMs, 16)).points.map((p) => p.value), ["from b"])
            } finally {
                await a.close()
                await b.close()
            }
        })

        test("[P§8][P§9] a whole feed's `since` over processes with skewed clocks: after a point stamped by a process whose clock runs 3 s ahead, another datastream's point stamped later by a process whose clock does not is stamped after it, and a replay from the first one's `at` holds it", async () => {
            const { store: a, another } = await openClosedAfter(backend, { now })
            const b = await another()
            try {
                const f = (await a.createFeed({})).id
                const [ahead] = await a.writePoints(f, [{ stream: "x", value: "from a" }], T0 + 3000)
                // written after `ahead` was handled (pushed, the subscriber's `since` now ahead.atMs)
                const [behind] = await b.writePoints(f, [{ stream: "y", value: "from b" }], T0)
                assert.ok(behind.atMs > ahead.atMs, `stamped in commit order over the feed: ${behind.atMs} after ${ahead.atMs}`)
                for (const s of [a, b]) assert.deepEqual((await s.replay(f, undefined, ahead.atMs, 16)).points.map((p) => `${p.stream}:${p.value}`), ["y:from b"])
            } finally {
                await a.close()
                await b.close()
            }
        })

        test("a deletion of a datastream or a feed is recorded as its process's commit (bus/unheard-commits.ts), in turn with its batches of writes: its transaction id is returned, and the process's last recorded commit is its newest", async () => {
            const { store: a } = await openClosedAfter(backend, { now })
            try {
                a.recordCommitsAs!("p")
                const f = (await a.createFeed({})).id
                const g = (await a.createFeed({})).id
                await a.writePoints(f, [{ stream: "gone", atMs: T0, value: "x" }])
                await a.writePoints(g, [{ stream: "s", atMs: T0, value: "x" }])
                const [writes, ds, feed] = await Promise.all([
                    Promise.all(Array.from({ length: 20 }, (_, i) => a.writePoints(f, [{ stream: "s", atMs: T0 + i, value: String(i) }]))),
                    a.deleteDatastream(f, "gone"),
                    a.deleteFeed(g),
                ])
                const txns = [...writes.flat().map((p) => p.txn), ds?.txn, feed?.txn]
                assert.ok(txns.every((t) => typeof t === "number"), `every commit's id: ${txns}`)
                assert.equal((await a.lastCommits!()).get("p"), Math.max(...(txns as number[])), "the last recorded is the newest")
                assert.equal(await a.deleteDatastream(f, "never"), undefined)
            } finally {
                await a.close()
            }
        })

        test("[P§8] changesAfter (a catch-up): each feed's last seq, its datastreams' deletions and its points after the seq given, in commit order; a datastream's deletion takes a seq in its feed's chain, named; a deleted feed is absent", async (t) => {
            const { store: a } = await openClosedAfter(backend, { now })
            try {
                if (!a.changesAfter) return t.skip("one process only: nothing to catch up")
                a.recordCommitsAs!("p")
                const f = (await a.createFeed({})).id
                const g = (await a.createFeed({})).id
                const gone = (await a.createFeed({})).id
                const [p1] = await a.writePoints(f, [{ stream: "s", atMs: T0, value: "1" }])
                const [p2, p3] = await a.writePoints(f, [{ stream: "s", atMs: T0 + 1, value: "2" }, { stream: "t", atMs: T0 - 5, value: "backfill" }])
                await a.writePoints(g, [{ stream: "s", atMs: T0, value: "g" }])
                await a.deleteFeed(gone)
                const read = await a.changesAfter(new Map([[f, p1.seq], [g, 0], [gone, 0]]), 10)
                assert.deepEqual([...read.keys()].sort(), [f, g].sort(), "the deleted feed is absent")
                const top = Math.max(p2.seq, p3.seq)
                assert.deepEqual(read.get(f), { lastSeq: top, unnamedDeletionSeq: 0, deletions: [], points: [p2, p3].sort((x, y) => x.seq - y.seq).map(({ stream, atMs, value, seq }) => ({ stream, atMs, value, seq })) })
                assert.equal((await a.changesAfter(new Map([[f, p1.seq]]), 1)).get(f)!.points.length, 2, "limit + 1: one more says there are more")
                const deletion = await a.deleteDatastream(f, "t")
                assert.ok(deletion?.seq !== undefined && deletion.seq > top, `the deletion's seq follows the feed's last: ${deletion?.seq}`)
                assert.equal(deletion.prevSeq, top)
                const [next] = await a.writePoints(f, [{ stream: "s", atMs: T0 + 2, value: "3" }])
                assert.equal(next.prevSeq, deletion.seq, "the next write follows the deletion in the chain")
                const after = (await a.changesAfter(new Map([[f, top]]), 10)).get(f)!
                assert.deepEqual([after.lastSeq, after.unnamedDeletionSeq, after.deletions, after.points.map((p) => p.value)], [next.seq, 0, [{ stream: "t", seq: deletion.seq, earlierSeq: 0 }], ["3"]])
                // the same name made and deleted again: its newest deletion, and the seq of the one before
                await a.writePoints(f, [{ stream: "t", atMs: T0, value: "again" }])
                const again = await a.deleteDatastream(f, "t")
                assert.deepEqual((await a.changesAfter(new Map([[f, top]]), 10)).get(f)!.deletions, [{ stream: "t", seq: again!.seq, earlierSeq: deletion.seq }])
                assert.deepEqual((await a.changesAfter(new Map([[f, again!.seq!]]), 10)).get(f)!.deletions, [], "none after the seq given")
            } finally {
                await a.close()
            }
        })

        test("[P§10] two processes making feeds at once never give out one id twice", async () => {
            const { store: a, another } = await openClosedAfter(backend, { now })
            const b = await another()
            try {
                const made = await Promise.all([...Array.from({ length: 20 }, () => a.createFeed({})), ...Array.from({ length: 20 }, () => b.createFeed({}))])
                assert.equal(new Set(made.map((f) => f.id)).size, 40)
                const gone = made[0].id
                await a.deleteFeed(gone)
                await assert.rejects(b.createFeed({ id: gone }), (e) => asApiError(e).code === "E_FEED_ID_RETIRED")
            } finally {
                await a.close()
                await b.close()
            }
        })

        test("[P§8] a replay knows which changes it saw: a write to the feed that commits after it was read is pushed live, whatever other feeds commit meanwhile (their seqs are their own)", async () => {
            const { store: a, another } = await openClosedAfter(backend, { now })
            const b = await another()
            const { default: pg } = await import("pg")
            const url = (a as unknown as { opts: { url: string } }).opts.url
            const blocker = new pg.Client({ connectionString: url })
            await blocker.connect()
            try {
                const f = (await a.createFeed({})).id
                await a.writePoints(f, [{ stream: "x", atMs: T0, value: "0" }])
                // hold the datastream's row: a's next commit takes its sequence number, then waits here
                await blocker.query("BEGIN")
                await blocker.query("SELECT 1 FROM datastreams WHERE feed = $1 AND id = 'x' FOR UPDATE", [f])
                const slow = a.writePoints(f, [{ stream: "x", atMs: T0 + 1, value: "slow" }])
                await until("a's commit to wait for the row", async () => (await blocker.query("SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted")).rows[0].n > 0)
                const g = (await b.createFeed({})).id
                const fast = await b.writePoints(g, [{ stream: "y", atMs: T0 + 2, value: "fast" }])
                const replay = await b.replay(f, undefined, T0, 10)
                await blocker.query("COMMIT")
                const [late] = await slow
                assert.equal(fast[0].seq, 1, "g's first point: f's writes take none of g's numbers")
                assert.deepEqual(replay.points.map((p) => p.value), [], "it was not committed when the replay was read")
                assert.ok(late.seq > replay.highSeq, "numbered after the feed's last seq, under its row lock")
                assert.equal(replay.seen(late), false, "so it must be pushed live")
                assert.equal(replay.seen(fast[0]), true)
            } finally {
                await blocker.end()
                await a.close()
                await b.close()
            }
        })

        test("[P§8] a feed's sequence numbers follow its commits over processes: a replay by seq read while one write is in the middle of its commit, and another process's write to the same feed waits behind it, sees neither, and its cursor is below both", async () => {
            const { store: a, another, gateWritesOf } = await openClosedAfter(backend, { now })
            const b = await another()
            const c = await another()
            const gate = await gateWritesOf!("held")
            try {
                const f = (await a.createFeed({})).id
                const g = (await a.createFeed({})).id
                const [zero] = await a.writePoints(f, [{ stream: "x", atMs: T0, value: "0" }])
                // a's batch holds f's row and has taken its seq; b's write to f waits for that row; c's to g commits now
                const held = a.writePoints(f, [{ stream: "x", atMs: T0 + 10, value: "held" }])
                await until("a's write to be held in its commit", () => gate.waiting("INSERT INTO datapoints"))
                const behind = b.writePoints(f, [{ stream: "x", atMs: T0 + 1, value: "behind" }])
                await until("b's write to wait for f's row", () => gate.waiting("SELECT id, pg_current_xact_id()"))
                const [elsewhere] = await c.writePoints(g, [{ stream: "y", atMs: T0, value: "g" }])
                const cursor = await c.replayAfterSeq(f, undefined, 0, 10)
                assert.deepEqual(cursor.points.map((p) => p.value), ["0"])
                await gate.open()
                const [h] = await held
                const [bh] = await behind
                assert.equal(elsewhere.seq, 1, "[P§8] g's seqs are its own: f's writes take none of its numbers")
                assert.deepEqual([h.seq, bh.seq], [zero.seq + 1, zero.seq + 2], "b's write to the same feed takes the seq after a's, once a's committed")
                assert.deepEqual([h.prevSeq, bh.prevSeq], [zero.seq, h.seq], "each names the feed's commit before it (hub/commit-order.ts)")
                assert.ok(cursor.highSeq < h.seq, "the cursor is below every change not yet committed")
                assert.deepEqual([cursor.seen(h), cursor.seen(bh)], [false, false], "both pushed live")
                assert.deepEqual((await a.replayAfterSeq(f, undefined, cursor.highSeq, 10)).points.map((p) => p.value), ["held", "behind"], "a resume from the cursor holds both, in commit order")
            } finally {
                await gate.open()
                await a.close()
                await b.close()
                await c.close()
            }
        })

        test("a process alone on the store shuts out others; processes sharing it (on one bus) do not shut out each other", async () => {
            const { store: a, another } = await openClosedAfter(backend, { now })
            const b = await another()
            const c = await another()
            try {
                await a.claim("shared")
                await b.claim("shared")
                await assert.rejects(c.claim("alone"), (e) => (e as { failure?: string }).failure === "in-use" && /redis-url/.test((e as Error).message))
                await a.close()
                await b.close()
                await c.claim("alone")
                const d = await another()
                await assert.rejects(d.claim("shared"), (e) => (e as { failure?: string }).failure === "in-use")
                await d.close()
            } finally {
                await a.close()
                await b.close()
                await c.close()
            }
        })

        test("provisioning steps of two processes run one after the other", async () => {
            const { store: a, another } = await openClosedAfter(backend, { now })
            const b = await another()
            try {
                const log: string[] = []
                const step = (s: Store, who: string) =>
                    s.provisioning(async () => {
                        log.push(`${who} in`)
                        await new Promise((r) => setTimeout(r, 50))
                        log.push(`${who} out`)
                    })
                await Promise.all([step(a, "a"), step(b, "b")])
                assert.ok(log.join() === "a in,a out,b in,b out" || log.join() === "b in,b out,a in,a out", log.join())
            } finally {
                await a.close()
                await b.close()
            }
        })
    })
}
