import { backoffDelayMs, CLIENT_BACKOFF, retryAfterRefusalMs } from "../../../src/backoff.ts"
import { isDatastreamId, resourceSegments, valueText, MAX_VALUE_CHARS, type Response } from "../../../src/protocol.ts"
import { statusError } from "../errors.ts"
import { sendAgainAsIs } from "../resend.ts"
import { CONNECTION_USAGE, pairs, parse, printJson, usageError, withConnection, type ClientCommand } from "./common.ts"
import { resourceArg } from "./get.ts"

/** A write answered 429 or 503 ("not now": nothing was stored) is sent this many times in all. */
export const PUT_ATTEMPTS = 5

const USAGE = `feedline put RESOURCE id=value ... | put DATASTREAM-RESOURCE value | put RESOURCE --body JSON
  feedline put /feeds/1 temp=21.5 hum=40           update several datastreams of a feed
  feedline put /feeds/1/datastreams/relay 1        update one datastream
  feedline put /feeds/1 --body '{"datastreams":[...]}'  any body
  -v, --verbose  print the response
  A write answered 429 or 503 (nothing stored: over the rate limit, or the feed's subscribers are still
  being sent earlier writes) is sent again after the server's retry_after_ms, ${PUT_ATTEMPTS} times in all;
  not one that may be stored (503 E_OUTCOME_UNKNOWN, E_PARTLY_WRITTEN), whose reason says what to send.
${CONNECTION_USAGE}`

/** The request body for `put` from its command-line words. */
export function putBody(resource: string, words: string[], rawBody: string | undefined): unknown {
    if (rawBody !== undefined) {
        if (words.length) throw usageError("give either --body or values, not both", USAGE)
        try {
            return JSON.parse(rawBody)
        } catch {
            throw usageError("--body is not valid JSON", USAGE)
        }
    }
    if (!words.length) throw usageError("nothing to write: give id=value pairs, a value, or --body", USAGE)
    const seg = resourceSegments(resource)
    const isDatastream = seg.length === 4 && seg[0] === "feeds" && seg[2] === "datastreams"
    if (isDatastream && words.length === 1 && !words[0].includes("=")) return { current_value: checkedValue(words[0]) }
    if (!(seg.length === 2 && seg[0] === "feeds")) throw usageError(`id=value pairs go to a feed such as /feeds/1; for ${resource} use --body`, USAGE)
    const values = pairs(words, USAGE)
    return {
        version: "1.0.0",
        datastreams: Object.entries(values).map(([id, v]) => {
            if (!isDatastreamId(id)) throw usageError(`"${id}" is not a datastream id (1-64 of A-Za-z0-9_.-)`, USAGE)
            return { id, current_value: checkedValue(v) }
        }),
    }
}

function checkedValue(v: string): string {
    if (valueText(v) === undefined) throw usageError(`value "${v}" is longer than ${MAX_VALUE_CHARS} characters`, USAGE)
    return v
}

export interface RetryOptions {
    attempts?: number
    random?: () => number
    sleep?: (ms: number) => Promise<void>
    /** told before each wait: the refusal and how long */
    onWait?: (r: Response, waitMs: number) => void
}

/**
 * Sends a write until it is answered other than 429/503, waiting between attempts with backoff whose floor
 * is the server's retry_after_ms plus a random spread (retryAfterRefusalMs) [P§6] (a feed busy with its fan-out answers 429 E_FANOUT_BUSY, a rate
 * limit 429 E_RATE_LIMITED; nothing was stored either way). Resolves with the success's body; any other
 * error, or the last refusal, rejects with its ClientError. A 503 after which the write may be stored
 * (E_OUTCOME_UNKNOWN, E_PARTLY_WRITTEN: sendAgainAsIs) is not sent again: its points have no `at`, and were stored
 * twice; the error carries the server's reason, which says what to send.
 */
export async function sendRetrying(send: () => Promise<Response>, resource: string, o: RetryOptions = {}): Promise<unknown> {
    const attempts = o.attempts ?? PUT_ATTEMPTS
    const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)))
    for (let attempt = 1; ; attempt++) {
        const r = await send()
        if (sendAgainAsIs(r.status, r.body?.code) && attempt < attempts) {
            const hint = typeof r.body?.retry_after_ms === "number" ? r.body.retry_after_ms : 0
            const rand01 = (o.random ?? Math.random)()
            const backoffMs = backoffDelayMs(CLIENT_BACKOFF, attempt - 1, rand01, 0)
            // a hint gets the spread a refused batch gets on a board: scripts on one key told the same instant
            // would otherwise all come back at it together
            const waitMs = hint > 0 ? Math.max(backoffMs, retryAfterRefusalMs(hint, rand01)) : backoffMs
            o.onWait?.(r, waitMs)
            await sleep(waitMs)
            continue
        }
        if (r.status >= 400) throw statusError(r.status, r.resource ?? resource, r.body)
        return r.body
    }
}

export const putCommand: ClientCommand = {
    summary: "write values: put /feeds/1 temp=21.5 hum=40",
    usage: USAGE,
    async run(argv, io) {
        const { values, positionals } = parse(argv, { body: { type: "string" }, verbose: { type: "boolean", short: "v" } }, USAGE)
        const resource = resourceArg(positionals[0], USAGE)
        const body = putBody(resource, positionals.slice(1), values.body)
        const onWait = (r: Response, waitMs: number) => io.err(`not stored yet: ${r.status} ${r.body?.code ?? ""}; sending it again in ${waitMs} ms\n`)
        const result = await withConnection(values, io, (c) => sendRetrying(() => c.send("put", resource, { body }), resource, { onWait }))
        if (values.verbose) printJson(io, result ?? { ok: true }, false)
    },
}
