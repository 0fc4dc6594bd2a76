// The one resource router [P§5]: TLS, WebSocket and HTTP requests all come here as the same Request and
// pass the same authentication and permission checks. It matches the resource, authenticates once per
// connection [P§7], runs one small handler and turns whatever it throws into an error response.
import { resourceSegments, type Request, type Response } from "../../src/protocol.ts"
import { isRefusal, type Grant } from "./auth/grant.ts"
import { BEARER, credentialOf, envelopeHeaders } from "./auth/credential.ts"
import { ProvenKeys } from "./auth/proven-keys.ts"
import type { Take } from "./ratelimit.ts"
import type { Caller, Connection, Ctx, OpenRoutes, Result, ResultToCome, RouterDeps, Routes } from "./context.ts"
import { ApiError, answerTo, errorResponse, notAllowed, notFound, unauthorized, unprocessable } from "./errors.ts"
import { StoreError } from "./storage/store.ts"
import { MAX_MATCHED_RESOURCES } from "./limits.ts"
import { limitKeyOf } from "./limit-key.ts"
import { listenTo, type Settles } from "./later.ts"
import { datapointsRoutes } from "./handlers/datapoints.ts"
import { claimsRoutes } from "./handlers/claims.ts"
import { datastreamRoutes, datastreamsRoutes } from "./handlers/datastreams.ts"
import { deviceRearmRoutes, deviceRoutes, devicesRoutes } from "./handlers/devices.ts"
import { feedRoutes, feedsRoutes } from "./handlers/feeds.ts"
import { keyRoutes, keysRoutes } from "./handlers/keys.ts"
import { productRoutes, productsRoutes } from "./handlers/products.ts"
import { sessionRoutes, sessionsRoutes } from "./handlers/session.ts"
import { subscribe, unsubscribe, unsubscribeAll } from "./handlers/subscriptions.ts"

export type { Caller, Connection, Ctx, Handler, Result, RouterDeps, Routes, TransportKind } from "./context.ts"

interface Route {
    pattern: string[]
    routes: Routes
    /** subscribe/unsubscribe are allowed on feed-scoped resources */
    subscribable: boolean
    /** [fleet] handlers that need no key (a claim carries its own credential); tried before authenticating */
    open?: OpenRoutes
    /**
     * Methods whose handler writes datapoints (the devices' hot path): a connection's proven key is checked
     * against the keys as this process knows them, without a read of other processes' changes, and the
     * store stores the points only if the keys are still at that version when it commits (Ctx.keysAsOf);
     * when they are not, the request is run again with a full check (answer()).
     */
    writesPoints?: readonly string[]
}

const ROUTES: Route[] = [
    { pattern: ["feeds"], routes: feedsRoutes, subscribable: false },
    { pattern: ["feeds", ":feed"], routes: feedRoutes, subscribable: true, writesPoints: ["put"] },
    { pattern: ["feeds", ":feed", "datastreams"], routes: datastreamsRoutes, subscribable: true },
    { pattern: ["feeds", ":feed", "datastreams", ":ds"], routes: datastreamRoutes, subscribable: true, writesPoints: ["put"] },
    { pattern: ["feeds", ":feed", "datastreams", ":ds", "datapoints"], routes: datapointsRoutes, subscribable: true, writesPoints: ["post"] },
    { pattern: ["keys"], routes: keysRoutes, subscribable: false },
    { pattern: ["keys", ":key"], routes: keyRoutes, subscribable: false },
    { pattern: ["session"], routes: sessionRoutes, subscribable: false },
    { pattern: ["sessions"], routes: sessionsRoutes, subscribable: false },
    { pattern: ["products"], routes: productsRoutes, subscribable: false },
    { pattern: ["products", ":product"], routes: productRoutes, subscribable: false },
    { pattern: ["products", ":product", "claims"], routes: {}, open: claimsRoutes, subscribable: false },
    { pattern: ["devices"], routes: devicesRoutes, subscribable: false },
    { pattern: ["devices", ":device"], routes: deviceRoutes, subscribable: false },
    { pattern: ["devices", ":device", "rearm"], routes: deviceRearmRoutes, subscribable: false },
]

