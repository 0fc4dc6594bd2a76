// The app port (HTTPS or, on loopback, HTTP): REST at /v2/<resource> [P§1], WebSocket at /ws, GET /healthz, GET /metrics, and
// room for more handlers (the dashboard's static files and POST /jwt plug in through `extraHandlers`).
// A REST request is turned into the same envelope a device sends and goes through the same router.
import { isUtf8 } from "node:buffer"
import http, { type IncomingMessage, type ServerResponse } from "node:http"
import https from "node:https"
import type net from "node:net"
import type { Duplex } from "node:stream"
import type tls from "node:tls"
import { decodeRequest, encode, jsonDepthExceeds, MAX_DEPTH, type Request } from "../../../src/protocol.ts"
import { credentialOf, nodeHeaders } from "../auth/credential.ts"
import { ApiError, answerTo, errorBodyOf, isProgrammingError, tooManyRefusals } from "../errors.ts"
import { CLOSE_GRACE_MS, HTTP_HEADERS_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS, HTTP_TIMEOUT_CHECK_MS, MAX_OBJECT_BYTES } from "../limits.ts"
import type { Logger } from "../log.ts"
import type { Metrics } from "../metrics.ts"
import type { ClockedBuckets, Take } from "../ratelimit.ts"
import { limitKeyOf } from "../limit-key.ts"
import { httpMethodsOf, type Router } from "../router.ts"
import { corsHeadersOf, isPreflight, preflightHeadersOf, type CorsPolicy } from "./cors.ts"
import type { HttpConnections } from "./http-connections.ts"
import { UNTRUSTED_PROXY_HEADER, untrustedProxyHeader } from "./proxy-front.ts"
import type { WsListener } from "./ws.ts"

/** An extra route on the app port; resolves true when it answered the request. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>

export interface HttpListenerDeps {
    router: Router
    metrics: Metrics
    log: Logger
    ws: WsListener
    /** the app port's HTTP connection budget: a connection upgraded to /ws leaves it (admission counts it from there) */
    connections?: HttpConnections
    /** per remote address (HTTP has no connection to hang a bucket on), on the monotonic clock */
    rate: ClockedBuckets
    /** [P§6] the refusals of `rate` per remote address (ratelimit.ts refusalBudgetOf): past them, an answer closes its connection */
    refusals: ClockedBuckets
    /** GET /healthz and GET /metrics per remote address, apart from `rate` (limits.ts MONITORING_RATE_PER_SECOND) */
    monitoring: ClockedBuckets
    now: () => number
    health: () => Record<string, unknown>
    extraHandlers: HttpHandler[]
    /** origins whose pages may call the port from a browser (--cors-origins); undefined: none */
    cors?: CorsPolicy
    /** the requests being answered, which a shutdown lets finish (shutdown.ts) */
    inFlight?: HttpRequestsInFlight
}

/**
 * HTTP requests being answered, from their headers until their response finished or their connection closed: a
 * shutdown lets them finish, as it does the connections' (it counted those only, so a REST write in flight met
 * the closed store and was refused).
 */
export class HttpRequestsInFlight {
    count = 0

    began(res: ServerResponse): void {
        this.count++
        let done = false
        const end = () => {
            if (!done) (done = true), this.count--
        }
        // "finish" too: the response answerWithoutUpgrade makes for a socket Node detached emits no "close"
        res.once("finish", end)
        res.once("close", end)
    }
}

const REST_PREFIX = "/v2"
/** Headers must arrive within headersTimeoutMs and a whole request within requestTimeoutMs (limits.ts). */
export interface HttpTimeouts {
    headersTimeoutMs: number
    requestTimeoutMs: number
}

const HTTP_METHODS = new Set(["get", "put", "post", "delete"])
/** [P§1] the methods of the port, for a 405's Allow (RFC 9110 wants it); HEAD is GET without the body */
const ALLOWED_METHODS = "GET, HEAD, PUT, POST, DELETE"
/** HEAD is answered as GET (Node sends the headers, Content-Length included, and no body): curl -I, health checks */
const isGetOrHead = (method: string | undefined) => method === "GET" || method === "HEAD"

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = body === undefined ? "" : encode(body)
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers })
    res.end(text)
}

