// API keys, Xively's model [P§7]: permissions from read/update/create/delete, scoped to a list of feeds or
// to all; a master key manages feeds and keys. Only a hash of each key is stored (key-hash.ts: SHA-256 for
// generated keys, scrypt for imported ones); a presented key is hashed and looked up. The ring caches the keys and reloads them whenever
// the store says they may have changed (also by the `feedline keys` CLI in another process: the store
// looks once per event-loop turn; a datapoint write's key is checked again in its commit, Store.writePoints'
// keysAsOf), so a revocation counts from the next request on.
import { randomBytes, timingSafeEqual } from "node:crypto"
import { ApiError } from "../errors.ts"
import { isoOf } from "../time.ts"
import { MAX_FEED_ID } from "../limits.ts"
import type { KeyRecord, Store } from "../storage/store.ts"
import { permits, PERMISSIONS, type Grant, type Permission } from "./grant.ts"
import { scryptOf, sha256Of } from "./key-hash.ts"

export interface NewKey {
    label?: string
    permissions: Permission[]
    feeds?: number[]
    master?: boolean
    /** import an existing key (e.g. one devices already carry); else a random one is made */
    secret?: string
}

/**
 * Imported keys found by their scrypt hash are remembered by their SHA-256 (in memory only, as the
 * database held them before), so a device pays the scrypt once per server start, not per connection.
 * Past this many the memory starts over (64 B each).
 */
const MAX_REMEMBERED_SCRYPT_KEYS = 10_000

/** Legacy keys re-hashed per store write (a fleet of per-device keys may hold thousands). */
const REHASH_BATCH = 32

/** A user-chosen key must be at least this long: shorter ones can be guessed. */
export const MIN_SECRET_CHARS = 12
export const MAX_SECRET_CHARS = 128

export function newSecret(): string {
    return randomBytes(24).toString("base64url") // 32 characters, 192 bits
}

/**
 * A key made here (not imported), as a record to insert: SHA-256 of 192 random bits (key-hash.ts). `idBytes`:
 * random bytes of its public id; a fleet of per-device keys takes 6 (48 bits: a repeat among 100 000 keys is
 * one chance in 50 000), people's keys 4.
 */
export function generatedKey(input: Omit<NewKey, "secret">, nowMs: number, idBytes = 4): { record: KeyRecord; secret: string } {
    const secret = newSecret()
    return { record: keyRecord(input, { hash: sha256Of(secret), hashKind: "sha256" }, nowMs, idBytes), secret }
}

/** A key's record with a new public id, its hash made as `hashed` says. */
function keyRecord(input: Omit<NewKey, "secret">, hashed: Pick<KeyRecord, "hash" | "hashKind">, nowMs: number, idBytes: number): KeyRecord {
    return {
        id: randomBytes(idBytes).toString("hex"),
        ...hashed,
        label: input.label ?? "",
        permissions: input.master ? [...PERMISSIONS] : [...new Set(input.permissions)],
        feeds: input.master ? undefined : input.feeds,
        master: input.master === true,
        createdMs: nowMs,
    }
}

function isPrintableAscii(s: string): boolean {
    for (let i = 0; i < s.length; ++i) {
        const c = s.charCodeAt(i)
        if (c <= 32 || c >= 127) return false
    }
    return true
}

/** A key as shown by `keys list` and GET /keys: never the secret or its hash. */
export function describeKey(k: KeyRecord): Record<string, unknown> {
    return {
        id: k.id,
        label: k.label,
        permissions: k.permissions,
        feeds: k.feeds ?? "*",
        master: k.master,
        created: isoOf(k.createdMs),
        revoked: k.revokedMs === undefined ? undefined : isoOf(k.revokedMs),
    }
}

export class KeyRing {
    /** unrevoked keys whose hash is a SHA-256 ("sha256", "sha256-legacy"), by its hex */
    private bySha256 = new Map<string, KeyRecord>()
    /** unrevoked keys whose hash is a scrypt (imported keys), by its hex */
    private byScrypt = new Map<string, KeyRecord>()
    /** SHA-256 hex of a presented key -> id of the scrypt-hashed key it matched */
    private readonly scryptMatches = new Map<string, string>()
    private salt?: Buffer
    /** unrevoked keys by id */
    private activeById = new Map<string, KeyRecord>()
    /** signed-out token families (DELETE /jwt), from the store */
    private revokedFamilies = new Set<string>()
    private version = -1
    /** grants this ring gave, with the key and the keys' version they were given for (see authenticate) */
    private readonly issued = new WeakMap<Grant, { secret: string; version: number }>()
    private readonly reloadListeners: (() => void)[] = []

    constructor(
        private readonly store: Store,
        private readonly now: () => number = Date.now,
    ) {}

