// Everything the server needs to offer the dashboard, as one extension (devs/server/extensions.ts): the page
// and its files at `/`, POST/DELETE /jwt, and the verifier for `Bearer <jwt>` credentials on every request
// [P§7]. Tokens are checked against the server's key ring, and /jwt shares its failed-key limiter.
//
//   startServer({ ..., extensions: [mountDashboard({ tokenMaxAgeMs })] })

import { errorBody } from "../../src/protocol.ts"
import { credentialOf, handleJwtRequest } from "../auth-tokens/endpoint.ts"
import { bearerVerifier, tokenAuthorityFor } from "../auth-tokens/server-glue.ts"
import type { ServerExtension } from "../server/extensions.ts"
import { ApiError, errorBodyOf } from "../server/errors.ts"
import { bodyText, readBody, retryAfterOf, sendJson, type HttpHandler } from "../server/listeners/http.ts"
import { TOKEN_MINT_BURST, TOKEN_MINT_RATE_PER_SECOND } from "../server/limits.ts"
import { limitKeyOf } from "../server/limit-key.ts"
import { serveDashboard } from "./static.ts"

/** POST /jwt bodies are tiny ({"ttl":3600}); anything bigger is not a token request. */
const MAX_JWT_BODY_BYTES = 4096
const NO_STORE = { "cache-control": "no-store" }

export interface DashboardOptions {
    /** how long one sign-in (a token and its renewals) may last; default DEFAULT_TOKEN_MAX_AGE_MS (24 h) */
    tokenMaxAgeMs?: number
    /** tokens (sign-ins and renewals) per key per second over every process, and their burst; default limits.ts TOKEN_MINT_* */
    tokenMintRatePerSecond?: number
    tokenMintBurst?: number
}

/** The JSON body of a token request, or why it cannot be one (a body over the limit: 413, as on /v2). */
async function jwtBodyOf(req: Parameters<HttpHandler>[0]): Promise<{ body?: unknown; error?: ApiError }> {
    let text: string
    try {
        text = bodyText(await readBody(req, MAX_JWT_BODY_BYTES)).trim()
    } catch (e) {
        return { error: e instanceof ApiError ? e : new ApiError(400, "E_BAD_BODY", "the body could not be read") }
    }
    if (!text) return {}
    try {
        return { body: JSON.parse(text) }
    } catch {
        return { error: new ApiError(400, "E_BAD_BODY", "the body is not valid JSON") }
    }
}

export function mountDashboard(o: DashboardOptions = {}): ServerExtension {
    return (core) => {
        const { keys, authFailures, provenKeys, keyUsed, now, elapsedMs } = core
        const tokenBudget = core.keyRate({ ratePerSecond: o.tokenMintRatePerSecond ?? TOKEN_MINT_RATE_PER_SECOND, burst: o.tokenMintBurst ?? TOKEN_MINT_BURST })
        // named apart from the per-key request budgets it may share a store with (key ids are hex)
        const spendToken = (keyId: string) => tokenBudget.take(`jwt:${keyId}`, elapsedMs())
        const authority = tokenAuthorityFor(core.dataDir, (id) => keys.findKey(id), {
            now,
            maxAgeMs: o.tokenMaxAgeMs,
            revocations: { isRevoked: (f) => keys.isTokenFamilyRevoked(f), revoke: (f, until) => keys.revokeTokenFamily(f, until) },
        })
        const jwt: HttpHandler = async (req, res) => {
            if (new URL(req.url ?? "/", "http://localhost").pathname !== "/jwt") return false
            const address = limitKeyOf(req.socket.remoteAddress ?? "?")
            let key: string | undefined
            try {
                key = credentialOf(req.headersDistinct).key
            } catch (e) {
                if (!(e instanceof ApiError)) throw e
                sendJson(res, e.status, errorBodyOf(e.status, e.code, e.message), NO_STORE)
                return true
            }
            // POST /jwt is no way around the router's gate against key guessing; a key proven from this address
            // (here or on any door) passes it, as it does the router's
            const limited = authFailures.peek(address)
            if (!limited.ok && !(key !== undefined && provenKeys.passes(address, key, elapsedMs()))) {
                const b = errorBody("Too Many Requests", "too many failed keys from this address; wait before trying again", "E_AUTH_RATE_LIMITED")
                const body = { ...b, retry_after_ms: Math.ceil(limited.retryAfterMs) }
                sendJson(res, 429, body, { ...NO_STORE, ...retryAfterOf(body) })
                return true
            }
            const { body, error } = await jwtBodyOf(req)
            if (error) {
                sendJson(res, error.status, errorBodyOf(error.status, error.code, error.message), NO_STORE)
                return true
            }
            const r = await handleJwtRequest({ method: req.method ?? "", headers: req.headersDistinct, body }, { authority, authenticateKey: (s) => keys.authenticate(s), keyUsed, spendToken })
            if (r.status === 401) {
                authFailures.take(address)
                if (key !== undefined) provenKeys.failed(address, key)
            }
            // a sign-in with a key proves it from this address, as a request made with it does (was: a key used only
            // here never passed the lockout, on /jwt or elsewhere)
            else if (r.status === 200 && key !== undefined) provenKeys.proven(address, key, elapsedMs())
            sendJson(res, r.status, r.body, { ...NO_STORE, ...retryAfterOf(r.body) })
            return true
        }
        return { verifyBearer: bearerVerifier(authority), httpHandlers: [jwt, serveDashboard] }
    }
}
