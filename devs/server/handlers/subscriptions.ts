// [P§8] subscribe (with `since` replay and `timeout`), unsubscribe, unsubscribe-all.
// The subscription is registered before the replay is read and buffers live changes until the
// replay is sent; changes the replay already holds (seq <= its high-water mark) are not sent again.
import { ApiError, notAllowed, notFound, unprocessable } from "../errors.ts"
import { pushLine, Subscription, type ChangeEvent } from "../hub.ts"
import { MAX_REPLAY_POINTS, MAX_SUBSCRIPTIONS_PER_CONNECTION } from "../limits.ts"
import { requireFeed, type Connection, type Ctx, type Result, type RouterDeps } from "../context.ts"
import type { StoredPoint } from "../storage/store.ts"
import { isoOf, parseTime } from "../time.ts"
import { datastreamIdOf } from "./body.ts"
import { intParam } from "./datapoints.ts"
import { requireFeedExists } from "./write.ts"

/** A subscription's `timeout` may be at most a day; longer: resubscribe. */
export const MAX_SUBSCRIPTION_TIMEOUT_MS = 86_400_000

function connectionOf(ctx: Ctx): Connection {
    const conn = ctx.caller.connection
    if (!conn) throw notAllowed("subscriptions need a connection: use the device port (TLS) or WebSocket /ws")
    return conn
}

export function endSubscription(deps: Pick<RouterDeps, "hub" | "metrics">, conn: Connection, sub: Subscription): void {
    deps.hub.remove(sub)
    if (conn.subscriptions.get(sub.resource) === sub) conn.subscriptions.delete(sub.resource)
    deps.metrics.subscriptions.set({}, deps.hub.size)
}

function pointEvent(feed: number, p: StoredPoint): ChangeEvent {
    return { feed, seq: p.seq, stream: p.stream, atMs: p.atMs, value: p.value }
}

/**
 * What of a replay to send: at most `limit` points (`points` holds one more, to tell whether there are
 * more), cut before the last `at` it reaches, so that resubscribing with since = next_since misses nothing
 * even when several datastreams share that `at`. When the first `at` alone holds more than `limit`
 * points, all of them go (a cut inside it would lose the rest); undefined when `points` does not reach
 * past that `at`: read further.
 */
export function cutReplay(points: StoredPoint[], limit: number): { points: StoredPoint[]; truncated: boolean } | undefined {
    if (points.length <= limit) return { points, truncated: false }
    let end = limit
    const firstLeftOut = points[end].atMs
    while (end > 0 && points[end - 1].atMs === firstLeftOut) end--
    if (end === 0) {
        end = points.findIndex((p) => p.atMs !== firstLeftOut)
        if (end < 0) return undefined
    }
    return { points: points.slice(0, end), truncated: true }
}

/** The replay after `sinceMs`, cut to `limit` as cutReplay says; the store read from decides the high-water mark. */
async function readReplay(ctx: Ctx, stream: string | undefined, sinceMs: number, limit: number) {
    const first = await ctx.deps.store.replay(ctx.feed, stream, sinceMs, limit + 1)
    const cut = cutReplay(first.points, limit)
    if (cut) return { ...cut, highWaterSeq: first.highWaterSeq }
    // more than `limit` points share the first `at`: send them all, as far as one full replay reaches
    const wide = await ctx.deps.store.replay(ctx.feed, stream, sinceMs, MAX_REPLAY_POINTS + 1)
    // (more than MAX_REPLAY_POINTS datastreams written at one `at`: that `at` is cut, the rest is lost)
    const wideCut = cutReplay(wide.points, limit) ?? { points: wide.points.slice(0, MAX_REPLAY_POINTS), truncated: true }
    return { ...wideCut, highWaterSeq: wide.highWaterSeq }
}

