// Datapoint writes on the connection that owns them: many requests in one transaction (group commit),
// each request acknowledged only after that commit, which appends them to the ingest journal; the
// journal's compaction into the tables (PointWriter). Used on the server's writer thread
// (writer-thread.ts) and in-process by the CLI and tests (sqlite.ts); the SQL and the grouping are the
// same either way.
import type Database from "better-sqlite3"
import { MAX_KNOWN_FEEDS, numericOf, STORE_RETRY_MS } from "./rows.ts"
import type { StampedPoint } from "./stamps.ts"
import { keysChanged, StoreError, type StoredPoint } from "./store.ts"

/** PointInput with its `at` (the store has stamped those without) */
type PointInput = StampedPoint

export interface WriteRequest {
    feed: number
    points: PointInput[]
    /**
     * The keys' generation (the settings counter every change of keys raises, migration 7) that the
     * request's key was checked against, when that check did not look at other writers' commits: the
     * request is journaled only if the counter is still at it in the commit's transaction, else refused
     * "keys-changed" with nothing stored (the caller checks the key again). Absent: not checked here.
     */
    keysGeneration?: number
}

/**
 * What one request's write did: the points that changed something, as pairs [index into the request's
 * points, seq, …] in stream then `at` order (flat numbers: cheap to pass between threads). A rewrite of
 * an identical value is no change [P§9].
 */
export type WrittenPairs = number[]

/** A refusal as it crosses threads (StoreError is rebuilt from it). */
export interface StoreRefusal {
    failure: StoreError["failure"]
    reason: string
    retryAfterMs?: number
}

export function refusalOf(e: StoreError): StoreRefusal {
    return { failure: e.failure, reason: e.message, retryAfterMs: e.retryAfterMs }
}

export function storeErrorOf(r: StoreRefusal): StoreError {
    return new StoreError(r.failure, r.reason, r.retryAfterMs)
}

/**
 * A call that has the journal moved into the tables first (a replay, a delete, a rename, a datastream's
 * change: Store.visible) could not have it moved: that move is a write, and it failed (disk full, I/O
 * error). The call did nothing; the journal's points stay where they were.
 */
export function compactionFailed(): StoreError {
    return new StoreError("commit-failed", "the server could not write to its storage (a full disk or an I/O error); nothing was changed, send it again after retry_after_ms", STORE_RETRY_MS)
}

/** The commit failed: nothing of it was stored. */
export function commitFailed(): StoreError {
    return new StoreError("commit-failed", "the server could not store this write; nothing was written, send it again", STORE_RETRY_MS)
}

/**
 * The writer thread stopped while it held the write, and a new one could not decide from the store whether
 * it was committed (it stopped again meanwhile): it may or may not be stored. A resend with the same `at`s
 * is stored once and acknowledged [P§9].
 */
export function writeOutcomeUnknown(): StoreError {
    return new StoreError(
        "commit-unknown",
        'the server\'s storage writer stopped while committing this write: it may or may not have been stored; send it again (a datapoint with the same "at" is stored once)',
        STORE_RETRY_MS,
    )
}

/**
 * Which feeds exist, as far as one connection knows. Commits by other connections (the writer thread,
 * the `feedline keys` CLI) can delete feeds: `otherWriters()` reads data_version and forgets what it knew
 * when it changed.
 */
export class FeedPresence {
    private readonly known = new Set<number>()
    private dataVersion = -1
    private readonly stmt: { exists: Database.Statement<[number], number>; dataVersion: Database.Statement<[], number> }

    constructor(db: Database.Database) {
        this.stmt = {
            exists: db.prepare<[number], number>("SELECT 1 FROM feeds WHERE id = ?").pluck(),
            dataVersion: db.prepare<[], number>("PRAGMA data_version").pluck(),
        }
    }

    /** True (and the remembered feeds forgotten) when another connection committed since the last look. */
    otherWriters(): boolean {
        const dv = this.stmt.dataVersion.get()!
        if (dv === this.dataVersion) return false
        this.dataVersion = dv
        this.known.clear()
        return true
    }

    /** Whether the feed exists: from memory, else one query. */
    exists(id: number): boolean {
        if (this.known.has(id)) return true
        if (this.stmt.exists.get(id) === undefined) return false
        if (this.known.size >= MAX_KNOWN_FEEDS) this.known.clear()
        this.known.add(id)
        return true
    }

    forget(id: number): void {
        this.known.delete(id)
    }
}

/** A datastream's change from the journal's points, with their values by `at` (the dedup check's memory). */
interface JournaledStream extends StreamChange {
    points: Map<number, string>
}

export interface StreamChange {
    feed: number
    id: string
    value: string
    at: number
    min: number | null
    max: number | null
    /** the time of the commit that first wrote the datastream in this journal: its created_ms if new */
    now: number
}

