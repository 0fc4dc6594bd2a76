// Browser tokens (devs/auth-tokens): minting, verification on every use, expiry, revocation of the
// issuing key, narrowing, renewal and the POST /jwt endpoint. The clock is injected: no sleeps.
import { test } from "node:test"
import assert from "node:assert/strict"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { bearerToken, DEFAULT_TOKEN_MAX_AGE_MS, loadOrCreateTokenSecret, MIN_TOKEN_TTL_MS, TokenAuthority, TokenError, TOKEN_TTL_MS, type KeyState } from "../../../devs/auth-tokens/browser-tokens.ts"
import { handleJwtRequest } from "../../../devs/auth-tokens/endpoint.ts"
import { bearerVerifier } from "../../../devs/auth-tokens/server-glue.ts"
import { KeyRing } from "../../../devs/server/auth/keys.ts"
import type { Store } from "../../../devs/server/storage/store.ts"

const SECRET = new Uint8Array(32).fill(7)
const T0 = Date.UTC(2026, 10, 22, 5, 0, 0)

function setup(o: { maxAgeMs?: number } = {}) {
    let now = T0
    const keys = new Map<string, KeyState>([
        ["k1", { id: "k1", permissions: ["read", "update"], feeds: [1, 2], master: false }],
        ["m", { id: "m", permissions: ["read", "update", "create", "delete"], master: true }],
    ])
    const authority = new TokenAuthority({ secret: SECRET, lookupKey: (id) => keys.get(id), now: () => now, ...o })
    return { authority, keys, advance: (ms: number) => (now += ms) }
}

const grantOf = (k: KeyState) => ({ keyId: k.id, permissions: k.permissions, feeds: k.feeds, master: k.master })
const codeOf = (code: string) => (e: unknown) => e instanceof TokenError && e.code === code

test("a minted token verifies to its key's grant and lasts 5 hours", async () => {
    const { authority, keys, advance } = setup()
    const { token, expiresMs } = await authority.mint(grantOf(keys.get("k1")!))
    assert.equal(expiresMs, T0 + TOKEN_TTL_MS)
    const v = await authority.verify(token)
    assert.deepEqual(
        { ...v, tokenId: "" },
        { keyId: "k1", permissions: ["read", "update"], feeds: [1, 2], master: false, tokenId: "", expiresMs, tokenFamily: v.tokenId, familyExpiresMs: T0 + DEFAULT_TOKEN_MAX_AGE_MS, lifetimeMs: TOKEN_TTL_MS },
    )
    advance(TOKEN_TTL_MS - 1000)
    await authority.verify(token)
    advance(1000)
    await assert.rejects(authority.verify(token), codeOf("E_TOKEN_EXPIRED"))
})

test("a token lasts at least its ttl: the expiry is rounded up to a whole second, a ttl under a second is refused (was: rounded down, so ttl 1 at .999 expired 1 ms after minting)", async () => {
    const { authority, keys, advance } = setup()
    advance(999) // a mint 1 ms before a whole second: the worst case of rounding down
    const { token, expiresMs } = await authority.mint(grantOf(keys.get("k1")!), { ttlMs: MIN_TOKEN_TTL_MS })
    assert.equal(expiresMs, T0 + 2000)
    advance(MIN_TOKEN_TTL_MS - 1) // its whole ttl later, less a millisecond
    await authority.verify(token)
    advance(1) // T0 + 1999: past the ttl, before the expiry it was told
    await authority.verify(token)
    advance(1)
    await assert.rejects(authority.verify(token), codeOf("E_TOKEN_EXPIRED"))
    // a fractional ttl is rounded up the same way
    const longer = await authority.mint(grantOf(keys.get("k1")!), { ttlMs: 1500 })
    assert.equal(longer.expiresMs, T0 + 4000)
    for (const ttlMs of [999, 0.5, 0, -1]) await assert.rejects(authority.mint(grantOf(keys.get("k1")!), { ttlMs }), codeOf("E_TOKEN_REQUEST"))
})

