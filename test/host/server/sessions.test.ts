// GET /sessions: the open connections, through the one router (HTTP /v2/sessions, WebSocket, TLS). A
// master key sees all; a feed-scoped key only connections of keys scoped to feeds it reads, and never a
// secret. Closed connections and revoked keys drop out; big lists come in pages of bounded size.
import assert from "node:assert/strict"
import { before, test } from "node:test"
import { sessionEntryOf, sessionsRoutes, sharedFeeds } from "../../../devs/server/handlers/session.ts"
import { SESSIONS_PAGE_BYTES } from "../../../devs/server/limits.ts"
import { until } from "../harness/until.ts"
import { http, InProcessClient, serverForThisFile, TlsClient, WAIT_MS, WsClient } from "../harness/server-harness.ts"
import type { Grant } from "../../../devs/server/auth/grant.ts"
import { OpenSessions } from "../../../devs/server/open-sessions.ts"

const s = await serverForThisFile()
/** feed 2 and keys on it: read-only, read+update on feeds 1 and 2, and update-only */
let feed2: number
let reader2: string
let both: string
let writer2: string

async function key(body: Record<string, unknown>): Promise<string> {
    const r = await http(s, "POST", "/v2/keys", { key: s.credentials.masterKey, body })
    assert.equal(r.status, 201, JSON.stringify(r.body))
    return r.body.key
}

before(async () => {
    const f = await http(s, "POST", "/v2/feeds", { key: s.credentials.masterKey, body: { title: "field 2" } })
    feed2 = f.body.id
    reader2 = await key({ label: "dashboard 2", permissions: ["read"], feeds: [feed2] })
    both = await key({ label: "gateway", permissions: ["read", "update"], feeds: [1, feed2] })
    writer2 = await key({ label: "writer", permissions: ["update"], feeds: [feed2] })
})

async function sessionIdOf(c: TlsClient | WsClient): Promise<string> {
    return (await c.request({ method: "get", resource: "/session" })).body.id
}

/** Every page of GET /v2/sessions with `key`. */
async function listAll(key: string) {
    const all: any[] = []
    for (let page = 1; ; page++) {
        const r = await http(s, "GET", `/v2/sessions?page=${page}`, { key })
        assert.equal(r.status, 200, JSON.stringify(r.body))
        all.push(...r.body.sessions)
        if (r.body.sessions.length === 0 || all.length >= r.body.totalResults) return all
    }
}

/** Waits until `pred` holds for the master's list (a closed socket is noticed by the server a moment later). */
async function untilSessions(pred: (ids: string[]) => boolean): Promise<void> {
    let ids: string[] = []
    const listed = async () => pred((ids = (await listAll(s.credentials.masterKey)).map((e) => e.id)))
    await until(() => `the sessions to match; now ${ids.join(", ")}`, listed, WAIT_MS, 20)
}

test("sessions: the master key sees every connection with /session's fields, its key's feeds and label, no secret", async () => {
    const device = await TlsClient.open(s, s.credentials.deviceKey)
    const app = await WsClient.open(s)
    await app.welcome()
    assert.equal((await app.request({ method: "subscribe", resource: `/feeds/${feed2}`, headers: { "X-ApiKey": reader2 }, token: "w" })).status, 200)
    const anonymous = await TlsClient.connect(s)
    const anonymousId = (await anonymous.welcome()).welcome!.session
    const [deviceId, appId] = [await sessionIdOf(device), await sessionIdOf(app)]

    const r = await http(s, "GET", "/v2/sessions", { key: s.credentials.masterKey })
    assert.equal(r.status, 200)
    const byId = new Map<string, any>(r.body.sessions.map((e: any) => [e.id, e]))
    const d = byId.get(deviceId)
    assert.ok(d, `the device's session ${deviceId} is listed`)
    assert.deepEqual([d.transport, d.remote_address, d.key_label, d.feeds], ["tls", "127.0.0.1", "device, feed 1", [1]])
    assert.match(d.key_id, /^[0-9a-f]{8}$/)
    assert.ok(Date.parse(d.since) <= Date.now())
    assert.ok(d.requests >= 2)
    assert.deepEqual(d.subscriptions, [])
    const a = byId.get(appId)
    assert.deepEqual([a.transport, a.key_label, a.feeds], ["ws", "dashboard 2", [feed2]])
    assert.deepEqual(a.subscriptions, [{ resource: `/feeds/${feed2}`, token: "w", state: "live" }])
    // a connection that has not shown a key yet is the master's business only
    assert.deepEqual([byId.get(anonymousId).key_id, byId.get(anonymousId).key_label, byId.get(anonymousId).feeds], [null, null, []])
    assert.equal(r.body.totalResults, r.body.sessions.length)
    for (const secret of [s.credentials.masterKey, s.credentials.deviceKey, reader2, both]) assert.ok(!JSON.stringify(r.body).includes(secret))

    // the same router over TLS and WebSocket
    const overTls = await device.request({ method: "get", resource: "/sessions", headers: { "X-ApiKey": s.credentials.masterKey } })
    assert.equal(overTls.status, 200)
    assert.ok(overTls.body.sessions.some((e: any) => e.id === appId))
    const overWs = await app.request({ method: "get", resource: "/sessions.json", headers: { "X-ApiKey": s.credentials.masterKey } })
    assert.ok(overWs.body.sessions.some((e: any) => e.id === deviceId))
    device.close()
    app.close()
    anonymous.close()
})

