// The SQLite writer thread dying between a commit and its answer (storage/writer-thread.ts lost(),
// PointWriter.commit's recoverAfterSeq). The main thread used to refuse what was in flight "commit-failed"
// ("nothing was written, send it again") although it was stored: a server-stamped point sent again got a new
// stamp and was stored twice, and a resend with the same `at` was "no change", acknowledged but never pushed.
// Now the lost writes go again, with their stamps, to a new thread that decides from the store what the lost
// commit wrote: answered stored, with the seqs they were stored with (their pushes), stored once. When that
// recovery is lost too, they go again from the same mark (a server stamp kept: a resend without `at` would be
// a second point); lost past MAX_RECOVERIES, the writes are refused 503 E_OUTCOME_UNKNOWN, and a resend with the
// same `at` is stored once, acknowledged, and pushed then (it was stored, and nobody was pushed it).
import assert from "node:assert/strict"
import { join } from "node:path"
import { after, test } from "node:test"
import Database from "better-sqlite3"
import { asApiError } from "../../../../devs/server/errors.ts"
import { PointWriter } from "../../../../devs/server/storage/point-writer.ts"
import { SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import { MAX_RECOVERIES, WriterThread, type FromWriter } from "../../../../devs/server/storage/writer-thread.ts"
import { http, startTestServer, TlsClient } from "../../harness/server-harness.ts"
import { tempStorePath } from "../../harness/temp-dirs.ts"

const T0 = Date.UTC(2026, 11, 7, 5)

interface ThreadInside {
    worker: { terminate(): Promise<number> }
    received(m: FromWriter): void
}

/** A store on a writer thread whose next `answers` write answers are lost: the thread is ended as each is posted (after its commit). */
function storeLosingAnswers(): { store: SqliteStore; path: string; loseNext: (answers: number) => void } {
    const path = tempStorePath("feedline-lost-answer-")
    const store = new SqliteStore({ path, synchronous: "NORMAL", writerThread: true, now: () => T0, onError: () => {} })
    const thread = (store as unknown as { writer: { thread: ThreadInside } }).writer.thread
    const received = thread.received.bind(thread)
    let lose = 0
    thread.received = (m) => {
        if (m.kind === "written" && lose > 0) {
            lose--
            void thread.worker.terminate()
            return
        }
        received(m)
    }
    return { store, path, loseNext: (n) => (lose = n) }
}

function rows(path: string, feed: number): [string, number, string, number][] {
    const db = new Database(path, { readonly: true })
    try {
        // the feed's seqs: datapoints.seq, the journal's feed_seq (its own seq is the store's write order)
        const q = (table: string, seq: string) => db.prepare(`SELECT stream, at_ms, value, ${seq} FROM ${table} WHERE feed = ?`).raw().all(feed) as [string, number, string, number][]
        return [...q("datapoints", "seq"), ...q("ingest_journal", "feed_seq")].sort((a, b) => a[3] - b[3])
    } finally {
        db.close()
    }
}

test("writer thread lost between a commit and its answer: the writes are answered stored, with the seqs they were stored with; nothing stored twice, a server stamp included", { timeout: 60_000 }, async () => {
    const { store, path, loseNext } = storeLosingAnswers()
    try {
        const f = (await store.createFeed({})).id
        await store.writePoints(f, [{ stream: "a", atMs: T0 - 10, value: "before" }])
        loseNext(1)
        // one message: a server-stamped point, a point with its own `at`, and a rewrite of an identical value (no change)
        const [stamped, given, same] = await Promise.all([
            store.writePoints(f, [{ stream: "s", value: "1" }]),
            store.writePoints(f, [{ stream: "b", atMs: T0 - 5, value: "2" }]),
            store.writePoints(f, [{ stream: "a", atMs: T0 - 10, value: "before" }]),
        ])
        const stored = rows(path, f)
        assert.deepEqual(
            stored.map(([s, , v]) => [s, v]),
            [
                ["a", "before"],
                ["s", "1"],
                ["b", "2"],
            ],
            "each point stored once",
        )
        const seqOf = (s: string) => stored.find((r) => r[0] === s)![3]
        assert.deepEqual(
            stamped.map((p) => [p.stream, p.value, p.seq]),
            [["s", "1", seqOf("s")]],
        )
        assert.deepEqual(
            given.map((p) => [p.stream, p.atMs, p.value, p.seq]),
            [["b", T0 - 5, "2", seqOf("b")]],
        )
        assert.deepEqual(same, [], "an identical rewrite stays no change")
        // the device resends its batch anyway (it never saw the answer): acknowledged, nothing more stored
        assert.deepEqual(await store.writePoints(f, [{ stream: "b", atMs: T0 - 5, value: "2" }]), [])
        assert.equal(rows(path, f).length, 3)
        // and the new thread goes on
        assert.deepEqual((await store.writePoints(f, [{ stream: "b", atMs: T0 - 4, value: "3" }])).map((p) => p.value), ["3"])
    } finally {
        await store.close()
    }
})

test("writer thread lost between a commit and its answer, with writes to two feeds: each answered with its own feed's seqs, as they were stored", { timeout: 60_000 }, async () => {
    const { store, path, loseNext } = storeLosingAnswers()
    try {
        const f = (await store.createFeed({})).id
        const g = (await store.createFeed({})).id
        await store.writePoints(g, [{ stream: "a", atMs: T0 - 20, value: "0" }, { stream: "a", atMs: T0 - 19, value: "1" }])
        loseNext(1)
        const [onF, onG] = await Promise.all([store.writePoints(f, [{ stream: "a", atMs: T0 - 10, value: "x" }]), store.writePoints(g, [{ stream: "a", atMs: T0 - 10, value: "y" }])])
        assert.deepEqual(onF.map((p) => p.seq), [1], "feed f's first point: its seq 1, whatever g wrote")
        assert.deepEqual(onG.map((p) => p.seq), [3])
        assert.deepEqual(rows(path, f).map((r) => r[3]), [1])
        assert.deepEqual(rows(path, g).map((r) => r[3]), [1, 2, 3])
    } finally {
        await store.close()
    }
})

test("a recovery whose mark the journal was moved past (another process opened the store meanwhile) cannot tell who wrote a stored point: every write commit-unknown, nothing stored twice", async () => {
    const path = tempStorePath("feedline-lost-answer-")
    const seeded = new SqliteStore({ path, synchronous: "NORMAL" })
    const feed = (await seeded.createFeed({})).id
    await seeded.close()
    const db = new Database(path)
    try {
        const writer = new PointWriter(db)
        const mark = writer.seqs().seq
        const point = { stream: "s", atMs: T0, value: "1" }
        assert.deepEqual(writer.commit([{ feed, points: [point] }], T0), [[0, 1]], "the lost commit")
        // still in the journal: the recovery finds it there, written with seq 1
        assert.deepEqual(writer.commit([{ feed, points: [point] }], T0, mark), [[0, 1]])
        writer.compact()
        const outcomes = writer.commit([{ feed, points: [point] }, { feed, points: [{ stream: "s", atMs: T0 + 1, value: "2" }] }], T0, mark)
        assert.deepEqual(outcomes.map((o) => (o as { failure?: string }).failure), ["commit-unknown", "commit-unknown"])
        assert.equal(db.prepare("SELECT COUNT(*) FROM datapoints").pluck().get(), 1, "nothing more stored")
    } finally {
        db.close()
    }
})

test("writer thread lost, and its recovery lost too: decided from the store all the same, a server stamp kept; each point stored once", { timeout: 60_000 }, async () => {
    const { store, path, loseNext } = storeLosingAnswers()
    try {
        const f = (await store.createFeed({})).id
        loseNext(2)
        const [stamped, given] = await Promise.all([store.writePoints(f, [{ stream: "s", value: "1" }]), store.writePoints(f, [{ stream: "b", atMs: T0 - 5, value: "2" }])])
        const stored = rows(path, f)
        assert.deepEqual(
            stored.map(([s, , v]) => [s, v]),
            [
                ["s", "1"],
                ["b", "2"],
            ],
            "each point stored once",
        )
        assert.deepEqual(
            [...stamped, ...given].map((p) => [p.stream, p.atMs, p.seq]),
            stored.map(([s, at, , seq]) => [s, at, seq]),
            "answered with the stamps and seqs they were stored with",
        )
    } finally {
        await store.close()
    }
})

test(`writer thread lost, and ${MAX_RECOVERIES} recoveries in a row too: 503 E_OUTCOME_UNKNOWN (send it again), and the resend with the same \`at\` is stored once, acknowledged, and answered written (pushed) once`, { timeout: 60_000 }, async () => {
    const { store, path, loseNext } = storeLosingAnswers()
    try {
        const f = (await store.createFeed({})).id
        await store.writePoints(f, [{ stream: "a", atMs: T0 - 10, value: "0" }])
        loseNext(MAX_RECOVERIES + 1)
        const refused = await store.writePoints(f, [{ stream: "b", atMs: T0 - 5, value: "2" }]).then(
            () => undefined,
            (e: unknown) => e,
        )
        assert.ok(refused !== undefined, "answered as stored although its outcome was decided by nobody")
        const api = asApiError(refused)
        assert.deepEqual([api.status, api.code], [503, "E_OUTCOME_UNKNOWN"], api.message)
        assert.match(api.message, /may or may not have been stored; send it again/)
        // it was stored (every commit happened): the resend stores nothing more, and is answered written with the
        // seq it was stored with (its subscribers were never pushed it); a further resend is no change
        const resent = await store.writePoints(f, [{ stream: "b", atMs: T0 - 5, value: "2" }])
        const seqOfB = rows(path, f).find(([s]) => s === "b")![3]
        assert.deepEqual(
            resent.map((p) => [p.stream, p.atMs, p.value, p.seq]),
            [["b", T0 - 5, "2", seqOfB]],
        )
        assert.deepEqual(await store.writePoints(f, [{ stream: "b", atMs: T0 - 5, value: "2" }]), [])
        assert.deepEqual(
            rows(path, f).map(([s, at, v]) => [s, at, v]),
            [
                ["a", T0 - 10, "0"],
                ["b", T0 - 5, "2"],
            ],
        )
    } finally {
        await store.close()
    }
})

test("writer thread lost while the store closes, holding a write it committed: 503 E_OUTCOME_UNKNOWN, not 'nothing was written'", { timeout: 60_000 }, async () => {
    const { store, path, loseNext } = storeLosingAnswers()
    const f = (await store.createFeed({})).id
    loseNext(1)
    const writing = store.writePoints(f, [{ stream: "b", atMs: T0 - 5, value: "2" }]).then(
        () => undefined,
        (e: unknown) => e,
    )
    await store.close()
    const refused = await writing
    assert.ok(refused !== undefined, "answered as stored although its answer was lost")
    const api = asApiError(refused)
    assert.deepEqual([api.status, api.code], [503, "E_OUTCOME_UNKNOWN"], api.message)
    assert.deepEqual(
        rows(path, f).map(([s, at, v]) => [s, at, v]),
        [["b", T0 - 5, "2"]],
        "it was stored",
    )
})

// A server's writer thread losing its answers (the servers below run in this process: every writer thread of it
// loses its next `serverLoses` answers, as storeLosingAnswers does for one store).
let serverLoses = 0
{
    const proto = WriterThread.prototype as unknown as ThreadInside
    const received = proto.received
    proto.received = function (this: ThreadInside, m: FromWriter) {
        if (m.kind === "written" && serverLoses > 0) {
            serverLoses--
            void this.worker.terminate()
            return
        }
        received.call(this, m)
    }
}

/** A server on SQLite (its writer thread), and a subscriber to datastream `d` of its device's feed. */
async function serverWithSubscriber(t: { after(fn: () => unknown): void }) {
    const s = await startTestServer()
    t.after(() => s.stop())
    const key = s.credentials.deviceKey
    const feed = s.credentials.feedId
    const sub = await TlsClient.open(s, key)
    t.after(() => sub.close())
    assert.equal((await sub.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/d`, token: "s" })).status, 200)
    const put = (datapoint: { at?: string; value: string }) =>
        http(s, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [datapoint.at ? { id: "d", datapoints: [datapoint] } : { id: "d", current_value: datapoint.value }] } })
    const pushed = () => sub.q.lines.filter((l) => l.response?.token === "s" && l.response.body?.current_value !== undefined).map((l) => l.response!.body.current_value as string)
    return { s, sub, put, pushed, rows: () => rows(join(s.dataDir, "feedline.db"), feed) }
}

test("server: its writer thread lost, and its recovery too: a point without `at` is answered 200, stored once with the stamp it was answered with, and pushed once", { timeout: 60_000 }, async (t) => {
    const { sub, put, pushed, rows: stored } = await serverWithSubscriber(t)
    serverLoses = 2
    const r = await put({ value: "stamped" })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.equal((await sub.push("s")).body.current_value, "stamped")
    assert.deepEqual(
        stored().map(([s, , v]) => [s, v]),
        [["d", "stamped"]],
        "stored once",
    )
    assert.equal((await put({ value: "next" })).status, 200)
    assert.equal((await sub.push("s")).body.current_value, "next")
    assert.deepEqual(pushed(), ["stamped", "next"])
})

test("server: its writer thread lost past every recovery: 503 E_OUTCOME_UNKNOWN, and the device's resend, found stored, is pushed to the subscribers, once", { timeout: 60_000 }, async (t) => {
    const { sub, put, pushed, rows: stored } = await serverWithSubscriber(t)
    const point = { at: new Date(T0).toISOString(), value: "lost answer" }
    serverLoses = MAX_RECOVERIES + 1
    const refused = await put(point)
    assert.deepEqual([refused.status, refused.body?.code], [503, "E_OUTCOME_UNKNOWN"], JSON.stringify(refused.body))
    assert.equal(serverLoses, 0)
    assert.equal((await put(point)).status, 200, "the resend")
    assert.equal((await sub.push("s")).body.current_value, "lost answer")
    assert.equal((await put(point)).status, 200, "sent once more")
    assert.equal((await put({ at: new Date(T0 + 1).toISOString(), value: "next" })).status, 200)
    assert.equal((await sub.push("s")).body.current_value, "next")
    assert.deepEqual(pushed(), ["lost answer", "next"], "each once")
    assert.equal(stored().length, 2)
})
