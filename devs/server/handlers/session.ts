// GET /session: what the server knows about this connection. GET /sessions: the open connections the
// key may know about (a master key: all; a key with read: those of keys scoped to feeds it reads), on
// every process of the store (the session directory: bus/bus.ts).
import type { Grant } from "../auth/grant.ts"
import type { SessionEntry } from "../bus/bus.ts"
import { forbidden, unprocessable } from "../errors.ts"
import type { Connection, Ctx, Routes } from "../context.ts"
import type { Hub } from "../hub/index.ts"
import { SESSIONS_PAGE_BYTES } from "../limits.ts"
import { isoOf } from "../time.ts"
import { pageParam } from "./pages.ts"

/**
 * A connection of this process as the session directory holds it: its fields read from the connection when
 * read, so one entry serves the connection's whole life (wiring.ts keeps one per connection: a GET /sessions
 * over 20,000 connections made 20,000 entries, and spent more time collecting them than on anything else).
 * Its subscriptions are listed when read (GET /sessions shows them for the connections the asker may see;
 * announcing them to other processes serialises them, toJSON): listing every connection's for every
 * GET /sessions cost a key that may see none of them 15-40 ms of the event loop per request with 500
 * connections of 64 subscriptions each.
 */
class LiveSessionEntry implements SessionEntry {
    constructor(
        private readonly conn: Connection,
        private readonly hub: Pick<Hub, "subscriptionsOf">,
        readonly process: string,
    ) {}
    get id() {
        return this.conn.id
    }
    get transport() {
        return this.conn.transport
    }
    get remoteAddress() {
        return this.conn.remoteAddress
    }
    get connectedMs() {
        return this.conn.connectedMs
    }
    get requests() {
        return this.conn.requests
    }
    get pushes() {
        return this.conn.pushes
    }
    get grant() {
        return this.conn.grant
    }
    get subscriptions() {
        return this.hub.subscriptionsOf(this.conn).map((s) => ({ resource: s.resource, token: s.token, state: s.state }))
    }
    /** as announced to other processes: the fields as they are now */
    toJSON(): SessionEntry {
        const { id, process, transport, remoteAddress, connectedMs, requests, pushes, grant, subscriptions } = this
        return { id, process, transport, remoteAddress, connectedMs, requests, pushes, grant, subscriptions }
    }
}

export function sessionEntryOf(conn: Connection, hub: Pick<Hub, "subscriptionsOf">, processId: string): SessionEntry {
    return new LiveSessionEntry(conn, hub, processId)
}

/** One connection as /session and /sessions show it; `feeds` are those of its key the asker may see. */
function describeEntry(ctx: Ctx, e: Omit<SessionEntry, "id"> & { id: string | null }, grant: Grant | undefined, feeds: number[] | "*") {
    return {
        id: e.id,
        process: e.process,
        transport: e.transport,
        remote_address: e.remoteAddress,
        since: isoOf(e.connectedMs),
        key_id: grant?.keyId ?? null,
        key_label: grant ? (ctx.deps.keys.labelOf(grant.keyId) ?? null) : null,
        feeds,
        requests: e.requests,
        pushes: e.pushes,
        subscriptions: e.subscriptions,
    }
}

/**
 * [P§5] An HTTP request as GET /session shows it: every field a connection has (was: transport, remote_address
 * and key_id only). It is a session of its own: no id (the server keeps no connection to name, /sessions lists
 * none), since its arrival, one request, no pushes or subscriptions.
 */
function requestEntry(ctx: Ctx): Omit<SessionEntry, "id"> & { id: null } {
    const { transport, remoteAddress } = ctx.caller
    return { id: null, process: ctx.deps.processId, transport, remoteAddress, connectedMs: ctx.deps.now(), requests: 1, pushes: 0, grant: ctx.grant, subscriptions: [] }
}

async function read(ctx: Ctx) {
    const conn = ctx.caller.connection
    const entry = conn ? sessionEntryOf(conn, ctx.deps.hub, ctx.deps.processId) : requestEntry(ctx)
    return { status: 200, body: describeEntry(ctx, entry, ctx.grant, ctx.grant.master ? "*" : (ctx.grant.feeds ?? "*")) }
}