    /** Reloads the keys when the store says they changed. The server also calls it every KEY_REFRESH_MS so
     *  that a revocation by the CLI reaches live subscriptions, which check keys without a request. */
    async refresh(): Promise<void> {
        const v = this.store.keysVersion()
        if (v === this.version) return
        const keys = await this.store.listKeys()
        this.revokedFamilies = new Set(await this.store.revokedTokenFamilies())
        this.version = v
        const active = keys.filter((k) => k.revokedMs === undefined)
        this.bySha256 = new Map(active.filter((k) => k.hashKind !== "scrypt").map((k) => [k.hash.toString("hex"), k]))
        this.byScrypt = new Map(active.filter((k) => k.hashKind === "scrypt").map((k) => [k.hash.toString("hex"), k]))
        this.activeById = new Map(active.map((k) => [k.id, k]))
        for (const listener of this.reloadListeners) listener()
    }

    /**
     * The grant of a key, or undefined when it is unknown or revoked. `known`: a grant this ring gave
     * earlier (the one a connection remembers); it is returned as it is when it was given for this same
     * key and the keys have not changed since, which spares hashing the key on every request.
     */
    async authenticate(secret: string, known?: Grant): Promise<Grant | undefined> {
        await this.refresh()
        if (known !== undefined && this.stillIssued(secret, known)) return known
        const sha256 = sha256Of(secret)
        let k = await this.lookUp(sha256)
        if (!k) {
            // made by another process a moment ago (its announcement may still be on its way): look again
            // once the store has caught up, if that changed the keys
            const before = this.version
            await this.store.catchUp()
            await this.refresh()
            if (this.version !== before) k = await this.lookUp(sha256)
        }
        if (!k) return undefined
        const grant: Grant = { keyId: k.id, permissions: k.permissions, feeds: k.feeds, master: k.master }
        this.issued.set(grant, { secret, version: this.version })
        return grant
    }

    /**
     * `known` when this ring gave it for this same key and the keys have not changed since (as the store
     * says now, without a reload); else undefined, and authenticate() decides. Spares the hot path a wait.
     * `asKnown`: the store's version as it knows it, without looking at other processes' changes
     * (Store.keysVersionAsKnown): only for a datapoint write, which passes keysAsOf() to the store.
     */
    stillIssued(secret: string, known: Grant, asKnown = false): Grant | undefined {
        const given = this.issued.get(known)
        if (given === undefined || given.secret !== secret || given.version !== this.version) return undefined
        if ((asKnown ? this.store.keysVersionAsKnown() : this.store.keysVersion()) !== this.version) return undefined
        return known
    }

    /** The store's keys version this ring holds: what a check by stillIssued(…, true) relied on (Store.writePoints' keysAsOf). */
    keysAsOf(): number {
        return this.version
    }

    private async lookUp(sha256: Buffer): Promise<KeyRecord | undefined> {
        const k = this.bySha256.get(sha256.toString("hex"))
        if (k && timingSafeEqual(sha256, k.hash)) return k
        // a key not found among the SHA-256 ones may be an imported key: one scrypt, unless remembered
        return this.byScrypt.size > 0 ? this.findImported(sha256) : undefined
    }

    private async findImported(sha256: Buffer): Promise<KeyRecord | undefined> {
        const shaHex = sha256.toString("hex")
        const id = this.scryptMatches.get(shaHex)
        if (id !== undefined) return this.activeById.get(id)
        const k = this.byScrypt.get((await scryptOf(sha256, await this.hashSalt())).toString("hex"))
        if (k) {
            if (this.scryptMatches.size >= MAX_REMEMBERED_SCRYPT_KEYS) this.scryptMatches.clear()
            this.scryptMatches.set(shaHex, k.id)
        }
        return k
    }

    private async hashSalt(): Promise<Buffer> {
        return (this.salt ??= await this.store.keyHashSalt())
    }

    /**
     * Re-hashes keys stored before generated and imported keys were told apart ("sha256-legacy": either
     * kind, no one can tell) with scrypt, as imported keys are; they keep working throughout. The server runs
     * it in the background after its start (about 50 ms per key, in the thread pool). How many it did.
     */
    async upgradeLegacyHashes(): Promise<number> {
        const salt = await this.hashSalt()
        const legacy = (await this.store.listKeys()).filter((k) => k.hashKind === "sha256-legacy")
        let n = 0
        // in batches: the thread pool hashes several at once, and each batch is one change the ring reloads
        for (let i = 0; i < legacy.length; i += REHASH_BATCH) {
            const batch = legacy.slice(i, i + REHASH_BATCH)
            const hashes = await Promise.all(batch.map((k) => scryptOf(k.hash, salt)))
            n += await this.store.rehashKeys(batch.map((k, j) => ({ id: k.id, from: k.hash, to: hashes[j] })), "scrypt")
        }
        return n // the store says keys changed: the ring reloads them on its next use
    }