/** each pattern segment's parameter name (":feed" -> "feed"), undefined for a literal one */
const PARAM_NAMES = new Map(ROUTES.map((r) => [r, r.pattern.map((p) => (p.startsWith(":") ? p.slice(1) : undefined))]))

const RESOURCE_HELP =
    "resources are /feeds, /feeds/:feed, /feeds/:feed/datastreams[/:id[/datapoints]], /keys, /session, /sessions, /products[/:product[/claims]] and /devices[/:device[/rearm]]"

/**
 * [P§1] Why a resource named nothing: a REST path's /v2 (`GET /v2/feeds/504` is resource /feeds/504) written into a
 * request, as a client ported from the REST API does, is said so; else the list of resources.
 */
function hintFor(resource: string): string {
    if (/^\/v2(\/|$)/i.test(resource)) return `a resource has no /v2 in front, which is the HTTP path's alone: send "${resource.slice(3) || "/feeds"}"`
    return RESOURCE_HELP
}

/** What a request is answered: the response, and what to run once it is sent (a subscription's replay). */
export interface Answer {
    response: Response
    after?: () => void
}

/** Who gets an answer from Router.answer() (a session): `tag` is what it passed in. */
export interface AnswerTarget {
    answered(req: Request, answer: Answer, tag: number): void
}

interface Matched {
    route: Route
    /** shared by every request for the same resource: read only */
    path: Readonly<Record<string, string>>
    /** the path's feed id once parsed (feedIdOf) */
    feed?: number
}

function match(resource: string): Matched | undefined {
    const segs = resourceSegments(resource)
    for (const route of ROUTES) {
        if (route.pattern.length !== segs.length) continue
        const names = PARAM_NAMES.get(route)!
        let ok = true
        for (let i = 0; i < segs.length && ok; ++i) ok = names[i] !== undefined || route.pattern[i] === segs[i]
        if (!ok) continue
        const path: Record<string, string> = {}
        for (let i = 0; i < segs.length; ++i) if (names[i] !== undefined) path[names[i]!] = segs[i]
        return { route, path: Object.freeze(path) }
    }
    return undefined
}

/**
 * Resources matched lately: a device names the same resource in every request, so it is split and
 * matched once (bounded: emptied when full, a client naming ever new resources costs a match each).
 */
const matched = new Map<string, Matched | null>()

function matchOnce(resource: string): Matched | undefined {
    let m = matched.get(resource)
    if (m === undefined) {
        m = match(resource) ?? null
        if (matched.size >= MAX_MATCHED_RESOURCES) matched.clear()
        matched.set(resource, m)
    }
    return m ?? undefined
}

/** The HTTP methods `resource` answers (HEAD with GET), for a 405's Allow over HTTP (RFC 9110); undefined: no such resource. */
export function httpMethodsOf(resource: string): string | undefined {
    const m = matchOnce(resource)
    if (!m) return undefined
    const methods = [...Object.keys(m.route.routes), ...Object.keys(m.route.open ?? {})].flatMap((v) => (v === "get" ? ["GET", "HEAD"] : [v.toUpperCase()]))
    return methods.join(", ")
}

/** [P§10] feed ids are positive integers */
function feedIdOf(text: string | undefined): number {
    if (text === undefined) return 0
    const n = /^[1-9]\d{0,15}$/.test(text) ? Number(text) : NaN
    if (!Number.isSafeInteger(n)) throw unprocessable("E_BAD_ID", `feed ids are positive integers, not "${text}"`)
    return n
}

const NO_KEY_ON_A_CONNECTION = 'this request needs a key: send "headers":{"X-ApiKey":"<key>"} once per connection'
const NO_KEY_OVER_HTTP = "this request needs a key: send it as the X-ApiKey header (or ?key=), a browser token as Authorization: Bearer <jwt>"
const TOKEN_EXPIRED = "the token has expired; get a new one with POST /jwt"
/** the params of a request without any (most): one object, never written */
const NO_PARAMS: Readonly<Record<string, string | number | boolean>> = Object.freeze({})

export class Router {
    /** keys that authenticated from each address lately: they pass that address's failed-key lockout (on the monotonic clock, deps.elapsedMs: the pass lives in this process alone) */
    readonly provenKeys: ProvenKeys
    /**
     * [P§7] Each connection's check of a key it named before it had one remembered, while it runs: a request
     * that names none, pipelined behind it (sent before its answer), waits for it, rather than being refused
     * 401 for a key the connection is proving that moment.
     */
    private readonly firstKeyChecks = new WeakMap<Connection, Promise<Grant>>()

