// A subscription that outlives its connection: on any loss it reconnects with backoff and subscribes
// again with `since` = the newest `at` it has delivered, so the server replays what was missed and
// nothing is delivered twice [P§8]. Used by `feedline sub` and by anything that must keep listening.
//
// Known limit: `since` is one timestamp per subscription. A feed subscription whose datastreams are
// written with out-of-order timestamps (a device backfilling old data during our outage) can miss
// points older than the newest one we saw.

import { backoffDelayMs, CLIENT_BACKOFF } from "../../src/backoff.ts"
import type { Request, Response } from "../../src/protocol.ts"
import { FeedlineConnection, type ConnectOptions, type LinkState } from "./connection.ts"
import { ClientError, statusError } from "./errors.ts"

export type SubscriberEvent =
    | { kind: "subscribed"; session: string; since?: string }
    | { kind: "link"; state: LinkState }
    | { kind: "lost"; error: ClientError }
    | { kind: "retrying"; delayMs: number; attempt: number }

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

/** The newest `at` in a push body: a datastream `{at}`, or a feed `{datastreams:[{at}]}`. */
export function newestAt(body: any, after?: string): string | undefined {
    let best = after
    const consider = (at: unknown) => {
        if (typeof at === "string" && (best === undefined || at > best)) best = at
    }
    if (body && typeof body === "object") {
        consider(body.at)
        if (Array.isArray(body.datastreams)) for (const d of body.datastreams) consider(d?.at)
        if (Array.isArray(body.datapoints)) for (const d of body.datapoints) consider(d?.at)
    }
    return best
}

/**
 * Runs until `signal` aborts (resolves), the subscription's own `params.timeout` ends it (resolves),
 * or a fatal error (rejects with a ClientError), such as a final push that ends the subscription for good
 * (403: its key was revoked; 404: its feed was deleted).
 */
export async function subscribeForever(o: SubscribeForeverOptions): Promise<void> {
    const random = o.random ?? Math.random
    const sleep = o.sleep ?? abortableSleep
    let since = o.since
    /** failed attempts since the last acknowledged subscription */
    let attempt = 0
    while (!o.signal?.aborted) {
        let conn: FeedlineConnection | undefined
        let failure: ClientError
        const onAbort = () => conn?.close()
        try {
            conn = await FeedlineConnection.connect(o)
            const lost = new Promise<ClientError>((resolve) => conn!.once("close", (e) => resolve(e ?? new ClientError("E_CLOSED", "closed"))))
            // registered before subscribing: a push in the same chunk as the ack may already abort
            o.signal?.addEventListener("abort", onAbort, { once: true })
            conn.on("state", (state) => o.onEvent?.({ kind: "link", state }))
            let ended = false
            /** the server ended the subscription for good (its key revoked, its feed deleted) [P§8] */
            let endedBy: ClientError | undefined
            const sinceUsed = since
            const onPush = (push: Response) => {
                if (push.status === 200) since = newestAt(push.body, since)
                else if (push.status === 408) ended = true
                else if (push.status >= 400) endedBy = statusError(push.status, push.resource, push.body)
                o.onPush(push)
                if (ended || endedBy) conn!.close()
            }
            // [P§8] a replay longer than the server sends at once is acknowledged `truncated` and is not
            // live: its pushes follow the ack, then we go on from next_since until a live acknowledgement
            let next: string | undefined = sinceUsed
            for (;;) {
                const params = { ...o.params, ...(next !== undefined ? { since: next } : {}) }
                const { ack } = await conn.subscribe(o.resource, params, onPush)
                const body = ack.body as { truncated?: boolean; next_since?: string } | undefined
                if (!body?.truncated || typeof body.next_since !== "string") break
                next = body.next_since
            }
            // from now on nothing may be missed: if the link drops before the first push, the replay starts
            // at this connection's welcome (the server's clock), which is before the subscription began
            since ??= new Date(conn.welcome.time).toISOString()
            attempt = 0 // a protocol-level success: only now is the link known good
            o.onEvent?.({ kind: "subscribed", session: conn.welcome.session, since: sinceUsed })
            failure = await lost
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
