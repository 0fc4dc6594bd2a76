// Which keys have authenticated from which remote address lately: while an address is locked out for
// failed keys (429 E_AUTH_RATE_LIMITED), a key already proven from it is still looked up, so one
// misconfigured board behind a NAT does not lock its whole fleet out on reconnect. A guesser learns
// nothing: only keys that already worked from that address pass. Bounded; limits.ts says how and why.
import { sha256Of } from "./key-hash.ts"
import { MAX_PROVEN_KEYS, PROVEN_KEY_TTL_MS } from "../limits.ts"

export class ProvenKeys {
    /** "address key-digest" -> when the pass ends (ms); Map order is the order of the last proof (oldest first) */
    private readonly until = new Map<string, number>()

    constructor(
        private readonly maxEntries = MAX_PROVEN_KEYS,
        private readonly ttlMs = PROVEN_KEY_TTL_MS,
    ) {}

    /** `credential` authenticated from `address` at `nowMs`: it passes the lockout of that address until nowMs + ttl. */
    proven(address: string, credential: string, nowMs: number): void {
        const name = nameOf(address, credential)
        this.until.delete(name) // re-inserted at the newest end
        this.until.set(name, nowMs + this.ttlMs)
        if (this.until.size > this.maxEntries) this.until.delete(this.until.keys().next().value as string)
    }

    /** Whether `credential` authenticated from `address` within the ttl before `nowMs` (and is still remembered). */
    passes(address: string, credential: string, nowMs: number): boolean {
        const name = nameOf(address, credential)
        const end = this.until.get(name)
        if (end === undefined) return false
        if (end > nowMs) return true
        this.until.delete(name)
        return false
    }

    /** `credential` failed from `address` (revoked, expired): it no longer passes the lockout. */
    failed(address: string, credential: string): void {
        this.until.delete(nameOf(address, credential))
    }

    get size(): number {
        return this.until.size
    }
}

/** the key by its SHA-256, not itself: no secret is held here longer than its connection holds it */
function nameOf(address: string, credential: string): string {
    return `${address} ${sha256Of(credential).toString("base64")}`
}