/**
 * The feeds of a connection's key that `viewer` may see, or undefined when the connection is not its
 * business. A master key sees every connection (those not yet authenticated with feeds []). Another key
 * sees connections of non-master keys scoped to feeds it reads, and only those shared feeds, so nothing
 * about other feeds leaks; connections of all-feed keys only when it reads all feeds itself.
 */
export function sharedFeeds(viewer: Grant, owner: Grant | undefined): number[] | "*" | undefined {
    if (viewer.master) return owner === undefined ? [] : owner.master ? "*" : (owner.feeds ?? "*")
    if (owner === undefined || owner.master || !viewer.permissions.includes("read")) return undefined
    if (owner.feeds === undefined) return viewer.feeds === undefined ? "*" : undefined
    const shared = viewer.feeds === undefined ? owner.feeds : owner.feeds.filter((f) => viewer.feeds!.includes(f))
    return shared.length ? shared : undefined
}

/** Where a connection stands in the list: by the time it connected, one millisecond's by id. Also the cursor's text. */
interface ListPlace {
    connectedMs: number
    id: string
}

const cursorOf = (e: ListPlace) => `${e.connectedMs}.${e.id}`
const CURSOR = /^(\d{1,16})\.([0-9a-z]{1,16})$/

function cursorParam(params: Ctx["params"]): ListPlace | undefined {
    const v = params.after
    if (v === undefined) return undefined
    const m = typeof v === "string" ? CURSOR.exec(v) : null
    if (!m) throw unprocessable("E_BAD_PARAM", `after must be the "next" of the page before, not ${JSON.stringify(v)}`)
    if (params.page !== undefined) throw unprocessable("E_BAD_PARAM", "give page or after, not both: after (the next of the page before) takes over from page 1")
    return { connectedMs: Number(m[1]), id: m[2] }
}

function comesBefore(a: ListPlace, b: ListPlace): boolean {
    return a.connectedMs < b.connectedMs || (a.connectedMs === b.connectedMs && a.id < b.id)
}

/**
 * GET /sessions: pages of whole entries, each at most SESSIONS_PAGE_BYTES of JSON, in the order the
 * connections opened. `after` (a page's `next`) starts where that page ended and describes only its own
 * entries; `page=N` (the older way) describes every entry of the pages before it, which made paging through
 * tens of thousands of connections quadratic (docs/OPERATIONS.md has the figures). A connection that closes
 * or opens during a walk by `after` shifts no other; the count is of every entry the key may see.
 */
async function list(ctx: Ctx) {
    if (!ctx.grant.permissions.includes("read")) throw forbidden('listing sessions needs a key with "read"')
    const after = cursorParam(ctx.params)
    const wanted = after === undefined ? pageParam(ctx.params) : 1
    // a revoked key or an expired token no longer vouches for its connection
    const ownerOf = (entry: SessionEntry) => (entry.grant && ctx.deps.keys.stillValid(entry.grant) ? entry.grant : undefined)
    // the entries the key may see, from the cursor on: only these are sorted, and only a page is described
    const visible: SessionEntry[] = []
    let total = 0
    for (const entry of await ctx.deps.sessions.list(ctx.grant)) {
        if (sharedFeeds(ctx.grant, ownerOf(entry)) === undefined) continue
        total++
        if (after === undefined || comesBefore(after, entry)) visible.push(entry)
    }
    // one process's entries come in the order they opened: already sorted, which the sort finds in one pass
    visible.sort((a, b) => (comesBefore(a, b) ? -1 : comesBefore(b, a) ? 1 : 0))
    const sessions: unknown[] = []
    let page = 1
    let bytes = 0
    let i = 0
    for (; i < visible.length; ++i) {
        const entry = visible[i]
        const owner = ownerOf(entry)
        const described = describeEntry(ctx, entry, owner, sharedFeeds(ctx.grant, owner)!)
        const size = JSON.stringify(described).length + 1
        if (bytes > 0 && bytes + size > SESSIONS_PAGE_BYTES) {
            if (page === wanted) break
            page++
            bytes = 0
        }
        bytes += size
        if (page === wanted) sessions.push(described)
    }
    const next = i < visible.length && sessions.length > 0 ? cursorOf(visible[i - 1]) : undefined
    return { status: 200, body: { totalResults: total, page: after === undefined ? wanted : undefined, sessions, next } }
}

export const sessionRoutes: Routes = { get: read }
export const sessionsRoutes: Routes = { get: list }
