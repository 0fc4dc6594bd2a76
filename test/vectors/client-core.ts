// The client core (src/requests.ts, src/subscription-cursor.ts) as tables of steps, with the one runner
// both runtimes use: the Node test (test/host/protocol/client-core.test.ts) and the DeviceScript test
// (test/firmware/client-core.test.ts) run the same cases, so the firmware link, the client library, the
// dashboard page and the load generator are held to one rule. Import-free: the runners are handed the
// classes under test.

/** One step on a cursor, and what it must answer (as text, so both runtimes compare the same way). */
export interface CursorStep {
    /** anchor(since) | params: subscribeParams() | ack: acknowledged(body) | push: push(status, body) | overdue: overdue() */
    op: string
    since?: any
    status?: number
    body?: any
    /** params: "since=…;after=…;limit=…" (absent ones left out); ack: the outcome; push: "deliver"|"drop", then "+caughtUp"; either, then "+rewound N" when the cursor says its server's seqs went back; overdue: "skipped N" */
    expect: string
}

export interface CursorVector {
    name: string
    sinceAt?: string
    limit?: number
    /** a subscription to one datastream (its pushes come in `at` order) */
    oneStream?: boolean
    /** resumed with `after` (the server's `seq`) */
    bySeq?: boolean
    steps: CursorStep[]
}

const T1 = "2026-11-22T05:00:01.000Z"
const T2 = "2026-11-22T05:00:02.000Z"
const T3 = "2026-11-22T05:00:03.000Z"
const T5 = "2026-11-22T05:00:05.000Z"
const NOW_MS = 1764000000000

function dp(at: string, value: string): any {
    return { id: "led", current_value: value, at: at }
}

function cut(replayed: number, nextSince: string): any {
    return { replayed: replayed, truncated: true, next_since: nextSince }
}

/** a push of a subscription made with `after`: it carries its `seq` */
function sp(at: string, value: string, seq: number): any {
    return { id: "led", current_value: value, at: at, seq: seq }
}

/** how many parts cursorVectors(part) has */
export const CURSOR_VECTOR_PARTS = 5

/**
 * The cursor cases, built on each call: a module-level table would hold that much of the firmware test
 * program's 64 KB heap for its whole run (its later suites ran out of memory when it grew). `part` (0 to
 * CURSOR_VECTOR_PARTS - 1): only that part, so the firmware test holds one part at a time (the whole table no
 * longer fits beside its program); without it, all of them.
 */