/**
 * Journal rows past which the writer compacts (moves them into the tables): on the writer thread as soon
 * as no write waits, in-process after the commit that reached it. A compaction writes each datastream's
 * leaf once for all of its rows, so the more rows, the fewer page writes per point (a scratch run at 50
 * datastreams: ~7.6 µs of CPU per point compacted at 250 rows, ~5.5 µs at 1000 or more); the rows wait
 * in memory as well (the dedup map below), and a compaction that cannot stop (a read's, the in-process
 * writer's) holds up the commits behind it for as long as it runs (~4-6 ms at this size), so not many more.
 * The writer thread's stops after a chunk when a write comes (COMPACT_CHUNK_ROWS).
 */
export const COMPACT_JOURNAL_ROWS = 4000

/**
 * Seqs a stoppable compaction (PointWriter.compact with `stop`) moves per statement; between two it may
 * stop and commit what it moved. A chunk takes ~0.5–1 ms (~1.2–2 µs a point), about what a write that
 * arrives meanwhile waits for it; the whole journal moved in chunks in one transaction costs what one
 * statement does (its pages are written once, at the commit).
 */
export const COMPACT_CHUNK_ROWS = 500

/** One row of the journal: what an acknowledged write changed, in write order. */
export interface JournalRow {
    feed: number
    stream: string
    at: number
    value: string
    now: number
    /** the point's seq in its feed (feed_seq): what clients see */
    feedSeq: number
}

/**
 * The journal's rows as JournalRow; a WHERE and ORDER BY seq follow (the writer's and the store's reads
 * alike). The journal's own `seq` is the order of writes over every feed (its rowid), internal to the
 * store: compactions, compacted_seq and the writer thread's recovery go by it. Clients see `feed_seq`, a
 * counter per feed [P§8], so that no tenant learns from its seqs how much the others write.
 */
export const JOURNAL_ROWS_SQL = "SELECT feed, stream, at_ms AS at, value, now_ms AS now, feed_seq AS feedSeq FROM ingest_journal"

/**
 * In the journal's write order (internal, JOURNAL_ROWS_SQL): seq, the newest write journaled; compacted,
 * the one up to which the journal has been moved into the tables. The journal is empty when they are
 * equal. One statement: one snapshot.
 *
 * The newest seq is the journal's last row (its rowid: one seek), or compacted_seq when the journal is
 * empty (a compaction moves it all and records the last seq it moved), so a commit writes the journal's
 * leaf and no other page: a stored counter (migration 9 removed it) lived on the settings page, a second
 * 4 KiB WAL frame, two more `pwrite`s and a statement in every durable commit.
 */
export const JOURNAL_SEQS_SQL = `SELECT COALESCE((SELECT MAX(seq) FROM ingest_journal), value) AS seq, value AS compacted
    FROM settings WHERE name = 'compacted_seq'`
export interface JournalSeqs {
    seq: number
    compacted: number
}

/** Datastreams whose newest `at` is remembered, at most (a few MB); past it the memory starts over. */
const MAX_KNOWN_STREAMS = 100_000

const streamKey = (feed: number, stream: string) => `${feed}/${stream}`

/** The journal's columns, in the order of appendSql's values. */
const JOURNAL_COLUMNS = 7
/**
 * Rows per journal INSERT at most (×7 values: well under SQLite's bound on variables). A scratch run at
 * 100 rows a commit: 1.4 µs of CPU per row one statement each, 0.9 µs in one statement.
 */
const APPEND_CHUNK_ROWS = 64
/**
 * Below this many rows a journal INSERT has a statement of its own size; above, sizes go by multiples of
 * it (appendStatementRows). 19 statements in all (1–16, 32, 48, 64 rows; 128–256 KiB of RSS once all are
 * prepared, against 1.3–1.4 MiB for all 64 sizes).
 */
const EXACT_APPEND_ROWS = 16

/** Rows of the next journal INSERT when `left` rows remain: every size up to EXACT_APPEND_ROWS, then multiples of it up to APPEND_CHUNK_ROWS. */
export function appendStatementRows(left: number): number {
    if (left > APPEND_CHUNK_ROWS) return APPEND_CHUNK_ROWS
    return left > EXACT_APPEND_ROWS ? left - (left % EXACT_APPEND_ROWS) : left
}
const appendSql = (rows: number) => `INSERT INTO ingest_journal (seq, feed, stream, at_ms, value, now_ms, feed_seq) VALUES ${new Array(rows).fill("(?, ?, ?, ?, ?, ?, ?)").join(", ")}`

/**
 * The datapoint SQL of one connection, as an append-only ingest journal (LSM-style).
 *
 * Why a journal: datapoints are clustered by (feed, stream, at), so a commit of points to N datastreams
 * (or feeds, as a fleet writes) dirties N B-tree leaves, each a 4 KiB WAL frame with its own writes, and
 * the datastreams' current values and the feeds' updated_ms as many again. The durable commit that an
 * acknowledgement waits for (synchronous=FULL) therefore only appends the points to `ingest_journal`
 * (rowid = seq: a commit touches the journal's last leaf or two, whatever it holds) and raises the seq
 * high-water mark. compact() later moves the journal into `datapoints`, `datastreams` and `feeds` in one
 * transaction, many points per leaf, and empties it.
 *
 * What the journal holds is also held in memory (`streams`, `touched`): the dedup check of a
 * new point (a rewrite of an identical value is no change [P§9]) looks there first, then in `datapoints`
 * (an index on the journal would be clustered by datastream again, which is what the journal avoids). The
 * memory is only trusted while the seq high-water mark and `compacted_seq` are what this writer last left
 * them: another connection that wrote or compacted the journal meanwhile (a CLI opening the store) makes
 * it read the journal again (syncJournal), inside the transaction that relies on it.
 */