export async function subscribe(ctx: Ctx): Promise<Result> {
    const conn = connectionOf(ctx)
    requireFeed(ctx, "read")
    const token = ctx.req.token
    if (token === undefined || token === "") throw new ApiError(400, "E_BAD_TOKEN", 'subscribe needs a "token": every push carries it')
    const stream = ctx.path.ds === undefined ? undefined : datastreamIdOf(ctx.path.ds, "the datastream id")
    let sinceMs: number | undefined
    if (ctx.params.since !== undefined) {
        sinceMs = parseTime(ctx.params.since)
        if (sinceMs === undefined) throw unprocessable("E_BAD_PARAM", "since must be an `at` as the server wrote it (ISO-8601) or ms since the epoch")
    }
    // [P§8] the most datapoints one replay may send: a device sizes it by its memory
    const limit = intParam(ctx.params, "limit", 1, MAX_REPLAY_POINTS, MAX_REPLAY_POINTS, "E_BAD_PARAM", "the rest follows on resubscribing with next_since")!
    let timeoutMs: number | undefined
    if (ctx.params.timeout !== undefined) {
        timeoutMs = Number(ctx.params.timeout)
        if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_SUBSCRIPTION_TIMEOUT_MS) {
            throw unprocessable("E_BAD_PARAM", `timeout must be ms between 1 and ${MAX_SUBSCRIPTION_TIMEOUT_MS}`)
        }
    }
    await requireFeedExists(ctx)
    const old = conn.subscriptions.get(ctx.resource)
    if (!old && conn.subscriptions.size >= MAX_SUBSCRIPTIONS_PER_CONNECTION) {
        throw unprocessable("E_TOO_MANY_SUBSCRIPTIONS", `a connection may hold ${MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions; subscribe to a whole feed instead`)
    }
    if (old) endSubscription(ctx.deps, conn, old) // [P§8] subscribing again replaces it

    const { grant, feed } = ctx
    const sub = new Subscription(conn.subscriber(), () => ctx.deps.keys.refusal(grant, "read", feed), token, ctx.resource, ctx.feed, stream)
    ctx.deps.hub.add(sub)
    conn.subscriptions.set(ctx.resource, sub)
    ctx.deps.metrics.subscriptions.set({}, ctx.deps.hub.size)
    // the feed may have been deleted since it was checked: its deletion ends only what the hub holds by then
    if (!(await ctx.deps.store.feedExists(ctx.feed))) {
        endSubscription(ctx.deps, conn, sub)
        throw notFound(`feed ${ctx.feed} does not exist`)
    }

    const startTimer = () => {
        if (timeoutMs === undefined) return
        sub.timer = setTimeout(
            () => sub.end(408, "E_SUBSCRIPTION_ENDED", `the subscription's timeout of ${timeoutMs} ms elapsed; subscribe again to go on`),
            timeoutMs,
        )
        sub.timer.unref()
    }

    if (sinceMs === undefined) {
        return { status: 200, after: () => (sub.goLive([], 0), startTimer()) }
    }
    let replay
    try {
        replay = await readReplay(ctx, stream, sinceMs, limit)
    } catch (e) {
        endSubscription(ctx.deps, conn, sub)
        throw e
    }
    const { points, truncated } = replay
    const events = points.map((p) => pointEvent(ctx.feed, p))
    if (truncated) {
        // not live: the client resubscribes with next_since and gets the rest, then live changes
        endSubscription(ctx.deps, conn, sub)
        const nextSince = isoOf(points[points.length - 1].atMs)
        return {
            status: 200,
            body: { replayed: points.length, truncated: true, next_since: nextSince },
            after: () => sub.subscriber.deliver(events.map((ev) => pushLine(token, ev))),
        }
    }
    return { status: 200, after: () => (sub.goLive(events, replay.highWaterSeq), startTimer()) }
}

export async function unsubscribe(ctx: Ctx): Promise<Result> {
    const conn = connectionOf(ctx)
    const sub = conn.subscriptions.get(ctx.resource)
    if (!sub) throw notFound(`this connection has no subscription to ${ctx.resource}`)
    endSubscription(ctx.deps, conn, sub)
    return { status: 200 }
}

export async function unsubscribeAll(ctx: Ctx): Promise<Result> {
    const conn = connectionOf(ctx)
    const subs = [...conn.subscriptions.values()]
    for (const sub of subs) endSubscription(ctx.deps, conn, sub)
    return { status: 200, body: { removed: subs.length } }
}