test("sessions: a feed-scoped key sees only the connections of keys on its feeds, and only those feeds", async () => {
    const device1 = await TlsClient.open(s, s.credentials.deviceKey)
    const gateway = await TlsClient.open(s, both)
    const app = await WsClient.open(s)
    await app.welcome()
    assert.equal((await app.request({ method: "get", resource: "/session", headers: { "X-ApiKey": reader2 } })).status, 200)
    const [device1Id, gatewayId, appId] = [await sessionIdOf(device1), await sessionIdOf(gateway), await sessionIdOf(app)]

    const seen = await listAll(reader2)
    const ids = seen.map((e) => e.id)
    assert.ok(!ids.includes(device1Id), "feed 1's device is not feed 2's business")
    assert.ok(ids.includes(appId), "its own connection")
    const g = seen.find((e) => e.id === gatewayId)
    assert.deepEqual(g.feeds, [feed2], "a key on feeds 1 and 2 shows only the shared feed")
    assert.ok(seen.every((e) => e.key_id !== null && e.key_label !== "master"), "no unauthenticated or master connections")
    // the device key of feed 1 sees its own connection and the gateway's (feed 1 only), not feed 2's reader
    const fromDevice = await device1.request({ method: "get", resource: "/sessions" })
    assert.equal(fromDevice.status, 200)
    const deviceView = new Map<string, any>(fromDevice.body.sessions.map((e: any) => [e.id, e]))
    assert.deepEqual(deviceView.get(gatewayId).feeds, [1])
    assert.ok(!deviceView.has(appId))
    // a key that may not read gets 403
    const writer = await http(s, "GET", "/v2/sessions", { key: writer2 })
    assert.deepEqual([writer.status, writer.body.code], [403, "E_FORBIDDEN"])
    device1.close()
    gateway.close()
    app.close()
})

test("sessions: without a key 401, over HTTP and on a connection", async () => {
    const r = await http(s, "GET", "/v2/sessions")
    assert.deepEqual([r.status, r.body.code], [401, "E_UNAUTHORIZED"])
    const c = await TlsClient.open(s)
    const t = await c.request({ method: "get", resource: "/sessions" })
    assert.deepEqual([t.status, t.body.code], [401, "E_UNAUTHORIZED"])
    assert.equal((await http(s, "GET", "/v2/sessions", { key: "not-a-key-at-all" })).status, 401)
    c.close()
})

test("sessions: a closed connection disappears; a revoked key's connection drops out of scoped lists", async () => {
    const device = await TlsClient.open(s, s.credentials.deviceKey)
    const id = await sessionIdOf(device)
    await untilSessions((ids) => ids.includes(id))
    device.close()
    await untilSessions((ids) => !ids.includes(id))

    const doomed = await key({ label: "doomed", permissions: ["read"], feeds: [feed2] })
    const c = await TlsClient.open(s, doomed)
    const cid = await sessionIdOf(c)
    assert.ok((await listAll(reader2)).some((e) => e.id === cid))
    const keyId = (await listAll(s.credentials.masterKey)).find((e) => e.id === cid).key_id
    assert.equal((await http(s, "DELETE", `/v2/keys/${keyId}`, { key: s.credentials.masterKey })).status, 200)
    assert.ok(!(await listAll(reader2)).some((e) => e.id === cid), "a revoked key no longer vouches for its connection")
    const master = (await listAll(s.credentials.masterKey)).find((e) => e.id === cid)
    assert.deepEqual([master.key_id, master.feeds], [null, []], "the master still sees the connection, now without a key")
    c.close()
})

