// [P§6] Deleting many datapoints (a range, a datastream, a feed) is done in chunks of PRUNE_CHUNK_ROWS, each its
// own commit, so that the server serves others between them. One that failed midway was answered as if nothing
// had been done (503 E_STORE_FAILED, "nothing was written") although the earlier chunks were deleted. Now it is
// 503 E_PARTLY_DELETED with `deleted` (how many went) and what to do: the same deletion again, which deletes
// the rest and sets the current value. On both stores; the answer over HTTP in
// test/host/server/storage-failures.test.ts. Found by the adversarial audit of 2026-12-07.
import assert from "node:assert/strict"
import { after, describe, test } from "node:test"
import { asApiError } from "../../../../devs/server/errors.ts"
import { PRUNE_CHUNK_ROWS } from "../../../../devs/server/storage/rows.ts"
import { closeStoreBackends, storeBackends } from "../../harness/stores.ts"

const T0 = Date.UTC(2026, 11, 7, 1)
const COUNT = PRUNE_CHUNK_ROWS + 1000
after(closeStoreBackends)

/** What `deletion` fails with, as the client is told it, once the failure `lift` undoes is lifted. */
async function refusal(deletion: Promise<unknown>, lift: () => Promise<void>) {
    try {
        await deletion
    } catch (err) {
        return asApiError(err)
    } finally {
        await lift()
    }
    assert.fail("the deletion should fail")
}

/** COUNT points of `stream`, at T0, T0 + 1, … oldest first (so the first chunk holds the oldest). */
const pointsOf = (stream: string) => Array.from({ length: COUNT }, (_, i) => ({ stream, atMs: T0 + i, value: String(i) }))

for (const backend of storeBackends()) {
    describe(`${backend.name}: a chunked deletion that fails midway says what it deleted`, { skip: backend.skip }, () => {
        test("a range: 503 E_PARTLY_DELETED with deleted; the same deletion again deletes the rest and sets the current value", async () => {
            const { store, ...opened } = await backend.open({ now: () => T0 + COUNT })
            try {
                const f = (await store.createFeed({})).id
                await store.writePoints(f, [{ stream: "keep", atMs: T0, value: "k" }, ...pointsOf("s")], T0 + COUNT)
                const lift = await opened.failDeletesFrom(T0 + PRUNE_CHUNK_ROWS + 10) // the second chunk fails
                const e = await refusal(store.deletePoints(f, "s", 0, T0 * 2), lift)
                assert.deepEqual([e.status, e.code, e.extra], [503, "E_PARTLY_DELETED", { deleted: PRUNE_CHUNK_ROWS }], e.message)
                assert.ok(e.retryAfterMs! > 0)
                assert.match(e.message, new RegExp(`^${PRUNE_CHUNK_ROWS} datapoints were deleted`))
                assert.match(e.message, /Send the same deletion again/)
                const left = await store.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 1000 })
                assert.equal(left.length, 1000, "what the answer says is left is left")
                // as the answer says: the same deletion again
                assert.equal(await store.deletePoints(f, "s", 0, T0 * 2), 1000)
                assert.deepEqual(await store.history(f, "s", { startMs: 0, endMs: T0 * 2, limit: 10 }), [])
                assert.equal((await store.getDatastream(f, "s"))?.currentValue, undefined, "no point left: no current value")
                assert.equal((await store.getDatastream(f, "keep"))?.currentValue, "k", "another datastream untouched")
            } finally {
                await store.close()
            }
        })

        test("a feed: 503 E_PARTLY_DELETED; the feed is still there, and deleting it again deletes it", async () => {
            const { store, ...opened } = await backend.open({ now: () => T0 + COUNT })
            try {
                const f = (await store.createFeed({})).id
                await store.writePoints(f, pointsOf("s"), T0 + COUNT)
                const lift = await opened.failDeletesFrom(T0 + PRUNE_CHUNK_ROWS + 10)
                const e = await refusal(store.deleteFeed(f), lift)
                assert.deepEqual([e.status, e.code, e.extra], [503, "E_PARTLY_DELETED", { deleted: PRUNE_CHUNK_ROWS }], e.message)
                assert.ok(await store.getFeed(f), "the feed is still there")
                assert.ok(await store.deleteFeed(f))
                assert.equal(await store.getFeed(f), undefined)
            } finally {
                await store.close()
            }
        })
    })
}
