// Server errors: one stable code each (tests assert on codes), an HTTP status and a reason a person can
// act on. Codec errors (E_BAD_JSON, E_BAD_RESOURCE, ...) come from src/protocol.ts with the same shape.
import { errorBody, type Response } from "../../src/protocol.ts"
import { RECONNECT_AFTER_MS } from "./limits.ts"
import type { Logger } from "./log.ts"
import { PartlyDeleted, StoreError, type StoreFailure } from "./storage/store.ts"

export type ServerErrorCode =
    | "E_BAD_BODY" // 400: body has the wrong shape
    | "E_UNAUTHORIZED" // 401: no key, unknown or revoked key
    | "E_FORBIDDEN" // 403: the key may not do this here
    | "E_NOT_FOUND" // 404
    | "E_NOT_ALLOWED" // 405: method not supported on this resource
    | "E_IDLE_TIMEOUT" // 408 notice: silent too long
    | "E_AUTH_TIMEOUT" // 408 notice: no authenticated request within the auth deadline of the welcome
    | "E_SUBSCRIPTION_ENDED" // 408 push: params.timeout elapsed
    | "E_TOKEN_EXPIRED" // 401 push: the browser token a subscription was made with expired
    | "E_FEED_ID_RETIRED" // 409: that id belonged to a deleted feed and is never given out again
    | "E_FEED_DELETED" // 404 push: the subscribed feed was deleted
    | "E_TOO_LARGE" // 413 notice
    | "E_CONFLICT" // 422: exists already
    | "E_BAD_VALUE" // 422
    | "E_MISNAMED_VALUE" // 422: a datastream's value sent as "value" (or "currentValue", …) instead of "current_value"
    | "E_BAD_ID" // 422
    | "E_BAD_TIME" // 422
    | "E_BAD_PARAM" // 422
    | "E_LIMIT" // 422: asks for more than one request may
    | "E_TOO_MANY_SUBSCRIPTIONS" // 422
    | "E_TOO_MANY_DATASTREAMS" // 422: the write would take the feed over MAX_DATASTREAMS_PER_FEED; nothing written
    | "E_RATE_LIMITED" // 429
    | "E_FANOUT_BUSY" // 429: the feed owes too many pushes to its subscribers; nothing stored, send again after retry_after_ms
    | "E_AUTH_RATE_LIMITED" // 429
    | "E_TOO_MANY_CONNECTIONS" // 429 notice: the server's or the address's maximum
    | "E_TOO_MANY_CONNECTIONS_FOR_KEY" // 429 to the request whose key holds its maximum of connections, then the same notice
    | "E_TOO_MANY_UNAUTHENTICATED" // 429 notice: the address holds its maximum of connections without a valid key yet
    | "E_TOO_MANY_REFUSALS" // 429 notice: the connection went on sending once refused (over its rate, lines that are no request) past a burst's worth
    | "E_KEY_RATE_LIMITED" // 429: the key's requests over all its connections
    | "E_STRUCTURE_RATE_LIMITED" // 429: the key's changes to feeds and datastreams (making, deleting, renaming) over its budget; nothing done
    | "E_BAD_UTF8" // 400: not UTF-8, or a lone surrogate (codec errors share it)
    | "E_CONFLICTING_CREDENTIALS" // 400: two different credentials in one request (X-ApiKey, ?key=, Authorization: Bearer: auth/credential.ts)
    | "E_BAD_CHARACTER" // 400: a value, title or name holds a control character (U+0000-U+001F, U+007F-U+009F), U+FFFE or U+FFFF; the reason names the field
    | "E_USE_HTTPS" // 400: plain HTTP sent to the HTTPS app port
    | "E_USE_TLS" // 400 notice: the protocol in clear sent to the TLS device port
    | "E_BAD_UPGRADE" // 400: an HTTP Upgrade other than websocket on a request with a body (one without is answered in HTTP/1.1)
    | "E_BAD_EXPECT" // 417: an HTTP Expect header other than 100-continue
    | "E_HEADERS_TOO_LARGE" // 431: an HTTP request's headers over Node's limit (16 KiB)
    | "E_BAD_WEBSOCKET" // 400 (405 for a method other than GET): a WebSocket handshake the server cannot take, or a plain request to /ws
    | "E_ORIGIN_NOT_ALLOWED" // 403: a CORS preflight from an origin not in --cors-origins (none by default)
    | "E_INTERNAL" // 500
    | "E_STORE_FAILED" // 503: storage did not commit; nothing was acknowledged
    | "E_OUTCOME_UNKNOWN" // 503: the store stopped while committing a write, which may or may not be stored; send it again (the same `at`s are stored once)
    | "E_PARTLY_DELETED" // 503: a deletion done in chunks failed midway; body.deleted says how many went, the same deletion again deletes the rest
    | "E_PARTLY_WRITTEN" // 503: a PUT /feeds/F's datapoints were committed, its title / empty datastreams then were not; the reason says what to send again (not the datapoints)
    | "E_SHUTTING_DOWN" // 503 notice
    | "E_SLOW_CONSUMER" // 503 notice
    // [fleet] claims (devs/server/fleet/); every refusal creates nothing
    | "E_NO_SUCH_PRODUCT" // 404: no product with that id
    | "E_BAD_CLAIM_CODE" // 401: the activation code is not this product's for this hardware id
    | "E_PRODUCT_REVOKED" // 403: the product takes no new claims (its devices keep working)
    | "E_HARDWARE_NOT_LISTED" // 403: the hardware id is not on the product's allow-list
    | "E_CLAIM_LIMIT" // 403: the product has as many devices as its claim limit
    | "E_DEVICE_REVOKED" // 403: the operator revoked this device; re-arm it to let it claim again
    | "E_ALREADY_CLAIMED" // 409: the hardware id claimed already and its key is in use (a cloned or reset board): re-arm it, or prove the key
    | "E_CLAIM_CONFLICT" // 409: another claim of the same device won meanwhile; claim again
    | "E_CLAIM_RATE_LIMITED" // 429: too many claims from this address or for this product
    | "E_PUSHES_INTERRUPTED" // 503 notice: the link to the other processes (Redis) broke; reconnect and subscribe with after (or since)

