// The app port: HTTP REST at /v2/<resource> [P§1], WebSocket at /ws, GET /healthz, GET /metrics, and
// room for more handlers (the dashboard's static files and POST /jwt plug in through `extraHandlers`).
// A REST request is turned into the same envelope a device sends and goes through the same router.
import http, { type IncomingMessage, type ServerResponse } from "node:http"
import { decodeRequest, encode, type Request } from "../../../src/protocol.ts"
import { ApiError, errorBodyOf } from "../errors.ts"
import { MAX_OBJECT_BYTES } from "../limits.ts"
import type { Metrics } from "../metrics.ts"
import type { AddressBuckets } from "../ratelimit.ts"
import type { Router } from "../router.ts"
import type { WsListener } from "./ws.ts"

/** An extra route on the app port; resolves true when it answered the request. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>

export interface HttpListenerDeps {
    router: Router
    metrics: Metrics
    ws: WsListener
    /** per remote address: HTTP has no connection to hang a bucket on */
    rate: AddressBuckets
    now: () => number
    health: () => Record<string, unknown>
    extraHandlers: HttpHandler[]
}

const REST_PREFIX = "/v2"
/** Headers must arrive within 10 s and a whole request within 30 s (bodies are at most 16 KiB). */
const HTTP_HEADERS_TIMEOUT_MS = 10_000
const HTTP_REQUEST_TIMEOUT_MS = 30_000
const HTTP_METHODS = new Set(["get", "put", "post", "delete"])

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = body === undefined ? "" : encode(body)
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers })
    res.end(text)
}

function sendError(res: ServerResponse, err: ApiError): void {
    const headers: Record<string, string> = {}
    if (err.retryAfterMs !== undefined) headers["retry-after"] = String(Math.ceil(err.retryAfterMs / 1000))
    sendJson(res, err.status, errorBodyOf(err.status, err.code, err.message, err.retryAfterMs), headers)
}

/** Reads a body of at most MAX_OBJECT_BYTES. */
function readBody(req: IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
        const declared = Number(req.headers["content-length"] ?? 0)
        if (declared > MAX_OBJECT_BYTES) return reject(new ApiError(413, "E_TOO_LARGE", `a request body may be at most ${MAX_OBJECT_BYTES} bytes`))
        const parts: Buffer[] = []
        let size = 0
        req.on("data", (c: Buffer) => {
            size += c.length
            if (size > MAX_OBJECT_BYTES) {
                reject(new ApiError(413, "E_TOO_LARGE", `a request body may be at most ${MAX_OBJECT_BYTES} bytes`))
                req.destroy()
            } else parts.push(c)
        })
        req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")))
        req.on("error", reject)
    })
}

/** [P§1] method -> method, path minus /v2 -> resource, query -> params, X-ApiKey / ?key= / Authorization -> headers, body -> body. */
async function envelopeOf(req: IncomingMessage, url: URL): Promise<Request> {
    const method = (req.method ?? "").toLowerCase()
    if (!HTTP_METHODS.has(method)) throw new ApiError(405, "E_BAD_METHOD", "use GET, PUT, POST or DELETE")
    const params: Record<string, string> = {}
    for (const [k, v] of url.searchParams) if (k !== "key") params[k] = v
    let key = req.headers["x-apikey"] as string | undefined
    key ??= url.searchParams.get("key") ?? undefined
    const authorization = req.headers["authorization"]
    if (key === undefined && authorization && /^Bearer\s/i.test(authorization)) key = authorization
    let body: unknown
    const text = method === "get" || method === "delete" ? "" : await readBody(req)
    if (text.trim() !== "") {
        try {
            body = JSON.parse(text)
        } catch {
            throw new ApiError(400, "E_BAD_JSON", "the request body is not valid JSON")
        }
    }
    // through the shared decoder, so REST requests are validated exactly as device requests are
    const decoded = decodeRequest(
        JSON.stringify({ method, resource: url.pathname.slice(REST_PREFIX.length) || "/", params, headers: key === undefined ? undefined : { "X-ApiKey": key }, body }),
    )
    if (decoded.error) throw new ApiError(decoded.error.status, decoded.error.code, decoded.error.reason)
    return decoded.request!
}

export function createHttpListener(deps: HttpListenerDeps): http.Server {
    // requireHostHeader off: a request without Host (HTTP/1.1 wants one; we serve no virtual hosts) gets our
    // coded answer, not Node's bare 400 with an empty body
    const server = http.createServer({ requireHostHeader: false }, async (req, res) => {
        try {
            const url = new URL(req.url ?? "/", "http://localhost")
            if (url.pathname === "/healthz" && req.method === "GET") return sendJson(res, 200, deps.health())
            if (url.pathname === "/metrics" && req.method === "GET") {
                const text = deps.metrics.render()
                res.writeHead(200, { "content-type": "text/plain; version=0.0.4" })
                return void res.end(text)
            }
            if (url.pathname === REST_PREFIX || url.pathname.startsWith(REST_PREFIX + "/")) {
                const remoteAddress = req.socket.remoteAddress ?? "?"
                const limited = deps.rate.take(remoteAddress, deps.now())
                if (!limited.ok) throw new ApiError(429, "E_RATE_LIMITED", "too many requests from this address; slow down", limited.retryAfterMs)
                const envelope = await envelopeOf(req, url)
                const { response } = await deps.router.handle({ transport: "http", remoteAddress }, envelope)
                const headers: Record<string, string> = {}
                const body = response.body as Record<string, unknown> | undefined
                if (response.status === 201 && typeof body?.resource === "string") headers.location = REST_PREFIX + body.resource
                if (typeof body?.retry_after_ms === "number") headers["retry-after"] = String(Math.ceil(body.retry_after_ms / 1000))
                return sendJson(res, response.status, response.body, headers)
            }
            for (const handler of deps.extraHandlers) if (await handler(req, res)) return
            sendJson(res, 404, errorBodyOf(404, "E_NOT_FOUND", `nothing at ${url.pathname}; the REST API is under ${REST_PREFIX}/, WebSocket at /ws`))
        } catch (e) {
            if (res.headersSent) return void res.destroy()
            sendError(res, e instanceof ApiError ? e : new ApiError(500, "E_INTERNAL", "the server failed to handle this request"))
        }
    })
    // Requests Node's parser refuses (lowercase method, control bytes, NUL in a header) never reach the
    // handler; without this Node answers a bare 400 with no reason a person could act on.
    server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
        if (!socket.writable || (socket as { _httpMessage?: unknown })._httpMessage) return void socket.destroy()
        const timeout = err.code === "ERR_HTTP_REQUEST_TIMEOUT" || err.code === "ERR_HTTP_HEADERS_TIMEOUT"
        const status = timeout ? 408 : err.code === "HPE_HEADER_OVERFLOW" ? 431 : 400
        const reason = timeout
            ? "the request took too long to arrive"
            : `the request is not valid HTTP/1.1 (${err.code ?? "parse error"}); send an upper-case method, a path and printable headers`
        const body = JSON.stringify(errorBodyOf(status, timeout ? "E_TIMEOUT" : "E_BAD_HTTP", reason))
        socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
    })
    // a client that trickles its headers or body (slowloris) is cut off
    server.headersTimeout = HTTP_HEADERS_TIMEOUT_MS
    server.requestTimeout = HTTP_REQUEST_TIMEOUT_MS
    server.on("upgrade", (req, socket, head) => {
        if (new URL(req.url ?? "/", "http://localhost").pathname === "/ws") deps.ws.upgrade(req, socket, head)
        else socket.destroy()
    })
    return server
}
