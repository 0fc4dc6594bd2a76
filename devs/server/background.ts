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
/** A wall clock this far ahead of the time gone by since the start was stepped, not slewed: worth a warning. */
const CLOCK_STEP_WARN_MS = 60_000

/** [P§8] The oldest `at` the retention keeps at `nowMs`: datapoints before it are deleted (within RETENTION_CHECK_MS). */
const retentionCutoffMs = (nowMs: number, retentionDays: number): number => nowMs - retentionDays * 86_400_000

/**
 * The two clocks' readings differ without any step: Date.now() is whole milliseconds and the start's two reads are
 * apart, so the start plus the time gone by ran up to ~1 ms behind the wall clock (a subscriber's `retained_from`, when
 * it was "now minus the retention", came out a fraction early: a load-dependent test failure).
 * A step that matters to a retention is hours; within this the wall clock is taken as it is.
 */
const CLOCK_READ_SLACK_MS = 1000

/**
 * [P§9] The time the retention goes by: the wall clock, unless it is ahead of the wall clock at the start plus the
 * time gone by since (monotonic) by more than CLOCK_READ_SLACK_MS: then that sum. A step of the wall clock forward (NTP correcting a bad clock, a VM resumed) is no time
 * gone by: at a step of more than the retention, the hourly check deleted every datapoint, acknowledged ones
 * included. A step back deletes less, as the wall clock does.
 */
export const retentionNowMs = (nowMs: number, startedMs: number, elapsedSinceStartMs: number): number =>
    nowMs - (startedMs + elapsedSinceStartMs) <= CLOCK_READ_SLACK_MS ? nowMs : startedMs + elapsedSinceStartMs

/**
 * [P§9] The time the retention goes by (retentionNowMs). A subscribe's `retention_gap` does not read it: it goes by
 * what the deletion recorded (hub/replay.ts RetentionGap), so a clock the answer and the deletion read apart cannot
 * tell a subscriber of a gap that is not there.
 */
interface RetentionClock {
    nowMs(): number
    /** how far the wall clock is ahead of the start plus the time gone by: a step forward, ms */
    aheadMs(): number
}

function retentionClockOf(now: () => number, elapsedMs: () => number): RetentionClock {
    const startedMs = now()
    const startedElapsedMs = elapsedMs()
    return {
        nowMs: () => retentionNowMs(now(), startedMs, elapsedMs() - startedElapsedMs),
        aheadMs: () => now() - (startedMs + elapsedMs() - startedElapsedMs),
    }
}

export function startBackgroundWork(o: {
    keys: KeyRing
    store: Store
    fleet: Fleet
    log: Logger
    now: () => number
    /** time gone by, ms (monotonic; default performance.now()) */
    elapsedMs?: () => number
    retentionDays?: number
}): { stop(): void } {
    const { keys, store, fleet, log, now, retentionDays } = o
    const clock = retentionClockOf(now, o.elapsedMs ?? (() => performance.now()))
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
        const prune = () => {
            const aheadMs = clock.aheadMs()
            if (aheadMs > CLOCK_STEP_WARN_MS) {
                log.warn({ aheadMs, retentionDays }, "the wall clock is ahead of the time gone by since the start (it was stepped forward): the retention deletes by the time gone by. Check the clock (date, NTP); if it is right now, restart the server and the retention goes by it")
            }
            return store
                .prune(retentionCutoffMs(clock.nowMs(), retentionDays))
                .then((n) => n && log.info({ deleted: n, retentionDays }, "retention: deleted old datapoints"))
                .catch((err) => logBackgroundFailure(log, err, "retention failed"))
        }
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
