// How tools plug into the server without the server knowing them [P§7]: an extension is given the parts
// of the running server it may use and returns a bearer-token verifier and routes for the app port. The
// dashboard (devs/dashboard/mount.ts: the page, POST/DELETE /jwt, `Bearer <jwt>`) is one; `feedline
// serve` and `npm start` mount it through ServerOptions.extensions.
import { isRefusal, type BearerRefusal, type BearerVerifier } from "./auth/grant.ts"
import type { KeyRing } from "./auth/keys.ts"
import type { ProvenKeys } from "./auth/proven-keys.ts"
import type { HttpHandler } from "./listeners/http.ts"
import type { Logger } from "./log.ts"
import type { KeyRate } from "./bus/bus.ts"
import type { BucketConfig, ClockedBuckets } from "./ratelimit.ts"

/** What an extension may use of the server it is mounted on. */
export interface ServerCore {
    /** the server's data folder (an extension keeps its own files there, e.g. a token secret) */
    dataDir: string
    /** the key ring: verify a key, look one up by id, sign token families out */
    keys: KeyRing
    /** failed authentications per remote address, the router's gate against key guessing: share it, so no route is a way around it */
    authFailures: ClockedBuckets
    /**
     * keys that authenticated from each address lately, which pass its failed-key lockout (the router's): a sign-in
     * with a key (POST /jwt) proves it as a request made with it does, and a proven key passes that route's lockout too
     */
    provenKeys: ProvenKeys
    /**
     * [fleet] key `keyId`'s authority was used outside the router: a sign-in with it, or a renewal or
     * sign-out of a token minted from it. A device's key counts as used from then on (fleet/fleet.ts), as
     * when a request is made with it, so its board can no longer be claimed again with its code alone.
     */
    keyUsed: (keyId: string) => void
    /**
     * A budget per key over every process, the one the per-key request rate uses (bus/bus.ts keyRate: Redis
     * with several processes, memory with one). Budgets share one namespace: name yours apart ("jwt:<key id>").
     */
    keyRate: (config: BucketConfig) => KeyRate
    /** the server's clock */
    now: () => number
    /** time gone by, ms (monotonic): for windows that live in this process alone (provenKeys) */
    elapsedMs: () => number
    log: Logger
}

export interface Extension {
    /** [P§7] verifies `Bearer <token>` credentials on every door */
    verifyBearer?: BearerVerifier
    /** routes on the app port, tried in order after /v2, /ws, /healthz and /metrics */
    httpHandlers?: HttpHandler[]
}

export type ServerExtension = (core: ServerCore) => Extension

/** One verifier for all: the first that accepts a token wins; refused by all, the first refusal's reason. */
export function firstVerifier(verifiers: BearerVerifier[]): BearerVerifier | undefined {
    if (verifiers.length <= 1) return verifiers[0]
    return async (token) => {
        let refusal: BearerRefusal | undefined
        for (const verify of verifiers) {
            const verdict = await verify(token)
            if (verdict === undefined) continue
            if (!isRefusal(verdict)) return verdict
            refusal ??= verdict
        }
        return refusal
    }
}