/** The Retry-After header (whole seconds) of an answer whose body says retry_after_ms [P§6]; none without it. */
export function retryAfterOf(body: unknown): Record<string, string> {
    const ms = (body as { retry_after_ms?: unknown } | undefined)?.retry_after_ms
    return typeof ms === "number" ? { "retry-after": String(Math.ceil(ms / 1000)) } : {}
}

function sendError(res: ServerResponse, err: ApiError, extraHeaders: Record<string, string> = {}): void {
    const headers: Record<string, string> = { ...extraHeaders }
    if (err.code === "E_BAD_METHOD") headers.allow ??= ALLOWED_METHODS
    if (err.retryAfterMs !== undefined) headers["retry-after"] = String(Math.ceil(err.retryAfterMs / 1000))
    sendJson(res, err.status, errorBodyOf(err.status, err.code, err.message, err.retryAfterMs, err.extra), headers)
}

/**
 * Reads a request body of at most `maxBytes` (the app port's one reader; extensions use it too): over it,
 * 413 E_TOO_LARGE. A body that grows past it (chunked, or longer than it said) is not kept: the rest is read
 * and dropped while the 413 goes out, as Node does for a declared length over it (destroying the request
 * instead left the client with no answer at all); the request deadline bounds how long that lasts.
 */
export function readBody(req: IncomingMessage, maxBytes = MAX_OBJECT_BYTES): Promise<Buffer> {
    return new Promise((resolve, reject) => {
        const tooLarge = () => new ApiError(413, "E_TOO_LARGE", `a request body may be at most ${maxBytes} bytes`)
        const declared = Number(req.headers["content-length"] ?? 0)
        if (declared > maxBytes) return reject(tooLarge())
        const parts: Buffer[] = []
        let size = 0
        const onData = (c: Buffer) => {
            size += c.length
            if (size <= maxBytes) return void parts.push(c)
            parts.length = 0
            req.off("data", onData)
            req.resume()
            reject(tooLarge())
        }
        req.on("data", onData)
        req.on("end", () => resolve(Buffer.concat(parts)))
        req.on("error", reject)
    })
}

const BAD_UTF8 = "is not valid UTF-8; send text as UTF-8 (non-ASCII may also be escaped as \\uXXXX in JSON); nothing was done"

/**
 * [P§3, §5] A request body as text, on every route of the port that reads one (/v2, and POST /jwt, which read
 * bytes that are not UTF-8 as U+FFFD and minted a token): 400 E_BAD_UTF8 when it is not UTF-8; a byte order mark
 * before it is skipped, as at the start of a stream (.NET's StreamWriter with Encoding.UTF8 writes one).
 */
export function bodyText(bytes: Buffer): string {
    if (!isUtf8(bytes)) throw new ApiError(400, "E_BAD_UTF8", `the request body ${BAD_UTF8}`)
    return bytes.toString("utf8").replace(/^\uFEFF/, "")
}

/**
 * [P§5] Why a request target must be refused before any routing, or undefined. URL parsing would
 * resolve `..`, `%2e%2e` and backslashes into another path: they are refused as they came, on every
 * path of the app port, so no route ever sees a normalised stand-in for what was asked.
 */
export function requestTargetProblem(target: string): string | undefined {
    if (!target.startsWith("/")) return "send a path starting with /"
    const q = target.indexOf("?")
    const path = q < 0 ? target : target.slice(0, q)
    if (path.includes("\\") || /%5c/i.test(path)) return "backslashes are not allowed in a path"
    if (/%2e/i.test(path)) return "percent-escaped dots are not allowed in a path"
    if (path.split("/").some((seg, i, all) => seg === "." || seg === ".." || (seg === "" && i > 0 && i < all.length - 1))) {
        return "a path may not hold ., .. or empty segments"
    }
    return undefined
}

/**
 * [P§5] Each query parameter percent-decoded strictly: malformed escapes or invalid UTF-8 are refused, not turned into
 * U+FFFD. A repeated one is its last value, but for `key`, a credential, whose every value is kept (`keys`) so that
 * two different ones are refused (auth/credential.ts) rather than the last taken.
 */
