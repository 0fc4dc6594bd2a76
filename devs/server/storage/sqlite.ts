// The default store: SQLite through better-sqlite3, WAL mode, one file in the data folder.
// Datapoint writes from all connections are gathered and committed in one transaction (group commit,
// point-writer.ts): one fsync for many requests, and each request is acknowledged only after its commit.
// That commit appends to an ingest journal, moved into the tables later in bulk (point-writer.ts); reads
// lay the journal over the tables (journal-reads.ts) or have it moved first (visible() says which).
// The server commits them on a writer thread with its own connection (writer-thread.ts), so a commit's
// fsync does not stall the event loop; reads and the rare other writes stay on this connection (WAL:
// readers never wait for the writer).
import { closeSync, openSync } from "node:fs"
import type Database from "better-sqlite3"
import { openConnection, type Synchronous } from "./connection.ts"
import { compactionFailed, compactQuietly, FeedPresence, GroupCommit, JOURNAL_ROWS_SQL, JOURNAL_SEQS_SQL, PointWriter, type JournalRow, type JournalSeqs } from "./point-writer.ts"
import { journaledStreams, journaledValues, mergeHistory, mergeStreamRow, mergeStreamRows } from "./journal-reads.ts"
import { PRIVATE_FILE_MODE } from "./private-folder.ts"
import { lockDatabaseForServer, type ServerLock } from "./server-lock.ts"
import { WriterThread } from "./writer-thread.ts"
import type { StoreEngine } from "./boundary.ts"
import type {
    DatastreamRecord,
    Deletion,
    DeviceKeyReissue,
    DeviceRecord,
    FeedUpdate,
    FeedDeletion,
    FeedRecord,
    HistoryQuery,
    KeyHashKind,
    KeyRecord,
    NewDeviceClaim,
    PointInput,
    ProductDatastream,
    ProductRecord,
    SeqReplay,
    StoredPoint,
} from "./store.ts"
import { afterChunks, deleteInChunks, keysChanged, StoreError } from "./store.ts"
import { ConfigError } from "../errors.ts"
import type { Permission } from "../auth/grant.ts"
import type { Settles } from "../later.ts"
import { ServerStamps } from "./stamps.ts"
import { deviceOf, feedOf, keyOf, legacyTrimAtSql, productOf, PRUNE_CHUNK_ROWS, raiseTrimSql, STORE_RETRY_MS, streamOf, trimAtSql, type DeviceRow, type FeedRow, type KeyRow, type ProductRow, type StreamRow } from "./rows.ts"

/** Schema migrations; index i brings the database from user_version i to i+1. Never edit a shipped one. */
export const MIGRATIONS: string[] = [
    `CREATE TABLE feeds (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE TABLE datastreams (
        feed INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        current_value TEXT,
        at_ms INTEGER,
        min_value REAL,
        max_value REAL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (feed, id)
    ) WITHOUT ROWID;
    CREATE TABLE datapoints (
        feed INTEGER NOT NULL,
        stream TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        value TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (feed, stream, at_ms)
    ) WITHOUT ROWID;
    CREATE INDEX datapoints_by_feed_at ON datapoints (feed, at_ms);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,
        label TEXT NOT NULL,
        permissions TEXT NOT NULL,
        feeds TEXT,
        master INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        revoked_ms INTEGER
    );`,
    // 2: feed ids are never given out twice [P§10]. A deleted feed's id is retired (an explicit "id" naming
    // it is refused) and new ids come from above every id a feed ever had or a key ever named, so no old
    // key or subscription reaches a new tenant's feed. A store from before cannot know which ids it
    // deleted: the high-water mark starts above its feeds and above every feed its keys name.
    `CREATE TABLE retired_feeds (
        id INTEGER PRIMARY KEY,
        deleted_ms INTEGER NOT NULL
    );
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value
    ) WITHOUT ROWID;
    INSERT INTO settings (name, value) VALUES ('feed_id_high_water', MAX(
        COALESCE((SELECT MAX(id) FROM feeds), 0),
        COALESCE((SELECT MAX(CAST(j.value AS INTEGER)) FROM api_keys, json_each(api_keys.feeds) AS j), 0)
    ));`,
    // 3: signed-out token families [P§7] (DELETE /jwt), kept until the family's end, when its tokens are
    // expired anyway and the row is pruned
    `CREATE TABLE revoked_token_families (
        family TEXT PRIMARY KEY,
        until_ms INTEGER NOT NULL
    ) WITHOUT ROWID;`,
    // 4: how each key's hash was made (auth/keys.ts): keys stored before are "sha256-legacy" (imported or
    // generated, no one can tell) until the server re-hashes them with scrypt; the salt of scrypt hashes
    `ALTER TABLE api_keys ADD COLUMN hash_kind TEXT NOT NULL DEFAULT 'sha256-legacy';
    INSERT INTO settings (name, value) VALUES ('key_hash_salt', randomblob(16));`,
    // 5: fleet provisioning (devs/server/fleet/): products, whose boards claim their own feed and key with a
    // per-board activation code, and the devices that claimed. A product keeps only the public half of its
    // signing key; a device one row per (product, hardware id), pointing at its feed and current key.
    `CREATE TABLE products (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        verify_key BLOB NOT NULL,
        datastreams TEXT NOT NULL,
        allow_list TEXT,
        claim_limit INTEGER,
        created_ms INTEGER NOT NULL,
        revoked_ms INTEGER
    );
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        product TEXT NOT NULL REFERENCES products(id),
        hardware_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        feed INTEGER NOT NULL,
        key_id TEXT NOT NULL,
        firmware TEXT NOT NULL DEFAULT '',
        claimed_ms INTEGER NOT NULL,
        key_used_ms INTEGER,
        last_seen_ms INTEGER,
        rearmed_ms INTEGER,
        revoked_ms INTEGER,
        UNIQUE (product, hardware_id)
    );`,
    // 6: the store's name on a bus (Store.storeId): two stores' processes on one Redis stay apart
    `INSERT INTO settings (name, value) VALUES ('store_id', lower(hex(randomblob(8))));`,
    // 7: the sequence counter of datapoint writes, so that a connection other than the writer's reads it in
    // the same snapshot as the datapoints (replay); and a counter every change of keys or deletion of a
    // feed raises, so that a connection notices those among the writer thread's commits
    `INSERT INTO settings (name, value) VALUES ('seq_high_water', (SELECT COALESCE(MAX(seq), 0) FROM datapoints));
    INSERT INTO settings (name, value) VALUES ('generation', 0);`,
    // 8: the ingest journal (point-writer.ts): an acknowledged write's durable commit appends its points here
    // in seq order (rowid = seq), and a compaction moves them into datapoints, datastreams and feeds later;
    // compacted_seq is the seq up to which it has (the journal is empty when it equals seq_high_water)
    `CREATE TABLE ingest_journal (
        seq INTEGER PRIMARY KEY,
        feed INTEGER NOT NULL,
        stream TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        value TEXT NOT NULL,
        now_ms INTEGER NOT NULL
    );
    INSERT INTO settings (name, value) VALUES ('compacted_seq', (SELECT value FROM settings WHERE name = 'seq_high_water'));`,
    // 9: the seq high-water mark is no longer stored: it is the journal's newest seq, or compacted_seq when
    // the journal is empty (JOURNAL_SEQS_SQL), so that a durable commit writes the journal's leaf alone
    // (the counter's settings page was a second WAL frame in each). Every writer before this kept the
    // counter equal to the journal's newest seq, and to compacted_seq once a compaction emptied it; an empty
    // journal takes the counter into compacted_seq all the same, so no seq is ever given out twice. Without
    // the row, a server from before refuses this database (its version) rather than count from a stale one.
    `UPDATE settings SET value = MAX(value, COALESCE((SELECT value FROM settings WHERE name = 'seq_high_water'), value))
        WHERE name = 'compacted_seq' AND NOT EXISTS (SELECT 1 FROM ingest_journal);
    DELETE FROM settings WHERE name = 'seq_high_water';`,
    // 10: [P§8] a replay by sequence number (`after`): a feed's points in commit order, backfills included
    // (a point whose `at` is older than others'), without reading the whole feed
    `CREATE INDEX datapoints_by_feed_seq ON datapoints (feed, seq);`,
    // 11: [P§8] per datastream, the highest seq the retention deleted, in the transaction that deleted it: a
    // subscribe with `after` below it is told that points after its cursor are gone (retention_gap). A table
    // of its own: nothing else writes it
    `CREATE TABLE retention_trims (
        feed INTEGER NOT NULL,
        stream TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (feed, stream)
    ) WITHOUT ROWID;`,
    // 12: [P§8] the seq a client sees is its feed's own: one counter for the whole store let every tenant
    // count the others' writes (the gaps between its own pushes' seqs, "after":"latest" moving). The journal
    // keeps its seq as the order of writes over every feed (internal: compactions, compacted_seq, the
    // writer thread's recovery) and gives each point its feed's next seq (feed_seq), which `datapoints.seq`
    // and retention_trims hold from now on; feeds.last_seq is a feed's newest seq in the tables (the
    // compaction sets it; a replay's cursor) and never goes down, so no seq is given out twice, whatever is
    // deleted. No seq is renumbered, so every cursor a client holds stays meaningful, and each feed's
    // counter goes on from above every number a client of it can have been given: its points' seqs, and
    // the store-wide cursor a subscribe was acknowledged with (compacted_seq, which counted every feed's
    // writes). Journaled points keep their seq as their feed's (they were pushed with it).
    `ALTER TABLE ingest_journal ADD COLUMN feed_seq INTEGER NOT NULL DEFAULT 0;
    UPDATE ingest_journal SET feed_seq = seq;
    ALTER TABLE feeds ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
    UPDATE feeds SET last_seq = (SELECT value FROM settings WHERE name = 'compacted_seq');`,
    // 13: [P§8] per datastream, also the newest `at` the retention deleted: a subscribe with `since` below it is
    // told that points after it are gone (retention_gap), from what was deleted, not from the configured retention.
    // A trim recorded before holds no `at`: bounded from what is left (rows.ts legacyTrimAtSql)
    `ALTER TABLE retention_trims ADD COLUMN at_ms INTEGER NOT NULL DEFAULT 0;
    UPDATE retention_trims SET at_ms = ${legacyTrimAtSql("retention_trims")};`,
    // 14: [P§8] a datastream's trims go with it, in its deletion's transaction (its feed's too: the cascade): one
    // re-created under its name was told of the old one's deleted points (retention_gap); those of the datastreams
    // deleted before go now. And a trim written without its `at` (a server of schema 12 still running beside a
    // `feedline keys` that upgraded the file: its retention writes the seq alone) is marked unknown (at_ms 0, which
    // a replay bounds: rows.ts trimAtSql): only the writes of this version on say at_written, which the triggers
    // clear after each (an older server's update leaves it clear)
    `DELETE FROM retention_trims WHERE NOT EXISTS (SELECT 1 FROM datastreams s WHERE s.feed = retention_trims.feed AND s.id = retention_trims.stream);
    CREATE TRIGGER datastreams_trims_deleted AFTER DELETE ON datastreams BEGIN
        DELETE FROM retention_trims WHERE feed = OLD.feed AND stream = OLD.id;
    END;
    ALTER TABLE retention_trims ADD COLUMN at_written INTEGER NOT NULL DEFAULT 0;
    CREATE TRIGGER retention_trims_inserted AFTER INSERT ON retention_trims WHEN NEW.at_written BEGIN
        UPDATE retention_trims SET at_written = 0 WHERE feed = NEW.feed AND stream = NEW.stream;
    END;
    CREATE TRIGGER retention_trims_updated AFTER UPDATE ON retention_trims WHEN NEW.at_written OR (NOT OLD.at_written AND NEW.at_ms <> 0) BEGIN
        UPDATE retention_trims SET at_ms = CASE WHEN NEW.at_written THEN NEW.at_ms ELSE 0 END, at_written = 0 WHERE feed = NEW.feed AND stream = NEW.stream;
    END;`,
]