export function cursorVectors(part?: number): CursorVector[] {
    let vectors: CursorVector[] = []
    if (part === undefined || part === 0) vectors = [
        {
            name: "no since and no anchor: the first subscribe is live only",
            steps: [{ op: "params", expect: "" }],
        },
        {
            name: "before any push the anchor is the replay point; only the first anchor counts",
            limit: 16,
            steps: [
                { op: "anchor", since: NOW_MS, expect: "" },
                { op: "params", expect: "since=" + NOW_MS + ";limit=16" },
                { op: "anchor", since: NOW_MS + 5000, expect: "" },
                { op: "params", expect: "since=" + NOW_MS + ";limit=16" },
            ],
        },
        {
            name: "a given since (a restart, --since) comes before the anchor",
            sinceAt: T1,
            steps: [
                { op: "anchor", since: NOW_MS, expect: "" },
                { op: "params", expect: "since=" + T1 },
            ],
        },
        {
            name: "since follows the newest at handled; an identical repeat is dropped; a rewrite is delivered",
            steps: [
                { op: "ack", body: undefined, expect: "live" },
                { op: "push", status: 200, body: dp(T5, "p1"), expect: "deliver" },
                { op: "push", status: 200, body: dp(T5, "p1"), expect: "drop" },
                { op: "push", status: 200, body: dp(T5, "p2"), expect: "deliver" },
                { op: "push", status: 200, body: dp(T1, "older stream"), expect: "deliver" },
                { op: "params", expect: "since=" + T5 },
            ],
        },
        {
            name: "one datastream: a point not newer than the last handled is old (a server ignoring since) and dropped; a rewrite of the last is delivered",
            oneStream: true,
            steps: [
                { op: "ack", body: undefined, expect: "live" },
                { op: "push", status: 200, body: dp(T2, "toggle"), expect: "deliver" },
                { op: "push", status: 200, body: dp(T3, "on"), expect: "deliver" },
                { op: "push", status: 200, body: dp(T2, "toggle"), expect: "drop" },
                { op: "push", status: 200, body: dp(T1, "x"), expect: "drop" },
                { op: "push", status: 200, body: dp(T3, "off"), expect: "deliver" },
                { op: "push", status: 200, body: { id: "led", deleted: true }, expect: "deliver" },
                { op: "push", status: 200, body: dp(T5, "on"), expect: "deliver" },
                { op: "params", expect: "since=" + T5 },
            ],
        },
        {
            name: "one datastream after a restart (since = the last at handled): that point and older ones are dropped",
            sinceAt: T2,
            oneStream: true,
            steps: [
                { op: "push", status: 200, body: dp(T1, "toggle"), expect: "drop" },
                { op: "push", status: 200, body: dp(T2, "toggle"), expect: "drop" },
                { op: "push", status: 200, body: dp(T3, "toggle"), expect: "deliver" },
            ],
        },
        {
            name: "one datastream, a cut replay: past next_since, a point at next_since is dropped",
            oneStream: true,
            steps: [
                { op: "ack", body: cut(1, T3), expect: "replaying" },
                { op: "push", status: 200, body: dp(T1, "1"), expect: "deliver+caughtUp" },
                { op: "params", expect: "since=" + T3 },
                { op: "push", status: 200, body: dp(T3, "3"), expect: "drop" },
                { op: "push", status: 200, body: dp(T5, "5"), expect: "deliver" },
            ],
        },
        {
            name: "an answer that says retention_gap (since older than the server keeps) is read as without it: unknown members are ignored",
            steps: [
                { op: "ack", body: { retention_gap: true, retained_from: T1 }, expect: "live" },
                { op: "push", status: 200, body: dp(T2, "2"), expect: "deliver" },
                { op: "params", expect: "since=" + T2 },
            ],
        },
        {
            name: "a cut replay that also says retention_gap is followed from next_since as any cut replay",
            steps: [
                { op: "ack", body: { replayed: 1, truncated: true, next_since: T3, retention_gap: true, retained_from: T1 }, expect: "replaying" },
                { op: "push", status: 200, body: dp(T2, "2"), expect: "deliver+caughtUp" },
                { op: "params", expect: "since=" + T3 },
            ],
        },
        {
            name: "a feed's body: the newest at of its datastreams; a deletion is delivered and moves nothing",
            steps: [
                { op: "push", status: 200, body: { id: 7, datastreams: [{ id: "a", at: T2 }, { id: "b", at: T3 }] }, expect: "deliver" },
                { op: "push", status: 200, body: { id: "led", deleted: true }, expect: "deliver" },
                { op: "params", expect: "since=" + T3 },
            ],
        },
        {
            name: "a final push is not a datapoint: not delivered, since unchanged",
            sinceAt: T1,
            steps: [
                { op: "push", status: 408, body: { title: "Subscription ended", code: "E_SUBSCRIPTION_ENDED" }, expect: "drop" },
                { op: "params", expect: "since=" + T1 },
            ],
        },
        {
            name: "a cut replay is handled, then the rest is asked for from next_since (same limit), until live",
            limit: 16,
            steps: [
                { op: "params", expect: "limit=16" },
                { op: "ack", body: cut(2, T2), expect: "replaying" },
                { op: "push", status: 200, body: dp(T1, "1"), expect: "deliver" },
                { op: "push", status: 200, body: dp(T2, "2"), expect: "deliver+caughtUp" },
                { op: "params", expect: "since=" + T2 + ";limit=16" },
                { op: "ack", body: {}, expect: "live" },
                { op: "push", status: 200, body: dp(T2, "2"), expect: "drop" },
                { op: "push", status: 200, body: dp(T3, "3"), expect: "deliver" },
            ],
        },
        {
            name: "next_since beyond the last at handled (points sharing an at were not cut): the next subscribe starts there",
            steps: [
                { op: "ack", body: cut(1, T3), expect: "replaying" },
                { op: "push", status: 200, body: dp(T1, "1"), expect: "deliver+caughtUp" },
                { op: "params", expect: "since=" + T3 },
            ],
        },
        {
            name: "a cut replay of nothing: subscribe again at once from next_since",
            steps: [
                { op: "ack", body: cut(0, T2), expect: "resubscribe" },
                { op: "params", expect: "since=" + T2 },
            ],
        },
        {
            name: "a new subscribe in the middle of a cut replay (reconnect): since = the last at handled, the old count is gone",
            steps: [
                { op: "ack", body: cut(3, T3), expect: "replaying" },
                { op: "push", status: 200, body: dp(T1, "1"), expect: "deliver" },
                { op: "params", expect: "since=" + T1 },
                { op: "ack", body: undefined, expect: "live" },
                { op: "push", status: 200, body: dp(T2, "2"), expect: "deliver" },
                { op: "push", status: 200, body: dp(T3, "3"), expect: "deliver" },
            ],
        },
    ]

    if (part === undefined || part === 1) vectors.push(
        {
            name: "by seq: no since: after latest; the acknowledgement's seq, then each push's, is the cursor; a backfill is delivered",
            bySeq: true,
            steps: [
                { op: "params", expect: "after=latest" },
                { op: "ack", body: { seq: 40 }, expect: "live" },
                { op: "params", expect: "after=40" },
                { op: "push", status: 200, body: sp(T3, "3", 41), expect: "deliver" },
                { op: "push", status: 200, body: sp(T1, "backfill", 45), expect: "deliver" },
                { op: "push", status: 200, body: { id: "led", deleted: true }, expect: "deliver" },
                { op: "params", expect: "after=45" },
            ],
        },
        {
            name: "by seq on one datastream (an actuator): a backfill moves the cursor but is not handled; a rewrite of the last at is; a 13-digit seq is exact",
            bySeq: true,
            oneStream: true,
            steps: [
                { op: "ack", body: { seq: 1700000000000 }, expect: "live" },
                { op: "push", status: 200, body: sp(T3, "3", 1700000000001), expect: "deliver" },
                { op: "push", status: 200, body: sp(T1, "backfill", 1700000000002), expect: "drop" },
                { op: "params", expect: "after=1700000000002" },
                { op: "push", status: 200, body: sp(T3, "rewritten", 1700000000003), expect: "deliver" },
                { op: "params", expect: "after=1700000000003" },
            ],
        },
        {
            name: "by seq with since: a replay by at moves no seq; cut off in it, resumed by since; once handled, by seq",
            bySeq: true,
            sinceAt: T1,
            limit: 16,
            steps: [
                { op: "params", expect: "since=" + T1 + ";after=latest;limit=16" },
                { op: "ack", body: { seq: 90, replayed: 2 }, expect: "live" },
                { op: "push", status: 200, body: sp(T2, "2", 70), expect: "deliver" },
                { op: "params", expect: "since=" + T2 + ";after=latest;limit=16" },
                { op: "ack", body: { seq: 95, replayed: 1 }, expect: "live" },
                { op: "push", status: 200, body: sp(T3, "3", 60), expect: "deliver" },
                { op: "params", expect: "after=95;limit=16" },
                { op: "push", status: 200, body: sp(T1, "backfill", 96), expect: "deliver" },
                { op: "params", expect: "after=96;limit=16" },
            ],
        },
        {
            name: "by seq: a cut replay by since is followed from next_since, a cut replay by seq from its last push",
            bySeq: true,
            sinceAt: T1,
            steps: [
                { op: "ack", body: cut(1, T2), expect: "replaying" },
                { op: "push", status: 200, body: dp(T2, "2"), expect: "deliver+caughtUp" },
                { op: "params", expect: "since=" + T2 + ";after=latest" },
                { op: "ack", body: { seq: 50, replayed: 0 }, expect: "live" },
                { op: "params", expect: "after=50" },
                { op: "ack", body: { replayed: 2, truncated: true, next_after: 58 }, expect: "replaying" },
                { op: "push", status: 200, body: sp(T1, "a", 51), expect: "deliver" },
                { op: "push", status: 200, body: sp(T5, "b", 58), expect: "deliver+caughtUp" },
                { op: "params", expect: "after=58" },
            ],
        },
        {
            name: "by seq: a cut replay by since with next_after: its rest is asked for up to that cursor (since with after), once handled by after from it; a link lost in the rest resumes bounded",
            bySeq: true,
            sinceAt: T1,
            limit: 2,
            steps: [
                { op: "params", expect: "since=" + T1 + ";after=latest;limit=2" },
                { op: "ack", body: { replayed: 1, truncated: true, next_since: T2, next_after: 50 }, expect: "replaying" },
                { op: "push", status: 200, body: dp(T2, "2"), expect: "deliver+caughtUp" },
                { op: "params", expect: "since=" + T2 + ";after=50;limit=2" },
                { op: "ack", body: { replayed: 1, truncated: true, next_since: T3, next_after: 50 }, expect: "replaying" },
                { op: "push", status: 200, body: dp(T3, "3"), expect: "deliver+caughtUp" },
                { op: "params", expect: "since=" + T3 + ";after=50;limit=2" },
                { op: "ack", body: { seq: 50, replayed: 1, truncated: true, next_after: 50 }, expect: "replaying" },
                { op: "params", expect: "since=" + T3 + ";after=50;limit=2" },
                { op: "ack", body: { seq: 50, replayed: 1, truncated: true, next_after: 50 }, expect: "replaying" },
                { op: "push", status: 200, body: sp(T5, "5", 44), expect: "deliver+caughtUp" },
                { op: "params", expect: "after=50;limit=2" },
                { op: "ack", body: { replayed: 1, truncated: true, next_after: 52 }, expect: "replaying" },
                { op: "push", status: 200, body: sp(T1, "backfill", 52), expect: "deliver+caughtUp" },
                { op: "params", expect: "after=52;limit=2" },
            ],
        },
        {
            name: "by seq with since, live with next_after: a link lost in its replay resumes with the rest up to that cursor; once handled, by after",
            bySeq: true,
            sinceAt: T1,
            steps: [
                { op: "ack", body: { seq: 90, replayed: 2, next_after: 90 }, expect: "live" },
                { op: "push", status: 200, body: sp(T2, "2", 70), expect: "deliver" },
                { op: "params", expect: "since=" + T2 + ";after=90" },
                { op: "ack", body: { seq: 90, replayed: 1, truncated: true, next_after: 90 }, expect: "replaying" },
                { op: "push", status: 200, body: sp(T3, "3", 60), expect: "deliver+caughtUp" },
                { op: "params", expect: "after=90" },
                { op: "ack", body: { seq: 91, replayed: 0, next_after: 91 }, expect: "live" },
                { op: "params", expect: "after=91" },
            ],
        },
        {
            name: "by seq: the rest of a bounded replay by since is empty: subscribe again at once, by after",
            bySeq: true,
            sinceAt: T1,
            steps: [
                { op: "ack", body: { replayed: 1, truncated: true, next_since: T2, next_after: 7 }, expect: "replaying" },
                { op: "push", status: 200, body: dp(T2, "2"), expect: "deliver+caughtUp" },
                { op: "params", expect: "since=" + T2 + ";after=7" },
                { op: "ack", body: { seq: 7, replayed: 0, truncated: true, next_after: 7 }, expect: "resubscribe" },
                { op: "params", expect: "after=7" },
            ],
        },
        {
            name: "by seq: pushes still on the wire when the subscription was made again are not handled twice when replayed",
            bySeq: true,
            steps: [
                { op: "ack", body: { seq: 10 }, expect: "live" },
                { op: "params", expect: "after=10" },
                { op: "push", status: 200, body: sp(T1, "a", 11), expect: "deliver" },
                { op: "push", status: 200, body: sp(T2, "b", 12), expect: "deliver" },
                { op: "ack", body: { seq: 12 }, expect: "live" },
                { op: "push", status: 200, body: sp(T1, "a", 11), expect: "drop" },
                { op: "push", status: 200, body: sp(T2, "b", 12), expect: "drop" },
                { op: "push", status: 200, body: sp(T3, "c", 13), expect: "deliver" },
                { op: "params", expect: "after=13" },
            ],
        },
    )

    // (a second push: DeviceScript's compiler asserts on a call with more arguments than it encodes)
    if (part === undefined || part === 2) vectors.push(
        {
            name: "by seq: a head below a push handled (another store, a restored backup, a reset database; an after past the head is answered with the head): what the new history got before it is asked for by since up to that head (once), then its seqs are followed by after",
            bySeq: true,
            oneStream: true,
            steps: [
                { op: "ack", body: { seq: 100 }, expect: "live" },
                { op: "push", status: 200, body: sp(T1, "a", 101), expect: "deliver" },
                { op: "push", status: 200, body: sp(T2, "b", 102), expect: "deliver" },
                { op: "params", expect: "after=102" },
                // seqs 1-5 were written after the reset (the last, 5, a command at T3): no replay by after brings them
                { op: "ack", body: { seq: 5 }, expect: "resubscribe+rewound 102" },
                { op: "params", expect: "since=" + T2 + ";after=5" },
                { op: "ack", body: { seq: 5, replayed: 1, truncated: true, next_after: 5 }, expect: "replaying" },
                { op: "push", status: 200, body: sp(T3, "x", 5), expect: "deliver+caughtUp" },
                { op: "params", expect: "after=5" },
                { op: "ack", body: { seq: 5 }, expect: "live" },
                { op: "push", status: 200, body: sp(T3, "x", 5), expect: "drop" },
                { op: "push", status: 200, body: sp(T3, "c", 6), expect: "deliver" },
                { op: "push", status: 200, body: sp(T3, "c", 6), expect: "drop" },
                { op: "push", status: 200, body: sp(T5, "d", 7), expect: "deliver" },
                { op: "params", expect: "after=7" },
                { op: "ack", body: { seq: 7 }, expect: "live" },
                { op: "push", status: 200, body: sp(T5, "d", 7), expect: "drop" },
            ],
        },
        {
            name: "by seq: a head below a push handled is taken whatever the answer says besides (here the rest of a replay by since bounded by a cursor)",
            bySeq: true,
            steps: [
                { op: "ack", body: { seq: 50 }, expect: "live" },
                { op: "push", status: 200, body: sp(T1, "a", 51), expect: "deliver" },
                { op: "ack", body: { seq: 60, replayed: 1, next_after: 60 }, expect: "live" },
                { op: "params", expect: "since=" + T1 + ";after=60" },
                { op: "ack", body: { seq: 3, replayed: 0, truncated: true, next_after: 3 }, expect: "resubscribe+rewound 51" },
                { op: "params", expect: "after=3" },
                { op: "ack", body: { seq: 3 }, expect: "live" },
                { op: "push", status: 200, body: sp(T2, "b", 4), expect: "deliver" },
            ],
        },
    )

    // (a third push: the compiler's limit on a call's arguments, as above)
    if (part === undefined || part === 3) vectors.push(
        {
            name: "by seq: a push not above a push handled but newer than every at handled is no repeat: the server's seqs went back while the connection stayed up (its store failed over to a restored replica); not handled, asked for again by since up to just below it, then by after from there",
            bySeq: true,
            oneStream: true,
            steps: [
                { op: "ack", body: { seq: 100 }, expect: "live" },
                { op: "push", status: 200, body: sp(T1, "a", 101), expect: "deliver" },
                { op: "push", status: 200, body: sp(T2, "b", 102), expect: "deliver" },
                // repeats (a subscription's pushes still on the wire): their ats were handled
                { op: "push", status: 200, body: sp(T1, "a", 101), expect: "drop" },
                { op: "push", status: 200, body: sp(T2, "b", 102), expect: "drop" },
                // the restored history's seq 5, a command written after the failover
                { op: "push", status: 200, body: sp(T3, "x", 5), expect: "drop+caughtUp+rewound 102" },
                { op: "params", expect: "since=" + T2 + ";after=4" },
                { op: "ack", body: { seq: 4, replayed: 0, truncated: true, next_after: 4 }, expect: "resubscribe" },
                { op: "params", expect: "after=4" },
                { op: "ack", body: { seq: 6 }, expect: "live" },
                { op: "push", status: 200, body: sp(T3, "x", 5), expect: "deliver" },
                { op: "push", status: 200, body: sp(T5, "y", 6), expect: "deliver" },
                { op: "push", status: 200, body: sp(T5, "y", 6), expect: "drop" },
                { op: "params", expect: "after=6" },
            ],
        },
        {
            name: "by seq on a feed: a backfill (an older at) and a deletion under a seq not above the last handled are repeats; a link lost before the rewind's answer asks the same again",
            bySeq: true,
            steps: [
                { op: "ack", body: { seq: 10 }, expect: "live" },
                { op: "push", status: 200, body: sp(T5, "a", 11), expect: "deliver" },
                { op: "push", status: 200, body: sp(T1, "backfill", 12), expect: "deliver" },
                { op: "push", status: 200, body: sp(T1, "backfill", 12), expect: "drop" },
                { op: "push", status: 200, body: { id: "led", deleted: true, seq: 12 }, expect: "drop" },
                { op: "push", status: 200, body: sp(T5, "a", 11), expect: "drop" },
                { op: "push", status: 200, body: { id: 7, datastreams: [{ id: "led", current_value: "z", at: "2026-11-22T05:00:09.000Z" }], seq: 0 }, expect: "drop+caughtUp+rewound 12" },
                { op: "params", expect: "since=" + T5 + ";after=0" },
                { op: "params", expect: "since=" + T5 + ";after=0" },
            ],
        },
    )

    // (a fourth push, as above) a cut replay's time is up (overdue: `timeout` after its answer on the same connection)
    // with pushes still owed: lines the client could not read (a lone surrogate, \uFFFE) are skipped, the rest goes on
    if (part === undefined || part === 4) vectors.push(
        {
            name: "by seq: the last push of a replay bounded by a cursor cannot be read: its time up, the replay counts as handled and goes on by after, live; asked for by since again, the same unreadable page came back for ever",
            bySeq: true,
            sinceAt: T1,
            limit: 2,
            steps: [
                { op: "ack", body: { replayed: 2, truncated: true, next_since: T3, next_after: 50 }, expect: "replaying" },
                { op: "push", status: 200, body: dp(T2, "2"), expect: "deliver" },
                // the page's last point (at T3) is unreadable: a bad line, never seen here
                { op: "overdue", expect: "skipped 1" },
                { op: "params", expect: "since=" + T3 + ";after=50;limit=2" },
                { op: "ack", body: { seq: 50, replayed: 2, truncated: true, next_after: 50 }, expect: "replaying" },
                { op: "push", status: 200, body: sp(T5, "5", 44), expect: "deliver" },
                // its last point (seq 47) is unreadable
                { op: "overdue", expect: "skipped 1" },
                { op: "params", expect: "after=50;limit=2" },
                { op: "ack", body: { seq: 50 }, expect: "live" },
                { op: "push", status: 200, body: sp(T1, "backfill", 51), expect: "deliver" },
                { op: "overdue", expect: "skipped 0" },
                { op: "params", expect: "after=51;limit=2" },
            ],
        },
        {
            name: "a cut replay whose pushes are all in owes nothing when its time is up; by since alone, one short goes on from next_since; by after, from its last push handled",
            bySeq: true,
            steps: [
                { op: "ack", body: { replayed: 1, truncated: true, next_after: 58 }, expect: "replaying" },
                { op: "push", status: 200, body: sp(T1, "a", 51), expect: "deliver+caughtUp" },
                { op: "overdue", expect: "skipped 0" },
                { op: "params", expect: "after=51" },
                { op: "ack", body: { replayed: 3, truncated: true, next_after: 60 }, expect: "replaying" },
                { op: "push", status: 200, body: sp(T2, "b", 52), expect: "deliver" },
                { op: "overdue", expect: "skipped 2" },
                { op: "params", expect: "after=52" },
            ],
        },
        {
            name: "by since: a cut replay one push short when its time is up goes on from next_since",
            steps: [
                { op: "ack", body: cut(3, T3), expect: "replaying" },
                { op: "push", status: 200, body: dp(T1, "1"), expect: "deliver" },
                { op: "push", status: 200, body: dp(T2, "2"), expect: "deliver" },
                { op: "overdue", expect: "skipped 1" },
                { op: "params", expect: "since=" + T3 },
                { op: "ack", body: undefined, expect: "live" },
                { op: "push", status: 200, body: dp(T5, "5"), expect: "deliver" },
            ],
        },
    )
    return vectors
}