test("POST /jwt with ttl 1 tells the real expiry: expires_at rounded up, expires_in at least the ttl; ttl 0.5 is 422 E_TOKEN_REQUEST", async () => {
    const { authority, advance } = setup()
    const deps = { authority, authenticateKey: (secret: string) => (secret === "the-secret-key" ? { keyId: "k1", permissions: ["read" as const], feeds: [1], master: false } : undefined) }
    advance(999)
    const r = await handleJwtRequest({ method: "POST", headers: { "X-ApiKey": "the-secret-key" }, body: { ttl: 1 } }, deps)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    const b = r.body as any
    assert.equal(b.expires_at, new Date(T0 + 2000).toISOString())
    assert.equal(b.expires_in, 1)
    for (const ttl of [0.5, 0, -3]) {
        const refused = await handleJwtRequest({ method: "POST", headers: { "X-ApiKey": "the-secret-key" }, body: { ttl } }, deps)
        assert.deepEqual([refused.status, (refused.body as any).code], [422, "E_TOKEN_REQUEST"], `ttl ${ttl}`)
        assert.match((refused.body as any).errors, /from 1 to/)
    }
})

test("revoking or narrowing the issuing key takes effect on its tokens at the next use", async () => {
    const { authority, keys } = setup()
    const { token } = await authority.mint(grantOf(keys.get("k1")!))
    keys.set("k1", { ...keys.get("k1")!, permissions: ["read"] })
    assert.deepEqual((await authority.verify(token)).permissions, ["read"])
    keys.set("k1", { ...keys.get("k1")!, revokedMs: T0 })
    await assert.rejects(authority.verify(token), codeOf("E_TOKEN_KEY_REVOKED"))
    keys.delete("k1")
    await assert.rejects(authority.verify(token), codeOf("E_TOKEN_KEY_REVOKED"))
})

test("a token may be narrowed, never widened; a narrowed master token is not master", async () => {
    const { authority, keys } = setup()
    const { token } = await authority.mint(grantOf(keys.get("k1")!), { permissions: ["read", "delete"], feeds: [2, 3] })
    const v = await authority.verify(token)
    assert.deepEqual([v.permissions, v.feeds], [["read"], [2]])
    const m = await authority.verify((await authority.mint(grantOf(keys.get("m")!))).token)
    assert.equal(m.master, true)
    const mNarrow = await authority.verify((await authority.mint(grantOf(keys.get("m")!), { permissions: ["read"] })).token)
    assert.deepEqual([mNarrow.master, mNarrow.permissions], [false, ["read"]])
    await assert.rejects(authority.mint(grantOf(keys.get("m")!), { ttlMs: TOKEN_TTL_MS + 1 }), codeOf("E_TOKEN_REQUEST"))
    await assert.rejects(authority.mint(grantOf(keys.get("m")!), { permissions: ["fly"] }), codeOf("E_TOKEN_REQUEST"))
})

test("asking for a token that would be left with no feed or no permission is refused (was: 200 and a token that could do nothing)", async () => {
    const { authority, keys } = setup()
    const k1 = grantOf(keys.get("k1")!) // read, update on feeds 1 and 2
    await assert.rejects(authority.mint(k1, { feeds: [9] }), (e: any) => e.code === "E_TOKEN_REQUEST" && /may use feeds 1, 2/.test(e.message))
    await assert.rejects(authority.mint(k1, { feeds: [] }), codeOf("E_TOKEN_REQUEST"))
    await assert.rejects(authority.mint(k1, { permissions: ["delete"] }), (e: any) => e.code === "E_TOKEN_REQUEST" && /has read, update/.test(e.message))
    await assert.rejects(authority.mint(grantOf(keys.get("m")!), { feeds: [] }), (e: any) => /every feed/.test(e.message))
    // a renewal likewise
    const t = await authority.verify((await authority.mint(k1, { feeds: [2] })).token)
    await assert.rejects(authority.renew(t, { feeds: [1] }), codeOf("E_TOKEN_REQUEST"))
    // some of what was asked is still a token (narrowed, as before)
    assert.deepEqual((await authority.verify((await authority.mint(k1, { feeds: [2, 9] })).token)).feeds, [2])
})

