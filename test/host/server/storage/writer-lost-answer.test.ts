// The SQLite writer thread dying between a commit and its answer (storage/writer-thread.ts lost(),
// PointWriter.commit's recoverAfterSeq). The main thread used to refuse what was in flight "commit-failed"
// ("nothing was written, send it again") although it was stored: a server-stamped point sent again got a new
// stamp and was stored twice, and a resend with the same `at` was "no change", acknowledged but never pushed.
// Now the lost writes go again, with their stamps, to a new thread that decides from the store what the lost
// commit wrote: answered stored, with the seqs they were stored with (their pushes), stored once. When that
// recovery is lost too, the writes are refused 503 E_OUTCOME_UNKNOWN, and a resend with the same `at` is
// stored once and acknowledged.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test } from "node:test"
import Database from "better-sqlite3"
import { asApiError } from "../../../../devs/server/errors.ts"
import { PointWriter } from "../../../../devs/server/storage/point-writer.ts"
import { SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import type { FromWriter } from "../../../../devs/server/storage/writer-thread.ts"

const T0 = Date.UTC(2026, 11, 7, 5)
const dirs: string[] = []
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

interface ThreadInside {
    worker: { terminate(): Promise<number> }
    received(m: FromWriter): void
}

/** A store on a writer thread whose next `answers` write answers are lost: the thread is ended as each is posted (after its commit). */
function storeLosingAnswers(): { store: SqliteStore; path: string; loseNext: (answers: number) => void } {
    const dir = mkdtempSync(join(tmpdir(), "feedline-lost-answer-"))
    dirs.push(dir)
    const path = join(dir, "db")
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
    const dir = mkdtempSync(join(tmpdir(), "feedline-lost-answer-"))
    dirs.push(dir)
    const path = join(dir, "db")
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

test("writer thread lost, and its recovery lost too: 503 E_OUTCOME_UNKNOWN (send it again), and the resend with the same `at` is stored once and acknowledged", { timeout: 60_000 }, async () => {
    const { store, path, loseNext } = storeLosingAnswers()
    try {
        const f = (await store.createFeed({})).id
        await store.writePoints(f, [{ stream: "a", atMs: T0 - 10, value: "0" }])
        loseNext(2)
        const refused = await store.writePoints(f, [{ stream: "b", atMs: T0 - 5, value: "2" }]).then(
            () => undefined,
            (e: unknown) => e,
        )
        assert.ok(refused !== undefined, "answered as stored although its outcome was decided by nobody")
        const api = asApiError(refused)
        assert.deepEqual([api.status, api.code], [503, "E_OUTCOME_UNKNOWN"], api.message)
        assert.match(api.message, /may or may not have been stored; send it again/)
        // it was stored (both commits happened): the resend is acknowledged and stores nothing more
        await store.writePoints(f, [{ stream: "b", atMs: T0 - 5, value: "2" }])
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