    /**
     * Synchronous re-check for pushes and for the sweep after keys change: why this grant may no longer do
     * `permission` on `feed` (expired, its key revoked, the key narrowed), or undefined while it may. Against
     * the cached ring: revocations through this ring count at once, the CLI's after the next refresh().
     */
    refusal(grant: Grant, permission: Permission, feed: number): string | undefined {
        if (grant.expiresMs !== undefined && grant.expiresMs <= this.now()) return "the token expired"
        if (grant.tokenFamily !== undefined && this.revokedFamilies.has(grant.tokenFamily)) return "the token was signed out"
        const key = this.activeById.get(grant.keyId)
        if (!key) return grant.bearer ? `the key ${grant.keyId} this token was minted from was revoked` : `the key ${grant.keyId} was revoked`
        if (!permits(grant, permission, feed) || !permits(key, permission, feed)) return `the key ${grant.keyId} may no longer ${permission} feed ${feed}`
        return undefined
    }

    /** Is this grant unexpired and its key (for a token: the key that minted it) not revoked? Cached ring. */
    stillValid(grant: Grant): boolean {
        if (grant.expiresMs !== undefined && grant.expiresMs <= this.now()) return false
        if (grant.tokenFamily !== undefined && this.revokedFamilies.has(grant.tokenFamily)) return false
        return this.activeById.has(grant.keyId)
    }

    /** [P§7] Has this token family been signed out? Durable: read from the store. */
    async isTokenFamilyRevoked(family: string): Promise<boolean> {
        await this.refresh()
        return this.revokedFamilies.has(family)
    }

    /** [P§7] Signs a token family out until `untilMs` (its end); what it subscribed ends at once. */
    async revokeTokenFamily(family: string, untilMs: number): Promise<void> {
        await this.store.revokeTokenFamily(family, untilMs)
        await this.refresh()
    }

    /** `listener` runs after every reload of the keys (something changed): the server re-checks subscriptions. */
    onReload(listener: () => void): void {
        this.reloadListeners.push(listener)
    }

    /** An unrevoked key by its id (undefined when unknown or revoked), after a reload if keys changed: the token authority checks a token's key with it on every use. */
    async findKey(id: string): Promise<KeyRecord | undefined> {
        await this.refresh()
        const k = this.activeById.get(id)
        if (k) return k
        // a token whose key another process made a moment ago (see authenticate)
        await this.store.catchUp()
        await this.refresh()
        return this.activeById.get(id)
    }

    /** The label of an unrevoked key ("" when it has none), from the cached ring. */
    labelOf(keyId: string): string | undefined {
        return this.activeById.get(keyId)?.label
    }

    async create(input: NewKey): Promise<{ record: KeyRecord; secret: string }> {
        const secret = input.secret ?? newSecret()
        if (secret.length < MIN_SECRET_CHARS || secret.length > MAX_SECRET_CHARS || !isPrintableAscii(secret)) {
            throw new ApiError(422, "E_BAD_VALUE", `a key must be ${MIN_SECRET_CHARS} to ${MAX_SECRET_CHARS} printable ASCII characters without spaces`)
        }
        for (const p of input.permissions) {
            if (!PERMISSIONS.includes(p)) throw new ApiError(422, "E_BAD_VALUE", `unknown permission "${p}"; use ${PERMISSIONS.join(", ")}`)
        }
        // a master key reaches every feed: a feed list beside it would read as a limit the key does not have
        if (input.master && input.feeds !== undefined) {
            throw new ApiError(422, "E_BAD_VALUE", `a master key reaches every feed, so it takes no feed list (${input.feeds.join(",")}): leave the feeds out for a master key, or leave master out for a key limited to those feeds`)
        }
        // a key's feeds count as ids given out (limits.ts MAX_FEED_ID says why they are bounded)
        const tooHigh = input.master ? undefined : input.feeds?.find((f) => f > MAX_FEED_ID)
        if (tooHigh !== undefined) throw new ApiError(422, "E_BAD_VALUE", `feed id ${tooHigh} is above ${MAX_FEED_ID}, the highest a feed may have`)
        // generated keys: SHA-256; imported ones: scrypt (key-hash.ts says why)
        const sha256 = sha256Of(secret)
        const scrypt = input.secret === undefined ? undefined : await scryptOf(sha256, await this.hashSalt())
        if ((await this.store.listKeys()).some((k) => k.hash.equals(k.hashKind === "scrypt" ? (scrypt ?? Buffer.alloc(0)) : sha256))) {
            throw new ApiError(422, "E_CONFLICT", "that key exists already; choose another")
        }
        const record = keyRecord(input, scrypt ? { hash: scrypt, hashKind: "scrypt" } : { hash: sha256, hashKind: "sha256" }, this.now(), 4)
        await this.store.insertKey(record)
        return { record, secret }
    }

    async list(): Promise<KeyRecord[]> {
        return this.store.listKeys()
    }

    async revoke(id: string): Promise<boolean> {
        const revoked = await this.store.revokeKey(id, this.now())
        await this.refresh()
        return revoked
    }
}
