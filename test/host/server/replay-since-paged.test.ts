// [P§8] `since` with `"after":"latest"` whose replay is cut (`truncated`, `next_since`): the client pages on
// while others write. A backfill committed meanwhile with an `at` at or before the page it asks for next was
// in no page (each is read by `at` after next_since) and, once live, behind the cursor (each page's snapshot
// was later): it was missed. Now the cut acknowledgement carries the first snapshot's cursor (`next_after`),
// the rest is asked for up to it (`since` with `after` = it), and what was committed after it comes by
// `after`: a property over writes interleaved with the pages (fast-check), on SQLite and PostgreSQL, with the
// client's own cursor (src/subscription-cursor.ts): every point once, none missed.
import assert from "node:assert/strict"
import fc from "fast-check"
import { SubscriptionCursor } from "../../../src/subscription-cursor.ts"
import { testOnEachEngine } from "../harness/each-engine.ts"
import { http, TlsClient, type TestServer } from "../harness/server-harness.ts"

const S = Date.UTC(2026, 11, 7, 9)
const iso = (ms: number) => new Date(ms).toISOString()

interface Point {
    stream: string
    at: number
    value: string
}

interface Case {
    /** points stored before the first subscribe */
    before: Point[]
    /** points written after page n was handled (n: 0 for the first) */
    during: { afterPage: number; point: Point }[]
    limit: number
}

/** points with distinct (stream, at) and distinct values, `at`s around S (at or before it: not in a replay by `since`) */
const points = (n: number, tag: string) =>
    fc.uniqueArray(fc.record({ stream: fc.constantFrom("a", "b", "c"), at: fc.integer({ min: S - 40, max: S + 40 }) }), { minLength: n, maxLength: n + 6, selector: (p) => `${p.stream}@${p.at}` }).map((ps) => ps.map((p, i) => ({ ...p, value: `${tag}${i}` })))

const cases: fc.Arbitrary<Case> = fc
    .record({ before: points(3, "b"), during: points(1, "d"), limit: fc.integer({ min: 1, max: 3 }), pages: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 7, maxLength: 7 }) })
    .map(({ before, during, limit, pages }) => ({
        before,
        // a point of `during` that rewrites one of `before` would be a new value of it: kept apart, so every value is pushed at most once
        during: during.filter((d) => !before.some((b) => b.stream === d.stream && b.at === d.at)).map((point, i) => ({ afterPage: pages[i % pages.length], point })),
        limit,
    }))

async function put(c: TlsClient, feed: number, ps: Point[]): Promise<void> {
    for (const p of ps) {
        const r = await c.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: p.stream, datapoints: [{ at: p.at, value: p.value }] }] } })
        assert.equal(r.status, 200, JSON.stringify(r))
    }
}

/** Runs one case against a server: a fresh feed, the subscriber paging by its cursor, the writer writing between the pages. */
async function runCase(s: TestServer, c: Case): Promise<void> {
    const master = s.credentials.masterKey
    const feed = (await http(s, "POST", "/v2/feeds", { key: master, body: { title: "paged" } })).body.id as number
    const [writer, sub] = [await TlsClient.open(s, master), await TlsClient.open(s, master)]
    try {
        await put(writer, feed, c.before)
        const cursor = new SubscriptionCursor(iso(S), c.limit, false, true)
        const got: string[] = []
        const resource = `/feeds/${feed}`
        /** the pages after which the `during` points have been written */
        let written = 0
        for (let page = 0; ; ++page) {
            assert.ok(page < 100, "pages without end")
            const ack = await sub.request({ method: "subscribe", resource, params: cursor.subscribeParams(), token: "s" })
            assert.equal(ack.status, 200, JSON.stringify(ack))
            const outcome = cursor.acknowledged(ack.body)
            while (outcome === "replaying") {
                const p = await sub.push("s")
                const { deliver, caughtUp } = cursor.push(p.status, p.body)
                if (deliver) got.push(p.body.current_value)
                if (caughtUp) break
            }
            if (outcome === "live") break
            await put(
                writer,
                feed,
                c.during.filter((d) => d.afterPage === page).map((d) => d.point),
            )
            written = page + 1
        }
        // live: the points whose page never came are written now, then a marker: all of them come before it
        await put(writer, feed, [...c.during.filter((d) => d.afterPage >= written).map((d) => d.point), { stream: "a", at: S + 1000, value: "marker" }])
        for (;;) {
            const p = await sub.push("s")
            const { deliver } = cursor.push(p.status, p.body)
            if (p.body.current_value === "marker") break
            if (deliver) got.push(p.body.current_value)
        }
        const expected = [...c.before.filter((p) => p.at > S).map((p) => p.value), ...c.during.map((d) => d.point.value)]
        assert.deepEqual([...got].sort(), expected.sort(), `every point once (limit ${c.limit}; pushed in this order: ${got.join(" ")})`)
    } finally {
        writer.close()
        sub.close()
    }
}

/**
 * A live subscription made with since and after latest, its link lost after one push of its replay by `at`; a
 * backfill written meanwhile; the client resumes by its cursor (the rest up to the acknowledgement's
 * next_after, then by after). Was: since = the last at handled with after latest, and the backfill was missed.
 */
async function linkLostInReplay(s: TestServer): Promise<void> {
    const master = s.credentials.masterKey
    const feed = (await http(s, "POST", "/v2/feeds", { key: master, body: { title: "lost in replay" } })).body.id as number
    const writer = await TlsClient.open(s, master)
    const resource = `/feeds/${feed}`
    const cursor = new SubscriptionCursor(iso(S), undefined, false, true)
    const got: string[] = []
    const handle = (p: { status: number; body?: any }) => {
        const { deliver, caughtUp } = cursor.push(p.status, p.body)
        if (deliver) got.push(p.body.current_value)
        return caughtUp
    }
    try {
        await put(writer, feed, [1, 2, 3].map((i) => ({ stream: "a", at: S + i, value: `b${i}` })))
        const first = await TlsClient.open(s, master)
        const ack = await first.request({ method: "subscribe", resource, params: cursor.subscribeParams(), token: "s" })
        assert.deepEqual([ack.status, cursor.acknowledged(ack.body), ack.body.replayed, ack.body.next_after], [200, "live", 3, ack.body.seq], JSON.stringify(ack))
        handle(await first.push("s"))
        first.close()
        // while it is away: a backfill, older than the `at` it handled
        await put(writer, feed, [{ stream: "c", at: S - 5, value: "late" }])
        const back = await TlsClient.open(s, master)
        try {
            for (let round = 0; ; ++round) {
                assert.ok(round < 5)
                const again = await back.request({ method: "subscribe", resource, params: cursor.subscribeParams(), token: "s" })
                assert.equal(again.status, 200, JSON.stringify(again))
                const outcome = cursor.acknowledged(again.body)
                if (outcome === "live") break
                if (outcome === "replaying") while (!handle(await back.push("s")));
            }
            await put(writer, feed, [{ stream: "a", at: S + 1000, value: "marker" }])
            for (;;) {
                const p = await back.push("s")
                if (p.body.current_value === "marker") break
                handle(p)
            }
        } finally {
            back.close()
        }
        assert.deepEqual(got, ["b1", "b2", "b3", "late"], "the rest of the replay, then the backfill, each once")
    } finally {
        writer.close()
    }
}

testOnEachEngine(`since with after latest, paged with next_since while backfills and new points are written, or its link lost in the replay: every point once, none missed (property)`, 240_000, async (s) => {
    await linkLostInReplay(s)
    await fc.assert(
        fc.asyncProperty(cases, (c) => runCase(s, c)),
        { numRuns: 25 },
    )
})
