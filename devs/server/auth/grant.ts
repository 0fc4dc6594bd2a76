// What a credential allows [P§7], in one place for every part that asks: the key ring (keys.ts), the store's
// key records, the router's guards, and the browser tokens (devs/auth-tokens), which carry a narrowed grant.

export type Permission = "read" | "update" | "create" | "delete"
export const PERMISSIONS: Permission[] = ["read", "update", "create", "delete"]

/** What a valid credential allows. Produced by the key ring, or by a bearer-token verifier (JWT, later). */
export interface Grant {
    /** the key's public id (or the token subject) */
    keyId: string
    permissions: Permission[]
    /** undefined = all feeds */
    feeds?: number[]
    master: boolean
    /** a bearer token's expiry; keys do not expire */
    expiresMs?: number
    /** true for bearer tokens; their keyId is the key that minted them (devs/auth-tokens), so they end with it */
    bearer?: boolean
    /** a bearer token's sign-in (family): signing out (DELETE /jwt) ends every token of it */
    tokenFamily?: string
}

/**
 * Why a bearer token was refused, in words a person can act on: an expired token is renewed, a signed-out one
 * or one whose key was revoked needs a new sign-in. Without it the answer could only guess ("this key is
 * unknown, revoked or expired"; a remembered token that expired was told its key "was revoked").
 */
export interface BearerRefusal {
    refused: string
}

/** Verifies `X-ApiKey: Bearer <token>` / `Authorization: Bearer <token>`; undefined or a refusal = not valid. */
export type BearerVerifier = (token: string) => Promise<Grant | BearerRefusal | undefined>

export const isRefusal = (v: Grant | BearerRefusal | undefined): v is BearerRefusal => v !== undefined && "refused" in v

/** May this grant do `permission` on `feed` (undefined: on the collection of all feeds)? */
export function permits(grant: Pick<Grant, "master" | "permissions" | "feeds">, permission: Permission, feed?: number): boolean {
    if (grant.master) return true
    if (!grant.permissions.includes(permission)) return false
    if (grant.feeds === undefined) return true
    return feed !== undefined && grant.feeds.includes(feed)
}

/** The feeds a grant can see; undefined = all. */
export function visibleFeeds(grant: Grant): number[] | undefined {
    return grant.master ? undefined : grant.feeds
}