const TITLES: Record<number, string> = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    417: "Expectation Failed",
    422: "Unprocessable Entity",
    431: "Request Header Fields Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

export function titleOf(status: number): string {
    return TITLES[status] ?? "Error"
}

export class ApiError extends Error {
    constructor(
        readonly status: number,
        readonly code: string,
        reason: string,
        /** [P§6] 429/503: wait at least this long */
        readonly retryAfterMs?: number,
        /** members the error's body carries besides title, errors, code, retry_after_ms (E_PARTLY_DELETED's `deleted`) */
        readonly extra?: Record<string, unknown>,
    ) {
        super(reason)
    }
}

export const badBody = (reason: string) => new ApiError(400, "E_BAD_BODY", reason)
export const unauthorized = (reason: string) => new ApiError(401, "E_UNAUTHORIZED", reason)
export const forbidden = (reason: string) => new ApiError(403, "E_FORBIDDEN", reason)
export const notFound = (reason: string) => new ApiError(404, "E_NOT_FOUND", reason)
export const notAllowed = (reason: string) => new ApiError(405, "E_NOT_ALLOWED", reason)
export const unprocessable = (code: ServerErrorCode, reason: string) => new ApiError(422, code, reason)
/**
 * [P§6] The refusal of a client that went on sending past its refusal budget (ratelimit.ts refusalBudgetOf): `who`
 * says which (a connection, an address), `what` what to do instead; then its connection closes.
 */
export function tooManyRefusals(who: string, budget: { ratePerSecond: number; burst: number }, what: string, retryAfterMs: number): ApiError {
    const why = `${who} after ${budget.burst} of its requests were refused (over its rate of ${budget.ratePerSecond} a second, or not requests at all)`
    return new ApiError(429, "E_TOO_MANY_REFUSALS", `${why}; ${what}`, retryAfterMs)
}

/** The error body of [P§6], with retry_after_ms when the error has one. */
export function errorBodyOf(status: number, code: string, reason: string, retryAfterMs?: number, extra?: Record<string, unknown>): any {
    const body = errorBody(titleOf(status), reason, code)
    if (retryAfterMs !== undefined) body.retry_after_ms = Math.max(0, Math.ceil(retryAfterMs))
    return extra ? { ...body, ...extra } : body
}

/** A response for an error (token absent when the request had none; Session.closeWith marks notices). */
export function errorResponse(err: ApiError, token?: string, resource?: string): Response {
    return { token, status: err.status, resource, body: errorBodyOf(err.status, err.code, err.message, err.retryAfterMs, err.extra) }
}

