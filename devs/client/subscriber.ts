// A subscription that outlives its connection: on any loss it reconnects with backoff and subscribes
// again with `after` = the `seq` of the last push (or acknowledgement) it handled, so the server replays
// what was written meanwhile in commit order, backfills (points a device sent late, with an older `at`)
// included, and nothing is delivered twice [P§8]. A first replay from a time (`since`, with
// `"after":"latest"` for the seq cursor) is resumed by `at` until its pushes are handled: one ms before the
// last `at`, dropping what it handled at that `at` (stamp-overlap.ts), since the datastreams of one write
// share one `at`. Used by `feedline sub` and by anything that must keep listening.
// Where the subscription stands (seq, since, repeats, a cut replay to follow) is the subscription cursor's
// (src/subscription-cursor.ts), the one the firmware and the dashboard page use.
// A subscribe refused "not now" (429, 5xx) is asked again on the same connection when the firmware would
// (src/backoff.ts resubscribeAfterMs); a refusal for good (401, 403, 404, another 4xx) ends the run.
// A history that went back (the server's seqs below the cursor) ends the subscription that said so and makes it
// again under another token ("rewound"); a cut replay whose pushes are not all in within the connection's
// `timeout` skips the missing ones (lines it could not read: "skipped") and goes on past them, as the firmware does.

import { backoffDelayMs, CLIENT_BACKOFF, resubscribeAfterMs } from "../../src/backoff.ts"
import type { Request, Response } from "../../src/protocol.ts"
import { SubscriptionCursor } from "../../src/subscription-cursor.ts"
import { FeedlineConnection, type ConnectOptions, type LinkState } from "./connection.ts"
import { ClientError, statusError } from "./errors.ts"
import { StampOverlap } from "./stamp-overlap.ts"

export type SubscriberEvent =
    | { kind: "subscribed"; session: string; since?: string }
    /**
     * [P§8] the server's retention deleted datapoints after the since asked for: every one from retainedFrom (an `at`)
     * on is held; or (`bySeq`) it deleted points written after the cursor: retainedFrom is the first seq still held
     */
    | { kind: "gap"; retainedFrom: string; bySeq?: boolean }
    | { kind: "link"; state: LinkState }
    | { kind: "lost"; error: ClientError }
    | { kind: "retrying"; delayMs: number; attempt: number }
    /** the subscribe was refused "not now" (429, 5xx): asked again on the same connection after `delayMs` */
    | { kind: "refused"; error: ClientError; delayMs: number }
    /**
     * [P§8] the server's seqs went back (a reset, restored or moved history), as an answer or a push said: its head `seq`
     * (or just below the push that said so) is below `fromSeq`, the last handled. The subscription that said so is ended
     * (`unsubscribe` with its token: its pushes are not handled) and made again under another token: what that history
     * got after `since` (the last `at` handled) up to `seq` comes once, then its seqs are followed from `seq`, every point
     * once. Pushes keep coming to `onPush`; an application that keeps state derived from seqs (or counts points) can
     * re-read `resource` here.
     */
    | { kind: "rewound"; resource: string; fromSeq: number; seq: number; since?: string }
    /**
     * [P§8] a cut replay's pushes were not all in within the connection's `timeout` of its answer: `count` of them could
     * not be read (bad lines: `\uFFFE`, which no client takes; FeedlineConnection.badLines counts them) or were never
     * sent. They are skipped and the subscription goes on past them (SubscriptionCursor.overdue); asked for again, an
     * unreadable last point came back alone every `timeout` and the subscription never went live
     */
    | { kind: "skipped"; resource: string; count: number }
    /** [P§8] a push under the subscription's token that names another resource (E_FOREIGN_PUSH): not delivered */
    | { kind: "foreign"; push: Response }

export interface SubscribeForeverOptions extends ConnectOptions {
    resource: string
    /** replay from here on the first connection (an `at` as the server wrote it, or ms) */
    since?: string
    /** extra subscribe params, e.g. { timeout: 60000 } */
    params?: Request["params"]
    onPush: (push: Response) => void
    onEvent?: (e: SubscriberEvent) => void
    signal?: AbortSignal
    /** injected for tests: randomness for the jitter, and the wait between attempts */
    random?: () => number
    sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
}

