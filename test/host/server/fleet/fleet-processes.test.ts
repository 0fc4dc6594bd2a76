// [fleet] Claims when several processes share one PostgreSQL and one Redis (issue 14): the claim budget per
// product is one budget over all of them (as the per-key budget is), a device's key claimed on one process
// works on another, and once it was used there a claim of the same hardware id on the first is a clone
// (409); a re-arm on one lets a claim on the other through, and the old key stops everywhere. Two servers
// in this process stand for two processes. Skipped, counted, where PostgreSQL or Redis is not installed.
import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import { SCALE_SKIP, startScaleServices, startServerGroup, stopServerGroup, type ScaleServices } from "../../harness/scale.ts"
import { http, type TestServer } from "../../harness/server-harness.ts"
import { until } from "../../harness/until.ts"
import { claim, makeProduct, writeWith } from "./fleet-fixture.ts"

/** A revoked key is refused by the other process within this (the bus carries key changes; a loaded machine). */
const KEY_CHANGE_SEEN_WITHIN_MS = 10_000

describe("claims across processes on PostgreSQL and Redis", { skip: SCALE_SKIP }, () => {
    let services: ScaleServices
    let a: TestServer
    let b: TestServer
    before(async () => {
        services = await startScaleServices()
        // a product's budget: 3 claims, refilled only after ~17 min
        ;[a, b] = await startServerGroup(services, 2, { claimRatePerProduct: 0.001, claimBurstPerProduct: 3 })
    })
    after(async () => {
        await stopServerGroup([a, b].filter(Boolean))
        await services?.stop()
    })

    test("the claim budget of a product is one over every process", async () => {
        const p = await makeProduct(a)
        assert.equal((await claim(a, p, "budget-1")).status, 201)
        assert.equal((await claim(a, p, "budget-2")).status, 201)
        assert.equal((await claim(b, p, "budget-3")).status, 201)
        const over = await claim(b, p, "budget-4")
        assert.deepEqual([over.status, over.body.code], [429, "E_CLAIM_RATE_LIMITED"], JSON.stringify(over.body))
        assert.match(over.body.errors, new RegExp(`product ${p.id}`))
        assert.equal((await b.store.listDevices(p.id)).length, 3, "nothing made by the refused claim")
    })

    test("a key claimed on one process works on the other; used there, a claim of the same board on the first is a clone; a re-arm on the other lets it through", async () => {
        const p = await makeProduct(a)
        const first = await claim(a, p, "roaming")
        assert.equal(first.status, 201, JSON.stringify(first.body))
        assert.equal(await writeWith(b, first.body.key, first.body.feed), 200, "the key works on the other process")
        // b records the first use at once, in the store: a decides on it
        await until("the key's first use recorded", async () => (await a.store.getDevice(first.body.device))?.keyUsedMs !== undefined)
        const clone = await claim(a, p, "roaming")
        assert.deepEqual([clone.status, clone.body.code], [409, "E_ALREADY_CLAIMED"], JSON.stringify(clone.body))
        assert.equal((await http(b, "POST", `/v2/devices/${first.body.device}/rearm`, { key: b.credentials.masterKey })).status, 200)
        const again = await claim(a, p, "roaming")
        assert.equal(again.status, 200, JSON.stringify(again.body))
        assert.equal(again.body.feed, first.body.feed)
        await until("the old key refused on the other process", async () => (await writeWith(b, first.body.key, first.body.feed)) === 401, KEY_CHANGE_SEEN_WITHIN_MS)
        assert.equal(await writeWith(b, again.body.key, again.body.feed), 200)
    })

    test("a key used only through a browser token on one process (a sign-in at its /jwt, then the token) is used on the other too: a claim of the same board there is 409", async () => {
        const p = await makeProduct(a)
        const first = await claim(a, p, "token-roaming")
        assert.equal(first.status, 201, JSON.stringify(first.body))
        const minted = await http(b, "POST", "/jwt", { key: first.body.key })
        assert.equal(minted.status, 200, JSON.stringify(minted.body))
        assert.equal(await writeWith(b, `Bearer ${minted.body.token}`, first.body.feed), 200)
        await until("the key's first use recorded", async () => (await a.store.getDevice(first.body.device))?.keyUsedMs !== undefined)
        const clone = await claim(a, p, "token-roaming")
        assert.deepEqual([clone.status, clone.body.code], [409, "E_ALREADY_CLAIMED"], JSON.stringify(clone.body))
        assert.equal(await writeWith(a, `Bearer ${minted.body.token}`, first.body.feed), 200, "the token works on both")
    })
})