export const SCHEMA_VERSION = MIGRATIONS.length

export interface SqliteStoreOptions {
    /** path of the database file */
    path: string
    /** FULL (default): a commit survives power loss. NORMAL: faster, survives a process crash only. */
    synchronous?: Synchronous
    /** commit datapoint writes on a worker thread with its own connection (the server); else on this one (the CLI, tests) */
    writerThread?: boolean
    /**
     * a server serves from it: take the database's server lock (server-lock.ts) before anything is opened,
     * so a second server is refused before it touches the journal; "in-use" when another server holds it
     */
    serving?: boolean
    now?: () => number
    /** observes how long each commit took (metrics) */
    onCommit?: (ms: number, requests: number) => void
    /** a group commit or a move of the journal failed (disk full, I/O error): for the log; the writes waiting for it get a 503 (a call's own failures: storage/boundary.ts) */
    onError?: (err: unknown) => void
}

/** What the retention deleted from a feed or a datastream (retention_trims); NULLs (a feed's MAX) or no row: nothing */
interface TrimRow {
    seq: number | null
    at_ms: number | null
}

interface PointRow {
    stream: string
    at_ms: number
    value: string
    seq: number
}
/** api_keys as SQLite stores it: the lists as JSON text, the flag as 0 or 1 */
interface SqliteKeyRow extends Omit<KeyRow, "permissions" | "feeds" | "master"> {
    permissions: string
    feeds: string | null
    master: number
}

const sqliteKeyOf = (r: SqliteKeyRow): KeyRecord =>
    keyOf({ ...r, permissions: JSON.parse(r.permissions) as Permission[], feeds: r.feeds === null ? null : (JSON.parse(r.feeds) as number[]), master: r.master === 1 })

/** products as SQLite stores them: the lists as JSON text */
interface SqliteProductRow extends Omit<ProductRow, "datastreams" | "allow_list"> {
    datastreams: string
    allow_list: string | null
}

const sqliteProductOf = (r: SqliteProductRow): ProductRecord =>
    productOf({ ...r, datastreams: JSON.parse(r.datastreams) as ProductDatastream[], allow_list: r.allow_list === null ? null : (JSON.parse(r.allow_list) as string[]) })


/**
 * SQLite's own failures, met in a call on this connection (better-sqlite3's SqliteError: SQLITE_FULL,
 * SQLITE_IOERR_…, SQLITE_READONLY, SQLITE_BUSY, SQLITE_CORRUPT, a trigger someone else added that raised, …):
 * SQLite rolled the transaction back, nothing of it was stored, so the store's "commit-failed" (503
 * E_STORE_FAILED with retry_after_ms). The codes a statement of ours would earn by itself being wrong
 * (SQLITE_ERROR: bad SQL; MISUSE, RANGE, MISMATCH: a bad call or binding) are programming errors: undefined,
 * so they are answered 500 and logged as such, not "send it again" for ever.
 */
export function sqliteFailure(e: unknown): StoreError | undefined {
    const code = (e as { code?: unknown } | undefined)?.code
    if (typeof code !== "string" || !code.startsWith("SQLITE_") || PROGRAMMING_ERRORS.has(code)) return undefined
    return new StoreError("commit-failed", `the server's storage failed (${code}); nothing of this request was done, send it again`, STORE_RETRY_MS, e)
}
const PROGRAMMING_ERRORS = new Set(["SQLITE_ERROR", "SQLITE_MISUSE", "SQLITE_RANGE", "SQLITE_MISMATCH"])