/** The cursor as the runner needs it (src/subscription-cursor.ts SubscriptionCursor). */
export interface CursorUnderTest {
    anchor(since: any): void
    subscribeParams(): any
    acknowledged(body: any): string
    /** set by acknowledged() or push() when the server's seqs went back below a push handled: that push's seq; the caller clears it */
    rewoundFrom?: number
    push(status: number, body: any): { deliver: boolean; caughtUp: boolean }
    /** a cut replay's time is up: how many of its pushes were skipped */
    overdue(): number
}

/** Runs one vector; returns what differed ("" when all steps answered as expected). */
export function runCursorVector(
    v: CursorVector,
    make: (sinceAt: string | undefined, limit: number | undefined, oneStream: boolean | undefined, bySeq: boolean | undefined) => CursorUnderTest,
): string {
    const c = make(v.sinceAt, v.limit, v.oneStream, v.bySeq)
    for (let i = 0; i < v.steps.length; ++i) {
        const s = v.steps[i]
        let got = ""
        if (s.op === "anchor") c.anchor(s.since)
        else if (s.op === "params") {
            const p = c.subscribeParams()
            const parts: string[] = []
            if (p.since !== undefined) parts.push("since=" + p.since)
            if (p.after !== undefined) parts.push("after=" + p.after)
            if (p.limit !== undefined) parts.push("limit=" + p.limit)
            got = parts.join(";")
        } else if (s.op === "ack") {
            got = c.acknowledged(s.body)
        } else if (s.op === "overdue") {
            got = "skipped " + c.overdue()
        } else {
            const o = c.push(s.status === undefined ? 200 : s.status, s.body)
            got = (o.deliver ? "deliver" : "drop") + (o.caughtUp ? "+caughtUp" : "")
        }
        // acknowledgements and pushes alike: the caller is told, and clears it
        if (c.rewoundFrom !== undefined) got += "+rewound " + c.rewoundFrom
        c.rewoundFrom = undefined
        if (got !== s.expect) return v.name + ", step " + (i + 1) + " (" + s.op + "): expected '" + s.expect + "', got '" + got + "'"
    }
    return ""
}

