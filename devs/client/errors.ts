// Errors the client raises. Each carries a stable code (tests and scripts branch on it) and a message a
// person can act on. The CLI maps codes to exit statuses (EXIT_CODES), so shell scripts can tell
// "server unreachable" from "key refused" without parsing text.

export type ClientErrorCode =
    | "E_USAGE" // the command line is wrong
    | "E_UNREACHABLE" // nothing answers at that address (refused, unknown host, connect timeout)
    | "E_UNTRUSTED_CERT" // TLS: the server's certificate is not signed by a CA we trust, or names another host
    | "E_TLS" // any other TLS handshake failure
    | "E_NO_WELCOME" // connected, but no feedline welcome line: wrong port or not a feedline server
    | "E_TIMEOUT" // a request got no response in time
    | "E_CLOSED" // the connection closed while requests were pending
    | "E_DEAD_LINK" // silence longer than the welcome's `timeout` [P§4]
    | "E_NOTICE" // the server closed the connection with a notice [P§6]
    | "E_AUTH" // 401: no key, or the key is unknown/revoked/expired
    | "E_FORBIDDEN" // 403: the key may not do this
    | "E_STATUS" // any other error status from the server

export class ClientError extends Error {
    readonly code: ClientErrorCode
    /** the server's status, when the error is a response */
    readonly status?: number
    /** the server's own E_* code from the error body, when it sent one */
    readonly serverCode?: string
    /** for 429/503: how long the server asked us to wait */
    readonly retryAfterMs?: number

    constructor(code: ClientErrorCode, message: string, extra: { status?: number; serverCode?: string; retryAfterMs?: number; cause?: unknown } = {}) {
        super(message, extra.cause === undefined ? undefined : { cause: extra.cause })
        this.name = "ClientError"
        this.code = code
        this.status = extra.status
        this.serverCode = extra.serverCode
        this.retryAfterMs = extra.retryAfterMs
    }
}

/** Exit statuses of the command-line client, one per family of failure. */
export const EXIT_CODES: Record<ClientErrorCode, number> = {
    E_USAGE: 2,
    E_UNREACHABLE: 3,
    E_UNTRUSTED_CERT: 3,
    E_TLS: 3,
    E_NO_WELCOME: 3,
    E_TIMEOUT: 3,
    E_CLOSED: 3,
    E_DEAD_LINK: 3,
    E_NOTICE: 3,
    E_AUTH: 4,
    E_FORBIDDEN: 4,
    E_STATUS: 5,
}

/** Node/OpenSSL codes that mean "we do not trust who answered". */
const UNTRUSTED_CERT_CODES = new Set([
    "SELF_SIGNED_CERT_IN_CHAIN",
    "DEPTH_ZERO_SELF_SIGNED_CERT",
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    "UNABLE_TO_GET_ISSUER_CERT",
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    "CERT_UNTRUSTED",
    "CERT_HAS_EXPIRED",
    "CERT_NOT_YET_VALID",
    "ERR_TLS_CERT_ALTNAME_INVALID",
])

const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ECONNRESET"])

/** Turns a socket-level error into a ClientError with advice. `where` is the address we dialled. */
export function connectError(err: unknown, where: string): ClientError {
    if (err instanceof ClientError) return err
    const code = (err as { code?: string })?.code ?? ""
    const text = (err as Error)?.message ?? String(err)
    if (UNTRUSTED_CERT_CODES.has(code)) {
        return new ClientError(
            "E_UNTRUSTED_CERT",
            `the server at ${where} presented a certificate we do not trust (${code}); pass its CA with --ca FILE ` +
                `(the dev CA is <data-dir>/tls/ca.pem) or set FEEDLINE_CA / NODE_EXTRA_CA_CERTS`,
            { cause: err }
        )
    }
    if (UNREACHABLE_CODES.has(code)) {
        return new ClientError("E_UNREACHABLE", `cannot reach a server at ${where} (${code}); is it running, and are host and port right?`, { cause: err })
    }
    if (code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS") || /ssl|tls/i.test(text)) {
        // wss:// to an app port that speaks plain HTTP (a server on a loopback --host, as under npm start)
        const hint = where.startsWith("wss://") ? "does this app port speak plain HTTP (a loopback server, npm start)? then use http:// or ws://" : "is this the TLS device port?"
        return new ClientError("E_TLS", `TLS handshake with ${where} failed (${code || text}); ${hint}`, { cause: err })
    }
    return new ClientError("E_UNREACHABLE", `connection to ${where} failed: ${text}`, { cause: err })
}

/**
 * The app port answered the WebSocket upgrade with an HTTP status (`body`: what it sent, JSON from feedline):
 * a wrong scheme (`400 E_USE_HTTPS`: ws:// or http:// to a port that speaks TLS), a wrong path, or not feedline.
 */
export function upgradeRefusedError(url: string, status: number, body: string): ClientError {
    let serverCode: string | undefined
    try {
        const code = (JSON.parse(body) as { code?: unknown }).code
        if (typeof code === "string") serverCode = code
    } catch {
        // not feedline's JSON: the status alone
    }
    if (serverCode === "E_USE_HTTPS") {
        const secure = url.replace(/^ws:/, "wss:")
        return new ClientError("E_USAGE", `${url}: this app port speaks TLS; use --server ${secure.replace(/^wss:/, "https:").replace(/\/ws$/, "")} (or ${secure})`, { status, serverCode })
    }
    const hint = status === 404 ? "is the path /ws right?" : "is this a feedline app port?"
    return new ClientError("E_UNREACHABLE", `${url} answered the WebSocket upgrade with HTTP ${status}${serverCode ? " " + serverCode : ""}; ${hint}`, { status, serverCode })
}

/** Turns an error response [P§6] into a ClientError. */
export function statusError(status: number, resource: string | undefined, body: unknown): ClientError {
    const b = (body ?? {}) as { errors?: unknown; title?: unknown; code?: unknown; retry_after_ms?: unknown }
    const reason = typeof b.errors === "string" ? b.errors : typeof b.title === "string" ? b.title : "no reason given"
    const serverCode = typeof b.code === "string" ? b.code : undefined
    const retryAfterMs = typeof b.retry_after_ms === "number" ? b.retry_after_ms : undefined
    const what = `${status}${serverCode ? " " + serverCode : ""}${resource ? " on " + resource : ""}`
    if (status === 401) {
        return new ClientError("E_AUTH", `the server refused the key (${what}): ${reason}; check --key or FEEDLINE_KEY`, { status, serverCode })
    }
    if (status === 403) return new ClientError("E_FORBIDDEN", `this key may not do that (${what}): ${reason}`, { status, serverCode })
    return new ClientError("E_STATUS", `${what}: ${reason}`, { status, serverCode, retryAfterMs })
}
