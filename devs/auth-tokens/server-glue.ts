// Adapters between the token authority and a server: the authority of a data folder (its secret file),
// checking each token's key with the server's key ring, and the `BearerVerifier` shape its auth path calls.

import path from "node:path"
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

/** The server's BearerVerifier: the grant of a valid token, undefined for any invalid one. */
export function bearerVerifier(authority: TokenAuthority): (token: string) => Promise<VerifiedToken | undefined> {
    return async (token) => {
        try {
            return await authority.verify(token)
        } catch (e) {
            if (e instanceof TokenError) return undefined
            throw e
        }
    }
}
