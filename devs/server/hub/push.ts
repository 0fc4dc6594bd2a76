// [P§8] What a committed change looks like on the wire. A push line is the subscription's token plus a
// tail that is the same for every subscriber of the change, so a fan-out renders each tail once.
import { quote } from "../../../src/protocol.ts"
import { isoOf } from "../time.ts"

/** One committed change. */
export interface ChangeEvent {
    feed: number
    /** the store's sequence number of the write; a feed's deletion Infinity, a datastream's its seq in the feed's chain (Deletion.seq) or Infinity (never part of a replay) */
    seq: number
    /** the store's id of the transaction that committed it, where it has one (storage/store.ts CommitRef) */
    txn?: number
    /** undefined: the feed itself (deleted) */
    stream?: string
    atMs?: number
    value?: string
    deleted?: boolean
    /** where several processes commit: the feed's last seq before this change's commit (StoredPoint.prevSeq; commit-order.ts) */
    prevSeq?: number
}

/**
 * [P§8] A datastream's deletion as a change: pushed `{"id":stream,"deleted":true}`, the subscription going on. `seq`: its
 * seq in its feed's chain where the store gives it one (Deletion.seq, PostgreSQL), else Infinity (in no replay).
 */
export function datastreamDeletionEvent(feed: number, stream: string, d: { seq?: number; prevSeq?: number; txn?: number }): ChangeEvent {
    return { feed, seq: d.seq ?? Infinity, prevSeq: d.prevSeq, txn: d.txn, stream, deleted: true }
}

/** [P§8] The resource a change is pushed under. */
export function changeResource(ev: ChangeEvent): string {
    return ev.stream === undefined ? `/feeds/${ev.feed}` : `/feeds/${ev.feed}/datastreams/${ev.stream}`
}

/** [P§8] The body of a push. */
export function changeBody(ev: ChangeEvent): Record<string, unknown> {
    if (ev.stream === undefined) return { id: ev.feed, deleted: true }
    if (ev.deleted) return { id: ev.stream, deleted: true }
    return { id: ev.stream, current_value: ev.value, at: isoOf(ev.atMs!) }
}

/** The feed itself was deleted (the last change a subscription to it gets). */
export function isFeedDeletion(ev: ChangeEvent): boolean {
    return ev.stream === undefined
}

/** Everything of a push line after its token: `,"status":200,…}`. */
export function pushTail(ev: ChangeEvent): string {
    const resource = quote(changeResource(ev))
    if (ev.stream === undefined) return `,"status":200,"resource":${resource},"body":{"id":${ev.feed},"deleted":true}}`
    if (ev.deleted) return `,"status":200,"resource":${resource},"body":{"id":${quote(ev.stream)},"deleted":true}}`
    return `,"status":200,"resource":${resource},"body":{"id":${quote(ev.stream)},"current_value":${quote(ev.value!)},"at":"${isoOf(ev.atMs!)}"}}`
}

/**
 * [P§8] A push tail for a subscription made with `after`: a datapoint's body also carries its `seq`, the
 * cursor to resubscribe from; a deletion carries none (it moves no cursor).
 */
export function seqPushTail(ev: ChangeEvent): string {
    if (ev.stream === undefined || ev.deleted) return pushTail(ev)
    return `,"status":200,"resource":${quote(changeResource(ev))},"body":{"id":${quote(ev.stream)},"current_value":${quote(ev.value!)},"at":"${isoOf(ev.atMs!)}","seq":${ev.seq}}}`
}

/** The start of every push line of one subscription. */
export function pushHead(token: string): string {
    return `{"token":${quote(token)}`
}

/** One push line; the same bytes encodeResponse() would make (test/host/server/units.test.ts checks). */
export function pushLine(token: string, ev: ChangeEvent): string {
    return pushHead(token) + pushTail(ev)
}

/** The changes of one write to one feed, with each push tail rendered once, when first needed. */
export class ChangeBatch {
    private readonly tails: (string | undefined)[]
    /** the tails with `seq` ([P§8] `after` subscriptions), made only when one of those is covered */
    private seqTails?: (string | undefined)[]

    constructor(readonly events: ChangeEvent[]) {
        this.tails = new Array(events.length)
    }

    tail(i: number): string {
        return (this.tails[i] ??= pushTail(this.events[i]))
    }

    seqTail(i: number): string {
        return ((this.seqTails ??= new Array(this.events.length))[i] ??= seqPushTail(this.events[i]))
    }
}
