// [fleet] The fleet view (GET /v2/devices) and what an operator does to one device: rename, re-arm, revoke.
// Link state comes from the server's own connections and the device's `_state`; firmware and reboots from
// its `_firmware` and `_boots` datastreams (before it reports them: what it said when it claimed).
import assert from "node:assert/strict"
import { after, before, test } from "node:test"
import { http, SERVER_OWN_EVENT_WAIT_MS, startTestServer, type TestServer } from "../../harness/server-harness.ts"
import { until } from "../../harness/until.ts"
import { claim, claimOn, makeProduct, writeWith } from "./fleet-fixture.ts"

let s: TestServer
before(async () => (s = await startTestServer()))
after(() => s.stop())

const master = () => s.credentials.masterKey
const device = async (id: string) => (await http(s, "GET", `/v2/devices/${id}`, { key: master() })).body

test("each device: hardware id, feed, claimed at, last seen, link state, firmware, reboots; a product's devices apart", async () => {
    const p = await makeProduct(s)
    const q = await makeProduct(s, { title: "other" })
    const r = await claimOn(s, "tls", p.id, { hardware_id: "aabbccddeeff0011", code: p.code("aabbccddeeff0011"), firmware: "0.1.0" })
    assert.equal(r.status, 201)
    const id = r.body.device
    await claim(s, q, "elsewhere")
    let d = await device(id)
    assert.deepEqual([d.hardware_id, d.feed, d.link, d.firmware, d.reboots, d.state, d.name], ["aabbccddeeff0011", r.body.feed, "up", "0.1.0", null, "active", ""])
    assert.ok(Date.parse(d.claimed) > 0 && Date.parse(d.last_seen) >= Date.parse(d.claimed), JSON.stringify(d))
    // what the firmware reports about itself, on the claiming connection
    const put = await r.client!.request({ method: "put", resource: `/feeds/${r.body.feed}`, body: { datastreams: [{ id: "_firmware", current_value: "0.2.0" }, { id: "_boots", current_value: "4" }, { id: "_state", current_value: "degraded" }] } })
    assert.equal(put.status, 200)
    d = await device(id)
    assert.deepEqual([d.link, d.firmware, d.reboots], ["degraded", "0.2.0", 3])
    r.client!.close()
    await until("the device to show offline", async () => (await device(id)).link === "offline")
    d = await device(id)
    assert.ok(d.last_seen, "last seen stays after it left")
    const listed = (await http(s, "GET", `/v2/devices?product=${p.id}`, { key: master() })).body
    assert.deepEqual(listed.devices.map((x: any) => x.id), [id])
    assert.equal((await http(s, "GET", "/v2/devices?product=p00000000", { key: master() })).status, 404)
    const all = (await http(s, "GET", "/v2/devices", { key: master() })).body
    assert.equal(all.totalResults, 2)
})

test("rename: the device's name and its feed's title", async () => {
    const p = await makeProduct(s)
    const r = await claim(s, p, "to-rename")
    const renamed = await http(s, "PUT", `/v2/devices/${r.body.device}`, { key: master(), body: { name: "north field 3" } })
    assert.equal(renamed.status, 200, JSON.stringify(renamed.body))
    assert.equal(renamed.body.name, "north field 3")
    assert.equal((await s.store.getFeed(r.body.feed))!.title, "north field 3")
    assert.equal((await http(s, "PUT", `/v2/devices/${r.body.device}`, { key: master(), body: { name: 7 } })).body.code, "E_BAD_VALUE")
    assert.equal((await http(s, "PUT", "/v2/devices/dnothing", { key: master(), body: { name: "x" } })).status, 404)
})

test("revoke: the device's key stops at once, its subscriptions end; its claims are refused until it is re-armed", async () => {
    const p = await makeProduct(s)
    const r = await claimOn(s, "ws", p.id, { hardware_id: "to-revoke", code: p.code("to-revoke") })
    const sub = await r.client!.request({ method: "subscribe", resource: `/feeds/${r.body.feed}`, token: "s" })
    assert.equal(sub.status, 200)
    const revoked = await http(s, "DELETE", `/v2/devices/${r.body.device}`, { key: master() })
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body))
    const end = await r.client!.push("s", SERVER_OWN_EVENT_WAIT_MS)
    assert.deepEqual([end.status, end.body.code], [403, "E_FORBIDDEN"])
    r.client!.close()
    assert.equal(await writeWith(s, r.body.key, r.body.feed), 401)
    assert.equal((await device(r.body.device)).state, "revoked")
    assert.equal((await claim(s, p, "to-revoke")).body.code, "E_DEVICE_REVOKED")
    assert.equal((await http(s, "DELETE", `/v2/devices/${r.body.device}`, { key: master() })).status, 404, "revoked once")
    assert.equal((await http(s, "POST", `/v2/devices/${r.body.device}/rearm`, { key: master() })).status, 200)
    const back = await claim(s, p, "to-revoke")
    assert.equal(back.status, 200, JSON.stringify(back.body))
    assert.equal(back.body.feed, r.body.feed)
    assert.equal(await writeWith(s, back.body.key, back.body.feed), 200)
})

test("a device whose feed was deleted gets a new feed when it claims again (re-armed)", async () => {
    const p = await makeProduct(s, { datastreams: ["temp"] })
    const r = await claim(s, p, "feed-gone")
    assert.equal((await http(s, "DELETE", `/v2/feeds/${r.body.feed}`, { key: master() })).status, 200)
    await http(s, "POST", `/v2/devices/${r.body.device}/rearm`, { key: master() })
    const again = await claim(s, p, "feed-gone")
    assert.equal(again.status, 200, JSON.stringify(again.body))
    assert.ok(again.body.feed > r.body.feed, "a new feed id, never the deleted one")
    assert.deepEqual((await s.store.listDatastreams(again.body.feed)).map((d) => d.id), ["temp"])
    assert.equal(await writeWith(s, again.body.key, again.body.feed), 200)
})