export class PointWriter {
    private readonly feeds: FeedPresence
    private readonly stmt
    /** the connection's own setting, which compaction relaxes and restores */
    private readonly synchronous: number
    /** per "feed/stream" (streamKey): what the journal's points do to its datastream row, and their values by `at` */
    private streams = new Map<string, JournaledStream>()
    /** how many (feed, stream, at) the journal holds */
    private journalPoints = 0
    /** per feed: the time of the newest commit that wrote to it (feeds.updated_ms) */
    private touched = new Map<number, number>()
    /** per feed: the seq of its newest journaled point (what the compaction sets feeds.last_seq to) */
    private journalFeedSeq = new Map<number, number>()
    /**
     * per feed with no journaled point: feeds.last_seq, its newest seq in the tables (read once, then kept
     * through this writer's compactions). A feed's next point takes the seq after journalFeedSeq's, else
     * this one's: a counter per feed, which only this connection's commits move (another's compaction or
     * journal makes it forget: forgetAll).
     */
    private storedFeedSeq = new Map<number, number>()
    /**
     * per "feed/stream": an `at` no stored point of it is newer than (its datastream's at_ms, which the
     * writes and deletes keep at or above the newest point's). A new point newer than that needs no
     * lookup for the dedup check: the usual case, a device's next reading. Raised by compactions; a delete
     * on another connection only lowers what it bounds; forgotten when another connection wrote.
     */
    private newestStored = new Map<string, number>()
    /**
     * The keys' generation counter (WriteRequest.keysGeneration) as read in this connection's latest
     * transaction that needed it; `keysStale` when another connection committed since (data_version
     * moved, or the store on this same connection changed keys: keysMayHaveChanged), so the next commit
     * reads it again, inside its transaction. The writer's own commits never change it.
     */
    private knownKeysGeneration = -1
    private keysStale = true
    /** seq_high_water and compacted_seq as this writer last read or wrote them (-1: not yet read) */
    private knownSeq = -1
    private knownCompacted = -1
    /** the rows a commit journals, seven values each (appendRows), and its INSERTs by number of rows */
    private readonly rows: (number | string)[] = []
    private readonly appendStmts = new Map<number, Database.Statement<[(number | string)[]]>>()
    /** journal() in a transaction (BEGIN IMMEDIATE), made once: db.transaction() builds four wrappers at each call */
    private readonly journalImmediate: (batch: WriteRequest[], nowMs: number, recoverAfterSeq: number | undefined) => (WrittenPairs | StoreError)[]

