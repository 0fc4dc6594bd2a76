// [P§8] Where a subscription stands, so that after any reconnect it is made again and nothing is missed or
// handled twice: the newest `at` handled, the last push handled (an identical repeat is dropped), and a cut
// replay (`truncated`, `next_since` / `next_after`) that must be handled before the rest is asked for. By
// `seq` (`bySeq`): the `seq` of the last push (or acknowledgement) handled, resumed with `after`, which also
// replays the backfills (points written with an `at` older than one handled) that `since` leaves out; a
// first replay from a time goes by `since` (with `"after":"latest"`) until its pushes are handled.
// Pure: it sends nothing and keeps no time; the caller subscribes when told to, and says when a cut replay's
// time is up (overdue).
// Import-free and shared like src/protocol.ts: the firmware's subscriptions, the client library's
// subscribeForever (`feedline sub`), the dashboard page (served as /subscription-cursor.js).

/** What a subscribe's acknowledgement means for the subscription. */
export type AckOutcome =
    /** live: every later change is pushed */
    | "live"
    /** a cut replay: its pushes follow; push() says when they are handled (overdue() when not all in within `timeout`) */
    | "replaying"
    /**
     * subscribe again now: a cut replay of nothing, or (bySeq) a live answer whose head is below a push handled
     * (its subscription's later pushes are to be ignored: the new one replays them)
     */
    | "resubscribe"

export interface PushOutcome {
    /** hand the push to the application: a datapoint not handled yet (always false for a final push) */
    deliver: boolean
    /**
     * subscribe again now (subscribeParams says how): the last push of a cut replay was handled (from next_since),
     * or (bySeq, rewoundFrom set) a push said the server's seqs went back (this subscription is to be ended)
     */
    caughtUp: boolean
}

/** the params of the next subscribe: `since` and/or `after`, and `limit` when the cursor has one */
export type CursorParams = Record<string, string | number>

export class SubscriptionCursor {
    /** the newest `at` handled: the replay point after a reconnect */
    lastAt: string | undefined
    /** at|id|value of the last push handled: the same push twice in a row is handled once */
    private lastKey: string | undefined
    /** the replay point until a push has been handled (server time in ms, or an `at`); the first one given stays */
    private anchorSince: string | number | undefined
    /** pushes still to come from a cut replay; when they are handled, subscribe again from `nextSince` */
    private replayOwed = 0
    private nextSince: string | undefined
    /** (bySeq) the `seq` of the last push or acknowledgement handled: the replay point after a reconnect */
    seq: number | undefined
    /** (bySeq) pushes still to come of a replay by `since` (their seqs are not in order): until then, resume by `since` */
    private sinceOwed = 0
    /**
     * (bySeq) the highest `seq` of a push handled in commit order: one not above it was handled already (pushes
     * of a subscription still on the wire when the same token subscribed again, then replayed)
     */
    private handledSeq = -1
    /**
     * (bySeq) the cursor a cut replay by `since` was read at (its acknowledgement's `next_after`, beside
     * `next_since`): the rest of that replay is asked for up to it (`since` with `after` = it), and what came
     * after it by `after` once that rest is handled, so a backfill written while the replay is paged is not missed
     */
    private boundSeq: number | undefined
    /**
     * (bySeq) set by acknowledged() when the server's head was below a push already handled, or by push() when a
     * push said so (PushOutcome.caughtUp with it): that push's `seq`, until the next acknowledgement. The caller
     * that says so to whoever operates it clears it (a field set only then: every field of a cursor costs the
     * firmware's heap once per subscription)
     */
    rewoundFrom: number | undefined

    /**
     * `sinceAt`: replay after this `at` (the last one handled before a restart, or what the user asked for).
     * `limit`: the most pushes one replay may bring (a device asks for what its heap can hold).
     * `oneStream`: the subscription is to one datastream, whose pushes come in `at` order [P§8]: a point
     * not newer than the last one handled is old (a server that ignored `since` replays it) and is dropped,
     * save the datapoint just handled written again with another value (the later write wins [P§9]).
     * `bySeq`: resume with `after` (the server's `seq`) [P§8].
     */
    constructor(sinceAt?: string, private limit?: number, private oneStream?: boolean, private bySeq?: boolean) {
        this.lastAt = sinceAt
    }

    /**
     * Sets the replay point used until a push has been handled: a change written while the first subscribe
     * was on its way, or while the link was down before any push came, still arrives. Only the first call
     * counts (a later connection's time would skip what was written while away).
     */
    anchor(since: string | number) {
        if (this.anchorSince === undefined) this.anchorSince = since
    }

