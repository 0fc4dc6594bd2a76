// Everything the server needs to offer the dashboard, in one call: the page and its files at `/`,
// POST/DELETE /jwt, and the verifier for `Bearer <jwt>` credentials on every request [P§7].
//
//   const dash = mountDashboard({ dataDir, store, keys })
//   new Router({ ..., verifyBearer: dash.verifyBearer }); createHttpListener({ ..., extraHandlers: dash.httpHandlers })

import type { IncomingMessage, ServerResponse } from "node:http"
import { errorBody } from "../../src/protocol.ts"
import { handleJwtRequest } from "../auth-tokens/endpoint.ts"
import { bearerVerifier, tokenAuthorityFor, type KeyStoreLike } from "../auth-tokens/server-glue.ts"
import type { Grant, TokenAuthority, VerifiedToken } from "../auth-tokens/tokens.ts"
import { serveDashboard } from "./static.ts"

/** POST /jwt bodies are tiny ({"ttl":3600}); anything bigger is not a token request. */
const MAX_JWT_BODY_BYTES = 4096

export interface DashboardDeps {
    dataDir: string
    /** the server's store: keys by id, and the version that changes when keys do */
    store: KeyStoreLike
    /** the server's key ring: the grant of a secret API key, and the signed-out token families (durable) */
    keys: {
        authenticate(secret: string): Promise<Grant | undefined>
        isTokenFamilyRevoked(family: string): Promise<boolean>
        revokeTokenFamily(family: string, untilMs: number): Promise<void>
    }
    /** how long one sign-in (a token and its renewals) may last; default DEFAULT_TOKEN_MAX_AGE_MS (24 h) */
    tokenMaxAgeMs?: number
    /**
     * The server's failed-authentication limiter per remote address (the router's), so that POST /jwt
     * is no way around it for someone guessing keys. A function: the router is made after the verifier.
     */
    authFailures?: () => AuthFailureLimiter
    now?: () => number
}

export interface AuthFailureLimiter {
    peek(address: string, nowMs: number): { ok: boolean; retryAfterMs: number }
    take(address: string, nowMs: number): unknown
}

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>

export interface MountedDashboard {
    authority: TokenAuthority
    verifyBearer: (token: string) => Promise<VerifiedToken | undefined>
    httpHandlers: HttpHandler[]
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body)
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "cache-control": "no-store" })
    res.end(text)
}

function readJsonBody(req: IncomingMessage): Promise<{ body?: unknown; error?: string }> {
    return new Promise((resolve) => {
        const parts: Buffer[] = []
        let size = 0
        req.on("data", (c: Buffer) => {
            size += c.length
            if (size > MAX_JWT_BODY_BYTES) {
                resolve({ error: `the body may be at most ${MAX_JWT_BODY_BYTES} bytes` })
                req.destroy()
            } else parts.push(c)
        })
        req.on("end", () => {
            const text = Buffer.concat(parts).toString("utf8").trim()
            if (!text) return resolve({})
            try {
                resolve({ body: JSON.parse(text) })
            } catch {
                resolve({ error: "the body is not valid JSON" })
            }
        })
        req.on("error", () => resolve({ error: "the body could not be read" }))
    })
}

export function mountDashboard(deps: DashboardDeps): MountedDashboard {
    const authority = tokenAuthorityFor(deps.dataDir, deps.store, {
        now: deps.now,
        maxAgeMs: deps.tokenMaxAgeMs,
        revocations: { isRevoked: (f) => deps.keys.isTokenFamilyRevoked(f), revoke: (f, until) => deps.keys.revokeTokenFamily(f, until) },
    })
    const jwt: HttpHandler = async (req, res) => {
        if (new URL(req.url ?? "/", "http://localhost").pathname !== "/jwt") return false
        const now = deps.now ?? Date.now
        const address = req.socket.remoteAddress ?? "?"
        const limiter = deps.authFailures?.()
        const limited = limiter?.peek(address, now())
        if (limited && !limited.ok) {
            const b = errorBody("Too Many Requests", "too many failed keys from this address; wait before trying again", "E_AUTH_RATE_LIMITED")
            sendJson(res, 429, { ...b, retry_after_ms: Math.ceil(limited.retryAfterMs) })
            return true
        }
        const { body, error } = await readJsonBody(req)
        if (error) {
            sendJson(res, 400, errorBody("Bad Request", error, "E_BAD_BODY"))
            return true
        }
        const r = await handleJwtRequest({ method: req.method ?? "", headers: req.headers, body }, { authority, authenticateKey: (s) => deps.keys.authenticate(s) })
        if (r.status === 401) limiter?.take(address, now())
        sendJson(res, r.status, r.body)
        return true
    }
    return { authority, verifyBearer: bearerVerifier(authority), httpHandlers: [jwt, serveDashboard] }
}
