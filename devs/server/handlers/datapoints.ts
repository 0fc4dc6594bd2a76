// /feeds/:feed/datastreams/:ds/datapoints: history (Xively's start/end/duration/interval/limit), write
// many, delete a range [P§5].
import { notFound, unprocessable } from "../errors.ts"
import { DEFAULT_HISTORY_POINTS, MAX_HISTORY_POINTS } from "../limits.ts"
import { requireFeed, type Ctx, type Routes } from "../context.ts"
import type { HistoryQuery } from "../storage/store.ts"
import { parseDuration, parseTime } from "../time.ts"
import { datastreamIdOf, MAX_FUTURE_MS, objectBody, pointsOfDatapoints } from "./body.ts"
import { pointJson } from "./shapes.ts"
import { beginStructureChange, requireFeedExists, writeAndPublish } from "./write.ts"

type Params = Record<string, string | number | boolean>

const HISTORY_PARAMS = ["start", "end", "duration", "interval", "limit", "sort"]

export function hasHistoryParams(params: Params): boolean {
    return HISTORY_PARAMS.some((p) => params[p] !== undefined)
}

function timeParam(params: Params, name: string): number | undefined {
    const v = params[name]
    if (v === undefined) return undefined
    const ms = parseTime(v)
    if (ms === undefined) throw unprocessable("E_BAD_PARAM", `${name} must be ISO-8601 (2026-11-22T05:00:00Z) or ms since the epoch, not "${v}"`)
    return ms
}

/** A whole-number parameter; 422 with a reason (and `overHint`, what to do instead) when it is out of range. */
export function intParam(
    params: Params,
    name: string,
    min: number,
    max: number,
    dflt: number | undefined,
    code: "E_BAD_PARAM" | "E_LIMIT" = "E_BAD_PARAM",
    overHint = "page through longer histories with start"
): number | undefined {
    const v = params[name]
    if (v === undefined) return dflt
    const digits = typeof v === "number" ? undefined : /^0*(\d+)$/.exec(String(v))?.[1]
    // more digits than a double holds exactly is still a whole number, one over any bound (was: "must be a whole number")
    const n = typeof v === "number" ? v : digits === undefined ? NaN : digits.length > 15 ? Infinity : Number(digits)
    if (n !== Infinity && (!Number.isSafeInteger(n) || n < min)) throw unprocessable("E_BAD_PARAM", `${name} must be a whole number of at least ${min}, not "${v}"`)
    if (n > max) throw unprocessable(code, `${name} may be at most ${max}; ${overHint}`)
    return n
}

/** [P§5] `sort`: asc (oldest first) or desc (newest first), as Exosite's `sort`; undefined when not given. */
function sortParam(params: Params): "asc" | "desc" | undefined {
    const v = params.sort
    if (v === undefined) return undefined
    if (v === "asc" || v === "desc") return v
    throw unprocessable("E_BAD_PARAM", `sort must be asc (oldest first) or desc (newest first), not "${v}"`)
}

/**
 * Xively's history parameters as a query. With `sort=asc` the oldest `limit` points of the range, oldest
 * first; with `sort=desc` the newest `limit` points, newest first. Without `sort`: with `start`, as asc;
 * without it, the newest `limit` points of the range returned oldest first. Both ends are inclusive.
 */
export function historyQueryOf(params: Params, nowMs: number): HistoryQuery & { descending: boolean } {
    let start = timeParam(params, "start")
    let end = timeParam(params, "end")
    const durationText = params.duration
    const duration = durationText === undefined ? undefined : parseDuration(durationText)
    if (durationText !== undefined && duration === undefined) {
        throw unprocessable("E_BAD_PARAM", `duration must look like 30seconds, 10minutes, 6hours, 2days or 1weeks, not "${durationText}"`)
    }
    const sort = sortParam(params)
    const newest = sort === undefined ? start === undefined : sort === "desc"
    if (duration !== undefined) {
        if (start !== undefined && end === undefined) end = start + duration
        else if (start === undefined) {
            end ??= nowMs
            start = end - duration
        }
    }
    start ??= 0
    end ??= nowMs + MAX_FUTURE_MS
    if (start > end) throw unprocessable("E_BAD_PARAM", "start must not be after end")
    const interval = intParam(params, "interval", 1, 366 * 86400, undefined)
    const limit = intParam(params, "limit", 1, MAX_HISTORY_POINTS, DEFAULT_HISTORY_POINTS, "E_LIMIT")!
    return { startMs: start, endMs: end, intervalMs: interval === undefined ? undefined : interval * 1000, limit, newest, descending: sort === "desc" }
}

export async function historyOf(ctx: Ctx, stream: string): Promise<Record<string, unknown>[]> {
    const q = historyQueryOf(ctx.params, ctx.deps.now())
    const points = (await ctx.deps.store.history(ctx.feed, stream, q)).map(pointJson) // oldest first
    return q.descending ? points.reverse() : points
}

/** 404 for a datastream the feed does not have (GET on it, or on its history). */
export function noSuchDatastream(feed: number, id: string) {
    return notFound(`feed ${feed} has no datastream "${id}"; it is created by the first write to it`)
}

async function list(ctx: Ctx) {
    requireFeed(ctx, "read")
    await requireFeedExists(ctx)
    const stream = datastreamIdOf(ctx.path.ds, "the datastream id")
    const datapoints = await historyOf(ctx, stream)
    // an empty history of a datastream that does not exist is most often a misspelt id: say so, as GET on
    // the datastream does, rather than "no data" (looked up only when empty: the usual answer costs nothing more)
    if (datapoints.length === 0 && !(await ctx.deps.store.getDatastream(ctx.feed, stream))) throw noSuchDatastream(ctx.feed, stream)
    return { status: 200, body: { id: stream, datapoints } }
}

async function write(ctx: Ctx) {
    // writing datapoints is an update of the datastream: a device key (read + update) may do it
    requireFeed(ctx, "update")
    const stream = datastreamIdOf(ctx.path.ds, "the datastream id")
    const body = objectBody(ctx.req.body, '{"datapoints":[{"at":"2026-11-22T05:00:00Z","value":"21.5"}]}')
    const points = pointsOfDatapoints(stream, body.datapoints, "datapoints", ctx.deps.now())
    await requireFeedExists(ctx)
    if (points.length > 0) await ctx.deps.feedStreams.admit(ctx.feed, [stream])
    const stored = await writeAndPublish(ctx, points)
    return { status: 200, body: { written: points.length, changed: stored.length } }
}

async function remove(ctx: Ctx) {
    requireFeed(ctx, "delete")
    const stream = datastreamIdOf(ctx.path.ds, "the datastream id")
    const p = ctx.params
    if (p.start === undefined && p.end === undefined && p.duration === undefined) {
        throw unprocessable("E_BAD_PARAM", "say which datapoints to delete with start and/or end (or duration); start=0 deletes all")
    }
    const q = historyQueryOf(p, ctx.deps.now())
    await requireFeedExists(ctx)
    await beginStructureChange(ctx)
    const deleted = await ctx.deps.store.deletePoints(ctx.feed, stream, q.startMs, q.endMs)
    return { status: 200, body: { deleted } }
}

export const datapointsRoutes: Routes = { get: list, post: write, delete: remove }