    /** The params of the next subscribe (a new subscription: a cut replay of an earlier one no longer counts). */
    subscribeParams(): CursorParams {
        this.replayOwed = 0
        this.nextSince = undefined
        const params: CursorParams = {}
        if (this.bySeq && this.seq !== undefined && this.sinceOwed === 0 && this.boundSeq === undefined) params["after"] = this.seq
        else {
            const since = this.lastAt !== undefined ? this.lastAt : this.anchorSince
            if (since !== undefined) params["since"] = since
            if (this.bySeq) params["after"] = this.boundSeq !== undefined ? this.boundSeq : "latest"
        }
        if (this.limit !== undefined) params["limit"] = this.limit
        return params
    }

    /** [P§8] The subscribe was acknowledged (status 200) with this body. */
    acknowledged(body: any): AckOutcome {
        // a push's rewind is its own, told with it: a caller that read it only here would end this answer's subscription
        if (this.rewoundFrom !== undefined) this.rewoundFrom = undefined
        if (this.bySeq && body && isSeq(body["seq"])) {
            // the cursor until a push moves it; with `since`, the pushes of the replay by `at` come first
            const seq = body["seq"]
            if (seq < this.handledSeq) {
                // the head (an `after` past it is answered with it) is below a push handled: these seqs are another
                // history (a failover to another store, a restored backup, a reset database). Its pushes come from
                // there on; kept, the old mark dropped each of them as handled already, until a reboot
                // answered live by `after` alone (no `replayed`): what the new history got before this answer has no
                // seq above it, so no replay by `after` brings it (a command written between the reset and this
                // subscribe). Asked for again (rewind) under another token: the pushes of this live subscription are
                // not this cursor's any more
                if (body["replayed"] === undefined) {
                    this.rewind(seq)
                    return "resubscribe"
                }
                this.rewoundFrom = this.handledSeq
                this.handledSeq = seq
            }
            this.seq = seq
            this.sinceOwed = typeof body["replayed"] === "number" ? body["replayed"] : 0
        }
        if (!body || body["truncated"] !== true || (typeof body["next_since"] !== "string" && typeof body["next_after"] !== "number")) {
            // live; with a replay by `since` still to handle and a server that bounds one (next_after), a link lost
            // before it is handled resumes with its rest up to that cursor
            this.boundSeq = this.bySeq && this.sinceOwed > 0 && body && typeof body["next_after"] === "number" ? body["next_after"] : undefined
            return "live"
        }
        // a cut replay by `seq`: its pushes move the cursor to next_after (the last of them); by `since` with
        // next_after: the rest of it is bounded by that cursor (boundSeq), until a replay of that rest is not cut
        this.nextSince = body["next_since"]
        if (this.bySeq && typeof body["next_since"] === "string" && typeof body["next_after"] === "number") this.boundSeq = body["next_after"]
        const replayed = body["replayed"]
        this.replayOwed = typeof replayed === "number" && replayed > 0 ? replayed : 0
        if (this.replayOwed > 0) return "replaying"
        this.caughtUp()
        return "resubscribe"
    }

    /** A push of this subscription: whether to hand it on, and whether a cut replay has just been handled. */
    push(status: number, body: any): PushOutcome {
        let inOrder = false
        const seq = this.bySeq && status === 200 && body && typeof body === "object" ? body["seq"] : undefined
        if (isSeq(seq)) {
            // a push by commit order moves the cursor, a backfill (an older `at`) included (on one datastream, `oneStream`,
            // not handled: an actuator's state follows the newest `at`, as the current value does); one of a replay by `at` does not
            if (this.sinceOwed > 0) {
                // the last push of a live subscription's replay by `since`: from now on by `after`
                if (--this.sinceOwed === 0 && this.replayOwed === 0) this.boundSeq = undefined
            } else {
                // not above a push handled, yet newer than every `at` handled: no repeat (a repeat's `at` was handled),
                // but a history whose seqs went back while the connection stayed up (its server process stayed, its
                // store failed over to a restored replica, or was restored in place). Kept, the old mark dropped every
                // later push as handled until the next connection. Not handled now: asked for again from just below it
                // (rewind; never -1, which the server refuses), under another token; the caller ends this
                // subscription (rewoundFrom). (Nested ifs, not &&: the compiler keeps each && in a variable, ~9 B each)
                if (seq <= this.handledSeq) if (newestAt(body, this.lastAt) !== this.lastAt) {
                    this.rewind(seq > 0 ? seq - 1 : 0)
                    return { deliver: false, caughtUp: true }
                }
                this.seq = seq
                inOrder = true
            }
        }
        const repeat = inOrder && seq <= this.handledSeq
        const deliver = status === 200 && !repeat && this.handle(body)
        if (inOrder && !repeat) this.handledSeq = seq
        let caughtUp = false
        if (this.replayOwed > 0 && --this.replayOwed === 0) {
            this.caughtUp()
            caughtUp = true
        }
        return { deliver: deliver, caughtUp: caughtUp }
    }

