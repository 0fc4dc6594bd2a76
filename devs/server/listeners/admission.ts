// Which connections may stay [P§6, P§7]: at most maxConnections in all and maxPerAddress from one remote
// address (over either: a 429 notice, then close), and at most maxUnauthenticatedPerAddress from one
// address that have not yet made an authenticated request. Over that last one the address's OLDEST
// unauthenticated connection is closed to make room, not the new one: an address that opens connections
// without a key only churns its own, and a device behind the same NAT, which sends its key right after the
// welcome, still gets in. Each such connection also has AUTH_DEADLINE_MS (session.ts). Once its first key
// is accepted, a connection also counts against that key, at most maxPerKey of them (master keys are not
// counted), so one tenant's key cannot take every slot from many addresses. The counts live here, and
// leave with the connection's close; the decisions are the pure admissionStep() and keyAdmissionStep().
import { ApiError } from "../errors.ts"
import { RECONNECT_AFTER_MS } from "../limits.ts"

/** [P§6] retry hints are jittered (1x to 2x) so that refused or shut-down devices do not return all at once. */
export function jitteredRetryMs(rand01 = Math.random()): number {
    return Math.round(RECONNECT_AFTER_MS * (1 + rand01))
}

export interface AdmissionLimits {
    maxConnections: number
    maxPerAddress: number
    maxUnauthenticatedPerAddress: number
    /** open connections counted against one key (limits.ts maxConnectionsPerKeyOf) */
    maxPerKey: number
}

export interface AdmissionCounts {
    /** open connections */
    total: number
    /** open connections from the new connection's address */
    fromAddress: number
    /** of those, the ones not yet authenticated */
    unauthenticatedFromAddress: number
}

export type AdmissionStep = { admit: true } | { evictOldestUnauthenticated: true } | { refuse: { code: string; reason: string } }

/** What to do with a new connection: admit it, first close the address's oldest unauthenticated connection, or refuse it. */
export function admissionStep(c: AdmissionCounts, l: Omit<AdmissionLimits, "maxPerKey">): AdmissionStep {
    if (c.total >= l.maxConnections) return { refuse: { code: "E_TOO_MANY_CONNECTIONS", reason: `the server holds its maximum of ${l.maxConnections} connections; reconnect later` } }
    if (c.fromAddress >= l.maxPerAddress) {
        return { refuse: { code: "E_TOO_MANY_CONNECTIONS", reason: `your address holds its maximum of ${l.maxPerAddress} connections; reconnect later, or close some` } }
    }
    if (c.unauthenticatedFromAddress >= l.maxUnauthenticatedPerAddress) {
        if (c.unauthenticatedFromAddress > 0) return { evictOldestUnauthenticated: true }
        return { refuse: { code: "E_TOO_MANY_UNAUTHENTICATED", reason: "connections from your address are not accepted without a key" } }
    }
    return { admit: true }
}

/** Whether a connection may count against a key that already counts `openWithKey`: the refusal's code and reason if not. */
export function keyAdmissionStep(openWithKey: number, keyId: string, maxPerKey: number): { code: string; reason: string } | undefined {
    if (openWithKey < maxPerKey) return undefined
    return {
        code: "E_TOO_MANY_CONNECTIONS_FOR_KEY",
        reason: `key ${keyId} holds its maximum of ${maxPerKey} connections to this server; reconnect later, close some, or give each device or group its own key`,
    }
}

/** One admitted connection: tell it when it authenticates and when it closes (closed once; later calls do nothing). */
export interface Admitted {
    /**
     * Its first key was accepted: counted against `keyId` from now on (undefined: a master key, not
     * counted), or the 429 to answer when that key holds its maximum (the connection stays unauthenticated).
     */
    authenticated(keyId: string | undefined): ApiError | undefined
    closed(): void
}

/** What admission closes when the address needs the room (the session). */
export interface Evictable {
    closeWith(err: ApiError): void
}

interface AddressState {
    open: number
    /** the address's unauthenticated connections, oldest first (Set order) */
    unauthenticated: Set<AdmittedConnection>
}

/**
 * An admitted connection's record: one object per connection, no closures (thousands of idle
 * connections each hold one; docs/performance-history.md "Run what we ship").
 */
class AdmittedConnection implements Admitted {
    private isClosed = false
    /** the key it counts against, once authenticated with a key that is counted */
    private keyId?: string

    constructor(
        private readonly admission: Admission,
        private readonly address: string,
        private readonly state: AddressState,
        private readonly connection: Evictable,
        private readonly rand01: number,
    ) {}