    constructor(readonly deps: RouterDeps) {
        this.provenKeys = deps.provenKeys ?? new ProvenKeys()
    }

    /**
     * [P§7] Authenticates the request's key, or the one remembered for the connection. The key a
     * connection proved, while the keys have not changed, is accepted without a wait (the hot path: a
     * device's every request); anything else is looked up. `asKnown`: a points write (Route.writesPoints)
     * whose store checks the keys' version at its commit: the proven key's check does not look at other
     * processes' changes (KeyRing.stillIssued).
     */
    private authenticate(caller: Caller, req: Request, asKnown: boolean): Grant | Promise<Grant> {
        // [P§7] X-ApiKey or Authorization: Bearer (a token works wherever a key does, docs/OPERATIONS.md; any other
        // Authorization, a key or Basic, is no credential), by the rule of every door: two different ones are refused.
        // A device's usual request has no headers (its connection's key is remembered): nothing to look at, nothing made
        const named = req.headers === undefined ? undefined : credentialOf(envelopeHeaders(req.headers))
        const connection = caller.connection
        const credential = named ?? connection?.rememberedKey
        if (credential === undefined || credential === "") {
            const first = named === undefined && connection !== undefined ? this.firstKeyChecks.get(connection) : undefined
            if (first !== undefined) {
                const again = () => {
                    if (this.firstKeyChecks.get(connection!) === first) this.firstKeyChecks.delete(connection!)
                    return this.authenticate(caller, req, false)
                }
                return first.then(again, again)
            }
            throw unauthorized(caller.transport === "http" ? NO_KEY_OVER_HTTP : NO_KEY_ON_A_CONNECTION)
        }
        // the gate against key guessing; a key this connection already proved is not held up by it
        // (a device behind the same NAT as someone guessing keys keeps working)
        const proven = connection !== undefined && credential === connection.rememberedKey
        const known = proven && connection.grant !== undefined ? this.deps.keys.stillIssued(credential, connection.grant, asKnown) : undefined
        if (known !== undefined && (known.expiresMs === undefined || known.expiresMs > this.deps.now())) return this.accepted(caller, credential, known)
        const looked = this.lookUp(caller, credential, named, proven)
        if (connection !== undefined && connection.rememberedKey === undefined) {
            this.firstKeyChecks.set(connection, looked)
            const forget = () => this.firstKeyChecks.get(connection) === looked && this.firstKeyChecks.delete(connection)
            looked.then(forget, forget)
        }
        return looked
    }

    private async lookUp(caller: Caller, credential: string, named: string | undefined, proven: boolean): Promise<Grant> {
        const { authFailures, keys, now, verifyBearer } = this.deps
        const address = limitKeyOf(caller.remoteAddress)
        const limited = proven ? { ok: true, retryAfterMs: 0 } : authFailures.peek(address)
        // a key already proven from this address is looked up even now: a fleet behind one NAT is not
        // locked out by one misconfigured board (a guesser's keys were never proven, so they stay refused)
        if (!limited.ok && !this.provenKeys.passes(address, credential, this.deps.elapsedMs())) {
            throw new ApiError(429, "E_AUTH_RATE_LIMITED", "too many failed keys from this address; wait before trying again", limited.retryAfterMs)
        }
        const bearer = BEARER.exec(credential)
        let grant: Grant | undefined
        /** why a token was refused (expired, signed out, its key revoked): what its holder does next differs */
        let refusal: string | undefined
        if (bearer) {
            const verdict = verifyBearer ? await verifyBearer(bearer[1]) : undefined
            if (isRefusal(verdict)) refusal = verdict.refused
            else grant = verdict && { ...verdict, bearer: true }
        }
        else grant = await keys.authenticate(credential, caller.connection?.grant)
        if (grant && grant.expiresMs !== undefined && grant.expiresMs <= now()) {
            grant = undefined
            refusal = TOKEN_EXPIRED
        }
        if (!grant) {
            authFailures.take(address)
            this.provenKeys.failed(address, credential)
            if (named === undefined && caller.connection) caller.connection.rememberedKey = caller.connection.grant = undefined
            // a token this connection signed in with: its own reason (an expired token was told its key "was revoked")
            const remembered = bearer ? "this connection's token was refused; send a valid one" : "this connection's key was revoked; send a valid X-ApiKey"
            throw unauthorized(refusal ?? (named === undefined ? remembered : bearer ? "this token is not valid here; get one with POST /jwt" : "this key is unknown, revoked or expired"))
        }
        if (!grant.bearer) this.provenKeys.proven(address, credential, this.deps.elapsedMs())
        return this.accepted(caller, credential, grant)
    }

