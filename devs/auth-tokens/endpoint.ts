// `POST /jwt` and `DELETE /jwt` on the app port, independent of the HTTP framework: the server's HTTP
// listener hands over method, headers and parsed body and writes back status and JSON body.
//
//   POST /jwt   X-ApiKey: <key>                       mint a token from a key
//   POST /jwt   Authorization: Bearer <jwt>            renew: a fresh token of the same sign-in (family) with
//                                                      the same grant and lifetime, never past the sign-in's
//                                                      maximum age (then 401 E_TOKEN_MAX_AGE: sign in again)
//               body (optional): {"permissions":["read"],"feeds":[1],"ttl":3600}   narrow it
//   -> 200 {"token","expires_at","expires_in","renewable_until","key_id","permissions","feeds","master"}
//   -> 429 E_TOKEN_RATE_LIMITED with retry_after_ms: the key's budget of tokens (sign-ins and renewals) is spent
//   DELETE /jwt Authorization: Bearer <jwt>            sign out: that token and every token of its family

import { errorBody } from "../../src/protocol.ts"
import { credentialOf as sharedCredentialOf, nodeHeaders } from "../server/auth/credential.ts"
import type { Grant } from "../server/auth/grant.ts"
import { ApiError } from "../server/errors.ts"
import type { Take } from "../server/ratelimit.ts"
import { bearerToken, TokenError, type TokenAuthority } from "./browser-tokens.ts"

export interface JwtHttpRequest {
    method: string
    headers: Record<string, string | string[] | undefined>
    body?: unknown
}

export interface JwtHttpResponse {
    status: number
    body: unknown
}

export interface JwtEndpointDeps {
    authority: TokenAuthority
    /** the server's key check (KeyRing.authenticate): the grant of a secret API key, undefined when unknown or revoked */
    authenticateKey: (secret: string) => Grant | undefined | Promise<Grant | undefined>
    /** the authority of key `keyId` was used: a sign-in with it, a renewal or sign-out of its token (ServerCore.keyUsed) */
    keyUsed?: (keyId: string) => void
    /** takes one from key `keyId`'s budget of tokens (sign-ins and renewals); not ok: 429 E_TOKEN_RATE_LIMITED */
    spendToken?: (keyId: string) => Take | Promise<Take>
}

/**
 * The credential of a token request: X-ApiKey (a key, or "Bearer <jwt>") or Authorization: Bearer <jwt>, by the rule
 * of every door (server/auth/credential.ts: two different ones are refused 400 E_CONFLICTING_CREDENTIALS, thrown as
 * an ApiError; was: Authorization first here, X-ApiKey first on /v2). Headers only: no ?key= (a key in a URL is logged).
 */
export function credentialOf(h: JwtHttpRequest["headers"]): { jwt?: string; key?: string } {
    const credential = sharedCredentialOf(nodeHeaders(h))
    const jwt = bearerToken(credential)
    if (jwt) return { jwt }
    return credential ? { key: credential } : {}
}

function fail(status: number, code: string, reason: string): JwtHttpResponse {
    const titles: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 405: "Method Not Allowed", 422: "Unprocessable Entity" }
    return { status, body: errorBody(titles[status] ?? "Error", reason, code) }
}

/** Takes a token from key `keyId`'s budget: undefined when there was one, else the 429 to answer. */
async function overBudget(deps: JwtEndpointDeps, keyId: string): Promise<JwtHttpResponse | undefined> {
    const taken = await deps.spendToken?.(keyId)
    if (taken === undefined || taken.ok) return undefined
    const reason = `too many tokens minted from key ${keyId} (sign-ins and renewals, from every address); sign in or renew again after retry_after_ms`
    return { status: 429, body: { ...errorBody("Too Many Requests", reason, "E_TOKEN_RATE_LIMITED"), retry_after_ms: Math.ceil(taken.retryAfterMs) } }
}

export async function handleJwtRequest(req: JwtHttpRequest, deps: JwtEndpointDeps): Promise<JwtHttpResponse> {
    const method = req.method.toUpperCase()
    if (method !== "POST" && method !== "DELETE") return fail(405, "E_NOT_ALLOWED", "use POST /jwt to get a token, DELETE /jwt to revoke one")
    let cred: ReturnType<typeof credentialOf>
    try {
        cred = credentialOf(req.headers)
    } catch (e) {
        if (e instanceof ApiError) return fail(e.status, e.code, e.message)
        throw e
    }
    try {
        if (method === "DELETE") {
            if (!cred.jwt) return fail(401, "E_UNAUTHORIZED", "send the token to revoke as Authorization: Bearer <jwt>")
            const t = await deps.authority.verify(cred.jwt)
            deps.keyUsed?.(t.keyId)
            await deps.authority.revoke(t)
            return { status: 200, body: { revoked: true } }
        }
        const body = (req.body ?? {}) as Record<string, unknown>
        if (typeof body !== "object" || Array.isArray(body)) return fail(422, "E_TOKEN_REQUEST", "the body must be a JSON object such as {\"ttl\":3600}")
        if (body.ttl !== undefined && typeof body.ttl !== "number") return fail(422, "E_TOKEN_REQUEST", "ttl is a number of seconds, at least 1")
        const want = { permissions: body.permissions, feeds: body.feeds, ttlMs: body.ttl === undefined ? undefined : (body.ttl as number) * 1000 }
        let minted
        if (cred.jwt) {
            const t = await deps.authority.verify(cred.jwt)
            deps.keyUsed?.(t.keyId)
            const refused = await overBudget(deps, t.keyId)
            if (refused) return refused
            minted = await deps.authority.renew(t, want)
        } else if (cred.key) {
            const grant = await deps.authenticateKey(cred.key)
            if (!grant) return fail(401, "E_UNAUTHORIZED", "unknown or revoked API key; check the key you typed")
            deps.keyUsed?.(grant.keyId)
            const refused = await overBudget(deps, grant.keyId)
            if (refused) return refused
            minted = await deps.authority.mint(grant, want)
        } else return fail(401, "E_UNAUTHORIZED", "send an API key as X-ApiKey: <key> (or a token to renew as Authorization: Bearer <jwt>)")
        return {
            status: 200,
            body: {
                token: minted.token,
                expires_at: new Date(minted.expiresMs).toISOString(),
                // the whole seconds it lasts from its signing (expires_at is exact): never more than it does
                expires_in: Math.floor((minted.expiresMs - minted.issuedMs) / 1000),
                renewable_until: new Date(minted.familyExpiresMs).toISOString(),
                key_id: minted.grant.keyId,
                permissions: minted.grant.permissions,
                feeds: minted.grant.feeds ?? null,
                master: minted.grant.master,
            },
        }
    } catch (e) {
        if (e instanceof TokenError) return fail(e.status, e.code, e.message)
        throw e
    }
}
