// Short-lived signed tokens for browsers [P§7]: the secret API key never enters page code. A person
// types a key once; `POST /jwt` trades it for a JWT carrying the key's id and (a subset of) its
// permissions, valid TOKEN_TTL_MS. Every use verifies the signature and expiry AND looks the issuing key
// up again, so revoking a key (or narrowing it) takes effect at once for every token it minted, also on
// an already open WebSocket. Signed with HS256 (jose) under a per-server secret kept in the data dir.
//
// A sign-in is a *family*: the token minted from the key and every token renewed from it share its `jti`
// as their `fam` claim. A renewal keeps the first token's lifetime (`ttl`) and no token of the family
// outlives `fex`, the sign-in time plus the maximum age (default 24 h). Signing out (`DELETE /jwt`)
// revokes the whole family, in the server's store (`TokenRevocations`) until `fex`, after which its
// tokens are expired anyway.

import crypto from "node:crypto"
import fs from "node:fs"
import path from "node:path"
import { PERMISSIONS, type Grant } from "../server/auth/grant.ts"
import type { KeyRecord } from "../server/storage/store.ts"

/** Design documents: tokens are valid 5 hours; the page renews well before (see RENEW_BEFORE_MS). */
/** jose, loaded with the first token (a server whose clients use no browser tokens does not carry its ~4 MiB of RSS) */
let joseModule: Promise<typeof import("jose")> | undefined
const loadJose = () => (joseModule ??= import("jose"))

export const TOKEN_TTL_MS = 5 * 60 * 60 * 1000
/** A caller may ask for less (tests, kiosks), never for more. */
export const MAX_TOKEN_TTL_MS = TOKEN_TTL_MS
/**
 * [P§7] The shortest token: a second, the unit of `ttl` and of a JWT's `exp`. An expiry is rounded up to a whole
 * second, so a token lasts at least its `ttl` (was: rounded down, so `ttl: 1` could expire a millisecond after
 * it was minted); a shorter ttl is refused, and so is a renewal that its sign-in's end would leave shorter.
 */
export const MIN_TOKEN_TTL_MS = 1000
/** A sign-in (the token minted from a key and every renewal of it) lasts at most this long, unless configured. */
export const DEFAULT_TOKEN_MAX_AGE_MS = 24 * 60 * 60 * 1000
/** The page renews this long before expiry: room for a sleeping laptop or a slow network to catch up. */
export const RENEW_BEFORE_MS = 30 * 60 * 1000
/** 256-bit HMAC secret: HS256 wants at least the hash size. */
export const SECRET_BYTES = 32
export const TOKEN_SECRET_FILE = "jwt-secret"
const ISSUER = "feedline"
const AUDIENCE = "feedline-app"

/** The issuing key as the server knows it now (its key ring); `revokedMs` set or undefined returned = no longer valid. */
export type KeyState = Pick<KeyRecord, "id" | "permissions" | "feeds" | "master" | "revokedMs">

export interface VerifiedToken extends Grant {
    tokenId: string
    expiresMs: number
    /** the sign-in this token belongs to: the `jti` of the token minted from the key, carried by its renewals */
    tokenFamily: string
    /** no token of the family outlives this (the sign-in time plus the maximum age) */
    familyExpiresMs: number
    /** what a renewal lasts: the first token's lifetime (or less, when a renewal asked for less) */
    lifetimeMs: number
}

/** Where signed-out families are kept (the server: its store, so they stay signed out across restarts). */
export interface TokenRevocations {
    isRevoked(family: string): boolean | Promise<boolean>
    /** signs the family out until `untilMs`, its end: its tokens are expired after it anyway */
    revoke(family: string, untilMs: number): void | Promise<void>
}

/** Revocations in memory, forgotten once past their end (a standalone authority, tests). */
export function memoryRevocations(now: () => number = Date.now): TokenRevocations {
    const until = new Map<string, number>()
    return {
        isRevoked: (family) => (until.get(family) ?? 0) > now(),
        revoke(family, untilMs) {
            until.set(family, untilMs)
            for (const [f, u] of until) if (u <= now()) until.delete(f)
        },
    }
}

export type TokenErrorCode = "E_TOKEN_INVALID" | "E_TOKEN_EXPIRED" | "E_TOKEN_KEY_REVOKED" | "E_TOKEN_REVOKED" | "E_TOKEN_MAX_AGE" | "E_TOKEN_REQUEST"

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
    /** how long one sign-in may last, renewals included (default DEFAULT_TOKEN_MAX_AGE_MS) */
    maxAgeMs?: number
    /** where signed-out families are kept; default: in memory */
    revocations?: TokenRevocations
}

/** "Bearer <jwt>" (any case, as in `Authorization` or `X-ApiKey`) -> the jwt; anything else -> undefined. */
export function bearerToken(credential: string | undefined): string | undefined {
    if (!credential) return undefined
    const m = /^\s*bearer\s+([A-Za-z0-9_\-.]+)\s*$/i.exec(credential)
    return m ? m[1] : undefined
}

