// [P§7] Which credential a request carries: one rule for every door (/v2, POST and DELETE /jwt, a request's
// `headers` on the device port and WebSocket), so that no route decides by itself which of two it acts with.
import { ApiError, type ServerErrorCode } from "../errors.ts"

/** `Bearer <token>`: a token (POST /jwt) where a key would go. Any other Authorization scheme (Basic, a proxy's) is no credential. */
export const BEARER = /^Bearer\s+(\S+)$/i

/** every value a request carries under a header's name (any case, repeated or not), by its lower-case name */
export type HeaderLookup = (lowerCaseName: string) => readonly string[]

/**
 * The one credential of a request: X-ApiKey (a key, or `Bearer <jwt>`), `?key=` (where the door takes it: /v2) and
 * `Authorization: Bearer <jwt>`; the same one sent more than one way is that one. Two that differ are refused
 * 400 E_CONFLICTING_CREDENTIALS rather than one chosen: a request's authority is never a matter of which header a
 * route reads first (was: /v2 took X-ApiKey, /jwt Authorization, so a client sending its master key beside a
 * token narrowed to read acted as the key on one and as the token on the other). A header or `?key=` sent twice is
 * two (was: the first Authorization, the last `?key=`, the first of `X-ApiKey` and `x-apikey` in an envelope).
 * Undefined: none (an empty X-ApiKey is one, refused as no key).
 */
export function credentialOf(header: HeaderLookup, queryKeys: readonly string[] = []): string | undefined {
    let credential: string | undefined
    for (const c of [...header("x-apikey"), ...queryKeys, ...header("authorization").filter((a) => BEARER.test(a))]) {
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

/** The lookup of a request envelope's `headers`: every member whose name is it in any case (`X-ApiKey` beside `x-apikey`) */
export function envelopeHeaders(headers: Record<string, string> | undefined): HeaderLookup {
    return (name) => {
        const values: string[] = []
        if (headers) for (const k in headers) if (k.toLowerCase() === name) values.push(headers[k])
        return values
    }
}

/**
 * The lookup of Node's request headers: pass `IncomingMessage.headersDistinct`, which keeps each repeated header's
 * values apart (`headers` keeps the first Authorization alone and joins repeated X-ApiKeys with ", ").
 */
export function nodeHeaders(headers: Record<string, string | string[] | undefined>): HeaderLookup {
    return (name) => {
        const values: string[] = []
        for (const k of Object.keys(headers)) {
            if (k.toLowerCase() !== name) continue
            const v = headers[k]
            if (v !== undefined) values.push(...(Array.isArray(v) ? v : [v]))
        }
        return values
    }
}