/** The server's settings cannot work (contradictory keep-alive values, a certificate without its key, …); the CLI prints the message and exits 2. */
export class ConfigError extends Error {
    readonly code = "E_BAD_CONFIG"
}

/** A service the server runs on (PostgreSQL, Redis) could not be reached at start; the CLI prints the message (which says where it tried) and exits 1. */
export class UnavailableError extends Error {
    readonly code = "E_UNAVAILABLE"
}

/**
 * What the client is told when the store refuses something (storage/store.ts); `retryAfterMs` when the store's
 * error has none: every 503 carries retry_after_ms [P§6] (the engines' own "closed" carried none).
 */
const STORE_FAILURES: Record<StoreFailure, { status: number; code: ServerErrorCode; retryAfterMs?: number }> = {
    "feed-exists": { status: 422, code: "E_CONFLICT" },
    "feed-id-retired": { status: 409, code: "E_FEED_ID_RETIRED" },
    "no-feed-ids-left": { status: 422, code: "E_BAD_ID" },
    "no-such-feed": { status: 404, code: "E_NOT_FOUND" },
    closed: { status: 503, code: "E_SHUTTING_DOWN", retryAfterMs: RECONNECT_AFTER_MS },
    "commit-failed": { status: 503, code: "E_STORE_FAILED" },
    "value-refused": { status: 422, code: "E_BAD_VALUE" },
    unavailable: { status: 503, code: "E_STORE_FAILED" },
    "commit-unknown": { status: 503, code: "E_OUTCOME_UNKNOWN" },
    "partly-deleted": { status: 503, code: "E_PARTLY_DELETED" },
    // the router checks the key again and retries the write once (router.ts); a client meets it only if keys change again meanwhile
    "keys-changed": { status: 503, code: "E_STORE_FAILED" },
    "no-such-product": { status: 404, code: "E_NO_SUCH_PRODUCT" },
    "product-revoked": { status: 403, code: "E_PRODUCT_REVOKED" },
    "claim-limit": { status: 403, code: "E_CLAIM_LIMIT" },
    "device-exists": { status: 409, code: "E_ALREADY_CLAIMED" },
    "device-changed": { status: 409, code: "E_CLAIM_CONFLICT" },
    "no-such-device": { status: 404, code: "E_NOT_FOUND" },
    // refused at start (startServer reports it as a configuration error); no request meets it
    "in-use": { status: 503, code: "E_STORE_FAILED" },
}

/** Anything thrown: ApiErrors as they are, the store's refusals and failures by STORE_FAILURES, everything else a 500 that reveals nothing internal. */
export function asApiError(e: unknown): ApiError {
    if (e instanceof ApiError) return e
    if (e instanceof StoreError) {
        const { status, code, retryAfterMs } = STORE_FAILURES[e.failure]
        return new ApiError(status, code, e.message, e.retryAfterMs ?? retryAfterMs, e instanceof PartlyDeleted ? { deleted: e.deleted } : undefined)
    }
    return new ApiError(500, "E_INTERNAL", "the server failed to handle this request; it was logged, try again")
}

/** Neither an answer (ApiError) nor the store's (StoreError): a bug, answered 500 E_INTERNAL. */
export function isProgrammingError(e: unknown): boolean {
    return !(e instanceof ApiError || e instanceof StoreError)
}

/**
 * [P§6] The one way a request's failure becomes its answer, on every door (the device port and WebSocket
 * through the router, HTTP through the router and the app port's own refusals): asApiError, and a
 * programming error logged here with its cause and `context` (method, resource). A StoreError is not
 * logged: the store reported its own failures once, with the call (storage/boundary.ts), and its refusals
 * are answers.
 */
export function answerTo(e: unknown, log: Logger, context: Record<string, unknown>): ApiError {
    if (isProgrammingError(e)) log.error({ err: e, ...context }, "request failed")
    return asApiError(e)
}

/**
 * A failure of work the server does besides answering (reloading keys, retention, last-seen times): logged
 * once. A StoreError was reported by the store already, or is a refusal (the store closing at shutdown).
 */
export function logBackgroundFailure(log: Logger, e: unknown, what: string, context: Record<string, unknown> = {}): void {
    if (!(e instanceof StoreError)) log.error({ err: e, ...context }, what)
}