test("sessions: a big list comes in pages of whole entries, each under SESSIONS_PAGE_BYTES", async () => {
    // 6 connections with 64 long subscriptions each: about 6 × 16 KB of entries
    const clients: TlsClient[] = []
    for (let i = 0; i < 6; i++) {
        const c = await TlsClient.open(s, s.credentials.deviceKey)
        const acks = []
        for (let j = 0; j < 64; j++) {
            const resource = `/feeds/1/datastreams/${"x".repeat(60)}${String(j).padStart(4, "0")}/datapoints`
            acks.push(c.request({ method: "subscribe", resource, token: `${"t".repeat(60)}${j}` }))
        }
        for (const ack of await Promise.all(acks)) assert.equal(ack.status, 200)
        clients.push(c)
    }
    const pages: any[] = []
    for (let page = 1; page < 10; page++) {
        const r = await http(s, "GET", `/v2/sessions?page=${page}`, { key: s.credentials.masterKey })
        assert.ok(JSON.stringify(r.body.sessions).length <= SESSIONS_PAGE_BYTES, `page ${page} is bounded`)
        if (r.body.sessions.length === 0) break
        pages.push(r.body)
    }
    assert.ok(pages.length >= 2, "more than one page")
    const ids = pages.flatMap((p) => p.sessions.map((e: any) => e.id))
    assert.equal(new Set(ids).size, ids.length, "no entry on two pages")
    assert.equal(ids.length, pages[0].totalResults)
    for (const c of clients) c.close()
})

test("sessions: sharedFeeds, the visibility rule", () => {
    const g = (feeds: number[] | undefined, permissions: any[] = ["read"], master = false) => ({ keyId: "k", permissions, feeds, master })
    const master = g(undefined, ["read", "update", "create", "delete"], true)
    assert.deepEqual(sharedFeeds(master, undefined), [])
    assert.equal(sharedFeeds(master, master), "*")
    assert.deepEqual(sharedFeeds(master, g([3])), [3])
    assert.equal(sharedFeeds(g([1]), master), undefined)
    assert.equal(sharedFeeds(g([1]), undefined), undefined)
    assert.equal(sharedFeeds(g([1]), g(undefined)), undefined, "an all-feeds key's connection is not a scoped key's business")
    assert.equal(sharedFeeds(g(undefined), g(undefined)), "*")
    assert.deepEqual(sharedFeeds(g(undefined), g([4, 5])), [4, 5])
    assert.deepEqual(sharedFeeds(g([1, 2]), g([2, 3])), [2])
    assert.equal(sharedFeeds(g([1]), g([2])), undefined)
    assert.equal(sharedFeeds(g([1], ["update"]), g([1])), undefined)
})

test("sessions: a connection's subscriptions are listed when its entry is read, not for every entry of every GET /sessions", () => {
    // red-teamed: a key that may see no connection had every connection's subscriptions listed on each of its
    // GET /sessions (500 connections of 64 subscriptions: ~3.4 ms of CPU per request, ~1.2 ms now)
    let listed = 0
    const hub = {
        subscriptionsOf: () => {
            listed++
            return [{ resource: "/feeds/1", token: "s1", state: "live" }] as never
        },
    }
    const conn = { id: "c1", transport: "tls", remoteAddress: "127.0.0.1", connectedMs: 0, requests: 1, pushes: 0, grant: undefined } as never
    const entry = sessionEntryOf(conn, hub, "p")
    assert.equal(listed, 0)
    assert.deepEqual(entry.subscriptions, [{ resource: "/feeds/1", token: "s1", state: "live" }])
    // announced to other processes as JSON: the subscriptions go with it
    assert.deepEqual(JSON.parse(JSON.stringify(entry)).subscriptions, [{ resource: "/feeds/1", token: "s1", state: "live" }])
    assert.equal(listed, 2)
})

