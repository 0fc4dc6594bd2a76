// [P§8] What a process does for a feed whose changes it may have missed (several processes: the link to the
// others broke, a publisher died before publishing, a change's predecessor never came). It knows the last
// seq it handed on for the feed (commit-order.ts); the store knows the feed's last seq, the seq of its newest
// datastream deletion and its datapoints after a seq (Store.changesAfter, one snapshot). From those:
//   - nothing after the seq handed on: nothing was missed;
//   - datapoints only, at most `limit`: they are pushed from the store, in commit order, before anything
//     heard later (the subscribers see the pushes they missed, nothing else);
//   - the feed gone: it was deleted; its subscribers get the deletion push and the final 404, as live;
//   - a datastream deletion after it (a deletion is in no replay), more than `limit` datapoints, or nothing
//     known of what was handed on: the feed's subscribers here are told to resubscribe with `after`
//     (503 E_PUSHES_INTERRUPTED), and only they.
// Pure: the hub (index.ts) reads the store and acts on the plan.
import type { FeedChanges, StoredPoint } from "../storage/store.ts"
import type { ChangeEvent } from "./push.ts"

export type CatchUpPlan =
    | { kind: "current"; storeSeq: number }
    | { kind: "repair"; storeSeq: number; events: ChangeEvent[] }
    | { kind: "deleted" }
    | { kind: "told"; storeSeq?: number; reason: string }

/** The plan for `feed`, whose seqs up to `handedOn` went out here, as the store has it now (`read`: undefined when the feed does not exist). */
export function planCatchUp(feed: number, handedOn: number, read: FeedChanges | undefined, limit: number): CatchUpPlan {
    if (read === undefined) return { kind: "deleted" }
    if (!Number.isFinite(handedOn)) return { kind: "told", storeSeq: read.lastSeq, reason: `what feed ${feed}'s subscribers here were pushed is not known` }
    if (read.lastSeq <= handedOn) return { kind: "current", storeSeq: read.lastSeq }
    if (read.deletedSeq > handedOn) return { kind: "told", storeSeq: read.lastSeq, reason: `a datastream of feed ${feed} was deleted meanwhile (a deletion is in no replay)` }
    if (read.points.length > limit) return { kind: "told", storeSeq: read.lastSeq, reason: `feed ${feed} has more than ${limit} changes to catch up` }
    return { kind: "repair", storeSeq: read.lastSeq, events: read.points.map((p) => pointEvent(feed, p)) }
}

/** A stored datapoint as the change it was. */
export function pointEvent(feed: number, p: StoredPoint): ChangeEvent {
    return { feed, seq: p.seq, txn: p.txn, stream: p.stream, atMs: p.atMs, value: p.value, prevSeq: p.prevSeq }
}

/** What one catch-up did, for the log and the metrics. */
export interface CatchUpOutcome {
    /** feeds checked */
    checked: number
    /** feeds whose missed changes were pushed from the store, and how many */
    repaired: number
    pushes: number
    /** feeds found deleted (their subscribers got the deletion) */
    deleted: number
    /** feeds whose subscribers here must resubscribe (reason per feed) */
    told: Map<number, string>
}
