// Cross-origin access to the app port (REST, POST /jwt) from web apps the operator names (--cors-origins):
// the preflight answer and the headers on every answer to them. Pure: the HTTP listener applies them.
// No Access-Control-Allow-Credentials: nothing on this port is ambient (no cookies, no HTTP auth, no
// client certificates); keys and tokens travel in X-ApiKey / Authorization / ?key=, which a page must hold.
import { ConfigError } from "../errors.ts"

/** Which origins may read the app port's answers from a browser; undefined (the default): none. */
export interface CorsPolicy {
    anyOrigin: boolean
    origins: ReadonlySet<string>
}

/** The REST door's methods ([P§1]) and POST/DELETE /jwt's. */
const ALLOWED_METHODS = "GET, PUT, POST, DELETE"
/** What a browser app sends beyond the safelisted ones: its key, its token, a JSON body. */
const ALLOWED_HEADERS = "X-ApiKey, Authorization, Content-Type"
/** What it may read beyond the safelisted ones: when to retry a 429/503 [P§6], where a 201 made its resource. */
const EXPOSED_HEADERS = "Retry-After, Location"
/**
 * How long a browser may reuse a preflight (Chromium caps it at 7200 s, Firefox at 86400 s): browsers cache
 * per URL, so an app reading many feeds sends one per URL; each spends the address's request budget.
 */
export const CORS_MAX_AGE_S = 7200

/**
 * The policy of `--cors-origins`: exact origins as a browser sends them in Origin (scheme://host[:port],
 * lower case, no path, no default port), or `*` alone. Anything else is a ConfigError (E_BAD_CONFIG)
 * saying what to write instead. No entries: undefined (no cross-origin access).
 */
export function corsPolicyOf(entries: readonly string[] | undefined): CorsPolicy | undefined {
    const list = (entries ?? []).map((e) => e.trim()).filter((e) => e !== "")
    if (list.length === 0) return undefined
    if (list.includes("*")) {
        if (list.length > 1) throw new ConfigError(`--cors-origins: * already allows every origin; give it alone, or list the origins without it`)
        return { anyOrigin: true, origins: new Set() }
    }
    for (const entry of list) {
        let origin: string | undefined
        try {
            const url = new URL(entry)
            if (url.protocol === "http:" || url.protocol === "https:") origin = url.origin
        } catch {
            // not a URL at all: said below
        }
        if (origin !== entry) {
            const hint = origin ? `; write it as browsers send it: "${origin}"` : ""
            throw new ConfigError(
                `--cors-origins: ${JSON.stringify(entry)} is not an origin${hint}. Give http(s)://host[:port] (lower case, no path or trailing slash, no default port), comma-separated, or * for any origin`,
            )
        }
    }
    return { anyOrigin: false, origins: new Set(list) }
}

function allows(policy: CorsPolicy, origin: string): boolean {
    return policy.anyOrigin || policy.origins.has(origin)
}

/**
 * Headers every answer carries under `policy` for a request from `origin` (its Origin header): `Vary: Origin`
 * always (an answer differs by Origin, so caches must not share it), and for an allowed origin the right to
 * read it, errors included (a 401's reason, a 429's Retry-After). Without a policy: none, as before.
 */
export function corsHeadersOf(policy: CorsPolicy | undefined, origin: string | undefined): Record<string, string> {
    if (!policy) return {}
    if (origin === undefined || !allows(policy, origin)) return { vary: "Origin" }
    return { vary: "Origin", "access-control-allow-origin": policy.anyOrigin ? "*" : origin, "access-control-expose-headers": EXPOSED_HEADERS }
}

/** A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method (a bare OPTIONS is not one). */
export function isPreflight(method: string | undefined, headers: Record<string, string | string[] | undefined>): boolean {
    return method === "OPTIONS" && typeof headers.origin === "string" && typeof headers["access-control-request-method"] === "string"
}

/**
 * The answer to a preflight from `origin`: 204 with what it may send, or undefined when it is not allowed
 * (the listener refuses it, 403 E_ORIGIN_NOT_ALLOWED, with no CORS headers: the browser blocks the call).
 */
export function preflightHeadersOf(policy: CorsPolicy | undefined, origin: string): Record<string, string> | undefined {
    if (!policy || !allows(policy, origin)) return undefined
    return {
        ...corsHeadersOf(policy, origin),
        "access-control-allow-methods": ALLOWED_METHODS,
        "access-control-allow-headers": ALLOWED_HEADERS,
        "access-control-max-age": String(CORS_MAX_AGE_S),
    }
}