/**
 * GET /sessions through its handler over a directory of `n` made-up connections (a master key asking), counting
 * the entries it describes: paging by `page` describes every entry of the pages before the one asked for, so an
 * operator paging through tens of thousands of connections did quadratic work (20,000 connections: 73 pages,
 * the last ones ~160 ms of the event loop each, 8.3 s in all); `after` (the `next` of the page before) describes
 * only its own page.
 */
function directoryOf(n: number) {
    let described = 0
    const hub = {
        subscriptionsOf: () => {
            described++
            return [] as never
        },
    }
    const grant = { keyId: "k1", permissions: ["read"], feeds: [1], master: false } as const
    // connected in an order other than their ids', some in the same millisecond
    const conns = Array.from({ length: n }, (_, i) => ({ id: `c${String((i * 7919) % n).padStart(6, "0")}`, transport: "tls", remoteAddress: "10.0.0.1", connectedMs: 1_000 + Math.floor(i / 3), requests: i, pushes: 0, grant }))
    const list = async () => conns.map((c) => sessionEntryOf(c as never, hub, "p1"))
    const ctxOf = (params: Record<string, string | number>) =>
        ({
            params,
            grant: { keyId: "m", permissions: ["read", "update", "create", "delete"], master: true },
            deps: { sessions: { list, close: async () => {} }, keys: { stillValid: () => true, labelOf: () => "device" } },
        }) as never
    return {
        conns,
        /** the ids in the order the list promises: by connection time, one millisecond's by id */
        inOrder: () => [...conns].sort((a, b) => a.connectedMs - b.connectedMs || (a.id < b.id ? -1 : 1)).map((c) => c.id),
        described: () => described,
        get: async (params: Record<string, string | number>) => {
            described = 0
            return (await sessionsRoutes.get!(ctxOf(params))).body as any
        },
    }
}

test("sessions: `after` (the `next` of the page before) pages through every connection once, in the order they connected, describing only its own page", async () => {
    const n = 3000
    const d = directoryOf(n)
    const first = await d.get({})
    assert.equal(first.totalResults, n)
    assert.equal(typeof first.next, "string", "the first page says where the next starts")
    const ids: string[] = first.sessions.map((e: any) => e.id)
    let next = first.next
    let pages = 1
    while (next !== undefined && pages < 100) {
        const body = await d.get({ after: next })
        pages++
        assert.equal(body.totalResults, n)
        assert.ok(JSON.stringify(body.sessions).length <= SESSIONS_PAGE_BYTES)
        // its own entries, and the one after them that did not fit
        assert.ok(d.described() <= body.sessions.length + 1, `page ${pages}: described ${d.described()} entries for ${body.sessions.length}`)
        ids.push(...body.sessions.map((e: any) => e.id))
        next = body.next
    }
    assert.ok(pages > 5, `${pages} pages`)
    assert.deepEqual(ids, d.inOrder(), "every connection once, in the order they connected (one millisecond's by id)")
    // `page` still works (the same order), describing the pages before it
    const third = await d.get({ page: 3 })
    assert.ok(d.described() > 2 * third.sessions.length)
    assert.deepEqual(
        third.sessions.map((e: any) => e.id),
        ids.slice(ids.indexOf(third.sessions[0].id), ids.indexOf(third.sessions[0].id) + third.sessions.length),
    )
})

test("sessions: a connection that closes or opens during a walk by `after` neither shifts nor repeats the others", async () => {
    const d = directoryOf(1000)
    const first = await d.get({})
    const last = first.sessions.at(-1).id
    // the page's last connection closes, a new one opens
    d.conns.splice(d.conns.findIndex((c) => c.id === last), 1)
    d.conns.push({ ...d.conns[0], id: "new", connectedMs: 9_999 })
    const seen: string[] = first.sessions.map((e: any) => e.id)
    for (let next = first.next, guard = 0; next !== undefined && guard < 50; guard++) {
        const body = await d.get({ after: next })
        seen.push(...body.sessions.map((e: any) => e.id))
        next = body.next
    }
    assert.equal(new Set(seen).size, seen.length, "none twice")
    assert.deepEqual(seen, [...first.sessions.map((e: any) => e.id), ...d.inOrder().filter((id) => !first.sessions.some((e: any) => e.id === id))])
    assert.equal(seen.at(-1), "new")
    // a cursor is the server's own text; anything else, or with `page` too, is refused
    await assert.rejects(d.get({ after: "yesterday" }), (e: any) => e.code === "E_BAD_PARAM")
    await assert.rejects(d.get({ after: first.next, page: 2 }), (e: any) => e.code === "E_BAD_PARAM")
})