    /**
     * (bySeq) The server's seqs went back below a push handled; `head`: the new history's, or just below its first
     * push seen. What that history holds after the last `at` handled, up to `head`, is asked for by `since` with
     * `after` = `head` (the rest of a replay bounded by a cursor: each point once), then by `after` from `head`
     * (every point after it, whatever its `at`). The old mark is set back to `head`: the pushes after it are
     * handled, not dropped as handled already until a reboot. rewoundFrom tells the caller (it logs, ends the
     * subscription that said so and subscribes again at once).
     */
    private rewind(head: number) {
        this.rewoundFrom = this.handledSeq
        this.handledSeq = head
        this.seq = head
        this.sinceOwed = 0
        this.boundSeq = head
    }

    /**
     * [P§8] A cut replay's pushes were not all in within `timeout` of its answer, on the connection that got it (the
     * caller's timer; a reconnect is not this: subscribeParams() then resumes from what was handled). They follow
     * their answer at once, so the ones missing were lines this client could not read (a lone surrogate, `\uFFFE`:
     * bad lines) or were never sent. Asked for again from the last one handled, an unreadable last point of a replay
     * bounded by a cursor came back as the whole of the next one, short again, every `timeout`: never live. The replay
     * counts as handled instead (next_since; the bounded rest done: by `after`), so the next subscribe goes on past
     * it. Returns how many were skipped (0: none owed).
     */
    overdue(): number {
        const owed = this.replayOwed
        if (owed > 0) {
            this.replayOwed = 0
            this.sinceOwed = 0
            this.caughtUp()
        }
        return owed
    }

    /** Everything up to `next_since` is in: the next subscribe starts there (unless a newer `at` was handled). */
    private caughtUp() {
        const next = this.nextSince
        // the rest of a bounded replay by `since` is handled (no next_since): from now on by `after`
        if (next === undefined) this.boundSeq = undefined
        if (next !== undefined && (this.lastAt === undefined || textAfter(next, this.lastAt))) {
            this.lastAt = next
            this.lastKey = undefined
        }
    }

    private handle(body: any): boolean {
        if (!body || typeof body !== "object") return true
        const at = body["at"]
        if (typeof at === "string") {
            // Only an identical repeat is dropped: a datapoint written again comes with the same `at` and
            // a new value (the later write wins [P§9]), and pushes of different datastreams under one
            // resource need not come in `at` order.
            const key = at + "|" + body["id"] + "|" + body["current_value"]
            if (key === this.lastKey) return false
            const last = this.lastAt
            if (this.oneStream && last !== undefined && !textAfter(at, last) && (at !== last || this.lastKey === undefined)) return false
            this.lastKey = key
        }
        this.lastAt = newestAt(body, this.lastAt)
        return true
    }
}

/**
 * A `seq` the server can have given: an integer from 0 to 2^53 - 1, what it takes back as `after` [P§8]. Any
 * other (negative, fractional, 1e400 read as Infinity, text) is not one: kept, it went back as `after` and
 * was refused (422) on every connection, and Infinity made every later push look handled already.
 */
export function isSeq(v: any): boolean {
    return typeof v === "number" && v >= 0 && v <= 9007199254740991 && Math.floor(v) === v
}

/** The newest `at` of a push body (`{id, current_value, at}`) or of a feed's `{datastreams:[{at}]}`, or `after`. */
export function newestAt(body: any, after?: string): string | undefined {
    let best = after
    const items = body && Array.isArray(body["datastreams"]) ? body["datastreams"] : [body]
    for (let i = 0; i < items.length; ++i) {
        const at = items[i] && typeof items[i] === "object" ? items[i]["at"] : undefined
        if (typeof at === "string" && (best === undefined || textAfter(at, best))) best = at
    }
    return best
}

/**
 * a > b for text, by char codes. DeviceScript's `<`/`>` on runtime strings do not compare text
 * (measured: "…02.000Z" <= "…01.000Z" was true). ISO-8601 `at`s of one format sort as text.
 */
export function textAfter(a: string, b: string): boolean {
    const n = a.length < b.length ? a.length : b.length
    for (let i = 0; i < n; ++i) {
        const d = a.charCodeAt(i) - b.charCodeAt(i)
        if (d !== 0) return d > 0
    }
    return a.length > b.length
}