    /**
     * `compactOnOpen` false: leave what the journal holds where it is (a writer thread started for a lost
     * one's recovery: the recovery decides from the journal what the lost commits wrote, commit()).
     */
    constructor(
        private readonly db: Database.Database,
        { compactOnOpen = true }: { compactOnOpen?: boolean } = {},
    ) {
        this.feeds = new FeedPresence(db)
        this.synchronous = db.pragma("synchronous", { simple: true }) as number
        // A statement that changes many rows inside a transaction keeps the pages it changes in a
        // statement journal (to undo itself alone); past 64 KiB SQLite spills it to a temporary file, and
        // the compaction's INSERT … SELECT spilled in every compaction (an open, ~100 `pwrite`s and a
        // close: ~14 % of its CPU). In memory it stays in memory. Nothing durable is in it: a crash
        // loses a statement journal either way, and the WAL holds only committed transactions.
        db.pragma("temp_store = MEMORY")
        this.stmt = {
            keysGeneration: db.prepare<[], number>("SELECT value FROM settings WHERE name = 'generation'").pluck(),
            storedValue: db.prepare<[number, string, number], string>("SELECT value FROM datapoints WHERE feed = ? AND stream = ? AND at_ms = ?").pluck(),
            feedLastSeq: db.prepare<[number], number>("SELECT last_seq FROM feeds WHERE id = ?").pluck(),
            streamAt: db.prepare<[number, string], number | null>("SELECT at_ms FROM datastreams WHERE feed = ? AND id = ?").pluck(),
            // a recovery's (commit with recoverAfterSeq) look at who wrote a stored point: the journal's newest row of it
            journaled: db.prepare<[number, string, number], { seq: number; feed_seq: number }>(
                "SELECT seq, feed_seq FROM ingest_journal WHERE feed = ? AND stream = ? AND at_ms = ? ORDER BY seq DESC LIMIT 1",
            ),
            journalRows: db.prepare<[], JournalRow>(`${JOURNAL_ROWS_SQL} ORDER BY seq`),
            // in seq order, so that of two rows of one (feed, stream, at) the later wins; the rows of a feed
            // deleted since they were journaled go nowhere
            moveJournal: db.prepare(
                `INSERT INTO datapoints (feed, stream, at_ms, value, seq)
                 SELECT feed, stream, at_ms, value, feed_seq FROM ingest_journal WHERE feed IN (SELECT id FROM feeds) ORDER BY seq
                 ON CONFLICT (feed, stream, at_ms) DO UPDATE SET value = excluded.value, seq = excluded.seq`,
            ),
            clearJournal: db.prepare("DELETE FROM ingest_journal"),
            // a stoppable compaction's chunk: the rows of seqs (from, to], and what they touch
            moveChunk: db.prepare<[number, number]>(
                `INSERT INTO datapoints (feed, stream, at_ms, value, seq)
                 SELECT feed, stream, at_ms, value, feed_seq FROM ingest_journal WHERE seq > ? AND seq <= ? AND feed IN (SELECT id FROM feeds) ORDER BY seq
                 ON CONFLICT (feed, stream, at_ms) DO UPDATE SET value = excluded.value, seq = excluded.seq`,
            ),
            streamsIn: db.prepare<[number, number], { feed: number; stream: string; top: number }>(
                "SELECT feed, stream, MAX(feed_seq) AS top FROM ingest_journal WHERE seq > ? AND seq <= ? GROUP BY feed, stream",
            ),
            clearThrough: db.prepare<[number]>("DELETE FROM ingest_journal WHERE seq <= ?"),
            // once per datastream per compaction, with what all of the journal's points of it did
            upsertStream: db.prepare<[StreamChange]>(
                `INSERT INTO datastreams (feed, id, current_value, at_ms, min_value, max_value, created_ms)
                 VALUES (@feed, @id, @value, @at, @min, @max, @now)
                 ON CONFLICT (feed, id) DO UPDATE SET
                   current_value = CASE WHEN datastreams.at_ms IS NULL OR excluded.at_ms >= datastreams.at_ms
                                        THEN excluded.current_value ELSE datastreams.current_value END,
                   at_ms = MAX(COALESCE(datastreams.at_ms, excluded.at_ms), excluded.at_ms),
                   min_value = COALESCE(MIN(datastreams.min_value, excluded.min_value), datastreams.min_value, excluded.min_value),
                   max_value = COALESCE(MAX(datastreams.max_value, excluded.max_value), datastreams.max_value, excluded.max_value)`,
            ),
            // last_seq: the feed's newest seq in the tables, a replay's cursor (SqliteStore.replay); the row
            // updated_ms is on anyway, so the counter costs the compaction no page of its own
            touchFeed: db.prepare<[number, number, number]>("UPDATE feeds SET updated_ms = ?, last_seq = MAX(last_seq, ?) WHERE id = ?"),
            // the journal's write order is the database's (the journal's newest seq), so that a reader on
            // another connection reads it in the same snapshot as the datapoints and two writers never
            // share a number
            seqs: db.prepare<[], JournalSeqs>(JOURNAL_SEQS_SQL),
            setCompacted: db.prepare("UPDATE settings SET value = ? WHERE name = 'compacted_seq'"),
            // prepared once: db.pragma() prepares its statement at every call (a compaction of a few rows
            // is a few tens of µs, which two fresh statements would add to)
            relaxSync: db.prepare("PRAGMA synchronous = NORMAL"),
            restoreSync: db.prepare(`PRAGMA synchronous = ${this.synchronous}`),
        }
        this.journalImmediate = db.transaction((batch: WriteRequest[], nowMs: number, recoverAfterSeq: number | undefined) => this.journal(batch, nowMs, recoverAfterSeq)).immediate
        // crash recovery: what a process left in the journal is moved before anything else happens
        if (compactOnOpen) this.compact()
        else this.syncJournal(true)
    }

    /**
     * Journals the requests in one transaction (BEGIN IMMEDIATE: the write lock is taken up front, so a
     * commit by another connection meanwhile cannot make it fail). Throws when the transaction fails;
     * nothing of it is stored then (and nothing of it is remembered).
     *
     * The memory of the journal is updated as the points are journaled (a later request of the batch
     * sees an earlier one's point: one lookup, not one in this commit's points and another in the
     * journal's); a failed transaction makes it read the journal again instead (forgetAll).
     *
     * `recoverAfterSeq` (a recovery: the requests of a writer thread that stopped before it answered them,
     * sent again with the same stamps, writer-thread.ts): the journal's write-order high-water as of the last
     * commit answered before them. A point they would write that is stored already, identical, and was
     * journaled after that mark and before this transaction, was written by their own lost commit: it is
     * reported written with the seq it was stored with (its pushes were never sent), not as "no change"; the
     * rest is written as any commit writes it. So a lost answer is decided from the store: nothing is stored
     * twice, and nothing that was stored is answered "not written". The journal is what tells (a recovery's
     * writer does not compact on open, and a thread compacts only what it answered); should it have been
     * moved past the mark all the same (another process opened the store meanwhile), who wrote a stored
     * point cannot be told, and every request is answered "commit-unknown" (send it again).
     */
    commit(batch: WriteRequest[], nowMs: number, recoverAfterSeq?: number): (WrittenPairs | StoreError)[] {
        try {
            return this.journalImmediate(batch, nowMs, recoverAfterSeq)
        } catch (e) {
            this.rows.length = 0
            // rolled back: what memory holds of this commit is not in the journal; the next transaction reads it again
            this.forgetAll(-1, -1)
            this.keysStale = true
            throw e
        }
    }