/** The request table as the runner needs it (src/requests.ts RequestTable). */
export interface TableUnderTest {
    nextToken(): string
    add(token: string, kind: string, ref: any, nowMs: number, timeoutMs: number): any
    take(token: string | undefined): any
    takeOverdue(nowMs: number): any[]
    msToNextDeadline(nowMs: number): number | undefined
    size(): number
    clear(): any[]
}

/**
 * [P§5, P§6] The request table's rules, run against a fresh table with `prefix`; returns what differed ("" when
 * all held): tokens unique and never reused, a response matches its request once, in any order, deadlines.
 */
export function runRequestTableChecks(make: (prefix: string) => TableUnderTest): string {
    const fail = (what: string, got: any) => "request table: " + what + " (got " + got + ")"
    const r = make("c")
    const a = r.nextToken()
    const b = r.nextToken()
    if (a !== "c1" || b !== "c2") return fail("tokens are the prefix and a base-36 counter", a + "," + b)
    r.add(a, "batch", 1, 1000, 3000)
    r.add(b, "subscribe", 0, 1500, 3000)
    if (r.msToNextDeadline(1000) !== 3000) return fail("the next deadline is the earliest", r.msToNextDeadline(1000))
    if (r.msToNextDeadline(5000) !== 0) return fail("an overdue deadline is due now", r.msToNextDeadline(5000))
    if (r.msToNextDeadline(3999) !== 1) return fail("nothing overdue a ms before a deadline", r.msToNextDeadline(3999))
    if (r.msToNextDeadline(4000) !== 0) return fail("overdue at its deadline", r.msToNextDeadline(4000))
    const tb = r.take(b)
    if (!tb || tb.kind !== "subscribe" || tb.ref !== 0 || tb.sentMs !== 1500) return fail("a response matches its request, out of order too", tb && tb.kind)
    if (r.take(b) !== undefined) return fail("a duplicate response matches nothing", "a match")
    if (r.take(undefined) !== undefined || r.take("zz") !== undefined) return fail("an unknown or missing token matches nothing", "a match")
    r.add(r.nextToken(), "put", "x", 2000, 100)
    const late = r.takeOverdue(2100)
    if (late.length !== 1 || late[0].ref !== "x" || r.size() !== 1) return fail("takeOverdue removes every late request and only those", late.length + " late, " + r.size() + " left")
    const gone = r.clear()
    if (gone.length !== 1 || r.size() !== 0 || r.msToNextDeadline(0) !== undefined) return fail("clear() returns what was in flight and empties the table", gone.length)
    const c = r.nextToken()
    if (c === a || c === b || c !== "c4") return fail("tokens are never reused after clear()", c)
    for (let i = 5; i < 36; ++i) r.nextToken()
    if (r.nextToken() !== "c10") return fail("base 36: after z comes 10", "")
    if (make("").nextToken() !== "1") return fail("no prefix: the device's short tokens", "")
    return ""
}
