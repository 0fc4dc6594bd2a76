// Short-lived signed tokens for browsers [P§7]: the secret API key never enters page code. A person
// types a key once; `POST /jwt` trades it for a JWT carrying the key's id and (a subset of) its
// permissions, valid TOKEN_TTL_MS. Every use verifies the signature and expiry AND looks the issuing key
// up again, so revoking a key (or narrowing it) takes effect at once for every token it minted, also on
// an already open WebSocket. Signed with HS256 (jose) under a per-server secret kept in the data dir.

import crypto from "node:crypto"
import fs from "node:fs"
import path from "node:path"
import { SignJWT, jwtVerify, errors as joseErrors } from "jose"

/** Design documents: tokens are valid 5 hours; the page renews well before (see RENEW_BEFORE_MS). */
export const TOKEN_TTL_MS = 5 * 60 * 60 * 1000
/** A caller may ask for less (tests, kiosks), never for more. */
export const MAX_TOKEN_TTL_MS = TOKEN_TTL_MS
/** The page renews this long before expiry: room for a sleeping laptop or a slow network to catch up. */
export const RENEW_BEFORE_MS = 30 * 60 * 1000
/** 256-bit HMAC secret: HS256 wants at least the hash size. */
export const SECRET_BYTES = 32
export const TOKEN_SECRET_FILE = "jwt-secret"
const ISSUER = "feedline"
const AUDIENCE = "feedline-app"

export type Permission = "read" | "update" | "create" | "delete"
const PERMISSIONS: Permission[] = ["read", "update", "create", "delete"]

/** What a key (or a token minted from it) may do; the same shape as the server's KeyRecord fields. */
export interface Grant {
    keyId: string
    permissions: Permission[]
    /** feed ids; undefined = all feeds */
    feeds?: number[]
    master: boolean
}

/** The issuing key as the server knows it now; `revokedMs` set or undefined returned = no longer valid. */
export interface KeyState {
    id: string
    permissions: Permission[]
    feeds?: number[]
    master: boolean
    revokedMs?: number
}

export interface VerifiedToken extends Grant {
    tokenId: string
    expiresMs: number
}

export type TokenErrorCode = "E_TOKEN_INVALID" | "E_TOKEN_EXPIRED" | "E_TOKEN_KEY_REVOKED" | "E_TOKEN_REVOKED" | "E_TOKEN_REQUEST"

/** Always a 401 except E_TOKEN_REQUEST (a bad mint request, 422). */
export class TokenError extends Error {
    readonly status: number
    constructor(readonly code: TokenErrorCode, reason: string) {
        super(reason)
        this.status = code === "E_TOKEN_REQUEST" ? 422 : 401
    }
}

export interface TokenAuthorityOptions {
    secret: Uint8Array
    /** the issuing key's current state; sync or async (the server's key cache) */
    lookupKey: (keyId: string) => KeyState | undefined | Promise<KeyState | undefined>
    now?: () => number
}

/** "Bearer <jwt>" (any case, as in `Authorization` or `X-ApiKey`) -> the jwt; anything else -> undefined. */
export function bearerToken(credential: string | undefined): string | undefined {
    if (!credential) return undefined
    const m = /^\s*bearer\s+([A-Za-z0-9_\-.]+)\s*$/i.exec(credential)
    return m ? m[1] : undefined
}

export class TokenAuthority {
    readonly now: () => number
    /** token ids revoked one by one (logout), until they expire anyway */
    private readonly revoked = new Map<string, number>()

    constructor(private readonly o: TokenAuthorityOptions) {
        if (o.secret.length < SECRET_BYTES) throw new Error(`token secret must be at least ${SECRET_BYTES} bytes`)
        this.now = o.now ?? Date.now
    }

    /** Mints a token for `grant`, narrowed to `want` (permissions/feeds) and at most MAX_TOKEN_TTL_MS. */
    async mint(grant: Grant, want: { permissions?: unknown; feeds?: unknown; ttlMs?: unknown } = {}): Promise<{ token: string; expiresMs: number; grant: Grant }> {
        const narrowed = narrow(grant, want)
        const ttlMs = want.ttlMs === undefined ? TOKEN_TTL_MS : want.ttlMs
        if (typeof ttlMs !== "number" || !(ttlMs > 0) || ttlMs > MAX_TOKEN_TTL_MS) {
            throw new TokenError("E_TOKEN_REQUEST", `ttl must be between 1 and ${MAX_TOKEN_TTL_MS / 1000} seconds`)
        }
        const nowMs = this.now()
        const expiresMs = nowMs + ttlMs
        const claims: Record<string, unknown> = { perm: narrowed.permissions, master: narrowed.master || undefined }
        if (narrowed.feeds) claims.feeds = narrowed.feeds
        const token = await new SignJWT(claims)
            .setProtectedHeader({ alg: "HS256", typ: "JWT" })
            .setIssuer(ISSUER)
            .setAudience(AUDIENCE)
            .setSubject(grant.keyId)
            .setJti(crypto.randomBytes(9).toString("base64url"))
            .setIssuedAt(Math.floor(nowMs / 1000))
            // JWT times are whole seconds; ms precision is kept by rounding expiry down, never up
            .setExpirationTime(Math.floor(expiresMs / 1000))
            .sign(this.o.secret)
        return { token, expiresMs: Math.floor(expiresMs / 1000) * 1000, grant: narrowed }
    }

