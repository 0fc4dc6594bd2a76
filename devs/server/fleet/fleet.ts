// The fleet's state in the server process [fleet]: the claim rate limits (per address, per product: one
// budget over every process, kept where the per-key budget is, bus/bus.ts keyRate), and
// which keys belong to devices, so that a device's requests mark it seen (the fleet view) and its key used
// (a claim repeated after that is a clone, not a lost answer: claim-decision.ts). The router tells it of
// every authenticated request (one Map lookup), POST/DELETE /jwt of every sign-in, renewal and sign-out;
// last-seen times are written to the store every DEVICE_SEEN_FLUSH_MS and at shutdown, a key's first use
// at once.
import { logBackgroundFailure } from "../errors.ts"
import type { Logger } from "../log.ts"
import type { KeyRate } from "../bus/bus.ts"
import type { Take } from "../ratelimit.ts"
import type { DeviceRecord, Store } from "../storage/store.ts"

/** The claim budgets, each one over every process (bus/bus.ts keyRate: Redis with several, memory with one). */
export interface ClaimRates {
    perAddress: KeyRate
    perProduct: KeyRate
    /** the monotonic clock they run on (ServerOptions.elapsedMs): a wall-clock step neither refills nor freezes them */
    elapsedMs: () => number
}

interface KeyOwner {
    deviceId: string
    /** the key was used (stored, or noticed by this process) */
    used: boolean
}

/** Keys authenticated while the device map was being reloaded, looked at again after it (bounded). */
const MAX_UNRESOLVED_KEYS = 1000

export class Fleet {
    /** device key id -> its device */
    private owners = new Map<string, KeyOwner>()
    /** device id -> the latest time this process saw it */
    private readonly seen = new Map<string, number>()
    /** device id -> seen time not yet written */
    private readonly unwritten = new Map<string, number>()
    private reloading?: Promise<void>
    private reloadAgain = false
    /** key id -> when, and whether directly, for keys authenticated while a reload was under way (their device may be new) */
    private readonly unresolved = new Map<string, { atMs: number; viaToken: boolean }>()

    constructor(
        private readonly store: Store,
        private readonly now: () => number,
        private readonly log: Logger,
        private readonly rates: ClaimRates,
    ) {}

    // Budgets named apart from the per-key budgets they may share a store with (key ids are hex).

    /** A claim from `address`, whatever it carries: spent before anything is looked at. */
    takeAddressClaim(address: string): Take | Promise<Take> {
        return this.rates.perAddress.take(`claim-address:${address}`, this.rates.elapsedMs())
    }

    /**
     * A claim of `product` that would make or re-key a device (its code valid, nothing refusing it): only
     * such claims spend the product's budget. Any claim spent it before, so anyone who knows a product's
     * id (it is in every board's settings) could keep its legitimate boards from claiming with wrong
     * codes from a handful of addresses, each within its own budget (ten at 1/s hold 10/s empty). Addresses
     * are cheap, valid codes are not; what makes nothing is bounded per address (the claim rate, failed keys).
     */
    takeProductClaim(product: string): Take | Promise<Take> {
        return this.rates.perProduct.take(`claim-product:${product}`, this.rates.elapsedMs())
    }

    /** Reloads which keys are devices' (at start, and whenever keys changed: claims in another process included). */
    reload(): Promise<void> {
        if (this.reloading) {
            this.reloadAgain = true
            return this.reloading
        }
        this.reloading = (async () => {
            do {
                this.reloadAgain = false
                const devices = await this.store.listDevices()
                this.owners = new Map(devices.filter((d) => d.revokedMs === undefined).map((d) => [d.keyId, { deviceId: d.id, used: d.keyUsedMs !== undefined }]))
            } while (this.reloadAgain)
            this.reloading = undefined
            const late = [...this.unresolved]
            this.unresolved.clear()
            for (const [keyId, { atMs, viaToken }] of late) this.keyAuthenticated(keyId, viaToken, atMs)
        })().catch((err) => {
            this.reloading = undefined
            logBackgroundFailure(this.log, err, "reloading the fleet's devices failed")
        })
        return this.reloading
    }

    /** A claim just gave `device` its key: known at once, before the keys' reload. */
    claimed(device: DeviceRecord): void {
        this.owners.set(device.keyId, { deviceId: device.id, used: false })
    }

    /**
     * [hot path] Key `keyId`'s authority was used: a request with the key itself, or (`viaToken`) with a
     * browser token minted from it, or a sign-in, renewal or sign-out at /jwt. Either way the key is in use,
     * so a claim of its board is a clone from now on: a key used only through tokens left the board
     * claimable by anyone holding its code, and the claim revoked the key and its tokens. Only the key
     * itself marks the device seen: a token is a browser's, not the board's.
     */
    keyAuthenticated(keyId: string, viaToken = false, atMs = this.now()): void {
        const owner = this.owners.get(keyId)
        if (!owner) {
            if (this.reloading && this.unresolved.size < MAX_UNRESOLVED_KEYS) {
                const direct = !viaToken || this.unresolved.get(keyId)?.viaToken === false
                this.unresolved.set(keyId, { atMs, viaToken: !direct })
            }
            return
        }
        if (!viaToken) {
            this.seen.set(owner.deviceId, atMs)
            this.unwritten.set(owner.deviceId, atMs)
        }
        if (owner.used) return
        owner.used = true
        // at once: from now on a claim of this hardware id is a clone (or needs a re-arm), also in another process
        this.store.markDeviceKeyUsed(owner.deviceId, keyId, atMs).catch((err) => logBackgroundFailure(this.log, err, "recording a device's first use of its key failed", { device: owner.deviceId }))
    }

    /** Has the device's current key been used? The store's word, or this process's if it knows better. */
    keyUsed(device: DeviceRecord): boolean {
        return device.keyUsedMs !== undefined || this.owners.get(device.keyId)?.used === true
    }

    /** The device's last-seen time: this process's, or the store's when later. */
    lastSeenMs(device: DeviceRecord): number | undefined {
        const here = this.seen.get(device.id)
        if (here === undefined) return device.lastSeenMs
        return device.lastSeenMs === undefined ? here : Math.max(here, device.lastSeenMs)
    }

    /** Writes the last-seen times gathered since the last flush. */
    async flushSeen(): Promise<void> {
        if (this.unwritten.size === 0) return
        const batch = [...this.unwritten].map(([deviceId, atMs]) => ({ deviceId, atMs }))
        this.unwritten.clear()
        await this.store.noteDevicesSeen(batch)
    }
}