export class SqliteStore implements StoreEngine {
    private readonly db: Database.Database
    private readonly now: () => number
    /**
     * the generation counter (migration 7) as this store last read, wrote or heard it from its writer
     * (which reads it in each commit after another connection committed: WriteRequest.keysGeneration)
     */
    private generation = -1
    /** keysVersion(): moves whenever `generation` does */
    private keysGeneration = 0
    /** data_version was read in this event-loop turn (see noticeOtherWriters) */
    private lookedThisTurn = false
    private readonly endTurn = () => (this.lookedThisTurn = false)
    /** feeds that exist, as far as this connection knows: forgotten when it next looks at other writers after one committed (keysVersion, catchUp) */
    private readonly feeds: FeedPresence
    /** where datapoint writes are committed: the writer thread, or this connection */
    private readonly writer: { thread: WriterThread } | { inline: GroupCommit; points: PointWriter }
    private closed = false
    private readonly stmt: ReturnType<SqliteStore["prepare"]>
    private readonly stamps: ServerStamps
    /** held while a server serves from this database (claim) */
    private serverLock?: ServerLock

    constructor(private readonly opts: SqliteStoreOptions) {
        this.now = opts.now ?? Date.now
        const threaded = opts.writerThread === true && opts.path !== ":memory:" // an in-memory database has one connection
        if (opts.serving) this.takeServerLock()
        // owner-only from the start; SQLite gives the -wal and -shm files the database file's mode
        if (opts.path !== ":memory:") closeSync(openSync(opts.path, "a", PRIVATE_FILE_MODE))
        try {
            this.db = openConnection(opts.path, opts.synchronous)
            this.migrate()
        } catch (e) {
            this.serverLock?.release()
            throw e
        }
        this.stmt = this.prepare()
        this.feeds = new FeedPresence(this.db)
        // [P§9] stamps given before this open (a burst runs them ahead of the clock) are never given again
        this.stamps = new ServerStamps(this.stmt.aheadOfClock.all({ now: this.now() }))
        const hooks = { onCommit: opts.onCommit, onError: opts.onError, onKeysGeneration: (g: number, keysRefused: boolean) => this.writerRead(g, keysRefused) }
        if (threaded) this.writer = { thread: new WriterThread({ path: opts.path, synchronous: opts.synchronous ?? "FULL" }, hooks, this.now, (feed, stream, at) => this.stmt.pointSeq.get({ feed, stream, at }) ?? undefined) }
        else {
            const points = new PointWriter(this.db)
            this.writer = { inline: new GroupCommit(points, this.now, hooks), points }
        }
    }

    private migrate(): void {
        const version = this.db.pragma("user_version", { simple: true }) as number
        if (version > MIGRATIONS.length) {
            throw new ConfigError(`the database ${this.opts.path} has schema version ${version}, newer than this server (${MIGRATIONS.length}); upgrade feedline`)
        }
        for (let v = version; v < MIGRATIONS.length; ++v) {
            this.db.transaction(() => {
                this.db.exec(MIGRATIONS[v])
                this.db.pragma(`user_version = ${v + 1}`)
            })()
        }
    }