/** Errors that another attempt cannot fix: the user must change something. */
export function isFatal(e: ClientError): boolean {
    if (e.code === "E_AUTH" || e.code === "E_FORBIDDEN" || e.code === "E_UNTRUSTED_CERT" || e.code === "E_USAGE" || e.code === "E_TLS") return true
    return e.code === "E_STATUS" && e.status !== undefined && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429
}

/**
 * Runs until `signal` aborts (resolves), the subscription's own `params.timeout` ends it (resolves),
 * or a fatal error (rejects with a ClientError), such as a final push that ends the subscription for good
 * (403: its key was revoked; 404: its feed was deleted).
 */
export async function subscribeForever(o: SubscribeForeverOptions): Promise<void> {
    const random = o.random ?? Math.random
    const sleep = o.sleep ?? abortableSleep
    const cursor = new SubscriptionCursor(o.since, undefined, undefined, true)
    const overlap = new StampOverlap()
    /** failed attempts since the last acknowledged subscription */
    let attempt = 0
    while (!o.signal?.aborted) {
        let conn: FeedlineConnection | undefined
        let failure: ClientError
        const onAbort = () => conn?.close()
        try {
            conn = await FeedlineConnection.connect(o)
            const lost = new Promise<ClientError>((resolve) => conn!.once("close", (e) => resolve(e ?? new ClientError("E_CLOSED", "closed"))))
            // ends a wait before asking again on this connection when the connection ends
            const connectionOver = new AbortController()
            void lost.then(() => connectionOver.abort())
            // registered before subscribing: a push in the same chunk as the ack may already abort
            o.signal?.addEventListener("abort", onAbort, { once: true })
            conn.on("state", (state) => o.onEvent?.({ kind: "link", state }))
            conn.on("foreign", (push) => o.onEvent?.({ kind: "foreign", push }))
            let ended = false
            /** the server ended the subscription for good (its key revoked, its feed deleted) [P§8] */
            let endedBy: ClientError | undefined
            const c = conn
            /** [P§8] a cut replay's time: its pushes not all in by then are skipped (SubscriptionCursor.overdue) */
            let replayTimer: NodeJS.Timeout | undefined
            void lost.then(() => clearTimeout(replayTimer))
            /** [P§8] subscribes with the cursor's after (or since); resolves once live (a cut replay is followed first) */
            const live = new Promise<string | number | boolean | undefined>((resolveLive, rejectLive) => {
                let firstSince: string | number | boolean | undefined
                /** the latest subscribe: only its pushes are the cursor's (an earlier one answered live may still push) */
                let current = 0
                /**
                 * [P§8] the cursor says the server's seqs went back (an answer or a push under `token` said so): told once, and
                 * the subscription that said so is ended: live, every later change would come twice on this connection, and
                 * the subscribe that follows (under another token) replays what it would miss
                 */
                const rewound = (token: string | undefined) => {
                    if (cursor.rewoundFrom === undefined) return
                    o.onEvent?.({ kind: "rewound", resource: o.resource, fromSeq: cursor.rewoundFrom, seq: cursor.seq!, since: cursor.lastAt })
                    cursor.rewoundFrom = undefined
                    if (token !== undefined) c.unsubscribe({ token }).catch(() => {})
                }
                /** `followingCut`: the rest of a cut replay, from next_since; else a subscription from the cursor */
                const subscribe = (followingCut: boolean) => {
                    const mine = ++current
                    const params: Request["params"] = { ...o.params, ...overlap.resume(cursor.subscribeParams(), followingCut) }
                    if (!followingCut) firstSince = params!.since
                    const onAck = (ack: Response) => {
                        // at once: the pushes of a cut replay follow in the same chunk
                        const outcome = cursor.acknowledged(ack.body)
                        rewound(ack.token)
                        if (ack.body?.retention_gap === true) o.onEvent?.({ kind: "gap", retainedFrom: String(ack.body.retained_from), bySeq: typeof ack.body.retained_from === "number" })
                        if (outcome === "live") resolveLive(firstSince)
                        else if (outcome === "resubscribe") subscribe(true)
                        else {
                            // its pushes follow at once: those not in within `timeout` are not coming (lines not read)
                            clearTimeout(replayTimer)
                            replayTimer = setTimeout(() => {
                                if (mine !== current || c.state === "closed") return
                                const skipped = cursor.overdue()
                                if (skipped > 0) o.onEvent?.({ kind: "skipped", resource: o.resource, count: skipped })
                                subscribe(true)
                            }, c.timeoutMs)
                            replayTimer.unref()
                        }
                    }
                    const ownPush = (push: Response) => {
                        if (mine === current) onPush(push)
                    }
                    c.subscribe(o.resource, params, ownPush, onAck).catch((e: unknown) => {
                        // [P§8] "not now" (429, 5xx): asked again on this connection, as the firmware does; dialling
                        // again would cost a handshake per refusal, in a fleet's storm too
                        const waitMs = e instanceof ClientError && e.status !== undefined ? resubscribeAfterMs(e.status, e.retryAfterMs ?? 0, random()) : -1
                        if (waitMs < 0 || c.state === "closed") return rejectLive(e)
                        o.onEvent?.({ kind: "refused", error: e as ClientError, delayMs: waitMs })
                        void sleep(waitMs, connectionOver.signal).then(() => {
                            if (c.state !== "closed" && !o.signal?.aborted) subscribe(false)
                        })
                    })
                }
                const onPush = (push: Response) => {
                    const step = cursor.push(push.status, push.body)
                    if (push.status === 408) ended = true
                    else if (push.status >= 400) endedBy = statusError(push.status, push.resource, push.body)
                    if (push.status !== 200 || (step.deliver && overlap.fresh(push.body))) o.onPush(push)
                    if (ended || endedBy) conn!.close()
                    else if (step.caughtUp) {
                        // a cut replay handled: the rest from next_since; or the push said the server's seqs went back
                        rewound(push.token)
                        subscribe(true)
                    }
                }
                subscribe(false)
            })
            live.catch(() => {}) // a refusal after the connection was lost has nobody to tell
            // the connection can be lost while a cut replay is being followed: then it never goes live. The loss
            // is looked at once what came with it has settled: an acknowledgement followed in the same chunk
            // by a push that closed the connection still counts as a subscription
            const lostSettled = lost.then((error) => new Promise<{ error: ClientError }>((resolve) => setImmediate(() => resolve({ error }))))
            const outcome = await Promise.race([live.then((since) => ({ since })), lostSettled])
            if ("error" in outcome) failure = outcome.error
            else {
                // if the link drops before the first push, the replay starts at this connection's welcome (the
                // server's clock), which is before the subscription began: from now on nothing may be missed
                cursor.anchor(new Date(conn.welcome.time).toISOString())
                attempt = 0 // a protocol-level success: only now is the link known good
                o.onEvent?.({ kind: "subscribed", session: conn.welcome.session, since: outcome.since === undefined ? undefined : String(outcome.since) })
                failure = await lost
            }
            if (endedBy) throw endedBy
            if (ended || o.signal?.aborted) return
        } catch (e) {
            conn?.close()
            failure = e instanceof ClientError ? e : new ClientError("E_CLOSED", String((e as Error)?.message ?? e), { cause: e })
        } finally {
            o.signal?.removeEventListener("abort", onAbort)
        }
        if (isFatal(failure)) throw failure
        if (o.signal?.aborted) return
        o.onEvent?.({ kind: "lost", error: failure })
        const delayMs = backoffDelayMs(CLIENT_BACKOFF, attempt, random(), failure.retryAfterMs ?? 0)
        attempt++
        o.onEvent?.({ kind: "retrying", delayMs, attempt })
        await sleep(delayMs, o.signal)
    }
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
        if (signal?.aborted) return resolve()
        const t = setTimeout(done, ms)
        function done() {
            clearTimeout(t)
            signal?.removeEventListener("abort", done)
            resolve()
        }
        signal?.addEventListener("abort", done, { once: true })
    })
}