function paramsOf(target: string): { params: Record<string, string>; keys: string[] } {
    const q = target.indexOf("?")
    const params: Record<string, string> = {}
    const keys: string[] = []
    if (q < 0) return { params, keys }
    for (const pair of target.slice(q + 1).split("&")) {
        if (pair === "") continue
        const eq = pair.indexOf("=")
        let name: string, value: string
        try {
            name = decodeURIComponent((eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, " "))
            value = eq < 0 ? "" : decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, " "))
        } catch {
            throw new ApiError(400, "E_BAD_UTF8", `the query parameter ${JSON.stringify(pair.slice(0, 40))} has a malformed %-escape or ${BAD_UTF8}`)
        }
        if (name === "key") keys.push(value)
        else params[name] = value
    }
    return { params, keys }
}

/** [P§1] method -> method, path minus /v2 -> resource, query -> params, X-ApiKey / ?key= / Authorization -> headers, body -> body. */
async function envelopeOf(req: IncomingMessage, target: string): Promise<Request> {
    const method = req.method === "HEAD" ? "get" : (req.method ?? "").toLowerCase()
    if (!HTTP_METHODS.has(method)) throw new ApiError(405, "E_BAD_METHOD", "use GET, HEAD, PUT, POST or DELETE")
    const { params, keys } = paramsOf(target)
    // [P§7] one rule on every door (auth/credential.ts): two different credentials are refused, not one chosen
    const key = credentialOf(nodeHeaders(req.headersDistinct), keys)
    let body: unknown
    const text = bodyText(method === "get" || method === "delete" ? Buffer.alloc(0) : await readBody(req))
    if (text.trim() !== "") {
        // [P§5] the one depth check of every door, before anything recursive (JSON.stringify below) runs;
        // the body sits one level inside the envelope
        if (jsonDepthExceeds(text, MAX_DEPTH - 1)) throw new ApiError(400, "E_TOO_DEEP", `the request body nests more than ${MAX_DEPTH - 1} levels deep`)
        try {
            body = JSON.parse(text)
        } catch {
            throw new ApiError(400, "E_BAD_JSON", "the request body is not valid JSON")
        }
    }
    const q = target.indexOf("?")
    const path = q < 0 ? target : target.slice(0, q)
    // through the shared decoder, so REST requests are validated exactly as device requests are (the
    // path as it came, not as URL parsing normalised it)
    const decoded = decodeRequest(
        JSON.stringify({ method, resource: path.slice(REST_PREFIX.length) || "/", params, headers: key === undefined ? undefined : { "X-ApiKey": key }, body }),
    )
    if (decoded.error) throw new ApiError(decoded.error.status, decoded.error.code, decoded.error.reason)
    return decoded.request!
}

const WS_PATH = "/ws"

/**
 * [P§3] A plain request to /ws (a browser tab, curl, a client without the Upgrade header): the same coded refusal as
 * a handshake ws cannot take. Was a 404 saying "nothing at /ws; … WebSocket at /ws".
 */
function notAWebSocketHandshake(method: string | undefined): ApiError {
    const reason = "/ws is the WebSocket endpoint and this request did not ask for a WebSocket; open it with GET /ws, Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key, as every WebSocket library does (the REST API is under /v2/)"
    return isGetOrHead(method) ? new ApiError(400, "E_BAD_WEBSOCKET", reason) : new ApiError(405, "E_BAD_WEBSOCKET", reason)
}

/** A CORS preflight's answer: 204 with what `origin` may send, or 403 E_ORIGIN_NOT_ALLOWED and no CORS headers. */
function answerPreflight(res: ServerResponse, policy: CorsPolicy | undefined, origin: string): void {
    const headers = preflightHeadersOf(policy, origin)
    if (!headers) {
        const reason = policy
            ? `pages from ${JSON.stringify(origin.slice(0, 80))} may not call this server: it is not among its --cors-origins`
            : "this server takes no cross-origin calls from browsers; its operator may allow a web app's origin with --cors-origins"
        throw new ApiError(403, "E_ORIGIN_NOT_ALLOWED", reason)
    }
    res.writeHead(204, headers)
    res.end()
}

