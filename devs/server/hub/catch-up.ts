// [P§8] What a process does for a feed whose changes it may have missed (several processes: the link to the
// others broke, a publisher died before publishing, a change's predecessor never came). It knows the last
// seq it handed on for the feed (commit-order.ts); the store knows the feed's last seq, its datastreams'
// deletions (each name's newest and the one before it) and its datapoints after a seq (Store.changesAfter, one
// snapshot). From those:
//   - nothing after the seq handed on: nothing was missed;
//   - datapoints and datastream deletions, at most `limit` in all: they are pushed from the store, in commit
//     order, before anything heard later (the subscribers see the pushes they missed, nothing else: a
//     deletion `{"id":…,"deleted":true}` to the subscribers it concerns, as live). The datapoints a deleted
//     datastream had were deleted with it: what was written to it in between is in no read, as in no replay;
//   - the feed gone: it was deleted; its subscribers get the deletion push and the final 404, as live;
//   - what the store cannot tell: a datastream deleted twice after it (the store names each datastream's last
//     deletion, and keeps only the seq of the one before), a deletion it cannot name (made before PostgreSQL migration 10, or by a process of an older
//     version), more than `limit` changes, or nothing known of what was handed on: the feed's subscribers here
//     are told to resubscribe with `after` (503 E_PUSHES_INTERRUPTED), and only they;
//   - the store's last seq below the seq handed on: the feed's history went back (the store failed over to a
//     restored replica, or was restored in place; in one history a feed's last seq never goes back, and every seq
//     handed on here was committed before the read): its subscribers here are told, as above (their cursors,
//     src/subscription-cursor.ts, take the lower head the resubscribe is answered with as a reset), and the
//     feed's place here starts again at the store's last seq.
// Pure: the hub (index.ts) reads the store and acts on the plan.
import type { FeedChanges, RecordedDeletion, StoredPoint } from "../storage/store.ts"
import { datastreamDeletionEvent, type ChangeEvent } from "./push.ts"

export type CatchUpPlan =
    | { kind: "current"; storeSeq: number }
    | { kind: "repair"; storeSeq: number; events: ChangeEvent[] }
    | { kind: "deleted" }
    | { kind: "told"; storeSeq?: number; reason: string }
    | { kind: "reset"; storeSeq: number; reason: string }

/** The plan for `feed`, whose seqs up to `handedOn` went out here, as the store has it now (`read`: undefined when the feed does not exist). */
export function planCatchUp(feed: number, handedOn: number, read: FeedChanges | undefined, limit: number): CatchUpPlan {
    if (read === undefined) return { kind: "deleted" }
    if (!Number.isFinite(handedOn)) return { kind: "told", storeSeq: read.lastSeq, reason: `what feed ${feed}'s subscribers here were pushed is not known` }
    if (read.lastSeq < handedOn) {
        return { kind: "reset", storeSeq: read.lastSeq, reason: `feed ${feed}'s seqs went back (the store's last is ${read.lastSeq}, ${handedOn} were pushed here): the store's history was reset (a failover to a restored replica, a restored backup)` }
    }
    if (read.lastSeq === handedOn) return { kind: "current", storeSeq: read.lastSeq }
    const told = (reason: string): CatchUpPlan => ({ kind: "told", storeSeq: read.lastSeq, reason })
    if (read.unnamedDeletionSeq > handedOn) return told(`a datastream of feed ${feed} was deleted meanwhile, and the store does not say which (a deletion is in no replay)`)
    const twice = read.deletions.find((d) => d.earlierSeq > handedOn)
    if (twice) return told(`datastream ${JSON.stringify(twice.stream)} of feed ${feed} was deleted more than once meanwhile (a deletion is in no replay)`)
    if (read.points.length + read.deletions.length > limit) return told(`feed ${feed} has more than ${limit} changes to catch up`)
    const events = [...read.points.map((p) => pointEvent(feed, p)), ...read.deletions.map((d) => deletionEvent(feed, d))]
    return { kind: "repair", storeSeq: read.lastSeq, events: events.sort((a, b) => a.seq - b.seq) }
}

/** A stored datapoint as the change it was. */
export function pointEvent(feed: number, p: StoredPoint): ChangeEvent {
    return { feed, seq: p.seq, txn: p.txn, stream: p.stream, atMs: p.atMs, value: p.value, prevSeq: p.prevSeq }
}

/** A recorded datastream deletion as the change it was (its chain's place is its seq; the catch-up orders by it). */
function deletionEvent(feed: number, d: RecordedDeletion): ChangeEvent {
    return datastreamDeletionEvent(feed, d.stream, { seq: d.seq })
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
