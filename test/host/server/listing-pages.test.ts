// GET /keys and GET /products are paged as /feeds and /devices are (was: the whole list in one answer, however
// many keys a tenant made: one per device is thousands): {totalResults, page, <items>}, `page` from 1, a page
// past the end empty, and the CLI's `keys list` / `products list` read every page.
import assert from "node:assert/strict"
import { test } from "node:test"
import { http, serverForThisFile } from "../harness/server-harness.ts"
import { KEYS_PER_PAGE } from "../../../devs/server/handlers/keys.ts"
import { PRODUCTS_PER_PAGE } from "../../../devs/server/handlers/products.ts"
import { FeedlineConnection } from "../../../devs/client/connection.ts"
import { allPages } from "../../../devs/client/commands/list.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey

/** Makes `n` of something through the API, a few requests at a time. */
async function make(n: number, one: (i: number) => Promise<{ status: number }>) {
    for (let i = 0; i < n; i += 25) {
        const made = await Promise.all(Array.from({ length: Math.min(25, n - i) }, (_, j) => one(i + j)))
        for (const r of made) assert.equal(r.status, 201)
    }
}

/** Every page of `resource` over HTTP, checked for shape; the items in order. */
async function pages(resource: string, field: string, perPage: number, total: number): Promise<any[]> {
    const items: any[] = []
    const pageCount = Math.ceil(total / perPage)
    for (let page = 1; page <= pageCount + 1; page++) {
        const r = await http(s, "GET", `/v2${resource}?page=${page}`, { key: master })
        assert.equal(r.status, 200, JSON.stringify(r.body))
        assert.equal(r.body.totalResults, total)
        assert.equal(r.body.page, page)
        const expected = page < pageCount ? perPage : page === pageCount ? total - (pageCount - 1) * perPage : 0
        assert.equal(r.body[field].length, expected, `${resource} page ${page}`)
        items.push(...r.body[field])
    }
    const first = await http(s, "GET", `/v2${resource}`, { key: master })
    assert.deepEqual(first.body[field], items.slice(0, perPage), "no page param: page 1")
    return items
}

test("GET /keys answers KEYS_PER_PAGE keys a page, oldest first, every key once", async () => {
    const before = (await http(s, "GET", "/v2/keys", { key: master })).body.totalResults
    const total = KEYS_PER_PAGE + 1
    await make(total - before, (i) => http(s, "POST", "/v2/keys", { key: master, body: { label: `k${i}`, permissions: ["read"], feeds: [1] } }))
    const keys = await pages("/keys", "keys", KEYS_PER_PAGE, total)
    assert.equal(new Set(keys.map((k) => k.id)).size, total)
})

test("GET /products answers PRODUCTS_PER_PAGE products a page, each with its device count", async () => {
    const total = PRODUCTS_PER_PAGE + 1
    await make(total, (i) => http(s, "POST", "/v2/products", { key: master, body: { title: `p${i}` } }))
    const products = await pages("/products", "products", PRODUCTS_PER_PAGE, total)
    // made a few at a time: in an order of their own within one millisecond
    assert.deepEqual(products.map((p) => p.title).sort(), Array.from({ length: total }, (_, i) => `p${i}`).sort())
    assert.ok(products.every((p) => p.devices === 0))
})

test("the CLI's lists read every page of /keys and /products", async () => {
    const c = await FeedlineConnection.connect({ server: `tls://127.0.0.1:${s.devicePort}`, apiKey: master, ca: s.ca })
    try {
        const keys = await allPages(c, "/keys", "keys")
        assert.equal(keys.length, (await http(s, "GET", "/v2/keys", { key: master })).body.totalResults)
        assert.ok(keys.length > KEYS_PER_PAGE)
        assert.equal((await allPages(c, "/products", "products")).length, PRODUCTS_PER_PAGE + 1)
    } finally {
        c.close()
    }
})