test("forged, tampered and foreign tokens are refused; one token can be revoked", async () => {
    const { authority, keys } = setup()
    const { token } = await authority.mint(grantOf(keys.get("k1")!))
    const [h, p, s] = token.split(".")
    const widened = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url").toString()), perm: ["delete"] })).toString("base64url")
    await assert.rejects(authority.verify(`${h}.${widened}.${s}`), codeOf("E_TOKEN_INVALID"))
    const other = new TokenAuthority({ secret: new Uint8Array(32).fill(8), lookupKey: (id) => keys.get(id) })
    await assert.rejects(other.verify(token), codeOf("E_TOKEN_INVALID"))
    await assert.rejects(authority.verify("not.a.jwt"), codeOf("E_TOKEN_INVALID"))
    await authority.revoke(await authority.verify(token))
    await assert.rejects(authority.verify(token), codeOf("E_TOKEN_REVOKED"))
})

test("bearerToken reads both header spellings", () => {
    assert.equal(bearerToken("Bearer abc.def.ghi"), "abc.def.ghi")
    assert.equal(bearerToken("bearer  abc.def.ghi "), "abc.def.ghi")
    assert.equal(bearerToken("abc.def.ghi"), undefined)
    assert.equal(bearerToken(undefined), undefined)
})

test("POST /jwt mints from a key, renews from a token, and refuses with coded errors", async () => {
    const { authority, keys, advance } = setup()
    const deps = { authority, authenticateKey: (secret: string) => (secret === "the-secret-key" ? grantOf(keys.get("k1")!) : undefined) }
    const minted = await handleJwtRequest({ method: "POST", headers: { "X-ApiKey": "the-secret-key" } }, deps)
    assert.equal(minted.status, 200)
    const b = minted.body as any
    assert.equal(b.expires_in, TOKEN_TTL_MS / 1000)
    assert.equal(b.key_id, "k1")
    assert.deepEqual(b.feeds, [1, 2])
    advance(60_000)
    const renewed = await handleJwtRequest({ method: "POST", headers: { authorization: `Bearer ${b.token}` } }, deps)
    assert.equal(renewed.status, 200)
    assert.equal(Date.parse((renewed.body as any).expires_at), T0 + 60_000 + TOKEN_TTL_MS)

    const wrong = await handleJwtRequest({ method: "POST", headers: { "x-apikey": "guess" } }, deps)
    assert.deepEqual([wrong.status, (wrong.body as any).code], [401, "E_UNAUTHORIZED"])
    const none = await handleJwtRequest({ method: "POST", headers: {} }, deps)
    assert.equal(none.status, 401)
    const get = await handleJwtRequest({ method: "GET", headers: {} }, deps)
    assert.equal(get.status, 405)
    const badTtl = await handleJwtRequest({ method: "POST", headers: { "X-ApiKey": "the-secret-key" }, body: { ttl: 999999 } }, deps)
    assert.deepEqual([badTtl.status, (badTtl.body as any).code], [422, "E_TOKEN_REQUEST"])
    advance(TOKEN_TTL_MS - 30_000) // the first token is past its expiry, the renewed one is not
    const expired = await handleJwtRequest({ method: "POST", headers: { "X-ApiKey": `Bearer ${b.token}` } }, deps)
    assert.deepEqual([expired.status, (expired.body as any).code], [401, "E_TOKEN_EXPIRED"])
    const out = await handleJwtRequest({ method: "DELETE", headers: { authorization: `Bearer ${(renewed.body as any).token}` } }, deps)
    assert.equal(out.status, 200)
    // refused, and why (the server's answer says it: docs/PROTOCOL.md §7)
    assert.deepEqual(await bearerVerifier(authority)((renewed.body as any).token), { refused: "the token was signed out (DELETE /jwt); sign in with the key again" })
})

test("the secret is created once (0600) and reused; the key lookup reloads only when keys change", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "feedline-tokens-"))
    try {
        const a = loadOrCreateTokenSecret(dir)
        const b = loadOrCreateTokenSecret(dir)
        assert.deepEqual(Buffer.from(a), Buffer.from(b))
        assert.equal(fs.statSync(path.join(dir, "jwt-secret")).mode & 0o777, 0o600)
    } finally {
        fs.rmSync(dir, { recursive: true, force: true })
    }
    let version = 1
    let loads = 0
    // the server's key ring is the tokens' key lookup (KeyRing.findKey)
    const store = {
        keysVersion: () => version,
        catchUp: async () => {},
        listKeys: async () => (loads++, [{ id: "a", permissions: ["read" as const], master: false, hash: Buffer.alloc(32), hashKind: "sha256" as const, label: "", createdMs: T0 }]),
        revokedTokenFamilies: async () => [],
    }
    const ring = new KeyRing(store as unknown as Store)
    const lookup = (id: string) => ring.findKey(id)
    assert.equal((await lookup("a"))?.id, "a")
    assert.equal(await lookup("b"), undefined)
    assert.equal(loads, 1)
    version++
    await lookup("a")
    assert.equal(loads, 2)
})

