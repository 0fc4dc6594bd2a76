// Whether a new connection may stay: over MAX_CONNECTIONS it gets notice 429 with a jittered retry hint.
import { ApiError } from "../errors.ts"
import { RECONNECT_AFTER_MS } from "../limits.ts"
import type { SessionDeps } from "../session.ts"

/** [P§6] retry hints are jittered (1x to 2x) so that refused or shut-down devices do not return all at once. */
export function jitteredRetryMs(rand01 = Math.random()): number {
    return Math.round(RECONNECT_AFTER_MS * (1 + rand01))
}

export function refusal(deps: SessionDeps, maxConnections: number): ApiError | undefined {
    if (deps.sessions.size < maxConnections) return undefined
    return new ApiError(429, "E_TOO_MANY_CONNECTIONS", `the server holds its maximum of ${maxConnections} connections; reconnect later`, jitteredRetryMs())
}