    /** Inside the commit's transaction: journals the requests. */
    private journal(batch: WriteRequest[], nowMs: number, recoverAfterSeq: number | undefined): (WrittenPairs | StoreError)[] {
        // inside the transaction, so the feeds known to exist are those of the snapshot it writes to
        const first = this.syncJournal(this.othersCommitted())
        if (recoverAfterSeq !== undefined && this.knownCompacted > recoverAfterSeq) return batch.map(() => writeOutcomeUnknown())
        if (this.keysStale) {
            this.knownKeysGeneration = this.stmt.keysGeneration.get()!
            this.keysStale = false
        }
        const keys = this.knownKeysGeneration
        const streams = this.streams
        const rows = this.rows
        let seq = first
        const outcomes = batch.map((w): WrittenPairs | StoreError => {
            // a key revoked (by any connection) before this transaction stores nothing more: checked first,
            // so that a revoked key does not learn whether the feed exists
            if (w.keysGeneration !== undefined && w.keysGeneration !== keys) return keysChanged()
            if (!this.feeds.exists(w.feed)) return new StoreError("no-such-feed", `feed ${w.feed} does not exist`)
            const written: WrittenPairs = []
            let feedSeq = this.journalFeedSeq.get(w.feed) ?? this.storedSeqOf(w.feed)
            for (const i of order(w.points)) {
                const p = w.points[i]
                const key = streamKey(w.feed, p.stream)
                const s = streams.get(key)
                // a point newer than the journal's newest of its datastream is not in the journal
                let stored = s === undefined || p.atMs > s.at ? undefined : s.points.get(p.atMs)
                if (stored === undefined && !this.newerThanStored(key, w.feed, p.stream, p.atMs)) stored = this.stmt.storedValue.get(w.feed, p.stream, p.atMs)
                if (stored === p.value) {
                    // no change [P§9], unless a recovery finds it written by the lost commit it stands for
                    const lost = recoverAfterSeq === undefined ? undefined : this.writtenSince(w.feed, p.stream, p.atMs, recoverAfterSeq, first)
                    if (lost !== undefined) written.push(i, lost)
                    continue
                }
                rows.push(++seq, w.feed, p.stream, p.atMs, p.value, nowMs, ++feedSeq)
                this.noteJournaled(key, s, w.feed, p.stream, p.atMs, p.value, nowMs)
                written.push(i, feedSeq)
            }
            if (written.length) {
                this.touched.set(w.feed, nowMs)
                this.journalFeedSeq.set(w.feed, feedSeq)
            }
            return written
        })
        this.appendRows()
        this.knownSeq = seq
        return outcomes
    }

    /** A feed's newest seq in the tables (feeds.last_seq), for a feed with nothing journaled: from memory, else read. */
    private storedSeqOf(feed: number): number {
        let seq = this.storedFeedSeq.get(feed)
        if (seq === undefined) {
            seq = this.stmt.feedLastSeq.get(feed) ?? 0
            if (this.storedFeedSeq.size >= MAX_KNOWN_FEEDS) this.storedFeedSeq.clear()
            this.storedFeedSeq.set(feed, seq)
        }
        return seq
    }

    /**
     * Inserts `rows` (seven values a row, in seq order) into the journal, emptied after, in at most two
     * statements for up to APPEND_CHUNK_ROWS rows (appendStatementRows): a statement run costs ~10k
     * instructions besides its rows (the bind call, the step's cursors, the reset), which a commit of a few
     * points paid two or three times over in the halving statements before (64, 32, … 1).
     */
    private appendRows(): void {
        const rows = this.rows
        for (let at = 0; at < rows.length; ) {
            const size = appendStatementRows((rows.length - at) / JOURNAL_COLUMNS) * JOURNAL_COLUMNS
            this.appendStmt(size / JOURNAL_COLUMNS).run(at === 0 && size === rows.length ? rows : rows.slice(at, at + size))
            at += size
        }
        rows.length = 0
    }

    /** The journal INSERT of `n` rows. */
    private appendStmt(n: number): Database.Statement<[(number | string)[]]> {
        let stmt = this.appendStmts.get(n)
        if (!stmt) this.appendStmts.set(n, (stmt = this.db.prepare<[(number | string)[]]>(appendSql(n))))
        return stmt
    }

    /**
     * The keys' generation as this connection's latest commit read it (-1 before the first): the writer
     * thread reports it, so the main thread learns of other processes' key changes without a read of its own.
     */
    keysGeneration(): number {
        return this.knownKeysGeneration
    }

    /** The store on this same connection changed keys (its commits do not move this connection's data_version). */
    keysMayHaveChanged(): void {
        this.keysStale = true
    }

