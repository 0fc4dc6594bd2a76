// /feeds/:feed/datastreams and /feeds/:feed/datastreams/:ds [P§5].
import { notFound } from "../errors.ts"
import { requireFeed, type Ctx, type Routes } from "../context.ts"
import { datastreamDeletionEvent } from "../hub/index.ts"
import { datastreamIdOf, isObject, objectBody, pointsOfDatastream, pointsOfDatastreams } from "./body.ts"
import { hasHistoryParams, historyOf, noSuchDatastream } from "./datapoints.ts"
import { datastreamJson } from "./shapes.ts"
import { admitWrite, beginStructureChange, cancelOnError, requireFeedExists, writeAndPublish } from "./write.ts"

async function list(ctx: Ctx) {
    requireFeed(ctx, "read")
    await requireFeedExists(ctx)
    return { status: 200, body: { datastreams: (await ctx.deps.store.listDatastreams(ctx.feed)).map(datastreamJson) } }
}

/** POST {"datastreams":[{"id":"temp","current_value":"1"}]} or one {"id":"temp"} */
async function create(ctx: Ctx) {
    requireFeed(ctx, "create")
    const body = objectBody(ctx.req.body, '{"datastreams":[{"id":"temp"}]}')
    const { points, ids } = pointsOfDatastreams(isObject(body) && body.datastreams === undefined ? [body] : body.datastreams, ctx.deps.now())
    await requireFeedExists(ctx)
    await beginStructureChange(ctx)
    await ctx.deps.feedStreams.admit(ctx.feed, ids)
    const admitted = admitWrite(ctx, points)
    const created = await cancelOnError(admitted, () => ctx.deps.store.createDatastreams(ctx.feed, ids))
    await writeAndPublish(ctx, points, admitted)
    return { status: 201, body: { created } }
}

async function read(ctx: Ctx) {
    requireFeed(ctx, "read")
    await requireFeedExists(ctx)
    const id = datastreamIdOf(ctx.path.ds, "the datastream id")
    const ds = await ctx.deps.store.getDatastream(ctx.feed, id)
    if (!ds) throw noSuchDatastream(ctx.feed, id)
    const body: Record<string, unknown> = datastreamJson(ds)
    if (hasHistoryParams(ctx.params)) body.datapoints = await historyOf(ctx, id)
    return { status: 200, body }
}

/** PUT {"current_value":"1","at":…} or {"datapoints":[…]}; creates the datastream on first write */
async function update(ctx: Ctx) {
    requireFeed(ctx, "update")
    const id = datastreamIdOf(ctx.path.ds, "the datastream id")
    const body = objectBody(ctx.req.body, '{"current_value":"21.5"}')
    const points = pointsOfDatastream(body, id, "body", ctx.deps.now())
    await requireFeedExists(ctx)
    // without a value it is made empty: a change of the feed's structure (with one, the points write makes it)
    if (points.length === 0) await beginStructureChange(ctx)
    await ctx.deps.feedStreams.admit(ctx.feed, [id])
    if (points.length === 0) await ctx.deps.store.createDatastreams(ctx.feed, [id])
    await writeAndPublish(ctx, points)
    return { status: 200 }
}

async function remove(ctx: Ctx) {
    requireFeed(ctx, "delete")
    const id = datastreamIdOf(ctx.path.ds, "the datastream id")
    await requireFeedExists(ctx)
    await beginStructureChange(ctx)
    const deletion = await ctx.deps.store.deleteDatastream(ctx.feed, id)
    if (!deletion) throw notFound(`feed ${ctx.feed} has no datastream "${id}"`)
    ctx.deps.feedStreams.forget(ctx.feed, id)
    // [P§8] in its feed's chain where the store gives it a seq (PostgreSQL), as datapoints are; else in none (Infinity)
    ctx.deps.hub.publish([datastreamDeletionEvent(ctx.feed, id, deletion)])
    return { status: 200 }
}

export const datastreamsRoutes: Routes = { get: list, post: create }
export const datastreamRoutes: Routes = { get: read, put: update, delete: remove }
