// A PostgreSQL group commit holds many requests' writes in one transaction: one write whose data the database
// refuses (a data exception, a constraint; here a trigger raising a check violation) fails that transaction.
// The store tries the batch again in parts until that write is alone: it alone is refused (422 E_BAD_VALUE,
// nothing of it stored), the others in its batch are stored and acknowledged, stamps still in request order.
// So does any other failure of the transaction that is not a lost database (a statement the database will
// not run for one write, a timeout, a trigger): the write at fault alone is refused, 503 E_STORE_FAILED with
// retry_after_ms unless its data is the cause; a failure that passes is gone for the parts; one that is
// every part's refuses them all 503 within a bounded number of tries. Nothing acknowledged is missing,
// nothing missing was acknowledged.
import assert from "node:assert/strict"
import { after, describe, test } from "node:test"
import { asApiError } from "../../../../devs/server/errors.ts"
import { closeStoreBackends, storeBackends } from "../../harness/stores.ts"

const T0 = Date.UTC(2026, 11, 7, 1)
const WHOLE = { startMs: 0, endMs: T0 * 2, limit: 100 }
after(closeStoreBackends)

const backend = storeBackends().find((b) => b.name === "postgres")!
type Settled = PromiseSettledResult<{ atMs: number; value: string }[]>
const codeOf = (r: Settled) => {
    assert.equal(r.status, "rejected")
    const e = asApiError((r as PromiseRejectedResult).reason)
    return [e.status, e.code, e.retryAfterMs !== undefined]
}

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

    test("a failure that is one write's but not a data exception (a trigger raising for its value): that write alone is refused 503 E_STORE_FAILED with retry_after_ms, the others are stored", async () => {
        const { store, errors, failWritesOf } = await backend.open({ now: () => T0 })
        try {
            const f = (await store.createFeed({})).id
            await failWritesOf("boom")
            const results: Settled[] = await Promise.allSettled(["a", "b", "boom", "c", "d", "e"].map((v, i) => store.writePoints(f, [{ stream: "s", atMs: T0 + i, value: v }], T0)))
            assert.deepEqual(codeOf(results[2]), [503, "E_STORE_FAILED", true])
            assert.ok(!asApiError((results[2] as PromiseRejectedResult).reason).message.includes("fire"), "the database's words are logged, not sent")
            for (const [i, r] of results.entries()) if (i !== 2) assert.equal(r.status, "fulfilled", `write ${i}`)
            assert.deepEqual((await store.history(f, "s", WHOLE)).map((p) => p.value), ["a", "b", "c", "d", "e"], "every acknowledged write, nothing of the refused one")
            assert.equal(errors.length, 1, "logged once, for the write at fault")
        } finally {
            await store.close()
        }
    })

    test("a write too large for the database (SQLSTATE class 54, program limit exceeded) is refused alone 422 E_BAD_VALUE: sending it again would fail the same way", async () => {
        const { store, onInsertOf } = await backend.open({ now: () => T0 })
        try {
            const f = (await store.createFeed({})).id
            await onInsertOf!("huge", "limit54", "RAISE EXCEPTION 'index row size exceeds maximum' USING ERRCODE = 'program_limit_exceeded'")
            const results: Settled[] = await Promise.allSettled(["a", "huge", "b"].map((v, i) => store.writePoints(f, [{ stream: "s", atMs: T0 + i, value: v }], T0)))
            assert.deepEqual(codeOf(results[1]), [422, "E_BAD_VALUE", false])
            assert.deepEqual((await store.history(f, "s", WHOLE)).map((p) => p.value), ["a", "b"])
        } finally {
            await store.close()
        }
    })

    test("a failure that passes (a statement timeout once): the batch's parts are stored and every write acknowledged, none twice", async () => {
        const { store, onInsertOf } = await backend.open({ now: () => T0 })
        const { default: pg } = await import("pg")
        const admin = new pg.Client({ connectionString: (store as unknown as { opts: { url: string } }).opts.url })
        await admin.connect()
        try {
            const f = (await store.createFeed({})).id
            await admin.query("CREATE SEQUENCE once_seq")
            await onInsertOf!("slow", "once", "IF nextval('once_seq') = 1 THEN RAISE EXCEPTION 'canceling statement due to statement timeout' USING ERRCODE = 'query_canceled'; END IF")
            const results: Settled[] = await Promise.allSettled(["a", "slow", "b", "c"].map((v) => store.writePoints(f, [{ stream: "s", value: v }], T0)))
            for (const r of results) assert.equal(r.status, "fulfilled")
            const acked = results.map((r) => (r as PromiseFulfilledResult<{ atMs: number; value: string }[]>).value[0])
            assert.deepEqual(acked.map((p) => p.value), ["a", "slow", "b", "c"])
            assert.deepEqual(acked.map((p) => p.atMs), [T0, T0 + 1, T0 + 2, T0 + 3], "stamps in request order over the parts")
            assert.deepEqual(await store.history(f, "s", WHOLE), acked.map((p) => ({ atMs: p.atMs, value: p.value })), "each stored once, as acknowledged")
        } finally {
            await admin.end()
            await store.close()
        }
    })

    test("a failure that is every write's (each of a batch of 16 fails): all refused 503 E_STORE_FAILED with retry_after_ms, nothing stored, within a bounded number of tries", async () => {
        const { store, errors, failWritesOf } = await backend.open({ now: () => T0 })
        try {
            const f = (await store.createFeed({})).id
            await failWritesOf("boom")
            const results: Settled[] = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => store.writePoints(f, [{ stream: "s", atMs: T0 + i, value: "boom" }], T0)))
            for (const r of results) assert.deepEqual(codeOf(r), [503, "E_STORE_FAILED", true])
            assert.deepEqual(await store.history(f, "s", WHOLE), [])
            // 16 writes: 2 * log2(16) = 8 failed parts at most, then what is left is refused without a try
            assert.ok(errors.length <= 9, `${errors.length} refusals logged`)
            assert.equal((await store.writePoints(f, [{ stream: "s", atMs: T0, value: "fine" }])).length, 1, "the next write is stored")
        } finally {
            await store.close()
        }
    })
})
