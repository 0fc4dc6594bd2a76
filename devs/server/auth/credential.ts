// [P§7] Which credential a request carries: one rule for every door (/v2, POST and DELETE /jwt, a request's
// `headers` on the device port and WebSocket), so that no route decides by itself which of two it acts with.
import { ApiError, type ServerErrorCode } from "../errors.ts"

/** `Bearer <token>`: a token (POST /jwt) where a key would go. Any other Authorization scheme (Basic, a proxy's) is no credential. */
export const BEARER = /^Bearer\s+(\S+)$/i

/** a header's value by its lower-case name */
export type HeaderLookup = (lowerCaseName: string) => string | undefined

/**
 * The one credential of a request: X-ApiKey (a key, or `Bearer <jwt>`), `?key=` (where the door takes it: /v2) and
 * `Authorization: Bearer <jwt>`; the same one sent more than one way is that one. Two that differ are refused
 * 400 E_CONFLICTING_CREDENTIALS rather than one chosen: a request's authority is never a matter of which header a
 * route reads first (was: /v2 took X-ApiKey, /jwt Authorization, so a client sending its master key beside a
 * token narrowed to read acted as the key on one and as the token on the other).
 * Undefined: none (an empty X-ApiKey is one, refused as no key).
 */
export function credentialOf(header: HeaderLookup, queryKey?: string): string | undefined {
    const authorization = header("authorization")
    let credential: string | undefined
    for (const c of [header("x-apikey"), queryKey, authorization !== undefined && BEARER.test(authorization) ? authorization : undefined]) {
        if (c === undefined) continue
        if (credential === undefined) credential = c
        else if (sameCredential(c, credential) === false) {
            throw new ApiError(400, "E_CONFLICTING_CREDENTIALS" satisfies ServerErrorCode, "the request carries two different credentials (X-ApiKey, ?key=, Authorization: Bearer); send one: a key as X-ApiKey, or a token as Authorization: Bearer <jwt>")
        }
    }
    return credential
}

/** `Bearer <t>` as X-ApiKey and as Authorization is one token, whatever the scheme's case and spacing */
function sameCredential(a: string, b: string): boolean {
    const [ta, tb] = [BEARER.exec(a.trim())?.[1], BEARER.exec(b.trim())?.[1]]
    return ta !== undefined || tb !== undefined ? ta === tb : a === b
}

/** The lookup of a request envelope's `headers` (any case) */
export function envelopeHeaders(headers: Record<string, string> | undefined): HeaderLookup {
    return (name) => {
        if (!headers) return undefined
        for (const k in headers) if (k.toLowerCase() === name) return headers[k]
        return undefined
    }
}

/** The lookup of Node's request headers (lower-case names; a repeated one: its first) */
export function nodeHeaders(headers: Record<string, string | string[] | undefined>): HeaderLookup {
    return (name) => {
        for (const k of Object.keys(headers)) {
            if (k.toLowerCase() !== name) continue
            const v = headers[k]
            return Array.isArray(v) ? v[0] : v
        }
        return undefined
    }
}
