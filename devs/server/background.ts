// What the server does besides answering: reloading keys changed by another process, re-hashing keys an
// older version stored, writing devices' last-seen times, and deleting datapoints past the retention. stop() ends it (shutdown).
import type { KeyRing } from "./auth/keys.ts"
import { logBackgroundFailure } from "./errors.ts"
import type { Fleet } from "./fleet/fleet.ts"
import { DEVICE_SEEN_FLUSH_MS } from "./limits.ts"
import type { Logger } from "./log.ts"
import type { Store } from "./storage/store.ts"

/**
 * Keys are reloaded this often when the store says another process (the `feedline keys` CLI) changed
 * them, and every subscription is re-checked: a revoked key's idle subscriptions end within a second
 * (docs/OPERATIONS.md, [P§8]), half of it this interval, the rest margin for a busy event loop. A look costs one
 * `PRAGMA data_version`. (test/host/server/background.test.ts holds it to the promise and to PROTOCOL.md.)
 */
export const KEY_REFRESH_MS = 500
const RETENTION_CHECK_MS = 3600_000

/** [P§8] The oldest `at` the retention keeps at `nowMs`: datapoints before it are deleted (within RETENTION_CHECK_MS). */
export const retentionCutoffMs = (nowMs: number, retentionDays: number): number => nowMs - retentionDays * 86_400_000

export function startBackgroundWork(o: { keys: KeyRing; store: Store; fleet: Fleet; log: Logger; now: () => number; retentionDays?: number }): { stop(): void } {
    const { keys, store, fleet, log, now, retentionDays } = o
    // keys stored before imported and generated keys were told apart: scrypt, in the background
    void keys.upgradeLegacyHashes().then(
        (n) => n && log.info({ keys: n }, "re-hashed the keys stored by an older version with scrypt"),
        (err) => logBackgroundFailure(log, err, "re-hashing old keys with scrypt failed; they keep working with their SHA-256"),
    )
    const keyRefresh = setInterval(() => void keys.refresh().catch((err) => logBackgroundFailure(log, err, "reloading keys failed")), KEY_REFRESH_MS)
    keyRefresh.unref()
    const seenFlush = setInterval(() => void fleet.flushSeen().catch((err) => logBackgroundFailure(log, err, "writing devices' last-seen times failed")), DEVICE_SEEN_FLUSH_MS)
    seenFlush.unref()
    let retention: NodeJS.Timeout | undefined
    if (retentionDays !== undefined) {
        const prune = () =>
            store
                .prune(retentionCutoffMs(now(), retentionDays))
                .then((n) => n && log.info({ deleted: n, retentionDays }, "retention: deleted old datapoints"))
                .catch((err) => logBackgroundFailure(log, err, "retention failed"))
        void prune()
        retention = setInterval(prune, RETENTION_CHECK_MS)
        retention.unref()
    }
    return {
        stop: () => {
            clearInterval(keyRefresh)
            clearInterval(seenFlush)
            if (retention) clearInterval(retention)
        },
    }
}
