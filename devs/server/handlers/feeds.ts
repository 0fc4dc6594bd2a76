// /feeds and /feeds/:feed [P§5]. PUT /feeds/:feed is the devices' hot path: many datastreams at once.
import { ApiError, asApiError, forbidden, isProgrammingError, notFound, unprocessable } from "../errors.ts"
import { visibleFeeds } from "../auth/grant.ts"
import { requireFeed, type Ctx, type Result, type ResultToCome, type Routes } from "../context.ts"
import { objectBody, plainText, pointsOfDatastreams } from "./body.ts"
import { feedJson } from "./shapes.ts"
import { pageOf } from "./pages.ts"
import { MAX_FEED_ID } from "../limits.ts"
import type { PointInput } from "../storage/store.ts"
import { admitWrite, beginStructureChange, requireFound, writeAndPublish } from "./write.ts"

/** One page of GET /feeds; ask for the next with `page`. */
export const FEEDS_PER_PAGE = 1000
/** Feed titles are labels, not documents. */
export const MAX_TITLE_CHARS = 255

function titleOf(v: unknown): string | undefined {
    if (v === undefined) return undefined
    if (typeof v !== "string" || v.length > MAX_TITLE_CHARS) throw unprocessable("E_BAD_VALUE", `title must be a string of at most ${MAX_TITLE_CHARS} characters`)
    return plainText(v, "title")
}

async function list(ctx: Ctx) {
    if (!ctx.grant.master && !ctx.grant.permissions.includes("read")) throw forbidden("this key may not read feeds")
    const { totalResults, page, items } = pageOf(await ctx.deps.store.listFeeds(visibleFeeds(ctx.grant)), ctx.params, FEEDS_PER_PAGE)
    return { status: 200, body: { totalResults, page, results: items.map((f) => feedJson(f)) } }
}

/** POST {"title":"field 7","id":504?,"datastreams":[{"id":"temp"}]?}: master keys, or create on all feeds */
async function create(ctx: Ctx) {
    if (!ctx.grant.master && (ctx.grant.feeds !== undefined || !ctx.grant.permissions.includes("create"))) {
        throw forbidden("only a master key (or one that may create on all feeds) may create feeds")
    }
    const body = ctx.req.body === undefined ? {} : objectBody(ctx.req.body, '{"title":"field station 7"}')
    let id: number | undefined
    if (body.id !== undefined) {
        if (!Number.isSafeInteger(body.id) || body.id < 1 || body.id > MAX_FEED_ID) {
            throw unprocessable("E_BAD_ID", `id must be a whole number from 1 to ${MAX_FEED_ID}, or left out (the server then gives the next free one)`)
        }
        id = body.id
    }
    const ds = body.datastreams === undefined ? { points: [], ids: [] } : pointsOfDatastreams(body.datastreams, ctx.deps.now())
    ctx.deps.feedStreams.admitNewFeed(id, ds.ids) // [P§10] before the feed is made
    await beginStructureChange(ctx)
    const feed = await ctx.deps.store.createFeed({ id, title: titleOf(body.title) })
    try {
        if (ds.ids.length) await ctx.deps.store.createDatastreams(feed.id, ds.ids)
        await writeAndPublish({ ...ctx, feed: feed.id }, ds.points)
    } catch (e) {
        throw isProgrammingError(e) ? e : madeWithoutItsDatastreams(feed.id, asApiError(e))
    }
    return { status: 201, body: { id: feed.id, resource: `/feeds/${feed.id}` } }
}

/**
 * [P§6] A new feed is made by one commit, its datastreams and values by others: when those fail (a disk that
 * fills between them), the refusal says that the feed was made, and how to send the rest. It said "nothing was
 * written, send it again", and a client that did so made a second feed.
 */
function madeWithoutItsDatastreams(feed: number, err: ApiError): ApiError {
    const when = err.retryAfterMs === undefined ? "" : " after retry_after_ms"
    // the store's own reason says "nothing was written, send it again", which is what is not so here
    const why = err.status >= 500 ? "the server's storage failed" : err.message
    return new ApiError(
        err.status,
        err.code,
        `feed ${feed} was made (/feeds/${feed}), but not its datastreams and values (${why}): send them with PUT /feeds/${feed}${when}, not this POST again, which would make another feed`,
        err.retryAfterMs,
    )
}

async function read(ctx: Ctx) {
    requireFeed(ctx, "read")
    const feed = await ctx.deps.store.getFeed(ctx.feed)
    if (!feed) throw notFound(`feed ${ctx.feed} does not exist`)
    return { status: 200, body: feedJson(feed, await ctx.deps.store.listDatastreams(ctx.feed)) }
}

/** PUT {"version":"1.0.0","datastreams":[{"id":"0","current_value":"980"}]}: the hot path */
function update(ctx: Ctx): ResultToCome {
    requireFeed(ctx, "update")
    const body = objectBody(ctx.req.body, '{"version":"1.0.0","datastreams":[{"id":"0","current_value":"980"}]}')
    const title = titleOf(body.title)
    const ds = body.datastreams === undefined ? { points: [], ids: [] } : pointsOfDatastreams(body.datastreams, ctx.deps.now())
    // not async: the store answers from memory at once (no step of its own), else one step after its answer
    const exists = ctx.deps.store.feedExists(ctx.feed)
    if (typeof exists === "boolean") return updateIfFound(ctx, exists, title, ds)
    return exists.then((known) => updateIfFound(ctx, known, title, ds))
}