    /** data_version moved (FeedPresence.otherWriters): the feeds' memory is forgotten, and the keys' generation is read again. */
    private othersCommitted(): boolean {
        if (!this.feeds.otherWriters()) return false
        this.keysStale = true
        return true
    }

    /** How many points the journal holds (as far as this writer knows). */
    journalRows(): number {
        return this.journalPoints
    }

    /** The seq of the newest journaled point, and the seq up to which the tables hold every point. */
    seqs(): { seq: number; compactedSeq: number } {
        return { seq: this.knownSeq, compactedSeq: this.knownCompacted }
    }

    /**
     * Moves the journal into the tables in one transaction and empties it; false when it was empty. With
     * `stop` (the writer thread, where a write may come meanwhile), in chunks, asking it after each: when it
     * says so, the transaction ends with the journal's oldest rows moved and the rest left for another call
     * (compacted_seq marks how far; replays and reads rely on no more than that).
     *
     * The transaction commits with synchronous=NORMAL, which is safe here, by SQLite's documentation
     * (pragma synchronous, and "WAL mode is always consistent with synchronous=NORMAL"): in WAL mode a
     * NORMAL commit skips only the fsync of the WAL after it; it is still atomic, and what is durable after a
     * power cut is always a prefix of the commits (frames are checksummed in a chain, recovery stops at the
     * first bad one, and the WAL is synced before every checkpoint). So a power cut can lose the compaction
     * only together with everything committed after it, and the next FULL commit's fsync of the WAL makes
     * it durable with its own. Losing it loses nothing: it only moves points already durable in the
     * journal, which is still there then and is moved again at the next open.
     */
    compact(stop?: () => boolean): boolean {
        const now = this.stmt.seqs.get()!
        if (now.seq === now.compacted) {
            // empty (another connection may have emptied it): nothing to remember either
            if (now.seq !== this.knownSeq || now.compacted !== this.knownCompacted) this.forgetAll(now.seq, now.compacted)
            return false
        }
        const relax = this.synchronous > 1
        if (relax) this.stmt.relaxSync.run()
        try {
            const { seq, through } = this.db
                .transaction(() => {
                    const seq = this.syncJournal(this.othersCommitted())
                    const through = stop ? this.moveChunks(this.knownCompacted, seq, stop) : (this.stmt.moveJournal.run(), seq)
                    if (through < seq) {
                        this.finishPart(this.knownCompacted, through)
                        return { seq, through }
                    }
                    for (const s of this.streams.values()) if (this.feeds.exists(s.feed)) this.stmt.upsertStream.run(s)
                    for (const [feed, ms] of this.touched) if (this.feeds.exists(feed)) this.stmt.touchFeed.run(ms, this.journalFeedSeq.get(feed)!, feed)
                    this.stmt.clearJournal.run()
                    this.stmt.setCompacted.run(seq)
                    return { seq, through }
                })
                .immediate()
            if (through < seq) {
                this.knownCompacted = through
                return true
            }
            for (const s of this.streams.values()) this.raiseNewestStored(s)
            this.forgetJournal(seq, seq)
            return true
        } finally {
            if (relax) this.stmt.restoreSync.run()
        }
    }

    /**
     * Inside the compaction's transaction: moves the journal's rows of seqs (from, seq] into `datapoints`,
     * COMPACT_CHUNK_ROWS seqs a statement, until all are moved or `stop()` says so after a chunk. Returns the
     * last seq moved through.
     */
    private moveChunks(from: number, seq: number, stop: () => boolean): number {
        let through = from
        do {
            const to = Math.min(seq, through + COMPACT_CHUNK_ROWS)
            this.stmt.moveChunk.run(through, to)
            through = to
        } while (through < seq && !stop())
        return through
    }

    /**
     * Inside a stopped compaction's transaction: the rows of seqs (from, through] are in `datapoints`; their
     * datastreams and feeds take what the journal's memory holds for them (all of its points: the same
     * fold that the rest of the journal, still laid over them by the reads and moved later, gives again),
     * and they leave the journal, which now starts after `through`. A feed's last_seq is the newest seq
     * moved, not the journal's: a replay's cursor says that every point up to it is in the tables.
     */
    private finishPart(from: number, through: number): void {
        const feeds = new Map<number, number>()
        for (const { feed, stream, top } of this.stmt.streamsIn.all(from, through)) {
            const s = this.streams.get(streamKey(feed, stream))
            if (s && this.feeds.exists(feed)) {
                this.stmt.upsertStream.run(s)
                this.raiseNewestStored(s)
            }
            feeds.set(feed, Math.max(feeds.get(feed) ?? 0, top))
        }
        for (const [feed, top] of feeds) {
            const ms = this.touched.get(feed)
            if (ms !== undefined && this.feeds.exists(feed)) this.stmt.touchFeed.run(ms, top, feed)
        }
        this.stmt.clearThrough.run(through)
        this.stmt.setCompacted.run(through)
    }

