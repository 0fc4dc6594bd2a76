// [P§8] subscribe (with `since` replay, `limit` and `timeout`) and unsubscribe (by token, by resource, or
// all): the requests are read and checked here; the hub (hub/index.ts) owns the subscriptions themselves.
import { ApiError, notAllowed, notFound, unprocessable } from "../errors.ts"
import { MAX_REPLAY_POINTS } from "../limits.ts"
import { requireFeed, type Connection, type Ctx, type Result } from "../context.ts"
import { parseTime } from "../time.ts"
import { datastreamIdOf } from "./body.ts"
import { intParam } from "./datapoints.ts"

/** A subscription's `timeout` may be at most a day; longer: resubscribe. */
export const MAX_SUBSCRIPTION_TIMEOUT_MS = 86_400_000

function connectionOf(ctx: Ctx): Connection {
    const conn = ctx.caller.connection
    if (!conn) throw notAllowed("subscriptions need a connection: use the device port (TLS) or WebSocket /ws")
    return conn
}

export async function subscribe(ctx: Ctx): Promise<Result> {
    const conn = connectionOf(ctx)
    requireFeed(ctx, "read")
    const token = ctx.req.token
    if (token === undefined || token === "") throw new ApiError(400, "E_BAD_TOKEN", 'subscribe needs a "token": every push carries it, and it names the subscription')
    const stream = ctx.path.ds === undefined ? undefined : datastreamIdOf(ctx.path.ds, "the datastream id")
    let sinceMs: number | undefined
    if (ctx.params.since !== undefined) {
        sinceMs = parseTime(ctx.params.since)
        if (sinceMs === undefined) throw unprocessable("E_BAD_PARAM", "since must be an `at` as the server wrote it (ISO-8601) or ms since the epoch")
    }
    // [P§8] both: `"after":"latest"` (a first subscribe that wants history from a time, then pushes with `seq`), or
    // the `next_after` a cut replay by `since` gave (the rest of that replay, up to that cursor)
    const afterSeq = afterParam(ctx.params.after)
    // [P§8] the most datapoints one replay may send: a device sizes it by its memory
    const limit = intParam(ctx.params, "limit", 1, MAX_REPLAY_POINTS, MAX_REPLAY_POINTS, "E_BAD_PARAM", "the rest follows on resubscribing with next_since")!
    let timeoutMs: number | undefined
    if (ctx.params.timeout !== undefined) {
        timeoutMs = Number(ctx.params.timeout)
        if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_SUBSCRIPTION_TIMEOUT_MS) {
            throw unprocessable("E_BAD_PARAM", `timeout must be ms between 1 and ${MAX_SUBSCRIPTION_TIMEOUT_MS}`)
        }
    }
    const { grant, feed, deps } = ctx
    const subscribed = await deps.hub.subscribe(conn, {
        token,
        resource: ctx.resource,
        feed,
        stream,
        refusal: () => {
            const reason = deps.keys.refusal(grant, "read", feed)
            if (reason === undefined) return undefined
            const expired = grant.expiresMs !== undefined && grant.expiresMs <= deps.now()
            return expired ? { status: 401, code: "E_TOKEN_EXPIRED", reason: `${reason}: get a new one (POST /jwt) and subscribe again with after (the seq of the last push handled), or since` } : { status: 403, code: "E_FORBIDDEN", reason }
        },
        expiresInMs: grant.expiresMs === undefined ? undefined : () => grant.expiresMs! - deps.now(),
        sinceMs,
        afterSeq,
        withSeq: afterSeq !== undefined,
        limit,
        timeoutMs,
    })
    // [P§8] a retention_gap, by `since` or `after`, is the hub's: read with the replay (hub/replay.ts RetentionGap)
    return { status: 200, body: subscribed.body, after: subscribed.start }
}

/**
 * [P§8] `params.after`: the `seq` of the last push handled (a number, or its digits), or "latest" (no replay,
 * only the cursor); undefined when absent.
 */
function afterParam(v: unknown): number | "latest" | undefined {
    if (v === undefined || v === "latest") return v
    const n = typeof v === "number" ? v : typeof v === "string" && /^\d{1,16}$/.test(v) ? Number(v) : NaN
    if (!Number.isSafeInteger(n) || n < 0) throw unprocessable("E_BAD_PARAM", 'after must be the "seq" of the last push handled (an integer, 0 or more) or "latest"')
    return n
}

/**
 * [P§8] `params.token`: the subscription of that token (on `resource`, when one is given). A number names the
 * token it prints as: a client counting its tokens (`"token":5`, Xively's "incrementing counter") subscribed
 * with 5, echoed "5", and was refused 422 when it unsubscribed with the same 5.
 */
function tokenParam(ctx: Ctx): string | undefined {
    const t = ctx.params.token
    if (t === undefined) return undefined
    if (typeof t === "number") return String(t)
    if (typeof t !== "string" || t === "") throw unprocessable("E_BAD_PARAM", 'params.token names a subscription by its subscribe token, as its answer echoed it, e.g. {"token":"s1"}')
    return t
}

/** unsubscribe with a resource: all of its subscriptions to it, or the one `params.token` names. */
export async function unsubscribe(ctx: Ctx): Promise<Result> {
    const conn = connectionOf(ctx)
    const token = tokenParam(ctx)
    const removed = ctx.deps.hub.unsubscribe(conn, { resource: ctx.resource, token })
    if (removed === 0) {
        throw notFound(token === undefined ? `this connection has no subscription to ${ctx.resource}` : `this connection has no subscription ${token} to ${ctx.resource}`)
    }
    return { status: 200, body: { removed } }
}

/** unsubscribe without a resource: the one `params.token` names, or every subscription of the connection. */
export async function unsubscribeAll(ctx: Ctx): Promise<Result> {
    const conn = connectionOf(ctx)
    const token = tokenParam(ctx)
    const removed = ctx.deps.hub.unsubscribe(conn, { token })
    if (token !== undefined && removed === 0) throw notFound(`this connection has no subscription ${token}`)
    return { status: 200, body: { removed } }
}