export class TokenAuthority {
    readonly now: () => number
    readonly maxAgeMs: number
    private readonly revocations: TokenRevocations

    constructor(private readonly o: TokenAuthorityOptions) {
        if (o.secret.length < SECRET_BYTES) throw new Error(`token secret must be at least ${SECRET_BYTES} bytes`)
        this.now = o.now ?? Date.now
        this.maxAgeMs = o.maxAgeMs ?? DEFAULT_TOKEN_MAX_AGE_MS
        // its end is rounded down to a second: at least two, so a sign-in's first token lasts MIN_TOKEN_TTL_MS
        if (!(this.maxAgeMs >= 2 * MIN_TOKEN_TTL_MS)) throw new Error("the maximum age of a sign-in must be at least two seconds")
        this.revocations = o.revocations ?? memoryRevocations(this.now)
    }

    /**
     * Signs in: a token for `grant` (a key's), narrowed to `want` (permissions/feeds), lasting `ttlMs` (at most
     * MAX_TOKEN_TTL_MS, default TOKEN_TTL_MS) and never past the family's maximum age. It starts a family.
     */
    async mint(grant: Grant, want: { permissions?: unknown; feeds?: unknown; ttlMs?: unknown } = {}): Promise<MintedToken> {
        const lifetimeMs = ttlOf(want.ttlMs, TOKEN_TTL_MS, MAX_TOKEN_TTL_MS, `ttl must be a number of seconds from ${MIN_TOKEN_TTL_MS / 1000} to ${MAX_TOKEN_TTL_MS / 1000}`)
        const tokenId = newTokenId()
        // whole seconds, as JWT times are: the sign-in's end rounded down (never past its maximum age)
        const familyExpiresMs = floorToSecond(this.now() + this.maxAgeMs)
        return this.sign(narrowAsked(grant, want), { tokenId, tokenFamily: tokenId, familyExpiresMs, lifetimeMs })
    }

    /**
     * Renews a verified token: the same family, grant (or a narrower one) and lifetime (or a shorter one);
     * never past the family's end. E_TOKEN_MAX_AGE when that end leaves nothing to extend: sign in again.
     */
    async renew(t: VerifiedToken, want: { permissions?: unknown; feeds?: unknown; ttlMs?: unknown } = {}): Promise<MintedToken> {
        const lifetimeMs = ttlOf(want.ttlMs, t.lifetimeMs, t.lifetimeMs, `a renewed token lasts at most as long as the first, ${t.lifetimeMs / 1000} seconds`)
        // capped by the family's end, and that end is no later than this token's: nothing left to extend
        if (t.familyExpiresMs < ceilToSecond(this.now() + lifetimeMs) && t.familyExpiresMs <= t.expiresMs) {
            const age = `${Math.round(this.maxAgeMs / 60_000) / 60} h`
            throw new TokenError("E_TOKEN_MAX_AGE", `this sign-in reaches its maximum age (${age}) at ${new Date(t.familyExpiresMs).toISOString()}; sign in with the key again`)
        }
        return this.sign(narrowAsked(t, want), { tokenId: newTokenId(), tokenFamily: t.tokenFamily, familyExpiresMs: t.familyExpiresMs, lifetimeMs })
    }

    private async sign(grant: Grant, f: { tokenId: string; tokenFamily: string; familyExpiresMs: number; lifetimeMs: number }): Promise<MintedToken> {
        const nowMs = this.now()
        // rounded up: the token lasts at least its lifetime, unless the sign-in's end comes first
        const expiresMs = Math.min(ceilToSecond(nowMs + f.lifetimeMs), f.familyExpiresMs)
        if (expiresMs - nowMs < MIN_TOKEN_TTL_MS) throw new TokenError("E_TOKEN_MAX_AGE", "this sign-in has reached its maximum age; sign in with the key again")
        const claims: Record<string, unknown> = {
            perm: grant.permissions,
            master: grant.master || undefined,
            fam: f.tokenFamily,
            fex: f.familyExpiresMs / 1000,
            ttl: f.lifetimeMs / 1000,
        }
        if (grant.feeds) claims.feeds = grant.feeds
        const { SignJWT } = await loadJose()
        const token = await new SignJWT(claims)
            .setProtectedHeader({ alg: "HS256", typ: "JWT" })
            .setIssuer(ISSUER)
            .setAudience(AUDIENCE)
            .setSubject(grant.keyId)
            .setJti(f.tokenId)
            .setIssuedAt(Math.floor(nowMs / 1000))
            .setExpirationTime(expiresMs / 1000)
            .sign(this.o.secret)
        return { token, issuedMs: nowMs, expiresMs, familyExpiresMs: f.familyExpiresMs, grant }
    }

