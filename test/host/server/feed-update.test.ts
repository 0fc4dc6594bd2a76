// PUT /feeds/:id, the devices' hot path [P§5, P§5a], over one TLS connection as a device uses it:
// pipelined writes, a request cut across two reads, the title and empty-datastream step, and every
// refusal with its code and nothing stored. (The handler chains the store's answers instead of being an
// async function since issue 15; what it answers and stores must not change.)
import assert from "node:assert/strict"
import { test } from "node:test"
import { http, InProcessClient, serverForThisFile, TlsClient } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const feed = s.credentials.feedId
const key = s.credentials.deviceKey
const master = s.credentials.masterKey
const T0 = Date.UTC(2026, 11, 6, 12)

const putLine = (token: string, datastreams: unknown, resource = `/feeds/${feed}`) => JSON.stringify({ r: resource, b: { datastreams }, t: token }) + "\n"

async function current(stream: string): Promise<unknown> {
    const r = await http(s, "GET", `/v2/feeds/${feed}/datastreams/${stream}`, { key })
    return r.status === 200 ? r.body.current_value : r.status
}

test("pipelined short-form writes are each answered {\"t\":…}, and a read sent after them sees the last", async () => {
    const c = await TlsClient.open(s, key)
    try {
        const tokens = Array.from({ length: 20 }, (_, i) => `p${i}`)
        c.sendRaw(tokens.map((t, i) => putLine(t, [{ id: "pipe", datapoints: [{ at: T0 + i, value: String(i) }] }])).join(""))
        c.sendRaw(JSON.stringify({ m: "get", r: `/feeds/${feed}/datastreams/pipe`, t: "after" }) + "\n")
        for (const t of tokens) assert.equal((await c.response(t)).raw, `{"t":"${t}"}`)
        assert.equal((await c.response("after")).response!.body.current_value, "19")
    } finally {
        c.close()
    }
})

test("a write cut across two reads is answered once, when its last byte arrives", async () => {
    // the bytes as a stream door hands them on (Session.receiveBytes, one call per read), from inside the
    // server's process: two TCP writes 50 ms apart may arrive as one read on a loaded machine, and then
    // nothing was cut
    const c = await InProcessClient.open(s, key)
    try {
        const line = putLine("cut", [{ id: "cut", current_value: "7" }])
        const half = Math.floor(line.length / 2)
        c.session.receiveBytes(Buffer.from(line.slice(0, half)))
        await new Promise((r) => setImmediate(r))
        assert.deepEqual(c.sent("cut"), [], "nothing is answered before the last byte")
        c.session.receiveBytes(Buffer.from(line.slice(half) + putLine("next", [{ id: "cut", current_value: "8" }])))
        assert.equal((await c.response("cut")).raw, '{"t":"cut"}')
        assert.equal((await c.response("next")).raw, '{"t":"next"}')
        assert.equal(c.q.lines.filter((l) => l.raw.includes('"cut"')).length, 1)
        assert.equal(await current("cut"), "8")
    } finally {
        c.close()
    }
})

test("a title and a datastream named without a value are changed with the points", async () => {
    const c = await TlsClient.open(s, master)
    try {
        c.sendRaw(JSON.stringify({ r: `/feeds/${feed}`, b: { title: "field 7", datastreams: [{ id: "valued", current_value: "1" }, { id: "empty" }] }, t: "tw" }) + "\n")
        assert.equal((await c.response("tw")).raw, '{"t":"tw"}')
        const f = await http(s, "GET", `/v2/feeds/${feed}`, { key })
        assert.equal(f.body.title, "field 7")
        const ids = (f.body.datastreams as { id: string }[]).map((d) => d.id)
        assert.ok(ids.includes("empty") && ids.includes("valued"), JSON.stringify(ids))
        assert.equal(await current("valued"), "1")
    } finally {
        c.close()
    }
})