    /** A datastream's points are in `datapoints` up to s.at at most: what newestStored knows of it rises to it. */
    private raiseNewestStored(s: StreamChange): void {
        const key = streamKey(s.feed, s.id)
        const newest = this.newestStored.get(key)
        if (newest !== undefined && s.at > newest) this.newestStored.set(key, s.at)
    }

    /** This connection deleted the feed. */
    forgetFeed(id: number): void {
        this.feeds.forget(id)
    }

    /**
     * Inside a transaction: the seq high-water mark, with the memory of the journal made true to the
     * table first if another connection wrote or compacted it since this writer last did.
     * `othersCommitted`: data_version moved (FeedPresence.otherWriters) in this transaction; when it did
     * not, only this connection has written since it last knew the marks, and they are read from memory
     * (one statement less per commit).
     */
    private syncJournal(othersCommitted: boolean): number {
        if (!othersCommitted && this.knownSeq >= 0) return this.knownSeq
        const { seq, compacted } = this.stmt.seqs.get()!
        if (seq !== this.knownSeq || compacted !== this.knownCompacted) {
            this.forgetAll(seq, compacted)
            for (const r of this.stmt.journalRows.iterate()) this.remember(r)
        }
        return seq
    }

    /**
     * The seq a stored point was written with, when it was journaled after `afterSeq` and at or before
     * `throughSeq` (the journal's write order: commit's recoverAfterSeq).
     */
    private writtenSince(feed: number, stream: string, atMs: number, afterSeq: number, throughSeq: number): number | undefined {
        const row = this.stmt.journaled.get(feed, stream, atMs)
        return row !== undefined && row.seq > afterSeq && row.seq <= throughSeq ? row.feed_seq : undefined
    }

    /** Whether no stored point of the datastream is at or after `atMs` (see newestStored). */
    private newerThanStored(key: string, feed: number, stream: string, atMs: number): boolean {
        let newest = this.newestStored.get(key)
        if (newest === undefined) {
            const at = this.stmt.streamAt.get(feed, stream)
            if (at === undefined) return false // no datastream row (its points are being deleted, or are yet to be compacted): look
            newest = at ?? -Infinity // no current value: no points
            if (this.newestStored.size >= MAX_KNOWN_STREAMS) this.newestStored.clear()
            this.newestStored.set(key, newest)
        }
        return atMs > newest
    }

    /** Another connection wrote or compacted, or a commit rolled back: neither the journal's memory nor newestStored nor the feeds' stored seqs hold. */
    private forgetAll(seq: number, compacted: number): void {
        this.newestStored.clear()
        this.journalFeedSeq = new Map()
        this.storedFeedSeq.clear()
        this.forgetJournal(seq, compacted)
    }

    /** The journal is empty (this writer moved it, or another emptied it): what it held of each feed's seq is in feeds.last_seq now. */
    private forgetJournal(seq: number, compacted: number): void {
        for (const [feed, feedSeq] of this.journalFeedSeq) {
            if (this.storedFeedSeq.size >= MAX_KNOWN_FEEDS) this.storedFeedSeq.clear()
            this.storedFeedSeq.set(feed, feedSeq)
        }
        this.journalFeedSeq = new Map()
        this.streams = new Map()
        this.journalPoints = 0
        this.touched = new Map()
        this.knownSeq = seq
        this.knownCompacted = compacted
    }

    /** One journal row into memory, in seq order. */
    private remember(r: JournalRow): void {
        const key = streamKey(r.feed, r.stream)
        this.noteJournaled(key, this.streams.get(key), r.feed, r.stream, r.at, r.value, r.now)
        this.touched.set(r.feed, r.now)
        this.journalFeedSeq.set(r.feed, r.feedSeq)
    }

    /** A journaled point into memory (`s`: its datastream's entry, if it has one yet). */
    private noteJournaled(key: string, s: JournaledStream | undefined, feed: number, stream: string, at: number, value: string, now: number): void {
        const num = numericOf(value)
        if (!s) {
            this.streams.set(key, { feed, id: stream, value, at, min: num, max: num, now, points: new Map([[at, value]]) })
            this.journalPoints++
            return
        }
        const before = s.points.size
        s.points.set(at, value)
        this.journalPoints += s.points.size - before
        foldPoint(s, at, value, num)
    }
}

const ONLY_THE_FIRST: readonly number[] = Object.freeze([0])

/**
 * Indexes of the points in stream then time order, each (stream, at) once: within one request the last
 * of equal (stream, at) wins.
 */
function order(points: PointInput[]): readonly number[] {
    if (points.length === 1) return ONLY_THE_FIRST
    const idx = points.map((_, i) => i)
    idx.sort((a, b) => {
        const p = points[a]
        const q = points[b]
        return p.stream < q.stream ? -1 : p.stream > q.stream ? 1 : p.atMs - q.atMs || a - b
    })
    return idx.filter((i, k) => {
        const next = idx[k + 1]
        return next === undefined || points[next].stream !== points[i].stream || points[next].atMs !== points[i].atMs
    })
}