    /**
     * Checks a token on every use: signature, issuer, audience, expiry, its family not signed out, and the
     * issuing key still valid. The result is the token's grant intersected with the key's current one.
     */
    async verify(token: string): Promise<VerifiedToken> {
        const { jwtVerify, errors: joseErrors } = await loadJose()
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
        const expiresMs = Number(payload.exp) * 1000
        // tokens from before families: their own family, their own lifetime, the maximum age from their issue
        const tokenFamily = typeof payload.fam === "string" ? payload.fam : tokenId
        const issuedMs = typeof payload.iat === "number" ? payload.iat * 1000 : expiresMs - TOKEN_TTL_MS
        const familyExpiresMs = typeof payload.fex === "number" ? payload.fex * 1000 : floorToSecond(issuedMs + this.maxAgeMs)
        const lifetimeMs = typeof payload.ttl === "number" && payload.ttl > 0 ? payload.ttl * 1000 : Math.max(1000, expiresMs - issuedMs)
        if (await this.revocations.isRevoked(tokenFamily)) throw new TokenError("E_TOKEN_REVOKED", "the token was signed out (DELETE /jwt); sign in with the key again")
        const key = await this.o.lookupKey(String(payload.sub))
        if (!key || key.revokedMs !== undefined) {
            throw new TokenError("E_TOKEN_KEY_REVOKED", "the key this token was minted from has been revoked; sign in with a valid key")
        }
        const fromToken = narrow(keyGrant(key), {
            permissions: payload.perm,
            feeds: payload.feeds,
        })
        // a master token stays master only while its key is
        return { ...fromToken, master: key.master && payload.master === true, tokenId, expiresMs, tokenFamily, familyExpiresMs, lifetimeMs }
    }

    /** Signs out: the token's whole family (the sign-in and every renewal of it), until the family's end. */
    async revoke(t: VerifiedToken): Promise<void> {
        await this.revocations.revoke(t.tokenFamily, t.familyExpiresMs)
    }
}

export interface MintedToken {
    token: string
    /** when it was signed: expiresMs - issuedMs is how long it lasts, at least MIN_TOKEN_TTL_MS */
    issuedMs: number
    expiresMs: number
    /** the family's end: no renewal goes past it */
    familyExpiresMs: number
    grant: Grant
}

const newTokenId = () => crypto.randomBytes(9).toString("base64url")
const floorToSecond = (ms: number) => Math.floor(ms / 1000) * 1000
const ceilToSecond = (ms: number) => Math.ceil(ms / 1000) * 1000

/** A requested ttl in ms: `fallback` when absent, else a number in [MIN_TOKEN_TTL_MS, max]. */
function ttlOf(ttlMs: unknown, fallback: number, max: number, reason: string): number {
    const ttl = ttlMs === undefined ? fallback : ttlMs
    if (typeof ttl !== "number" || !(ttl >= MIN_TOKEN_TTL_MS) || ttl > max) throw new TokenError("E_TOKEN_REQUEST", reason)
    return ttl
}

export function keyGrant(k: KeyState): Grant {
    return { keyId: k.id, permissions: [...k.permissions], feeds: k.feeds ? [...k.feeds] : undefined, master: k.master }
}

/**
 * What a sign-in or renewal asks for: the grant narrowed to it, refused when nothing is left. Red-teamed: a key
 * scoped to feed 2 asking for `"feeds":[9]` (or a read-only key for `"permissions":["update"]`) got a 200 and
 * a token that could do nothing, with no word of why.
 */
function narrowAsked(g: Grant, want: { permissions?: unknown; feeds?: unknown }): Grant {
    const narrowed = narrow(g, want)
    if (want.permissions !== undefined && narrowed.permissions.length === 0) {
        throw new TokenError("E_TOKEN_REQUEST", `the token would have no permission: this key has ${g.permissions.join(", ") || "none"}; ask for some of those`)
    }
    if (want.feeds !== undefined && narrowed.feeds !== undefined && narrowed.feeds.length === 0) {
        throw new TokenError("E_TOKEN_REQUEST", `the token would be for no feed: this key may use ${g.feeds === undefined ? "every feed" : g.feeds.length ? "feeds " + g.feeds.join(", ") : "none"}; ask for some of those`)
    }
    return narrowed
}

/** The grant narrowed to what is asked for: what it has of it (a permission or feed it lacks is left out). */
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
    // written whole beside it, then linked into place: link() fails if another process (sharing the data
    // folder, starting at the same moment) made it first, and then its secret is the one every process uses
    const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}`
    fs.writeFileSync(tmp, secret.toString("hex") + "\n", { mode: 0o600, flag: "wx" })
    try {
        fs.linkSync(tmp, file)
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
        return loadOrCreateTokenSecret(dataDir)
    } finally {
        fs.rmSync(tmp, { force: true })
    }
    return secret
}