test("refused writes get their status and code, short, and store nothing", async () => {
    const other = await http(s, "POST", "/v2/feeds", { key: master, body: { title: "not the device's" } })
    assert.equal(other.status, 201)
    const c = await TlsClient.open(s, key)
    try {
        const cases: [string, string, number, string][] = [
            ["notlist", JSON.stringify({ r: `/feeds/${feed}`, b: { datastreams: { id: "r1" } }, t: "notlist" }) + "\n", 400, "E_BAD_BODY"],
            ["nobody", JSON.stringify({ r: `/feeds/${feed}`, b: "text", t: "nobody" }) + "\n", 400, "E_BAD_BODY"],
            ["badvalue", putLine("badvalue", [{ id: "r1", current_value: "1" }, { id: "r2", current_value: { v: 1 } }]), 422, "E_BAD_VALUE"],
            ["badtime", putLine("badtime", [{ id: "r1", datapoints: [{ at: 5, value: "1" }] }]), 422, "E_BAD_TIME"],
            ["badid", putLine("badid", [{ id: "a b", current_value: "1" }]), 422, "E_BAD_ID"],
            ["forbidden", putLine("forbidden", [{ id: "r1", current_value: "1" }], `/feeds/${other.body.id}`), 403, "E_FORBIDDEN"],
        ]
        c.sendRaw(cases.map(([, line]) => line).join(""))
        for (const [token, , status, code] of cases) {
            const r = await c.response(token)
            assert.ok(r.raw.startsWith(`{"t":"${token}","s":${status},`), r.raw)
            assert.equal(r.response!.body.code, code, token)
            if (token === "badvalue") assert.match(r.response!.body.errors, /^datastreams\[1\]\.current_value must be/)
        }
        // all or nothing: the valid first datastream of a refused write is not stored
        assert.equal(await current("r1"), 404)
        assert.equal(await current("r2"), 404)
    } finally {
        c.close()
    }
    // a key that may write every feed learns that one does not exist (a scoped key is refused first: 403 above)
    const m = await TlsClient.open(s, master)
    try {
        m.sendRaw(putLine("missing", [{ id: "r1", current_value: "1" }], "/feeds/999999"))
        const r = await m.response("missing")
        assert.ok(r.raw.startsWith('{"t":"missing","s":404,'), r.raw)
        assert.equal(r.response!.body.code, "E_NOT_FOUND")
    } finally {
        m.close()
    }
})

test('a datastream\'s value sent as "value" or "currentValue" is 422 E_MISNAMED_VALUE naming current_value; nothing is created or stored, on every write route', async () => {
    const c = await TlsClient.open(s, key)
    try {
        const cases: [string, string][] = [
            ["misnamed-value", putLine("misnamed-value", [{ id: "mv1", current_value: "1" }, { id: "mv2", value: "21.5" }])],
            ["misnamed-camel", putLine("misnamed-camel", [{ id: "mv3", currentValue: 7 }])],
            // PUT of one datastream: the same body rule
            ["misnamed-one", JSON.stringify({ m: "put", r: `/feeds/${feed}/datastreams/mv4`, b: { value: "3" }, t: "misnamed-one" }) + "\n"],
        ]
        c.sendRaw(cases.map(([, line]) => line).join(""))
        for (const [token] of cases) {
            const r = await c.response(token)
            assert.ok(r.raw.startsWith(`{"t":"${token}","s":422,`), r.raw)
            assert.equal(r.response!.body.code, "E_MISNAMED_VALUE", token)
            assert.match(r.response!.body.errors, /"current_value"/, token)
            if (token === "misnamed-value") assert.match(r.response!.body.errors, /^datastreams\[1\]\.value: /)
        }
    } finally {
        c.close()
    }
    // over HTTP too; and nothing was created (before: 200, the datastream made, its value dropped)
    const h = await http(s, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [{ id: "mv5", value: "1" }] } })
    assert.deepEqual([h.status, h.body.code], [422, "E_MISNAMED_VALUE"])
    for (const id of ["mv1", "mv2", "mv3", "mv4", "mv5"]) assert.equal(await current(id), 404, id)
    // a datapoint's "value" is its right name
    const ok = await http(s, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [{ id: "mv6", datapoints: [{ value: "4" }] }] } })
    assert.equal(ok.status, 200, JSON.stringify(ok.body))
    assert.equal(await current("mv6"), "4")
})