/**
 * Sends `text` and closes, then destroys the socket after CLOSE_GRACE_MS whatever the peer does: a
 * half-close alone (end()) leaves a socket that never reads or closes holding its descriptor for ever
 * (the HTTP server allows half-open sockets).
 */
export function endAndDestroy(socket: Duplex, text: string): void {
    socket.end(text)
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref()
}

/**
 * A whole HTTP/1.1 response with a coded error body, for sockets no request object owns (the parser refused
 * it, it came in clear to the HTTPS port, a WebSocket handshake was refused); `headers`: lines to add.
 */
export function rawErrorResponse(status: number, code: string, reason: string, headers: Record<string, string> = {}): string {
    const body = JSON.stringify(errorBodyOf(status, code, reason))
    const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("")
    return `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`
}

/**
 * The app port's HTTP server; with `tlsOptions` an HTTPS (and WSS) server, which listens behind
 * createTlsFront (app-port.ts) so that plain HTTP sent to it gets an answer it can read.
 */
export function createHttpListener(deps: HttpListenerDeps, tlsOptions?: tls.TlsOptions, opts: HttpTimeouts = { headersTimeoutMs: HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: HTTP_REQUEST_TIMEOUT_MS }): http.Server {
    // requireHostHeader off: a request without Host (HTTP/1.1 wants one; we serve no virtual hosts) gets our
    // coded answer, not Node's bare 400 with an empty body
    /**
     * [P§6] Connections answered 429 E_TOO_MANY_REFUSALS: that answer closes them, and a request pipelined behind it is
     * not taken (RFC 9112 §9.6: the client sends it again on a new connection). Without this an address over its
     * rate had every request answered 429, some 33,000 a second on one keep-alive connection.
     */
    const closing = new WeakSet<object>()
    /** A request over a budget (`limited`): 429 E_RATE_LIMITED, or past the address's refusals 429 E_TOO_MANY_REFUSALS, and its connection closes. */
    const refuseOverRate = (req: IncomingMessage, res: ServerResponse, address: string, limited: Take, reason: string): void => {
        const refusal = deps.refusals.take(address)
        if (refusal.ok) throw new ApiError(429, "E_RATE_LIMITED", reason, limited.retryAfterMs)
        closing.add(req.socket)
        const what = "this connection closes; wait retry_after_ms (Retry-After) after each 429 before sending again"
        sendError(res, tooManyRefusals("this address went on sending", deps.refusals.config, what, refusal.retryAfterMs), { connection: "close" })
    }
    const handler = async (req: IncomingMessage, res: ServerResponse) => {
        if (closing.has(req.socket)) return
        deps.inFlight?.began(res)
        const origin = typeof req.headers.origin === "string" ? req.headers.origin : undefined
        // on every answer, errors included (writeHead merges them): an allowed web app reads a 401's reason, a 429's Retry-After
        for (const [name, value] of Object.entries(corsHeadersOf(deps.cors, origin))) res.setHeader(name, value)
        try {
            const target = req.url ?? "/"
            const problem = requestTargetProblem(target)
            if (problem) throw new ApiError(400, "E_BAD_RESOURCE", `${problem}: ${JSON.stringify(target.slice(0, 80))}`)
            const url = new URL(target, "http://localhost")
            if ((url.pathname === "/healthz" || url.pathname === "/metrics") && !isGetOrHead(req.method)) {
                // it is there, for GET: not the 404 "nothing at /healthz" of a path that is not
                return sendError(res, new ApiError(405, "E_BAD_METHOD", `${url.pathname} answers GET (or HEAD) only`), { allow: "GET, HEAD" })
            }
            const address = limitKeyOf(req.socket.remoteAddress ?? "?")
            if (url.pathname === "/healthz" || url.pathname === "/metrics") {
                const checked = deps.monitoring.take(address)
                if (!checked.ok) return refuseOverRate(req, res, address, checked, `${url.pathname} takes at most ${deps.monitoring.config.ratePerSecond} requests a second from one address; slow down`)
            }
            if (url.pathname === "/healthz") return sendJson(res, 200, deps.health())
            if (url.pathname === "/metrics") {
                const text = deps.metrics.render()
                res.writeHead(200, { "content-type": "text/plain; version=0.0.4" })
                return void res.end(text)
            }
            // every other request spends the address's budget: REST, and the extensions' routes too (POST and
            // DELETE /jwt were unlimited: a key of any tenant could store sign-outs as fast as it could send them)
            const remoteAddress = req.socket.remoteAddress ?? "?"
            const limited = deps.rate.take(address)
            if (!limited.ok) return refuseOverRate(req, res, address, limited, "too many requests from this address; slow down")
            // a preflight spends the address's budget (above: no flood of them) and never a key's (it carries none)
            if (isPreflight(req.method, req.headers)) return answerPreflight(res, deps.cors, origin!)
            if (url.pathname === REST_PREFIX || url.pathname.startsWith(REST_PREFIX + "/")) {
                const envelope = await envelopeOf(req, target)
                const { response } = await deps.router.handle({ transport: "http", remoteAddress }, envelope)
                const body = response.body as Record<string, unknown> | undefined
                const headers = retryAfterOf(body)
                const allow = response.status === 405 ? httpMethodsOf(envelope.resource!) : undefined
                if (allow) headers.allow = allow
                if (response.status === 201 && typeof body?.resource === "string") headers.location = REST_PREFIX + body.resource
                return sendJson(res, response.status, response.body, headers)
            }
            // a WebSocket handshake comes as an upgrade (below); anything else at /ws is a client that did not ask for one
            if (url.pathname === WS_PATH) throw notAWebSocketHandshake(req.method)
            for (const handler of deps.extraHandlers) if (await handler(req, res)) return
            sendJson(res, 404, errorBodyOf(404, "E_NOT_FOUND", `nothing at ${url.pathname}; the REST API is under ${REST_PREFIX}/, WebSocket at /ws`))
        } catch (e) {
            // answered already (a deadline's 408), or the client went away mid-request (its body's read failed): nothing to say
            if (res.headersSent || (req.socket.destroyed && isProgrammingError(e))) return void res.destroy()
            sendError(res, answerTo(e, deps.log, { method: req.method, path: (req.url ?? "").split("?")[0] }))
        }
    }
    const httpOptions: http.ServerOptions = {
        requireHostHeader: false,
        // a client that trickles its headers or body (slowloris) is cut off, within a second of its deadline
        headersTimeout: opts.headersTimeoutMs,
        requestTimeout: opts.requestTimeoutMs,
        connectionsCheckingInterval: HTTP_TIMEOUT_CHECK_MS,
    }
    const server = tlsOptions ? https.createServer({ ...tlsOptions, ...httpOptions }, handler) : http.createServer(httpOptions, handler)
    // a client that half-closes once its request is sent (`printf … | nc -N`, `openssl s_client` at its input's end)
    // gets its answer, then the socket ends, as on the device port [P§3]: Node's default ended the socket at the
    // client's FIN, so an answer that took an I/O turn (POST /jwt minting its token) was never sent. Node's own
    // switch (node:_http_server, since 0.x; not in @types/node): its answer is marked last and the socket ends after it
    ;(server as { httpAllowHalfOpen?: boolean }).httpAllowHalfOpen = true
    // a socket on which nothing moves for twice as long as a whole request may take (a client that never
    // reads its response) is destroyed; after the request deadline, so that a slow request gets its 408
    // first. Idle keep-alive sockets go after keepAliveTimeout (5 s) already
    server.timeout = 2 * opts.requestTimeoutMs
    // Requests Node's parser refuses (lowercase method, control bytes, NUL in a header) never reach the
    // handler; without this Node answers a bare 400 with no reason a person could act on. Anything else
    // (a reset, a failed TLS handshake: no HTTP spoken yet) is just closed.
    // A request over its deadline (headers or body still arriving) gets its 408 the same way: on its
    // response when the handler has one, else raw. Either way the socket is destroyed after the grace.
    server.on("clientError", (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket) => {
        // plain HTTP: a PROXY header from a peer not in --trusted-proxies is what the parser refused
        if (err.rawPacket && socket.writable && untrustedProxyHeader(err.rawPacket, socket as net.Socket, deps.log, "app", (code) => deps.metrics.proxyHeadersRefused.add({ code }))) {
            return endAndDestroy(socket, rawErrorResponse(400, UNTRUSTED_PROXY_HEADER.code, UNTRUSTED_PROXY_HEADER.reason))
        }
        const spokeHttp = err.code?.startsWith("HPE_") || err.code?.startsWith("ERR_HTTP_")
        const res = (socket as { _httpMessage?: ServerResponse })._httpMessage
        if (!spokeHttp || !socket.writable || res?.headersSent) return void socket.destroy()
        const timeout = err.code === "ERR_HTTP_REQUEST_TIMEOUT" || err.code === "ERR_HTTP_HEADERS_TIMEOUT"
        // headers over the limit are valid HTTP: say what is too large (was: "not valid HTTP/1.1 … send an upper-case method")
        const overflow = err.code === "HPE_HEADER_OVERFLOW"
        const status = timeout ? 408 : overflow ? 431 : 400
        const code = timeout ? "E_TIMEOUT" : overflow ? "E_HEADERS_TOO_LARGE" : "E_BAD_HTTP"
        const reason = timeout
            ? "the request took too long to arrive"
            : overflow
              ? `the request line and headers take more than ${http.maxHeaderSize} bytes; send fewer or shorter headers (a large cookie for this host?)`
              : `the request is not valid HTTP/1.1 (${err.code ?? "parse error"}); send an upper-case method, a path and printable headers`
        if (!res) return endAndDestroy(socket, rawErrorResponse(status, code, reason))
        sendError(res, new ApiError(status, code, reason), { connection: "close" })
        setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref()
    })
    // an Expect other than 100-continue: Node's own 417 has no body, so no code or reason
    server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
        const expect = String(req.headers.expect ?? "").slice(0, 80)
        sendError(res, new ApiError(417, "E_BAD_EXPECT", `this server meets no expectation but 100-continue, not ${JSON.stringify(expect)}; leave out the Expect header (or send Expect: 100-continue) and send the request again`))
    })
    // CONNECT (a client taking the port for a proxy) gets the same coded 405 as any other method we do not
    // serve; without a listener Node drops the socket with no answer
    server.on("connect", (_req, socket: Duplex) => endAndDestroy(socket, rawErrorResponse(405, "E_BAD_METHOD", "this is not a proxy: use GET, HEAD, PUT, POST or DELETE", { allow: ALLOWED_METHODS })))
    server.on("upgrade", (req, socket, head) => {
        const target = req.url ?? "/"
        const problem = requestTargetProblem(target)
        if (problem) return endAndDestroy(socket, rawErrorResponse(400, "E_BAD_RESOURCE", `${problem}: ${JSON.stringify(target.slice(0, 80))}`))
        if (new URL(target, "http://localhost").pathname === WS_PATH) {
            deps.connections?.becameWebSocket(socket)
            return deps.ws.upgrade(req, socket, head)
        }
        if (String(req.headers.upgrade).toLowerCase() !== "websocket") return answerWithoutUpgrade(req, socket)
        endAndDestroy(socket, rawErrorResponse(404, "E_NOT_FOUND", "the WebSocket is at /ws"))
    })
    /**
     * An Upgrade this port does not speak (h2c: `curl --http2 http://…`) is ignored, as RFC 9110 §7.8 lets a server:
     * the request is answered in HTTP/1.1 and the connection closes. Was: every such request, GET /healthz
     * included, 404 "the WebSocket is at /ws". Node hands each Upgrade request here with its parser detached, so a
     * body can no longer be read: a request that has one is refused, coded.
     */
    const answerWithoutUpgrade = (req: IncomingMessage, socket: Duplex) => {
        if (req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0) {
            const reason = `this port does not switch to ${JSON.stringify(String(req.headers.upgrade).slice(0, 40))}; send the request again without the Upgrade header (curl: without --http2 on http://)`
            return endAndDestroy(socket, rawErrorResponse(400, "E_BAD_UPGRADE", reason))
        }
        const res = new http.ServerResponse(req)
        res.shouldKeepAlive = false
        res.assignSocket(socket as net.Socket)
        res.on("finish", () => {
            res.detachSocket(socket as net.Socket)
            endAndDestroy(socket, "")
        })
        void handler(req, res)
    }
    return server
}