/** PUT /feeds/F once the store has said whether the feed exists. */
function updateIfFound(ctx: Ctx, exists: boolean, title: string | undefined, ds: { points: PointInput[]; ids: string[] }): ResultToCome {
    requireFound(ctx, exists)
    const withoutValue = idsWithoutValue(ds)
    // a title, or datastreams named without a value, change the feed itself: within the key's budget for
    // that, before anything is counted or written (the hot path, points only, spends none of it)
    const begun = title !== undefined || withoutValue !== undefined ? beginStructureChange(ctx) : undefined
    if (begun) return begun.then(() => updateWithinBound(ctx, title, ds, withoutValue))
    return updateWithinBound(ctx, title, ds, withoutValue)
}

/** PUT /feeds/F: [P§10] its new datastreams within the feed's bound, before anything is written. */
function updateWithinBound(ctx: Ctx, title: string | undefined, ds: { points: PointInput[]; ids: string[] }, withoutValue: string[] | undefined): ResultToCome {
    const counted = ctx.deps.feedStreams.admit(ctx.feed, ds.ids)
    return counted ? counted.then(() => updateExisting(ctx, title, ds, withoutValue)) : updateExisting(ctx, title, ds, withoutValue)
}

/**
 * PUT /feeds/F once the feed is known to exist and its new datastreams fit. [P§6] The points are committed
 * first, then the title and the datastreams named without a value (one commit): a write the store refuses
 * (its data, a storage failure) changes nothing, where the title used to stay changed under an answer that
 * said nothing was written. Only a failure of the second commit after the first leaves a part done, and
 * its answer says which (partlyUpdated).
 */
function updateExisting(ctx: Ctx, title: string | undefined, ds: { points: PointInput[]; ids: string[] }, withoutValue: string[] | undefined): ResultToCome {
    // refused for fan-out (429 E_FANOUT_BUSY): nothing changes
    const admitted = admitWrite(ctx, ds.points)
    if (title === undefined && withoutValue === undefined) return writeAndPublish(ctx, ds.points, admitted, UPDATED)
    return writeAndPublish(ctx, ds.points, admitted).then((stored) =>
        ctx.deps.store.updateFeed(ctx.feed, { title, datastreams: withoutValue }).then(
            () => UPDATED,
            (e: unknown) => {
                throw ds.points.length === 0 || isProgrammingError(e) ? e : partlyUpdated(ctx.feed, ds.points.length, stored.length, title, withoutValue, asApiError(e))
            },
        ),
    )
}

const UPDATED: Result = Object.freeze({ status: 200 })

/**
 * [P§6] A PUT whose points were committed but whose title or empty datastreams then failed to be: the store's
 * reason ("nothing was written, send it again") is not so, and sending the points again would store stamped
 * ones twice. 503 E_PARTLY_WRITTEN (or the refusal's own 4xx) saying what was stored and what to send again.
 */
function partlyUpdated(feed: number, written: number, changed: number, title: string | undefined, withoutValue: string[] | undefined, err: ApiError): ApiError {
    const notDone = [title !== undefined ? "the title" : "", withoutValue ? `the datastreams named without a value (${withoutValue.join(", ")})` : ""].filter(Boolean).join(" and ")
    const again = JSON.stringify({ ...(title !== undefined ? { title } : {}), ...(withoutValue ? { datastreams: withoutValue.map((id) => ({ id })) } : {}) })
    const why = err.status >= 500 ? "the server's storage failed" : err.message
    const when = err.retryAfterMs === undefined ? "" : " after retry_after_ms"
    return new ApiError(
        err.status >= 500 ? 503 : err.status,
        err.status >= 500 ? "E_PARTLY_WRITTEN" : err.code,
        `the ${written} datapoints were stored (${changed} of them changed something) and pushed, but not ${notDone} (${why}): send ${again} with PUT /feeds/${feed}${when}, not the datapoints again`,
        err.retryAfterMs,
    )
}

/** The datastreams named without a value (created empty), or undefined when every one has a value (the hot path: no list made). */
function idsWithoutValue(ds: { points: PointInput[]; ids: string[] }): string[] | undefined {
    let without: string[] | undefined
    for (const id of ds.ids) {
        let valued = false
        for (const p of ds.points) if (p.stream === id) {
            valued = true
            break
        }
        if (!valued) (without ??= []).push(id)
    }
    return without
}

/**
 * DELETE: the feed goes with everything under it, and its id is never given out again [P§10]. Its
 * subscriptions end at once with a final push [P§8]; keys scoped to it lose it (those scoped to it alone are
 * revoked). The answer says which keys: {"id","deleted":true,"revoked_keys":[…],"detached_keys":[…]}.
 */
async function remove(ctx: Ctx) {
    requireFeed(ctx, "delete")
    await beginStructureChange(ctx)
    const deletion = await ctx.deps.store.deleteFeed(ctx.feed)
    if (!deletion) throw notFound(`feed ${ctx.feed} does not exist`)
    ctx.deps.hub.endFeed(ctx.feed, deletion.txn)
    ctx.deps.feedStreams.forget(ctx.feed)
    // the keys changed: reload them now, so they count from the next request and what they no longer allow ends
    await ctx.deps.keys.refresh()
    ctx.deps.log.info({ feed: ctx.feed, revokedKeys: deletion.revokedKeys, detachedKeys: deletion.detachedKeys }, "feed deleted")
    return { status: 200, body: { id: ctx.feed, deleted: true, revoked_keys: deletion.revokedKeys, detached_keys: deletion.detachedKeys } }
}

export const feedsRoutes: Routes = { get: list, post: create }
export const feedRoutes: Routes = { get: read, put: update, delete: remove }