    /** A connection closed: the key it proved passes its address's lockout for a while from now (its reconnect). */
    connectionClosed(caller: Caller): void {
        const { connection } = caller
        if (connection?.rememberedKey === undefined || connection.grant === undefined || connection.grant.bearer) return
        this.provenKeys.proven(limitKeyOf(caller.remoteAddress), connection.rememberedKey, this.deps.elapsedMs())
    }

    private accepted(caller: Caller, credential: string, grant: Grant): Grant {
        caller.connection?.authenticated(credential, grant)
        // [fleet] a device's key: used (a token's too: its keyId is the key that minted it), and seen
        this.deps.fleet.keyAuthenticated(grant.keyId, grant.bearer === true)
        return grant
    }

    /** Requests per key over all its connections and doors (a token counts against the key that minted it). */
    private limitKey(grant: Grant, limited: Take): void {
        if (!limited.ok) {
            const { ratePerSecond } = this.deps.keyRate.config
            throw new ApiError(429, "E_KEY_RATE_LIMITED", `over ${ratePerSecond} requests per second with key ${grant.keyId}, over all its connections; slow down`, limited.retryAfterMs)
        }
    }

    /** Answers one request. Never throws. */
    handle(caller: Caller, req: Request): Promise<Answer> {
        return new Promise((resolve) => this.answer(caller, req, { answered: (_req, answer) => resolve(answer) }, 0))
    }

    /**
     * Answers one request to `to` (a connection's session) with `tag`: a callback, not a promise, so a
     * connection's request costs no async step of its own and no promise nobody waits for. Never throws;
     * `to.answered` must not either.
     */
    answer(caller: Caller, req: Request, to: AnswerTarget, tag: number): void {
        this.answerOnce(caller, req, to, tag, req.method === "get" ? performance.now() : 0, false)
    }

    /**
     * `again`: the first run's points write was refused because keys changed after its key check (the
     * store's "keys-changed": nothing was stored); this run checks the key in full (401 if it was revoked)
     * and writes without the commit's check. Once: a request is never run a third time.
     */
    private answerOnce(caller: Caller, req: Request, to: AnswerTarget, tag: number, started: number, again: boolean): void {
        let pending: ResultToCome
        try {
            pending = this.resultOf(caller, req, again)
        } catch (e) {
            // thrown before any wait (a handler that checks at once, such as the hot path's PUT): as if rejected
            return this.failed(caller, req, to, tag, started, again, e)
        }
        // the hot path's Later: answered as the store's answer is read, no promise step (later.ts)
        listenTo(pending, new Answering(this, caller, req, to, tag, started, again))
    }

    /** answerOnce's request failed with `e`: answered with it, or run once more when keys changed after its key check. Answering's. */
    failed(caller: Caller, req: Request, to: AnswerTarget, tag: number, started: number, again: boolean, e: unknown): void {
        if (!again && e instanceof StoreError && e.failure === "keys-changed") return this.answerOnce(caller, req, to, tag, started, true)
        to.answered(req, this.answerOf(req, undefined, e, started), tag)
    }

    /** The answer to `req`: its handler's `result`, or the error `e` it threw; counted. Answering's. */
    answerOf(req: Request, result: Result | undefined, e: unknown, started: number): Answer {
        let answer: Answer
        if (result !== undefined) {
            // `short` in the literal: the session's marking of a short-form answer then changes no object's shape
            answer = { response: { token: req.token, status: result.status, resource: req.resource, body: result.body, short: req.short }, after: result.after }
        } else {
            const err = answerTo(e, this.deps.log, { method: req.method, resource: req.resource })
            answer = { response: errorResponse(err, req.token, req.resource), after: undefined }
        }
        this.deps.metrics.requestAnswered(req.method, answer.response.status)
        if (req.method === "get") this.deps.metrics.storeQuery.observe((performance.now() - started) / 1000)
        return answer
    }