test("sessions: the connections of feed-scoped keys are indexed by feed; a key's grant changing or its connection closing moves it", () => {
    type Conn = { grant?: Grant }
    const open = new OpenSessions<Conn>()
    const grant = (feeds: number[] | undefined, master = false): Grant => ({ keyId: "k", permissions: ["read"], feeds, master })
    const on1 = { grant: grant([1]) }
    const on12: Conn = { grant: grant([1, 2]) }
    const allFeeds = { grant: grant(undefined) }
    const master = { grant: grant(undefined, true) }
    const anonymous: Conn = {}
    for (const c of [on1, on12, allFeeds, master, anonymous]) {
        open.add(c)
        open.regranted(c)
    }
    const seen = (viewer?: Grant) => new Set(open.visibleTo(viewer))
    assert.deepEqual(seen(grant([1])), new Set([on1, on12]))
    assert.deepEqual(seen(grant([2])), new Set([on12]))
    assert.deepEqual(seen(grant([2, 3])), new Set([on12]))
    assert.deepEqual(seen(grant([9])), new Set())
    assert.equal(seen(grant(undefined)).size, 5, "an all-feeds key looks at every connection (the handler decides)")
    assert.equal(seen(grant(undefined, true)).size, 5)
    assert.equal(seen(undefined).size, 5, "announcing to other processes: all")
    // the key of a connection changes: it moves
    on1.grant = grant([2])
    open.regranted(on1)
    assert.deepEqual(seen(grant([1])), new Set([on12]))
    assert.deepEqual(seen(grant([2])), new Set([on12, on1]))
    // closed: gone from the index too, also after its grant was dropped without a word (a revoked key)
    on12.grant = undefined
    open.delete(on12)
    assert.deepEqual(seen(grant([1])), new Set())
    assert.deepEqual(seen(grant([2])), new Set([on1]))
})

test("sessions: a feed-scoped key's list looks at the connections of its feeds' keys, not at every connection of the process", async (t) => {
    const devices = await Promise.all(Array.from({ length: 60 }, () => InProcessClient.open(s, s.credentials.deviceKey)))
    const app = await InProcessClient.open(s, reader2)
    t.after(() => [...devices, app].forEach((c) => c.close()))
    let looked = 0
    const stillValid = s.keys.stillValid
    s.keys.stillValid = (grant) => (looked++, stillValid.call(s.keys, grant))
    t.after(() => (s.keys.stillValid = stillValid))
    const r = await app.request({ method: "get", resource: "/sessions" })
    assert.equal(r.status, 200)
    assert.ok(r.body.sessions.some((e: any) => e.id === app.session.id))
    assert.ok(!r.body.sessions.some((e: any) => devices.some((d) => d.session.id === e.id)), "feed 1's devices are not feed 2's business")
    // the feed-2 connections (its own, and any the other tests left open) are looked at twice (counted, then described); feed 1's 60 not at all
    assert.ok(looked < 2 * 10, `looked at ${looked} connections' keys`)
})

test("GET /v2/session over HTTP answers every field the socket's /session does (was: transport, remote_address and key_id only)", async () => {
    const c = await TlsClient.open(s, both)
    try {
        const onSocket = (await c.request({ method: "get", resource: "/session" })).body
        const before = Date.now()
        const r = await http(s, "GET", "/v2/session", { key: both })
        assert.equal(r.status, 200)
        assert.deepEqual(Object.keys(r.body), Object.keys(onSocket))
        const { since, ...rest } = r.body
        assert.ok(Date.parse(since) >= before - 1000 && Date.parse(since) <= Date.now(), since)
        assert.deepEqual(rest, {
            id: null,
            process: onSocket.process,
            transport: "http",
            remote_address: "127.0.0.1",
            key_id: onSocket.key_id,
            key_label: "gateway",
            feeds: [1, feed2],
            requests: 1,
            pushes: 0,
            subscriptions: [],
        })
    } finally {
        c.close()
    }
})
