// The write path shared by every handler that stores datapoints: commit, count, then publish to the hub.
// The response is sent after the commit [P§9]; fan-out happens after, off the request's path.
import type { ChangeEvent } from "../hub.ts"
import type { Ctx } from "../context.ts"
import { notFound } from "../errors.ts"
import type { BodyPoint } from "../stamps.ts"
import type { StoredPoint } from "../storage/store.ts"

/** Points without `at` are stamped here, right before the write is queued [P§9]. */
export async function writeAndPublish(ctx: Ctx, points: BodyPoint[]): Promise<StoredPoint[]> {
    if (points.length === 0) return []
    const stored = await ctx.deps.store.writePoints(ctx.feed, ctx.deps.stamps.stamp(ctx.feed, points, ctx.deps.now()))
    ctx.deps.metrics.datapoints.add({}, stored.length)
    ctx.deps.hub.publish(stored.map((p): ChangeEvent => ({ feed: ctx.feed, seq: p.seq, stream: p.stream, atMs: p.atMs, value: p.value })))
    return stored
}

/** 404 unless the feed exists; call after the permission check so a scoped key learns nothing [P§7]. */
export async function requireFeedExists(ctx: Ctx): Promise<void> {
    if (!(await ctx.deps.store.feedExists(ctx.feed))) throw notFound(`feed ${ctx.feed} does not exist`)
}