    /**
     * The handler's result, or why not (thrown or rejected). Not async itself: the key and rate checks
     * that are at hand (the hot path's) run at once, and only a check that must wait adds a step.
     */
    private resultOf(caller: Caller, req: Request, again: boolean): ResultToCome {
        const m = req.resource === undefined ? undefined : matchOnce(req.resource)
        // [fleet] a claim needs no key: its credential is its activation code (handlers/claims.ts)
        const open = m?.route.open?.[req.method as keyof OpenRoutes]
        if (open) return open({ req, params: req.params ?? NO_PARAMS, caller, deps: this.deps, resource: req.resource!, path: m!.path, feed: 0 })
        const asKnown = !again && m?.route.writesPoints?.includes(req.method) === true
        const authenticated = this.authenticate(caller, req, asKnown)
        // the proven key's check made without a look (a Promise is a full check): the store checks at its commit
        if (authenticated instanceof Promise) return authenticated.then((grant) => this.limitedAndDispatched(caller, req, grant, m, undefined, again))
        return this.limitedAndDispatched(caller, req, authenticated, m, asKnown ? this.deps.keys.keysAsOf() : undefined, again)
    }

    /** After authentication: the key's rate (once per request: not again), then the handler. */
    private limitedAndDispatched(caller: Caller, req: Request, grant: Grant, m: Matched | undefined, keysAsOf: number | undefined, again: boolean): ResultToCome {
        if (again) return this.dispatch(caller, req, grant, m, keysAsOf)
        const taken = this.deps.keyRate.take(grant.keyId, this.deps.elapsedMs())
        if (taken instanceof Promise) {
            return taken.then((t) => {
                this.limitKey(grant, t)
                return this.dispatch(caller, req, grant, m, keysAsOf)
            })
        }
        this.limitKey(grant, taken)
        return this.dispatch(caller, req, grant, m, keysAsOf)
    }

    /** `m`: the route `req.resource` matched, if any. Throws, or returns the handler's promise. */
    private dispatch(caller: Caller, req: Request, grant: Grant, m: Matched | undefined, keysAsOf: number | undefined): ResultToCome {
        const params = req.params ?? NO_PARAMS
        if (req.resource === undefined) {
            // [P§8] unsubscribe without a resource: all of the connection's subscriptions
            return unsubscribeAll({ req, params, grant, caller, deps: this.deps, resource: "", path: {}, feed: 0 })
        }
        if (!m) throw notFound(`there is no resource ${req.resource}; ${hintFor(req.resource)}`)
        const ctx: Ctx = { req, params, grant, caller, deps: this.deps, resource: req.resource, path: m.path, feed: (m.feed ??= feedIdOf(m.path.feed)), keysAsOf }
        if (req.method === "subscribe" || req.method === "unsubscribe") {
            if (!m.route.subscribable) throw notAllowed(`${req.resource} cannot be subscribed to; subscribe to a feed or a datastream`)
            return req.method === "subscribe" ? subscribe(ctx) : unsubscribe(ctx)
        }
        const handler = m.route.routes[req.method]
        if (!handler) {
            // the open routes too: a claim resource supports post, though it needs no key (was: "it supports " and nothing)
            const allowed = [...Object.keys(m.route.routes), ...Object.keys(m.route.open ?? {})].join(", ")
            throw notAllowed(`${req.resource} does not support ${req.method}; it supports ${allowed}`)
        }
        return handler(ctx)
    }
}

/** One request's handler outcome, to its answer (Router.answerOnce): one object, where a promise's `then` made two closures. */
class Answering implements Settles<Result> {
    constructor(
        private readonly router: Router,
        private readonly caller: Caller,
        private readonly req: Request,
        private readonly to: AnswerTarget,
        private readonly tag: number,
        private readonly started: number,
        private readonly again: boolean,
    ) {}

    resolve(result: Result): void {
        this.to.answered(this.req, this.router.answerOf(this.req, result, undefined, this.started), this.tag)
    }

    reject(e: unknown): void {
        this.router.failed(this.caller, this.req, this.to, this.tag, this.started, this.again, e)
    }
}
