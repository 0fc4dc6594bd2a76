// Adapters between the token authority and a server: the authority of a data folder (its secret file),
// checking each token's key with the server's key ring, and the `BearerVerifier` shape its auth path calls.

import path from "node:path"
import type { BearerRefusal } from "../server/auth/grant.ts"
import { loadOrCreateTokenSecret, TokenAuthority, TokenError, type KeyState, type TokenRevocations, type VerifiedToken } from "./browser-tokens.ts"

/**
 * The token authority of a server whose data lives in `dataDir` (secret in dataDir/jwt-secret). `lookupKey`
 * is the server's key ring (KeyRing.findKey); signed-out families go to `revocations` (the server's store,
 * so they stay signed out across restarts).
 */
export function tokenAuthorityFor(
    dataDir: string,
    lookupKey: (id: string) => Promise<KeyState | undefined>,
    o: { now?: () => number; maxAgeMs?: number; revocations?: TokenRevocations } = {},
): TokenAuthority {
    return new TokenAuthority({ secret: loadOrCreateTokenSecret(path.resolve(dataDir)), lookupKey, ...o })
}

/** The server's BearerVerifier: the grant of a valid token; for an invalid one, why (expired, signed out, its key revoked, …). */
export function bearerVerifier(authority: TokenAuthority): (token: string) => Promise<VerifiedToken | BearerRefusal> {
    return async (token) => {
        try {
            return await authority.verify(token)
        } catch (e) {
            if (e instanceof TokenError) return { refused: e.message }
            throw e
        }
    }
}
