// Adapters between the token authority and the server's key store, so the server wires tokens in with
// a few lines: a key lookup by id that reloads only when the store says keys changed (the same
// `keysVersion` signal the server's KeyRing uses), and the `BearerVerifier` shape its auth path calls.

import path from "node:path"
import { loadOrCreateTokenSecret, TokenAuthority, TokenError, type KeyState, type TokenRevocations, type VerifiedToken } from "./tokens.ts"

export interface KeyStoreLike {
    listKeys(): Promise<KeyState[]>
    /** changes whenever keys may have changed, also by another process */
    keysVersion(): number
}

export function keyLookup(store: KeyStoreLike): (id: string) => Promise<KeyState | undefined> {
    let version = -1
    let byId = new Map<string, KeyState>()
    return async (id) => {
        const v = store.keysVersion()
        if (v !== version) {
            const keys = await store.listKeys()
            byId = new Map(keys.map((k) => [k.id, k]))
            version = v
        }
        return byId.get(id)
    }
}

/**
 * The token authority of a server whose data lives in `dataDir` (secret in dataDir/jwt-secret); signed-out
 * families go to `revocations` (the server's store, so they stay signed out across restarts).
 */
export function tokenAuthorityFor(
    dataDir: string,
    store: KeyStoreLike,
    o: { now?: () => number; maxAgeMs?: number; revocations?: TokenRevocations } = {},
): TokenAuthority {
    return new TokenAuthority({ secret: loadOrCreateTokenSecret(path.resolve(dataDir)), lookupKey: keyLookup(store), ...o })
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