    private prepare() {
        const db = this.db
        return {
            feedById: db.prepare<[number], FeedRow>("SELECT * FROM feeds WHERE id = ?"),
            generation: db.prepare<[], number>("SELECT value FROM settings WHERE name = 'generation'").pluck(),
            raiseGeneration: db.prepare<[], number>("UPDATE settings SET value = value + 1 WHERE name = 'generation' RETURNING value").pluck(),
            // [P§8] a replay's cursor: the feed's newest seq in the tables (the compaction's), 0 without
            feedLastSeq: db.prepare<[number], number>("SELECT COALESCE((SELECT last_seq FROM feeds WHERE id = ?), 0)").pluck(),
            // a point's seq in its feed, in the journal (its newest row) or the tables: only for a resend after "commit-unknown"
            pointSeq: db.prepare<[{ feed: number; stream: string; at: number }], number | null>(
                "SELECT coalesce((SELECT feed_seq FROM ingest_journal WHERE feed = @feed AND stream = @stream AND at_ms = @at ORDER BY seq DESC LIMIT 1), (SELECT seq FROM datapoints WHERE feed = @feed AND stream = @stream AND at_ms = @at))",
            ).pluck(),
            journalSeqs: db.prepare<[], JournalSeqs>(JOURNAL_SEQS_SQL),
            // the journal as the reads that lay it over the tables need it (journal-reads.ts): it is small
            // (at most a few thousand rows) and in seq order, so these scan it
            journalHistory: db.prepare<[number, string, number, number], { at_ms: number; value: string }>(
                "SELECT at_ms, value FROM ingest_journal WHERE feed = ? AND stream = ? AND at_ms >= ? AND at_ms <= ? ORDER BY seq",
            ),
            journalFeedRows: db.prepare<[number], JournalRow>(`${JOURNAL_ROWS_SQL} WHERE feed = ? ORDER BY seq`),
            journalStreamRows: db.prepare<[number, string], JournalRow>(`${JOURNAL_ROWS_SQL} WHERE feed = ? AND stream = ? ORDER BY seq`),
            journalFeedTouched: db.prepare<[number], number>("SELECT now_ms FROM ingest_journal WHERE feed = ? ORDER BY seq DESC LIMIT 1").pluck(),
            // each feed's newest `at` ahead of the clock: its datastreams' (their newest point's) and the journal's
            aheadOfClock: db
                .prepare<{ now: number }, [number, number]>(
                    "SELECT feed, MAX(at_ms) FROM (SELECT feed, at_ms FROM datastreams WHERE at_ms > $now UNION ALL SELECT feed, at_ms FROM ingest_journal WHERE at_ms > $now) GROUP BY feed",
                )
                .raw(),
            journalTouched: db.prepare<[], { feed: number; now_ms: number }>(
                "SELECT feed, now_ms FROM ingest_journal WHERE seq IN (SELECT MAX(seq) FROM ingest_journal GROUP BY feed)",
            ),
            allFeeds: db.prepare<[], FeedRow>("SELECT * FROM feeds ORDER BY id"),
            insertFeed: db.prepare("INSERT INTO feeds (id, title, created_ms, updated_ms) VALUES (?, ?, ?, ?)"),
            feedRetired: db.prepare<[number], number>("SELECT 1 FROM retired_feeds WHERE id = ?").pluck(),
            retireFeed: db.prepare("INSERT OR IGNORE INTO retired_feeds (id, deleted_ms) VALUES (?, ?)"),
            feedIdHighWater: db.prepare<[], number>("SELECT value FROM settings WHERE name = 'feed_id_high_water'").pluck(),
            raiseFeedIdHighWater: db.prepare("UPDATE settings SET value = MAX(value, ?) WHERE name = 'feed_id_high_water'"),
            // unrevoked keys scoped to a list of feeds that holds this one
            keysNamingFeed: db.prepare<[number], { id: string; feeds: string }>(
                "SELECT id, feeds FROM api_keys WHERE revoked_ms IS NULL AND feeds IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(api_keys.feeds) WHERE value = ?)",
            ),
            setKeyFeeds: db.prepare("UPDATE api_keys SET feeds = ? WHERE id = ?"),
            renameFeed: db.prepare("UPDATE feeds SET title = ?, updated_ms = ? WHERE id = ?"),
            deleteFeed: db.prepare("DELETE FROM feeds WHERE id = ?"),
            deleteFeedPoints: db.prepare("DELETE FROM datapoints WHERE feed = ?"),
            streams: db.prepare<[number], StreamRow>("SELECT * FROM datastreams WHERE feed = ? ORDER BY id"),
            stream: db.prepare<[number, string], StreamRow>("SELECT * FROM datastreams WHERE feed = ? AND id = ?"),
            createStream: db.prepare("INSERT INTO datastreams (feed, id, created_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
            deleteStream: db.prepare("DELETE FROM datastreams WHERE feed = ? AND id = ?"),
            deleteStreamPoints: db.prepare("DELETE FROM datapoints WHERE feed = ? AND stream = ?"),
            history: db.prepare<[number, string, number, number, number], PointRow>(
                "SELECT at_ms, value FROM datapoints WHERE feed = ? AND stream = ? AND at_ms >= ? AND at_ms <= ? ORDER BY at_ms LIMIT ?",
            ),
            historyNewest: db.prepare<[number, string, number, number, number], PointRow>(
                "SELECT at_ms, value FROM datapoints WHERE feed = ? AND stream = ? AND at_ms >= ? AND at_ms <= ? ORDER BY at_ms DESC LIMIT ?",
            ),
            deleteRangeChunk: db.prepare(
                `DELETE FROM datapoints WHERE (feed, stream, at_ms) IN
                   (SELECT feed, stream, at_ms FROM datapoints WHERE feed = ? AND stream = ? AND at_ms >= ? AND at_ms <= ? LIMIT ${PRUNE_CHUNK_ROWS})`,
            ),
            newestPoint: db.prepare<[number, string], PointRow>(
                "SELECT at_ms, value FROM datapoints WHERE feed = ? AND stream = ? ORDER BY at_ms DESC LIMIT 1",
            ),
            setCurrent: db.prepare("UPDATE datastreams SET current_value = ?, at_ms = ? WHERE feed = ? AND id = ?"),
            replayFeed: db.prepare<[number, number, number, number], PointRow>(
                "SELECT stream, at_ms, value, seq FROM datapoints WHERE feed = ? AND at_ms > ? AND seq <= ? ORDER BY at_ms, stream LIMIT ?",
            ),
            replayStream: db.prepare<[number, string, number, number, number], PointRow>(
                "SELECT stream, at_ms, value, seq FROM datapoints WHERE feed = ? AND stream = ? AND at_ms > ? AND seq <= ? ORDER BY at_ms LIMIT ?",
            ),
            replayFeedAfterSeq: db.prepare<[number, number, number], PointRow>(
                "SELECT stream, at_ms, value, seq FROM datapoints INDEXED BY datapoints_by_feed_seq WHERE feed = ? AND seq > ? ORDER BY seq LIMIT ?",
            ),
            replayStreamAfterSeq: db.prepare<[number, number, string, number], PointRow>(
                "SELECT stream, at_ms, value, seq FROM datapoints INDEXED BY datapoints_by_feed_seq WHERE feed = ? AND seq > ? AND stream = ? ORDER BY seq LIMIT ?",
            ),
            deleteFeedChunk: db.prepare(
                `DELETE FROM datapoints WHERE (feed, stream, at_ms) IN
                   (SELECT feed, stream, at_ms FROM datapoints WHERE feed = ? LIMIT ${PRUNE_CHUNK_ROWS})`,
            ),
            deleteStreamChunk: db.prepare(
                `DELETE FROM datapoints WHERE (feed, stream, at_ms) IN
                   (SELECT feed, stream, at_ms FROM datapoints WHERE feed = ? AND stream = ? LIMIT ${PRUNE_CHUNK_ROWS})`,
            ),
            pruneChunk: db.prepare<[number, number], { stream: string; seq: number; at_ms: number }>(
                `DELETE FROM datapoints WHERE (feed, stream, at_ms) IN
                   (SELECT feed, stream, at_ms FROM datapoints WHERE feed = ? AND at_ms < ? LIMIT ${PRUNE_CHUNK_ROWS})
                 RETURNING stream, seq, at_ms`,
            ),
            raiseTrimmed: db.prepare<[number, string, number, number]>(
                `INSERT INTO retention_trims (feed, stream, seq, at_ms, at_written) VALUES (?, ?, ?, ?, TRUE)
                 ON CONFLICT (feed, stream) DO UPDATE SET ${raiseTrimSql("MAX")}`,
            ),
            feedTrimmed: db.prepare<[number], TrimRow>(`SELECT MAX(seq) AS seq, MAX(${trimAtSql("retention_trims")}) AS at_ms FROM retention_trims WHERE feed = ?`),
            streamTrimmed: db.prepare<[number, string], TrimRow>(`SELECT seq, ${trimAtSql("retention_trims")} AS at_ms FROM retention_trims WHERE feed = ? AND stream = ?`),
            feedIds: db.prepare<[], { id: number }>("SELECT id FROM feeds"),
            keys: db.prepare<[], SqliteKeyRow>("SELECT * FROM api_keys ORDER BY created_ms, id"),
            insertKey: db.prepare(
                "INSERT INTO api_keys (id, hash, hash_kind, label, permissions, feeds, master, created_ms, revoked_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ),
            rehashKey: db.prepare("UPDATE api_keys SET hash = ?, hash_kind = ? WHERE id = ? AND hash = ?"),
            keyHashSalt: db.prepare<[], Buffer>("SELECT value FROM settings WHERE name = 'key_hash_salt'").pluck(),
            storeId: db.prepare<[], string>("SELECT value FROM settings WHERE name = 'store_id'").pluck(),
            revokeKey: db.prepare("UPDATE api_keys SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL"),
            revokeTokenFamily: db.prepare("INSERT INTO revoked_token_families (family, until_ms) VALUES (?, ?) ON CONFLICT DO UPDATE SET until_ms = MAX(until_ms, excluded.until_ms)"),
            pruneTokenFamilies: db.prepare("DELETE FROM revoked_token_families WHERE until_ms <= ?"),
            revokedTokenFamilies: db.prepare<[number], string>("SELECT family FROM revoked_token_families WHERE until_ms > ?").pluck(),
            insertProduct: db.prepare(
                "INSERT INTO products (id, title, verify_key, datastreams, allow_list, claim_limit, created_ms, revoked_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ),
            products: db.prepare<[], SqliteProductRow>("SELECT * FROM products ORDER BY created_ms, id"),
            product: db.prepare<[string], SqliteProductRow>("SELECT * FROM products WHERE id = ?"),
            revokeProduct: db.prepare("UPDATE products SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL"),
            devices: db.prepare<[], DeviceRow>("SELECT * FROM devices ORDER BY claimed_ms, id"),
            productDevices: db.prepare<[string], DeviceRow>("SELECT * FROM devices WHERE product = ? ORDER BY claimed_ms, id"),
            device: db.prepare<[string], DeviceRow>("SELECT * FROM devices WHERE id = ?"),
            deviceByHardware: db.prepare<[string, string], DeviceRow>("SELECT * FROM devices WHERE product = ? AND hardware_id = ?"),
            activeDevices: db.prepare<[string], number>("SELECT COUNT(*) FROM devices WHERE product = ? AND revoked_ms IS NULL").pluck(),
            insertDevice: db.prepare(
                `INSERT INTO devices (id, product, hardware_id, name, feed, key_id, firmware, claimed_ms)
                 VALUES (@id, @product, @hardwareId, '', @feed, @keyId, @firmware, @atMs)`,
            ),
            reissueDevice: db.prepare(
                "UPDATE devices SET key_id = ?, feed = ?, firmware = ?, key_used_ms = NULL, rearmed_ms = NULL, revoked_ms = NULL WHERE id = ?",
            ),
            renameDevice: db.prepare("UPDATE devices SET name = ? WHERE id = ?"),
            rearmDevice: db.prepare("UPDATE devices SET rearmed_ms = ?, revoked_ms = NULL WHERE id = ?"),
            revokeDevice: db.prepare("UPDATE devices SET revoked_ms = ?, rearmed_ms = NULL WHERE id = ? AND revoked_ms IS NULL"),
            deviceKeyUsed: db.prepare("UPDATE devices SET key_used_ms = ? WHERE id = ? AND key_id = ? AND key_used_ms IS NULL"),
            deviceSeen: db.prepare("UPDATE devices SET last_seen_ms = MAX(COALESCE(last_seen_ms, 0), ?) WHERE id = ?"),
        }
    }

    /**
     * Every read must see every acknowledged write, some of which may still be in the ingest journal
     * (point-writer.ts). Two ways, in one snapshot either way:
     * - the reads a dashboard makes all the time (history, current values, feeds' updated_ms) lay the
     *   journal's rows over what the tables answer (journal-reads.ts): the journal is small and they scan
     *   it, and they never wait for the writer;
     * - the rest (replay, deletes, retention, creating datastreams, renaming a feed) have the writer move
     *   the journal into the tables first (this method): one round trip to the thread, which every read
     *   waiting meanwhile shares (WriterThread.compact), and none when the journal is empty. A replay's
     *   high-water mark and seqs, a delete's rows and a created datastream's "was it new" would each need
     *   a merge of their own, and these are rare beside writes. The cost: while writes flow, such a call
     *   waits for the commits queued at the writer and the compaction (a few ms). A delete then sees every
     *   point acknowledged before it; a point journaled meanwhile was written concurrently with it and is
     *   kept, as if written after it.
     */
    private async visible(): Promise<void> {
        if (this.closed) return
        if ("points" in this.writer) {
            try {
                this.writer.points.compact()
            } catch (e) {
                this.opts.onError?.(e)
                throw compactionFailed()
            }
            return
        }
        const { seq, compacted } = this.stmt.journalSeqs.get()!
        if (seq !== compacted) await this.writer.thread.compact()
    }

    async listFeeds(onlyIds?: number[]): Promise<FeedRecord[]> {
        // the journal's newest write to each feed is its updated_ms, as the compaction will set it
        const { feeds, touched } = this.db.transaction(() => ({ feeds: this.stmt.allFeeds.all(), touched: this.stmt.journalTouched.all() }))()
        const lastWrite = new Map(touched.map((t) => [t.feed, t.now_ms]))
        const rows = feeds.map((f) => feedOf({ ...f, updated_ms: lastWrite.get(f.id) ?? f.updated_ms }))
        if (!onlyIds) return rows
        const wanted = new Set(onlyIds)
        return rows.filter((f) => wanted.has(f.id))
    }

    async getFeed(id: number): Promise<FeedRecord | undefined> {
        const { r, lastWrite } = this.db.transaction(() => ({ r: this.stmt.feedById.get(id), lastWrite: this.stmt.journalFeedTouched.get(id) }))()
        return r && feedOf({ ...r, updated_ms: lastWrite ?? r.updated_ms })
    }

    /**
     * From memory where it can: a feed another process deleted may still be "true" here until this
     * connection next looks at other writers (keysVersion, catchUp); a write to it is refused by the
     * writer's own check in its transaction ("no-such-feed"), and the deletion raised the keys' generation.
     */
    feedExists(id: number): boolean {
        return this.feeds.exists(id)
    }

    async createFeed(input: { id?: number; title?: string }): Promise<FeedRecord> {
        const now = this.now()
        const title = input.title ?? ""
        const id = this.db.transaction(() => this.insertFeedRow(input.id, title, now)).immediate()
        return { id, title, createdMs: now, updatedMs: now }
    }

    /** A new feed row, inside a transaction: with the given id, or above every id ever used [P§10]. */
    private insertFeedRow(wanted: number | undefined, title: string, now: number): number {
        if (wanted !== undefined) {
            if (this.stmt.feedById.get(wanted)) throw new StoreError("feed-exists", `feed ${wanted} exists already; leave out "id" to get a new one`)
            if (this.stmt.feedRetired.get(wanted) !== undefined) {
                throw new StoreError(
                    "feed-id-retired",
                    `feed ${wanted} was deleted, and a deleted feed's id is never given out again (keys and subscriptions of the old feed must not reach a new one); leave out "id" to get a new one`,
                )
            }
        }
        const highWater = this.stmt.feedIdHighWater.get()!
        const id = wanted ?? highWater + 1
        if (!Number.isSafeInteger(id)) throw new StoreError("no-feed-ids-left", `no feed ids are left above ${highWater}; give an explicit "id"`)
        this.stmt.insertFeed.run(id, title, now, now)
        this.stmt.raiseFeedIdHighWater.run(id)
        return id
    }

    async updateFeed(id: number, changes: FeedUpdate): Promise<void> {
        await this.visible()
        const now = this.now()
        this.db.transaction(() => {
            if (changes.datastreams?.length) this.insertStreamRows(id, changes.datastreams, now)
            if (changes.title !== undefined) this.stmt.renameFeed.run(changes.title, now, id)
        }).immediate()
    }

    /** New datastreams of an existing feed, inside a transaction: the ids made (those it lacked). */
    private insertStreamRows(feed: number, ids: string[], now: number): string[] {
        if (!this.stmt.feedById.get(feed)) throw new StoreError("no-such-feed", `feed ${feed} does not exist`)
        return ids.filter((id) => this.stmt.createStream.run(feed, id, now).changes > 0)
    }

    /** Runs a chunked delete until it deletes less than a chunk, yielding between chunks (store.ts deleteInChunks: a failure midway is PartlyDeleted). */
    private deleteInChunks(chunk: () => number): Promise<number> {
        return deleteInChunks({
            chunk,
            chunkRows: PRUNE_CHUNK_ROWS,
            closed: () => this.closed,
            failureOf: (e) => this.failureOf(e),
            between: () => new Promise((r) => setImmediate(r)), // let connections be served between chunks
        })
    }

    async deleteFeed(id: number): Promise<FeedDeletion | undefined> {
        await this.visible()
        // the bulk in chunks; the transaction below removes what was written meanwhile
        const chunked = await this.deleteInChunks(() => this.stmt.deleteFeedChunk.run(id).changes)
        this.feeds.forget(id)
        if ("points" in this.writer) this.writer.points.forgetFeed(id)
        const now = this.now()
        const deletion = await afterChunks(chunked, (e) => this.failureOf(e), () => this.db.transaction((): FeedDeletion | undefined => {
            this.stmt.deleteFeedPoints.run(id)
            if (this.stmt.deleteFeed.run(id).changes === 0) return undefined
            this.stmt.retireFeed.run(id, now)
            this.raiseGeneration()
            // keys scoped to this feed lose it: one scoped to it alone is revoked (a key for no feed at all
            // is no key; revoked, it shows as such in `keys list` and the tokens it minted end with it)
            const done: FeedDeletion = { revokedKeys: [], detachedKeys: [] }
            for (const k of this.stmt.keysNamingFeed.all(id)) {
                const rest = (JSON.parse(k.feeds) as number[]).filter((f) => f !== id)
                if (rest.length === 0) {
                    this.stmt.revokeKey.run(now, k.id)
                    done.revokedKeys.push(k.id)
                } else {
                    this.stmt.setKeyFeeds.run(JSON.stringify(rest), k.id)
                    done.detachedKeys.push(k.id)
                }
            }
            return done
        }).immediate())
        if (deletion) this.keysChangedHere()
        return deletion
    }

    async listDatastreams(feed: number): Promise<DatastreamRecord[]> {
        const { rows, journal } = this.db.transaction(() => ({
            rows: this.stmt.streams.all(feed),
            // (a feed deleted with points still journaled: they go nowhere)
            journal: this.stmt.feedById.get(feed) ? this.stmt.journalFeedRows.all(feed) : [],
        }))()
        return mergeStreamRows(rows, journaledStreams(journal)).map(streamOf)
    }

    async getDatastream(feed: number, id: string): Promise<DatastreamRecord | undefined> {
        const { row, journal } = this.db.transaction(() => ({
            row: this.stmt.stream.get(feed, id),
            journal: this.stmt.feedById.get(feed) ? this.stmt.journalStreamRows.all(feed, id) : [],
        }))()
        const r = mergeStreamRow(row, journaledStreams(journal).get(id))
        return r && streamOf(r)
    }

    async createDatastreams(feed: number, ids: string[]): Promise<string[]> {
        await this.visible()
        const now = this.now()
        return this.db.transaction(() => this.insertStreamRows(feed, ids, now)).immediate()
    }

    async deleteDatastream(feed: number, id: string): Promise<Deletion | undefined> {
        await this.visible()
        const chunked = await this.deleteInChunks(() => this.stmt.deleteStreamChunk.run(feed, id).changes)
        const deleted = await afterChunks(chunked, (e) => this.failureOf(e), () => this.db.transaction(() => {
            this.stmt.deleteStreamPoints.run(feed, id)
            return this.stmt.deleteStream.run(feed, id).changes > 0
        }).immediate())
        // one process: its deletions cross to no one, so they carry no transaction id
        return deleted ? {} : undefined
    }

    /**
     * Not async itself: the writer's promise as it is, or with `to` (the hot path) no promise at all: the writer
     * thread's answer tells `to` (an async function's await and its own promise were two more steps, on every
     * acknowledged update). A refusal before the write is queued comes as a rejected promise either way.
     */
    writePoints(feed: number, points: PointInput[], nowMs?: number, keysAsOf?: number): Promise<StoredPoint[]>
    writePoints(feed: number, points: PointInput[], nowMs: number | undefined, keysAsOf: number | undefined, to: Settles<StoredPoint[]>): Promise<StoredPoint[]> | undefined
    writePoints(feed: number, points: PointInput[], nowMs = this.now(), keysAsOf?: number, to?: Settles<StoredPoint[]>): Promise<StoredPoint[]> | undefined {
        if (this.closed) return Promise.reject(new StoreError("closed", "the server is shutting down; write again after reconnecting"))
        // the key check relied on the keys as of `generation`: the writer stores the points only if the
        // counter is still there in its transaction (no read here: the hot path's saving)
        let generation: number | undefined
        if (keysAsOf !== undefined) {
            if (keysAsOf !== this.keysGeneration || this.generation < 0) return Promise.reject(keysChanged())
            generation = this.generation
        }
        try {
            // one process writes this file: its stamps are drawn here, in memory, before the write is queued
            const stamped = this.stamps.stamp(feed, points, nowMs)
            // the writer's outcome as it is: the points as stored, and a "keys-changed" refusal heard by writerRead
            // before it is told (no promise step of the store's per acknowledged update)
            if (!("thread" in this.writer)) return this.writer.inline.write(feed, stamped, generation)
            if (to === undefined) return this.writer.thread.write(feed, stamped, generation)
            this.writer.thread.writeTo(feed, stamped, generation, to)
            return undefined
        } catch (e) {
            return Promise.reject(e)
        }
    }

    async history(feed: number, stream: string, q: HistoryQuery): Promise<{ atMs: number; value: string }[]> {
        const s = this.stmt
        const { rows, journal } = this.db.transaction(() => {
            const rows = q.intervalMs ? this.firstOfIntervals(feed, stream, q) : (q.newest ? s.historyNewest : s.history).all(feed, stream, q.startMs, q.endMs, q.limit)
            return { rows, journal: s.feedById.get(feed) ? s.journalHistory.all(feed, stream, q.startMs, q.endMs) : [] }
        })()
        if (journal.length) return mergeHistory(rows, journaledValues(journal), q)
        if (q.newest) rows.reverse()
        return rows.map((r) => ({ atMs: r.at_ms, value: r.value }))
    }

    /**
     * [P§5] `interval`: the first point of each interval of the range (intervals aligned to the epoch: at_ms /
     * interval), at most `limit` of them, oldest first (newest first with q.newest), found by seeks on the
     * primary key: one per point (two newest first), never a read of the whole range. A GROUP BY read every
     * point of the range, synchronously on the event loop that serves every connection: one tenant's
     * `?start=0&interval=1` over a datastream of 300,000 points held the whole server for ~0.45 s.
     */
    private firstOfIntervals(feed: number, stream: string, q: HistoryQuery): PointRow[] {
        const { history, historyNewest } = this.stmt
        const interval = Math.trunc(q.intervalMs!)
        const out: PointRow[] = []
        if (!q.newest) {
            for (let from = q.startMs; out.length < q.limit && from <= q.endMs; ) {
                const first = history.get(feed, stream, from, q.endMs, 1)
                if (!first) break
                out.push(first)
                from = (Math.trunc(first.at_ms / interval) + 1) * interval
            }
            return out
        }
        for (let to = q.endMs; out.length < q.limit && to >= q.startMs; ) {
            const last = historyNewest.get(feed, stream, q.startMs, to, 1)
            if (!last) break
            const intervalStart = Math.trunc(last.at_ms / interval) * interval
            out.push(history.get(feed, stream, Math.max(intervalStart, q.startMs), to, 1)!)
            to = intervalStart - 1
        }
        return out
    }

    async deletePoints(feed: number, stream: string, startMs: number, endMs: number): Promise<number> {
        await this.visible()
        const n = await this.deleteInChunks(() => this.stmt.deleteRangeChunk.run(feed, stream, startMs, endMs).changes)
        if (this.closed) return n
        // also when nothing went but the current value is in the range: a deletion sent again after one that
        // failed midway (PartlyDeleted) sets the current value that one could not. One transaction: a compaction on
        // the writer's connection between the read and the update could otherwise leave the datastream's at_ms
        // below its newest point (PointWriter relies on it)
        await afterChunks(n, (e) => this.failureOf(e), () =>
            this.db.transaction(() => {
                const currentAt = this.stmt.stream.get(feed, stream)?.at_ms
                if (!n && (currentAt == null || currentAt < startMs || currentAt > endMs)) return
                const newest = this.stmt.newestPoint.get(feed, stream)
                this.stmt.setCurrent.run(newest?.value ?? null, newest?.at_ms ?? null, feed, stream)
            }).immediate(),
        )
        return n
    }

    async replay(feed: number, stream: string | undefined, afterMs: number, limit: number, throughSeq = Number.MAX_SAFE_INTEGER): Promise<SeqReplay> {
        await this.visible()
        // one read transaction: the high-water mark is the feed's in the snapshot the points come from, and
        // it is the compacted one (feeds.last_seq): `datapoints` holds every point of the feed up to it and
        // none after; a point still in the journal (journaled after the compaction visible() asked for) is not
        // in the replay and is sent live (its seq is above the mark: a feed's seqs rise in commit order)
        const { rows, highWaterSeq, trimmed } = this.db.transaction(() => ({
            rows: stream === undefined ? this.stmt.replayFeed.all(feed, afterMs, throughSeq, limit) : this.stmt.replayStream.all(feed, stream, afterMs, throughSeq, limit),
            highWaterSeq: this.stmt.feedLastSeq.get(feed)!,
            trimmed: this.trimmed(feed, stream),
        }))()
        return { points: rows.map((r) => ({ stream: r.stream, atMs: r.at_ms, value: r.value, seq: r.seq })), seen: (c) => c.seq <= highWaterSeq, highSeq: highWaterSeq, ...trimmed }
    }

    /** [P§8] What the retention deleted from the feed (or the stream), inside a replay's read transaction. */
    private trimmed(feed: number, stream: string | undefined): Pick<SeqReplay, "trimmedSeq" | "trimmedAtMs"> {
        const t = stream === undefined ? this.stmt.feedTrimmed.get(feed) : this.stmt.streamTrimmed.get(feed, stream)
        return { trimmedSeq: t?.seq ?? 0, trimmedAtMs: t?.at_ms ?? undefined }
    }

    async replayAfterSeq(feed: number, stream: string | undefined, afterSeq: number | undefined, limit: number): Promise<SeqReplay> {
        await this.visible()
        // as replay(): one snapshot, the feed's compacted high-water mark its cursor (a feed's seqs are the writer's, in commit order)
        const { rows, highWaterSeq, trimmed } = this.db.transaction(() => ({
            rows:
                afterSeq === undefined ? [] : stream === undefined ? this.stmt.replayFeedAfterSeq.all(feed, afterSeq, limit) : this.stmt.replayStreamAfterSeq.all(feed, afterSeq, stream, limit),
            highWaterSeq: this.stmt.feedLastSeq.get(feed)!,
            trimmed: this.trimmed(feed, stream),
        }))()
        return { points: rows.map((r) => ({ stream: r.stream, atMs: r.at_ms, value: r.value, seq: r.seq })), seen: (c) => c.seq <= highWaterSeq, highSeq: highWaterSeq, ...trimmed }
    }

    async prune(beforeMs: number): Promise<number> {
        await this.visible()
        let n = 0
        // each chunk with what it deleted from each datastream (SeqReplay.trimmedSeq, trimmedAtMs), in one transaction
        const chunk = this.db.transaction((feed: number): number => {
            const gone = this.stmt.pruneChunk.all(feed, beforeMs)
            const top = new Map<string, { seq: number; atMs: number }>()
            for (const g of gone) {
                const t = top.get(g.stream)
                top.set(g.stream, { seq: Math.max(t?.seq ?? 0, g.seq), atMs: Math.max(t?.atMs ?? -Infinity, g.at_ms) })
            }
            for (const [stream, t] of top) this.stmt.raiseTrimmed.run(feed, stream, t.seq, t.atMs)
            return gone.length
        })
        for (const { id } of this.stmt.feedIds.all()) n += await this.deleteInChunks(() => chunk.immediate(id))
        return n
    }

    async listKeys(): Promise<KeyRecord[]> {
        return this.stmt.keys.all().map(sqliteKeyOf)
    }

    async insertKey(k: KeyRecord): Promise<void> {
        this.db.transaction(() => this.insertKeyRow(k)).immediate()
        this.keysChangedHere()
    }

    /** A key row, inside a transaction (which tells the other connections that keys changed). */
    private insertKeyRow(k: KeyRecord): void {
        this.raiseGeneration()
        // a new feed's id never lands on one a key was made for (that key would grant it)
        if (k.feeds?.length) this.stmt.raiseFeedIdHighWater.run(Math.max(...k.feeds))
        this.stmt.insertKey.run(
            k.id,
            k.hash,
            k.hashKind,
            k.label,
            JSON.stringify(k.permissions),
            k.feeds ? JSON.stringify(k.feeds) : null,
            k.master ? 1 : 0,
            k.createdMs,
            k.revokedMs ?? null,
        )
    }

    async revokeKey(id: string, atMs: number): Promise<boolean> {
        const changed = this.db
            .transaction(() => {
                this.raiseGeneration()
                return this.stmt.revokeKey.run(atMs, id).changes > 0
            })
            .immediate()
        this.keysChangedHere()
        return changed
    }

    async rehashKeys(changes: { id: string; from: Buffer; to: Buffer }[], kind: KeyHashKind): Promise<number> {
        if (this.closed) return 0
        const n = this.db
            .transaction(() => {
                this.raiseGeneration()
                return changes.reduce((n, c) => n + this.stmt.rehashKey.run(c.to, kind, c.id, c.from).changes, 0)
            })
            .immediate()
        this.keysChangedHere()
        return n
    }

    async keyHashSalt(): Promise<Buffer> {
        return this.stmt.keyHashSalt.get()!
    }

    async storeId(): Promise<string> {
        return this.stmt.storeId.get()!
    }

    async revokeTokenFamily(family: string, untilMs: number): Promise<void> {
        const now = this.now()
        this.db.transaction(() => {
            this.stmt.pruneTokenFamilies.run(now)
            if (untilMs > now) this.stmt.revokeTokenFamily.run(family, untilMs)
            this.raiseGeneration()
        }).immediate()
        this.keysChangedHere()
    }

    async revokedTokenFamilies(): Promise<string[]> {
        return this.stmt.revokedTokenFamilies.all(this.now())
    }

    async pruneRevokedTokenFamilies(): Promise<number> {
        return this.stmt.pruneTokenFamilies.run(this.now()).changes
    }

    // ---- fleet: products and devices ----

    async insertProduct(p: ProductRecord): Promise<void> {
        this.stmt.insertProduct.run(
            p.id,
            p.title,
            p.verifyKey,
            JSON.stringify(p.datastreams),
            p.allowList ? JSON.stringify(p.allowList) : null,
            p.claimLimit ?? null,
            p.createdMs,
            p.revokedMs ?? null,
        )
    }

    async listProducts(): Promise<ProductRecord[]> {
        return this.stmt.products.all().map(sqliteProductOf)
    }

    async getProduct(id: string): Promise<ProductRecord | undefined> {
        const r = this.stmt.product.get(id)
        return r && sqliteProductOf(r)
    }

    async revokeProduct(id: string, atMs: number): Promise<boolean> {
        return this.stmt.revokeProduct.run(atMs, id).changes > 0
    }

    async listDevices(product?: string): Promise<DeviceRecord[]> {
        return (product === undefined ? this.stmt.devices.all() : this.stmt.productDevices.all(product)).map(deviceOf)
    }

    async getDevice(id: string): Promise<DeviceRecord | undefined> {
        const r = this.stmt.device.get(id)
        return r && deviceOf(r)
    }

    async findDevice(product: string, hardwareId: string): Promise<DeviceRecord | undefined> {
        const r = this.stmt.deviceByHardware.get(product, hardwareId)
        return r && deviceOf(r)
    }

    /** The product a claim is for, inside the claim's transaction: it must exist and take claims. */
    private claimableProduct(id: string): SqliteProductRow {
        const p = this.stmt.product.get(id)
        if (!p) throw new StoreError("no-such-product", `there is no product ${id}`)
        if (p.revoked_ms !== null) throw new StoreError("product-revoked", `product ${id} was revoked and takes no new claims; its devices keep working`)
        return p
    }

    /** A new feed for a device with its datastreams, inside a transaction. */
    private deviceFeedRow(title: string, datastreams: string[], now: number): number {
        const feed = this.insertFeedRow(undefined, title, now)
        for (const ds of datastreams) this.stmt.createStream.run(feed, ds, now)
        return feed
    }

    async claimNewDevice(c: NewDeviceClaim): Promise<DeviceRecord> {
        const device = this.db.transaction((): DeviceRecord => {
            const p = this.claimableProduct(c.product)
            if (this.stmt.deviceByHardware.get(c.product, c.hardwareId)) {
                throw new StoreError("device-exists", `hardware id ${c.hardwareId} has claimed from product ${c.product} already`)
            }
            if (p.claim_limit !== null && this.stmt.activeDevices.get(c.product)! >= p.claim_limit) {
                throw new StoreError("claim-limit", `product ${c.product} has its limit of ${p.claim_limit} devices; raise it or revoke one`)
            }
            const feed = this.deviceFeedRow(c.feedTitle, c.datastreams, c.atMs)
            this.insertKeyRow({ ...c.key, feeds: [feed] })
            const d = { id: c.deviceId, product: c.product, hardwareId: c.hardwareId, feed, keyId: c.key.id, firmware: c.firmware, atMs: c.atMs }
            this.stmt.insertDevice.run(d)
            return deviceOf(this.stmt.device.get(c.deviceId)!)
        }).immediate()
        this.keysChangedHere()
        return device
    }

    async reissueDeviceKey(c: DeviceKeyReissue): Promise<DeviceRecord> {
        const device = this.db.transaction((): DeviceRecord => {
            const d = this.stmt.device.get(c.deviceId)
            if (!d) throw new StoreError("no-such-device", `there is no device ${c.deviceId}`)
            if (d.key_id !== c.expectKeyId) throw new StoreError("device-changed", `device ${c.deviceId} was given another key meanwhile; claim again`)
            this.claimableProduct(d.product)
            // a device whose feed was deleted gets a new one: the old id is never given out again [P§10]
            const feed = this.stmt.feedById.get(d.feed) ? d.feed : this.deviceFeedRow(c.feedTitle, c.datastreams, c.atMs)
            this.stmt.revokeKey.run(c.atMs, d.key_id)
            this.insertKeyRow({ ...c.key, feeds: [feed] })
            this.stmt.reissueDevice.run(c.key.id, feed, c.firmware, c.deviceId)
            return deviceOf(this.stmt.device.get(c.deviceId)!)
        }).immediate()
        this.keysChangedHere()
        return device
    }

    async renameDevice(id: string, name: string, atMs: number): Promise<boolean> {
        return this.db.transaction(() => {
            const d = this.stmt.device.get(id)
            if (!d) return false
            this.stmt.renameDevice.run(name, id)
            this.stmt.renameFeed.run(name, atMs, d.feed)
            return true
        }).immediate()
    }

    async rearmDevice(id: string, atMs: number): Promise<boolean> {
        return this.db.transaction(() => {
            const d = this.stmt.device.get(id)
            if (!d) return false
            // a revoked device freed its place under the claim limit; re-armed, it takes one again
            const p = this.stmt.product.get(d.product)!
            if (d.revoked_ms !== null && p.claim_limit !== null && this.stmt.activeDevices.get(d.product)! >= p.claim_limit) {
                throw new StoreError("claim-limit", `product ${d.product} has its limit of ${p.claim_limit} devices; revoke one before re-arming device ${id}`)
            }
            this.stmt.rearmDevice.run(atMs, id)
            return true
        }).immediate()
    }

    async revokeDevice(id: string, atMs: number): Promise<DeviceRecord | undefined> {
        const device = this.db.transaction(() => {
            if (this.stmt.revokeDevice.run(atMs, id).changes === 0) return undefined
            const d = deviceOf(this.stmt.device.get(id)!)
            this.stmt.revokeKey.run(atMs, d.keyId)
            this.raiseGeneration()
            return d
        }).immediate()
        if (device) this.keysChangedHere()
        return device
    }

    async markDeviceKeyUsed(deviceId: string, keyId: string, atMs: number): Promise<void> {
        if (!this.closed) this.stmt.deviceKeyUsed.run(atMs, deviceId, keyId)
    }

    async noteDevicesSeen(seen: { deviceId: string; atMs: number }[]): Promise<void> {
        if (this.closed || seen.length === 0) return
        this.db.transaction(() => seen.forEach((s) => this.stmt.deviceSeen.run(s.atMs, s.deviceId))).immediate()
    }

    keysVersion(): number {
        this.noticeOtherWriters()
        return this.keysGeneration
    }

    keysVersionAsKnown(): number {
        return this.keysGeneration
    }

    /**
     * Another connection (the `feedline keys` CLI in another process) may have changed keys or deleted
     * feeds. Read at most once per event-loop turn (a turn serves many requests; reading data_version per
     * request cost a sixth of the server's CPU), so a change committed there counts from the next turn on.
     * Changes through this store count at once. Datapoint writes do not look (keysVersionAsKnown): every
     * commit of the writer thread moves this connection's data_version, so at a steady rate each request
     * paid two reads on a dropped page cache (~14 µs, docs/performance-history.md, "The main thread at
     * steady rates, beside Aedes"); the writer checks their keys' generation in its transaction instead
     * (WriteRequest.keysGeneration).
     */
    private noticeOtherWriters(): void {
        if (this.lookedThisTurn || this.closed) return
        this.lookedThisTurn = true
        setImmediate(this.endTurn)
        this.lookAtOtherWriters()
    }

    async catchUp(): Promise<void> {
        if (!this.closed) this.lookAtOtherWriters()
    }

    /**
     * data_version says whether any other connection committed (the writer thread's commits count too);
     * then the generation counter says whether keys changed or a feed was deleted.
     */
    private lookAtOtherWriters(): void {
        if (!this.feeds.otherWriters()) return
        const generation = this.stmt.generation.get()!
        if (generation !== this.generation) this.keysMoved(generation)
    }

    /** In a transaction that changes keys or deletes a feed: tells the other connections. */
    private raiseGeneration(): void {
        this.stmt.raiseGeneration.get()
    }

    /**
     * After a committed transaction that raised the generation: what it is now (read after the commit, so
     * a transaction that rolled back leaves nothing wrong in memory; a raise by another process meanwhile
     * is taken too, and the key ring reloads after it either way).
     */
    private keysChangedHere(): void {
        if ("points" in this.writer) this.writer.points.keysMayHaveChanged() // one connection: its data_version does not move
        this.keysMoved(this.stmt.generation.get()!)
    }

    private keysMoved(generation: number): void {
        this.generation = generation
        this.keysGeneration++
    }

    /**
     * The writer read the generation in a commit: a rise is another process's change of keys (or this
     * store's, heard back), which counts from now on without a read of this connection's own.
     */
    private writerRead(generation: number, keysRefused: boolean): void {
        // a rise; or a write refused "keys-changed" while this store's counter differs from the writer's, which is
        // the database's (this store's may even be ahead of it, had a transaction that raised it rolled back):
        // the next check is made against the writer's
        if (generation > this.generation || (keysRefused && generation !== this.generation)) this.keysMoved(generation)
    }

    /**
     * One server serves from a SQLite file, with or without a bus ("shared" is refused like "alone": the
     * journal, the stamps and the feed ids are kept as one process's): "in-use" when another holds it.
     */
    async claim(): Promise<void> {
        this.takeServerLock()
    }

    private takeServerLock(): void {
        if (this.serverLock || this.opts.path === ":memory:") return
        this.serverLock = lockDatabaseForServer(this.opts.path)
    }

    async provisioning<T>(fn: () => Promise<T>): Promise<T> {
        return fn()
    }

    /** What a commit survives, as SQLite reports it for this connection: logged at start, asserted by the tests. */
    durability(): { journalMode: string; synchronous: string } {
        const synchronous = this.db.pragma("synchronous", { simple: true }) as number
        return { journalMode: String(this.db.pragma("journal_mode", { simple: true })), synchronous: ["OFF", "NORMAL", "FULL", "EXTRA"][synchronous] ?? String(synchronous) }
    }

    /** [StoreEngine] sqliteFailure: the boundary (storage/boundary.ts) asks it of whatever a call threw. */
    failureOf(e: unknown): StoreError | undefined {
        return sqliteFailure(e)
    }

    /** Resolves once datapoint writes can be committed without a wait: the writer thread, if any, has started. */
    async ready(): Promise<void> {
        if ("thread" in this.writer) await this.writer.thread.ready()
    }

    /** Commits what is pending, then closes the database. */
    async close(): Promise<void> {
        if (this.closed) return
        this.closed = true
        if ("thread" in this.writer) await this.writer.thread.close()
        else {
            this.writer.inline.flush()
            compactQuietly(this.writer.points, this.opts) // tidy (else the next open moves it)
        }
        this.db.close()
        this.serverLock?.release()
    }
}
