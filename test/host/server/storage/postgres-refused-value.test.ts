// A PostgreSQL group commit holds many requests' writes in one transaction: one write whose data the database
// refuses (a data exception, a constraint; here a trigger raising a check violation) fails that transaction.
// The store tries the batch again in parts until that write is alone: it alone is refused (422 E_BAD_VALUE,
// nothing of it stored), the others in its batch are stored and acknowledged, stamps still in request order.
import assert from "node:assert/strict"
import { after, describe, test } from "node:test"
import { asApiError } from "../../../../devs/server/errors.ts"
import { closeStoreBackends, storeBackends } from "../../harness/stores.ts"

const T0 = Date.UTC(2026, 11, 7, 1)
const WHOLE = { startMs: 0, endMs: T0 * 2, limit: 100 }
after(closeStoreBackends)

const backend = storeBackends().find((b) => b.name === "postgres")!

describe("PostgreSQL: a write the database refuses fails alone, not its batch", { skip: backend.skip }, () => {
    test("the others in its batch are stored and acknowledged; it gets 422 E_BAD_VALUE and nothing of it is stored", async () => {
        const { store, errors, commits, refuseValuesOf } = await backend.open({ now: () => T0 })
        try {
            const f = (await store.createFeed({})).id
            const g = (await store.createFeed({})).id
            await refuseValuesOf!("bad")
            const before = commits()
            // one batch: written in the same turn, two tenants' feeds, the refused write in the middle
            const results = await Promise.allSettled([
                store.writePoints(f, [{ stream: "s", value: "a" }], T0),
                store.writePoints(g, [{ stream: "s", atMs: T0, value: "g1" }], T0),
                store.writePoints(f, [{ stream: "s", value: "b" }, { stream: "s", atMs: T0 - 1, value: "bad" }], T0),
                store.writePoints(f, [{ stream: "s", value: "c" }], T0),
                store.writePoints(g, [{ stream: "t", value: "g2" }], T0),
            ])
            const refused = results[2]
            assert.equal(refused.status, "rejected")
            const e = asApiError((refused as PromiseRejectedResult).reason)
            assert.deepEqual([e.status, e.code], [422, "E_BAD_VALUE"])
            assert.ok(!e.message.includes("value refused"), "the database's words are logged, not sent")
            const stored = results.filter((_, i) => i !== 2).map((r) => {
                assert.equal(r.status, "fulfilled")
                return (r as PromiseFulfilledResult<{ atMs: number; value: string }[]>).value.map((p) => [p.atMs, p.value])
            })
            // stamps in request order over the parts; the refused write's stamp is not taken
            assert.deepEqual(stored, [[[T0, "a"]], [[T0, "g1"]], [[T0 + 1, "c"]], [[T0, "g2"]]])
            assert.deepEqual(await store.history(f, "s", WHOLE), [{ atMs: T0, value: "a" }, { atMs: T0 + 1, value: "c" }], "nothing of the refused write")
            assert.deepEqual(await store.history(g, "s", WHOLE), [{ atMs: T0, value: "g1" }])
            assert.equal((await store.getDatastream(f, "s"))!.currentValue, "c")
            assert.deepEqual(errors, [], "the request's fault, not a failure of the store")
            assert.ok(commits() - before > 1, "tried again in parts")
            // the next batch commits whole, in one transaction
            const next = commits()
            await Promise.all([store.writePoints(f, [{ stream: "s", value: "d" }], T0), store.writePoints(g, [{ stream: "s", value: "e" }], T0)])
            assert.equal(commits() - next, 1)
        } finally {
            await store.close()
        }
    })
})