    /**
     * Checks a token on every use: signature, issuer, audience, expiry, not revoked one by one, and the
     * issuing key still valid. The result is the token's grant intersected with the key's current one.
     */
    async verify(token: string): Promise<VerifiedToken> {
        let payload: Record<string, any>
        try {
            ;({ payload } = await jwtVerify(token, this.o.secret, {
                algorithms: ["HS256"],
                issuer: ISSUER,
                audience: AUDIENCE,
                currentDate: new Date(this.now()),
                requiredClaims: ["sub", "exp", "jti"],
            }))
        } catch (e) {
            if (e instanceof joseErrors.JWTExpired) throw new TokenError("E_TOKEN_EXPIRED", "the token has expired; get a new one with POST /jwt")
            throw new TokenError("E_TOKEN_INVALID", "the token is not one this server issued (bad signature or claims); get a new one with POST /jwt")
        }
        const tokenId = String(payload.jti)
        if (this.revoked.has(tokenId)) throw new TokenError("E_TOKEN_REVOKED", "the token was revoked; get a new one with POST /jwt")
        const key = await this.o.lookupKey(String(payload.sub))
        if (!key || key.revokedMs !== undefined) {
            throw new TokenError("E_TOKEN_KEY_REVOKED", "the key this token was minted from has been revoked; sign in with a valid key")
        }
        const fromToken = narrow(keyGrant(key), {
            permissions: payload.perm,
            feeds: payload.feeds,
        })
        // a master token stays master only while its key is
        return { ...fromToken, master: key.master && payload.master === true, tokenId, expiresMs: Number(payload.exp) * 1000 }
    }

    /** Revokes one token (logout) until it would have expired anyway. */
    revoke(t: VerifiedToken): void {
        this.revoked.set(t.tokenId, t.expiresMs)
        const nowMs = this.now()
        for (const [id, exp] of this.revoked) if (exp <= nowMs) this.revoked.delete(id)
    }
}

export function keyGrant(k: KeyState): Grant {
    return { keyId: k.id, permissions: [...k.permissions], feeds: k.feeds ? [...k.feeds] : undefined, master: k.master }
}

/** The grant narrowed to what is asked for; asking for more than the grant has is an error. */
function narrow(g: Grant, want: { permissions?: unknown; feeds?: unknown }): Grant {
    let permissions = g.permissions
    if (want.permissions !== undefined) {
        if (!Array.isArray(want.permissions) || !want.permissions.every((p) => PERMISSIONS.includes(p))) {
            throw new TokenError("E_TOKEN_REQUEST", `permissions must be a list drawn from ${PERMISSIONS.join(", ")}`)
        }
        permissions = g.permissions.filter((p) => (want.permissions as string[]).includes(p))
    }
    let feeds = g.feeds
    if (want.feeds !== undefined) {
        if (!Array.isArray(want.feeds) || !want.feeds.every((f) => Number.isInteger(f) && f > 0)) {
            throw new TokenError("E_TOKEN_REQUEST", "feeds must be a list of feed ids")
        }
        const asked = want.feeds as number[]
        feeds = g.feeds ? g.feeds.filter((f) => asked.includes(f)) : [...asked]
    }
    return { keyId: g.keyId, permissions, feeds, master: g.master && want.permissions === undefined && want.feeds === undefined }
}

/** The server's token secret: read from the data dir, or created there (0600) on first start. */
export function loadOrCreateTokenSecret(dataDir: string): Uint8Array {
    const file = path.join(dataDir, TOKEN_SECRET_FILE)
    try {
        const hex = fs.readFileSync(file, "utf8").trim()
        if (/^[0-9a-f]{64,}$/.test(hex)) return Buffer.from(hex, "hex")
        throw new Error(`${file} does not hold a hex secret of ${SECRET_BYTES} bytes; delete it to make a new one (all tokens become invalid)`)
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e
    }
    const secret = crypto.randomBytes(SECRET_BYTES)
    fs.mkdirSync(dataDir, { recursive: true })
    // "wx": if another process created it meanwhile, fail rather than overwrite its secret
    fs.writeFileSync(file, secret.toString("hex") + "\n", { mode: 0o600, flag: "wx" })
    return secret
}