/** Folds one journaled point into its datastream's change: the newest `at` (the later one of equal `at`s) and the numeric range. */
export function noteStreamChange(streams: Map<string, StreamChange>, r: JournalRow): void {
    const key = streamKey(r.feed, r.stream)
    const num = numericOf(r.value)
    const s = streams.get(key)
    if (!s) streams.set(key, { feed: r.feed, id: r.stream, value: r.value, at: r.at, min: num, max: num, now: r.now })
    else foldPoint(s, r.at, r.value, num)
}

/** One more point of a datastream into its change (`num`: its numeric value, if it has one). */
function foldPoint(s: StreamChange, at: number, value: string, num: number | null): void {
    if (at >= s.at) {
        s.at = at
        s.value = value
    }
    if (num !== null) {
        s.min = s.min === null || num < s.min ? num : s.min
        s.max = s.max === null || num > s.max ? num : s.max
    }
}

export interface GroupCommitHooks {
    /** observes how long each commit took and how many requests it held (metrics) */
    onCommit?: (ms: number, requests: number) => void
    /** a commit failed (disk full, I/O error): for the log; the requests are refused "commit-failed" */
    onError?: (err: unknown) => void
    /**
     * after each commit, before its requests are settled: the keys' generation as it read it
     * (PointWriter.keysGeneration); `keysRefused`: a request of it was refused "keys-changed"
     */
    onKeysGeneration?: (generation: number, keysRefused: boolean) => void
}

/**
 * A request's points as stored: `written` holds its (index into `points`, seq) pairs from `from` on, `count`
 * numbers of them. Built where the commit's answer is read, so that the write's promise resolves with them (no
 * promise step of the store's per acknowledged update).
 */
export function storedPointsOf(points: PointInput[], written: ArrayLike<number>, from: number, count: number): StoredPoint[] {
    const stored: StoredPoint[] = []
    for (let k = from, end = from + count; k < end; k += 2) {
        const p = points[written[k]]
        stored.push({ stream: p.stream, atMs: p.atMs, value: p.value, seq: written[k + 1] })
    }
    return stored
}

/** Whether a refusal among a commit's outcomes is "keys-changed" (GroupCommitHooks.onKeysGeneration). */
export function refusedForKeys(refusals: readonly { failure: StoreError["failure"] }[]): boolean {
    for (const r of refusals) if (r.failure === "keys-changed") return true
    return false
}

interface Pending extends WriteRequest {
    resolve: (stored: StoredPoint[]) => void
    reject: (e: StoreError) => void
}

/**
 * Commits `batch` in one transaction and says what became of each request: its written pairs, or why it
 * was refused (a failed commit refuses all of them). What the grouping on either side of the thread shares.
 */
export function commitBatch(writer: PointWriter, batch: WriteRequest[], nowMs: number, hooks: GroupCommitHooks, recoverAfterSeq?: number): (WrittenPairs | StoreError)[] {
    const started = performance.now()
    try {
        const outcomes = writer.commit(batch, nowMs, recoverAfterSeq)
        hooks.onCommit?.(performance.now() - started, batch.length)
        return outcomes
    } catch (e) {
        hooks.onError?.(e)
        const err = commitFailed()
        return batch.map(() => err)
    }
}

/**
 * Compacts the journal (PointWriter.compact) where nothing waits for it (after a commit, when the writer is
 * idle): a failure is for the log, and the journal stays until the next try (reads that need it try again).
 */
export function compactQuietly(writer: PointWriter, hooks: GroupCommitHooks, stop?: () => boolean): boolean {
    try {
        return writer.compact(stop)
    } catch (e) {
        hooks.onError?.(e)
        return false
    }
}

/** Gathers the writes of one event-loop turn and commits them together. */
export class GroupCommit {
    private pending: Pending[] = []
    private scheduled = false
    private readonly flushSoon = () => this.flush()

    constructor(
        private readonly writer: PointWriter,
        private readonly now: () => number,
        private readonly hooks: GroupCommitHooks,
    ) {}

    /** `keysGeneration`: see WriteRequest. */
    write(feed: number, points: PointInput[], keysGeneration?: number): Promise<StoredPoint[]> {
        return new Promise((resolve, reject) => {
            this.pending.push({ feed, points, keysGeneration, resolve, reject })
            if (!this.scheduled) {
                this.scheduled = true
                setImmediate(this.flushSoon)
            }
        })
    }

    /** Commits every pending write in one transaction, then settles their promises. */
    flush(): void {
        this.scheduled = false
        const batch = this.pending
        this.pending = []
        if (batch.length === 0) return
        const outcomes = commitBatch(this.writer, batch, this.now(), this.hooks)
        this.hooks.onKeysGeneration?.(this.writer.keysGeneration(), refusedForKeys(outcomes.filter((o) => o instanceof StoreError)))
        batch.forEach((w, i) => {
            const o = outcomes[i]
            if (o instanceof StoreError) w.reject(o)
            else w.resolve(storedPointsOf(w.points, o, 0, o.length))
        })
        if (this.writer.journalRows() >= COMPACT_JOURNAL_ROWS) compactQuietly(this.writer, this.hooks)
    }
}
