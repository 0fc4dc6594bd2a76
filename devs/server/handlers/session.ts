// GET /session: what the server knows about this connection.
import type { Ctx, Routes } from "../context.ts"
import { isoOf } from "../time.ts"

async function read(ctx: Ctx) {
    const conn = ctx.caller.connection
    if (!conn) return { status: 200, body: { transport: ctx.caller.transport, remote_address: ctx.caller.remoteAddress, key_id: ctx.grant.keyId } }
    return {
        status: 200,
        body: {
            id: conn.id,
            transport: conn.transport,
            remote_address: conn.remoteAddress,
            since: isoOf(conn.connectedMs),
            key_id: ctx.grant.keyId,
            requests: conn.requests,
            pushes: conn.pushes,
            subscriptions: [...conn.subscriptions.values()].map((s) => ({ resource: s.resource, token: s.token, state: s.state })),
        },
    }
}

export const sessionRoutes: Routes = { get: read }
