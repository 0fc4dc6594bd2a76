// [P§9] How far server stamps run ahead of the clock. A feed's stamps are max(now, its last stamp + 1),
// each stamped write taking at least one millisecond, so a feed taking more than one stamped write a
// millisecond runs ahead (2000 a second sustained: one second more every second), and with several
// processes a stamp leads a process's clock by as much as another process's clock leads it. Either is
// for the operator to see: each stamped write's newest stamp is compared with the clock once it
// committed; one leading by more than warnAboveMs is counted and logged (at most once per log period,
// with how many it stood for), and the most any led since the last look is kept for a gauge. Pure: the
// caller passes the time and says where a warning goes.
import { LogThrottle } from "./log.ts"

export interface StampLeadWarning {
    feed: number
    leadMs: number
    /** stamped writes that led by more than warnAboveMs since the last warning, this one included */
    writes: number
}

export class StampLead {
    private mostMs = 0
    private readonly throttle: LogThrottle

    constructor(
        private readonly warnAboveMs: number,
        logEveryMs: number,
        /** a stamped write led by more than warnAboveMs (counted every time, warned as throttled: writes > 0) */
        private readonly onAhead: (w: StampLeadWarning) => void,
    ) {
        this.throttle = new LogThrottle(logEveryMs)
    }

    /** A write to `feed` whose newest server stamp is `stampMs` committed at `nowMs` (the server's clock). */
    observe(feed: number, stampMs: number, nowMs: number): void {
        const leadMs = stampMs - nowMs
        if (leadMs > this.mostMs) this.mostMs = leadMs
        if (leadMs <= this.warnAboveMs) return
        this.onAhead({ feed, leadMs, writes: this.throttle.due(nowMs) })
    }

    /** The most a stamp led the clock since the last call (0: none led it); starts again from 0. */
    takeMostMs(): number {
        const most = this.mostMs
        this.mostMs = 0
        return most
    }
}

/** The newest server stamp of a write whose points all had the server stamp them (none gave its `at`), else undefined. */
export function newestStampOf(points: readonly { atMs?: number }[], stored: readonly { atMs: number }[]): number | undefined {
    for (const p of points) if (p.atMs !== undefined) return undefined
    let newest: number | undefined
    for (const p of stored) if (newest === undefined || p.atMs > newest) newest = p.atMs
    return newest
}
