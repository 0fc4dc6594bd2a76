// The write path shared by every handler that stores datapoints: admission, commit, count, then publish
// to the hub. A write to a feed that owes too many pushes is refused before anything is stored (429
// E_FANOUT_BUSY, hub/fanout.ts). The response is sent after the commit [P§9]; fan-out happens after, off
// the request's path.
import type { PendingWrite } from "../hub/index.ts"
import type { Ctx } from "../context.ts"
import { ApiError, notFound } from "../errors.ts"
import { Later, listenTo, type Settles } from "../later.ts"
import type { Take } from "../ratelimit.ts"
import type { PointInput } from "../storage/store.ts"
import { keysChanged, type StoredPoint } from "../storage/store.ts"
import { newestStampOf } from "../stamp-lead.ts"

/**
 * Admits a write of `points` to the feed, or throws 429 E_FANOUT_BUSY. Handlers that change something
 * else before they write the points (a title, new datastreams) admit first, so a refused write changes nothing.
 */
export function admitWrite(ctx: Ctx, points: PointInput[]): PendingWrite {
    return ctx.deps.hub.admit(ctx.feed, points)
}

/**
 * Points without `at` are stamped by the store, with the server's clock [P§9]. Not async itself: a Later
 * that the store's answer settles, after what follows a commit (or a failure), with no promise step between
 * the commit and whoever listens (the router, on the hot path: later.ts); awaited, it is a promise.
 */
export function writeAndPublish(ctx: Ctx, points: PointInput[], admitted?: PendingWrite): Later<StoredPoint[]>
/** …resolving to `result` instead of the stored points. */
export function writeAndPublish<T>(ctx: Ctx, points: PointInput[], admitted: PendingWrite, result: T): Later<T>
export function writeAndPublish(ctx: Ctx, points: PointInput[], admitted: PendingWrite = admitWrite(ctx, points), result?: unknown): Later<unknown> {
    const answer = new Later<unknown>()
    if (points.length === 0) {
        admitted.cancel()
        answer.resolve(result ?? [])
        return answer
    }
    const committed = new AfterCommit(ctx, points, admitted, result, answer)
    let writing: Promise<StoredPoint[]> | undefined
    try {
        writing = ctx.deps.store.writePoints(ctx.feed, points, ctx.deps.now(), ctx.keysAsOf, committed)
    } catch (e) {
        admitted.cancel()
        throw e
    }
    // a store that cannot tell `committed` itself (PostgreSQL, a wrapped store) gave its promise
    if (writing !== undefined) listenTo(writing, committed)
    return answer
}

/** What follows a points write's commit, or its failure, told by the store; then `answer` is settled. */
class AfterCommit implements Settles<StoredPoint[]> {
    constructor(
        private readonly ctx: Ctx,
        private readonly points: PointInput[],
        private readonly admitted: PendingWrite,
        private readonly result: unknown,
        private readonly answer: Later<unknown>,
    ) {}

    resolve(stored: StoredPoint[]): void {
        const { ctx } = this
        try {
            ctx.deps.metrics.datapointsWritten.add(stored.length)
            const stampMs = newestStampOf(this.points, stored)
            if (stampMs !== undefined) ctx.deps.stampLead.observe(ctx.feed, stampMs, ctx.deps.now())
            this.admitted.publishPoints(stored)
        } catch (e) {
            return this.answer.reject(e)
        }
        this.answer.resolve(this.result ?? stored)
    }

    reject(e: unknown): void {
        try {
            this.admitted.cancel()
        } catch (err) {
            return this.answer.reject(err)
        }
        this.answer.reject(e)
    }
}

/**
 * Before a points write's handler changes anything besides the points: when its key was checked without
 * a look at other processes' changes (Ctx.keysAsOf), the store's commit could not vouch for that change,
 * so the router checks the key in full and runs the request again ("keys-changed": nothing done yet).
 */
export function requireKeysLooked(ctx: Ctx): void {
    if (ctx.keysAsOf !== undefined) throw keysChanged()
}

/**
 * Before a handler changes a feed's structure (makes or deletes a feed or datastreams, renames a feed,
 * deletes a range of points): the key's budget for such changes (limits.ts STRUCTURE_RATE_PER_SECOND), or
 * 429 E_STRUCTURE_RATE_LIMITED with nothing done; and, after a key check without a look, the full check
 * (requireKeysLooked) first, so a request run again spends once. undefined when decided at once (a master
 * key, or the budget in this process's memory); a promise when the budget is kept in Redis.
 */
export function beginStructureChange(ctx: Ctx): void | Promise<void> {
    requireKeysLooked(ctx)
    if (ctx.grant.master) return
    // named apart from the per-key request budget it may share a store with (key ids are hex)
    const taken = ctx.deps.structureRate.take(`structure:${ctx.grant.keyId}`, ctx.deps.elapsedMs())
    if (taken instanceof Promise) return taken.then((t) => refuseOverBudget(ctx, t))
    refuseOverBudget(ctx, taken)
}

function refuseOverBudget(ctx: Ctx, taken: Take): void {
    if (taken.ok) return
    const { ratePerSecond } = ctx.deps.structureRate.config
    throw new ApiError(
        429,
        "E_STRUCTURE_RATE_LIMITED",
        `key ${ctx.grant.keyId} is over its ${ratePerSecond} changes per second to feeds and datastreams (making or deleting feeds and datastreams, renaming a feed, deleting points), over all its connections; writing points is not held to it. Nothing was done; send it again after retry_after_ms`,
        taken.retryAfterMs,
    )
}

/** Runs `change` (what a write does besides its points) and cancels the admission when it fails. */
export async function cancelOnError<T>(admitted: PendingWrite, change: () => Promise<T>): Promise<T> {
    try {
        return await change()
    } catch (e) {
        admitted.cancel()
        throw e
    }
}

/** 404 unless the feed exists; call after the permission check so a scoped key learns nothing [P§7]. */
export async function requireFeedExists(ctx: Ctx): Promise<void> {
    requireFound(ctx, await ctx.deps.store.feedExists(ctx.feed))
}

/** requireFeedExists with the store's answer at hand (the hot path awaits the store itself: one promise less). */
export function requireFound(ctx: Ctx, feedExists: boolean): void {
    if (!feedExists) throw notFound(`feed ${ctx.feed} does not exist`)
}
