// GET /session: what the server knows about this connection. GET /sessions: the open connections the
// key may know about (a master key: all; a key with read: those of keys scoped to feeds it reads), on
// every process of the store (the session directory: bus/bus.ts).
import type { Grant } from "../auth/grant.ts"
import type { SessionEntry } from "../bus/bus.ts"
import { forbidden } from "../errors.ts"
import type { Connection, Ctx, Routes } from "../context.ts"
import type { Hub } from "../hub/index.ts"
import { SESSIONS_PAGE_BYTES } from "../limits.ts"
import { isoOf } from "../time.ts"
import { pageParam } from "./datapoints.ts"

/**
 * A connection of this process as the session directory holds it. Its subscriptions are listed when read
 * (GET /sessions shows them for the connections the asker may see; announcing them to other processes
 * serialises them): listing every connection's for every GET /sessions cost a key that may see none of them
 * 15-40 ms of the event loop per request with 500 connections of 64 subscriptions each.
 */
export function sessionEntryOf(conn: Connection, hub: Pick<Hub, "subscriptionsOf">, processId: string): SessionEntry {
    return {
        id: conn.id,
        process: processId,
        transport: conn.transport,
        remoteAddress: conn.remoteAddress,
        connectedMs: conn.connectedMs,
        requests: conn.requests,
        pushes: conn.pushes,
        grant: conn.grant,
        get subscriptions() {
            return hub.subscriptionsOf(conn).map((s) => ({ resource: s.resource, token: s.token, state: s.state }))
        },
    }
}

/** One connection as /session and /sessions show it; `feeds` are those of its key the asker may see. */
function describeEntry(ctx: Ctx, e: SessionEntry, grant: Grant | undefined, feeds: number[] | "*") {
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

async function read(ctx: Ctx) {
    const conn = ctx.caller.connection
    if (!conn) return { status: 200, body: { transport: ctx.caller.transport, remote_address: ctx.caller.remoteAddress, key_id: ctx.grant.keyId } }
    const entry = sessionEntryOf(conn, ctx.deps.hub, ctx.deps.processId)
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

/** GET /sessions?page=N: pages of whole entries, each at most SESSIONS_PAGE_BYTES of JSON. */
async function list(ctx: Ctx) {
    if (!ctx.grant.permissions.includes("read")) throw forbidden('listing sessions needs a key with "read"')
    const wanted = pageParam(ctx.params)
    const sessions: unknown[] = []
    let total = 0
    let page = 1
    let bytes = 0
    for (const entry of await ctx.deps.sessions.list()) {
        // a revoked key or an expired token no longer vouches for its connection
        const owner = entry.grant && ctx.deps.keys.stillValid(entry.grant) ? entry.grant : undefined
        const feeds = sharedFeeds(ctx.grant, owner)
        if (feeds === undefined) continue
        total++
        if (page > wanted) continue
        const described = describeEntry(ctx, entry, owner, feeds)
        const size = JSON.stringify(described).length + 1
        if (bytes > 0 && bytes + size > SESSIONS_PAGE_BYTES) {
            page++
            bytes = 0
        }
        bytes += size
        if (page === wanted) sessions.push(described)
    }
    return { status: 200, body: { totalResults: total, page: wanted, sessions } }
}

export const sessionRoutes: Routes = { get: read }
export const sessionsRoutes: Routes = { get: list }