test("a renewal keeps the first token's lifetime: a 20 s token renews into 20 s tokens, never longer", async () => {
    const { authority, keys, advance } = setup()
    const first = await authority.mint(grantOf(keys.get("k1")!), { ttlMs: 20_000 })
    assert.equal(first.expiresMs, T0 + 20_000)
    let current = first.token
    for (let i = 1; i <= 3; ++i) {
        advance(15_000)
        const renewed = await authority.renew(await authority.verify(current))
        assert.equal(renewed.expiresMs, T0 + i * 15_000 + 20_000, `renewal ${i}`)
        current = renewed.token
    }
    await assert.rejects(authority.renew(await authority.verify(current), { ttlMs: 21_000 }), codeOf("E_TOKEN_REQUEST"))
    // asking for less narrows it for the renewals after, too
    const shorter = await authority.renew(await authority.verify(current), { ttlMs: 5000 })
    advance(4000)
    assert.equal((await authority.renew(await authority.verify(shorter.token))).expiresMs, T0 + 45_000 + 4000 + 5000)
})

test("no token of a sign-in outlives its maximum age (default 24 h, configurable); then renewal says so", async () => {
    const { authority, keys, advance } = setup()
    let t = await authority.mint(grantOf(keys.get("k1")!))
    assert.equal(t.familyExpiresMs, T0 + DEFAULT_TOKEN_MAX_AGE_MS)
    // a page renewing 30 minutes before each expiry, for a day
    let clock = T0
    let renewals = 0
    for (;;) {
        clock = advance(t.expiresMs - 30 * 60_000 - clock)
        try {
            t = await authority.renew(await authority.verify(t.token))
            renewals++
        } catch (e) {
            assert.ok(codeOf("E_TOKEN_MAX_AGE")(e), String(e))
            assert.match((e as Error).message, /maximum age \(24 h\).*sign in/)
            break
        }
        assert.ok(t.expiresMs <= T0 + DEFAULT_TOKEN_MAX_AGE_MS, `renewal ${renewals} ends after the sign-in's maximum age`)
        if (renewals > 100) assert.fail("renewed forever")
    }
    assert.equal(renewals, 5) // at 4.5 h, 9 h, 13.5 h, 18 h (to 23 h), 22.5 h (to 24 h); at 23.5 h nothing is left to extend
    assert.equal(t.expiresMs, T0 + DEFAULT_TOKEN_MAX_AGE_MS, "the last renewal ends with the sign-in")

    const short = setup({ maxAgeMs: 60_000 })
    const s1 = await short.authority.mint(grantOf(short.keys.get("k1")!))
    assert.equal(s1.expiresMs, T0 + 60_000, "a 5 h token is cut to the 1 minute maximum age")
    short.advance(59_000)
    await assert.rejects(short.authority.renew(await short.authority.verify(s1.token)), codeOf("E_TOKEN_MAX_AGE"))
    short.advance(1000)
    await assert.rejects(short.authority.verify(s1.token), codeOf("E_TOKEN_EXPIRED"))
})

test("signing out revokes the token's whole family: the sign-in and every renewal, before or after", async () => {
    const { authority, keys, advance } = setup()
    const a = await authority.mint(grantOf(keys.get("k1")!))
    advance(1000)
    const b = await authority.renew(await authority.verify(a.token))
    advance(1000)
    const c = await authority.renew(await authority.verify(b.token))
    const other = await authority.mint(grantOf(keys.get("k1")!))
    await authority.revoke(await authority.verify(b.token))
    for (const t of [a, b, c]) await assert.rejects(authority.verify(t.token), codeOf("E_TOKEN_REVOKED"))
    await authority.verify(other.token) // another sign-in of the same key goes on
})