    authenticated(keyId: string | undefined): ApiError | undefined {
        if (this.isClosed || this.keyId !== undefined) return undefined
        if (keyId !== undefined) {
            const refused = this.admission.countKey(keyId)
            if (refused) return new ApiError(429, refused.code, refused.reason, jitteredRetryMs(this.rand01))
            this.keyId = keyId
        }
        this.state.unauthenticated.delete(this)
        return undefined
    }

    closed(): void {
        if (this.isClosed) return
        this.isClosed = true
        this.state.unauthenticated.delete(this)
        this.state.open--
        this.admission.released(this.address, this.state)
        if (this.keyId !== undefined) this.admission.keyReleased(this.keyId)
    }

    /** closes this still unauthenticated connection to make room for a newer one from its address */
    evict(maxUnauthenticatedPerAddress: number): void {
        this.connection.closeWith(
            new ApiError(
                429,
                "E_TOO_MANY_UNAUTHENTICATED",
                `closed to make room: your address opened more than ${maxUnauthenticatedPerAddress} connections that sent no valid key; send X-ApiKey with the first request`,
                jitteredRetryMs(this.rand01),
            ),
        )
    }
}

export class Admission {
    private total = 0
    private readonly byAddress = new Map<string, AddressState>()
    /** open connections counted against each key (only keys with some) */
    private readonly byKey = new Map<string, number>()

    constructor(readonly limits: AdmissionLimits) {}

    /**
     * Admits a new connection from `address`, or says why not (a 429 to send as its notice). The
     * connection is closed later (closeWith), should it still be unauthenticated when its address needs the room.
     */
    admit(address: string, connection: Evictable, rand01 = Math.random()): Admitted | ApiError {
        for (;;) {
            const a = this.byAddress.get(address)
            const step = admissionStep({ total: this.total, fromAddress: a?.open ?? 0, unauthenticatedFromAddress: a?.unauthenticated.size ?? 0 }, this.limits)
            if ("refuse" in step) return new ApiError(429, step.refuse.code, step.refuse.reason, jitteredRetryMs(rand01))
            if ("admit" in step) break
            // its eviction runs its close, which takes it out of the set: the loop makes progress
            const oldest = a!.unauthenticated.values().next().value!
            a!.unauthenticated.delete(oldest)
            oldest.evict(this.limits.maxUnauthenticatedPerAddress)
        }
        let state = this.byAddress.get(address)
        if (!state) this.byAddress.set(address, (state = { open: 0, unauthenticated: new Set() }))
        const admitted = new AdmittedConnection(this, address, state, connection, rand01)
        state.open++
        state.unauthenticated.add(admitted)
        this.total++
        return admitted
    }

    /** a connection of `address` closed (AdmittedConnection.closed, once) */
    released(address: string, state: AddressState): void {
        this.total--
        if (state.open === 0) this.byAddress.delete(address)
    }

    /** counts one more connection against `keyId`, or says why not (AdmittedConnection.authenticated) */
    countKey(keyId: string): { code: string; reason: string } | undefined {
        const open = this.byKey.get(keyId) ?? 0
        const refused = keyAdmissionStep(open, keyId, this.limits.maxPerKey)
        if (refused === undefined) this.byKey.set(keyId, open + 1)
        return refused
    }

    /** a connection counted against `keyId` closed (AdmittedConnection.closed, once) */
    keyReleased(keyId: string): void {
        const open = this.byKey.get(keyId)! - 1
        if (open === 0) this.byKey.delete(keyId)
        else this.byKey.set(keyId, open)
    }

    /**
     * [metrics] Connections per key now, bounded whatever the number of keys: the most any one key holds, and
     * how many keys hold at least each share of maxPerKey (at 1: at the cap, their next connection is refused).
     * A walk over the keys with connections (at most one per connection): once per scrape.
     */
    keyConnections(shares: readonly number[]): { most: number; keysAtLeast: number[] } {
        const { maxPerKey } = this.limits
        const thresholds = shares.map((share) => Math.ceil(share * maxPerKey))
        const keysAtLeast = shares.map(() => 0)
        let most = 0
        for (const open of this.byKey.values()) {
            if (open > most) most = open
            for (let i = 0; i < thresholds.length; ++i) if (open >= thresholds[i]) keysAtLeast[i]++
        }
        return { most, keysAtLeast }
    }

    /** open connections, and those not yet authenticated, from `address` */
    countsOf(address: string): { open: number; unauthenticated: number } {
        const a = this.byAddress.get(address)
        return { open: a?.open ?? 0, unauthenticated: a?.unauthenticated.size ?? 0 }
    }
}
