// The store for more than one process: PostgreSQL through node-postgres (`feedline serve --database-url`).
// The same contract as the SQLite store (store.ts; the contract suite runs against both) and the same
// tables, so the two stay parallel: a table added to one is added to the other.
//
// Group commit: writes from all connections are gathered while the previous batch commits and go in
// one transaction, acknowledged after its COMMIT returned (synchronous_commit is PostgreSQL's default,
// on: durable). Several processes commit at once, so what SQLite gets from having one writer is made
// explicit here:
//   - a batch locks the rows of the feeds it writes first (sorted, FOR NO KEY UPDATE): two processes
//     writing one feed commit in turn, writes to different feeds in parallel, and no two batches can
//     deadlock (every other row a batch locks belongs to those feeds);
//   - server stamps [P§9] come from the feed's row (last_stamp_ms), updated under that lock: strictly
//     increasing per feed in commit order over every process, whatever their clocks (stamps.ts says why);
//   - sequence numbers [P§8] are per feed, counted on from the feed's row (last_seq) under that lock: in
//     commit order per feed over every process, and no tenant sees another's writes in them. A replay also
//     records its snapshot, and Replay.seen asks whether a change's transaction is visible in it (a change
//     committed after the replay was read is pushed live, one committed before is not pushed twice);
//   - feed ids come from a high-water mark row, locked while a feed is made: never given out twice.
// Key changes (this process's, another server's, the `feedline keys` CLI's) are announced with NOTIFY
// and heard on a LISTEN connection: keysVersion() moves within milliseconds on every process. Each also
// moves a count of key changes in the database, which a batch of writes whose keys were checked reads in
// its transaction under LOCK_KEYS: a write commits before a revocation or stores nothing, as on SQLite.
import { randomBytes } from "node:crypto"
import pg from "pg"
import type {
    CommitRef,
    DatastreamRecord,
    Deletion,
    DeviceKeyReissue,
    DeviceRecord,
    FeedChanges,
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
import { found, UnknownOutcomes } from "./unknown-outcomes.ts"
import type { StoreEngine } from "./boundary.ts"
import { deviceOf, feedOf, keyOf, legacyTrimAtSql, MAX_KNOWN_FEEDS, numericOf, productOf, PRUNE_CHUNK_ROWS, raiseTrimSql, STORE_RETRY_MS, streamOf, trimAtSql, type DeviceRow, type FeedRow, type KeyRow, type ProductRow, type StreamRow } from "./rows.ts"

/**
 * Schema migrations; index i brings the database from version i to i+1, each in one transaction under a
 * lock (two processes starting at once migrate once). Never edit a shipped one. Migration 1 is the
 * SQLite store's migrations 1-6 in one (no PostgreSQL store existed before), plus what several
 * processes need: the stamps table and the sequence. New tables go into both stores' lists.
 */
export const MIGRATIONS: string[] = [
    `CREATE TABLE feeds (
        id BIGINT PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL
    );
    CREATE TABLE datastreams (
        feed BIGINT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        current_value TEXT,
        at_ms BIGINT,
        min_value DOUBLE PRECISION,
        max_value DOUBLE PRECISION,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (feed, id)
    );
    CREATE TABLE datapoints (
        feed BIGINT NOT NULL,
        stream TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        value TEXT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (feed, stream, at_ms)
    );
    CREATE INDEX datapoints_by_feed_at ON datapoints (feed, at_ms);
    CREATE SEQUENCE datapoint_seq;
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        hash BYTEA NOT NULL UNIQUE,
        hash_kind TEXT NOT NULL,
        label TEXT NOT NULL,
        permissions JSONB NOT NULL,
        feeds JSONB,
        master BOOLEAN NOT NULL,
        created_ms BIGINT NOT NULL,
        revoked_ms BIGINT
    );
    -- feed ids are never given out twice [P§10] (sqlite.ts migration 2 says why)
    CREATE TABLE retired_feeds (
        id BIGINT PRIMARY KEY,
        deleted_ms BIGINT NOT NULL
    );
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        int_value BIGINT,
        bytes_value BYTEA,
        text_value TEXT
    );
    -- the store's name on a bus (Store.storeId)
    INSERT INTO settings (name, text_value) VALUES ('store_id', substr(md5(gen_random_uuid()::text), 1, 16));
    INSERT INTO settings (name, int_value) VALUES ('feed_id_high_water', 0);
    -- the salt of "scrypt" key hashes (auth/key-hash.ts): 32 bytes from two version-4 UUIDs, 244 random bits
    INSERT INTO settings (name, bytes_value) VALUES ('key_hash_salt',
        decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
    CREATE TABLE revoked_token_families (
        family TEXT PRIMARY KEY,
        until_ms BIGINT NOT NULL
    );
    -- the last server stamp per datastream [P§9]: SQLite's are in memory (one process writes it)
    CREATE TABLE stamps (
        feed BIGINT NOT NULL,
        stream TEXT NOT NULL,
        last_ms BIGINT NOT NULL,
        PRIMARY KEY (feed, stream)
    );
    -- reserves counts[i] stamps for (feeds[i], streams[i]), each >= now_ms[i] and above the last one;
    -- returns the last stamp reserved for each. Rows in the order given (callers sort them).
    CREATE FUNCTION reserve_stamps(feeds BIGINT[], streams TEXT[], counts INT[], now_ms BIGINT[]) RETURNS SETOF BIGINT AS $$
    DECLARE
        i INT;
        last BIGINT;
    BEGIN
        FOR i IN 1 .. COALESCE(array_length(feeds, 1), 0) LOOP
            INSERT INTO stamps AS s (feed, stream, last_ms) VALUES (feeds[i], streams[i], now_ms[i] + counts[i] - 1)
            ON CONFLICT (feed, stream) DO UPDATE SET last_ms = GREATEST(s.last_ms + counts[i], now_ms[i] + counts[i] - 1)
            RETURNING s.last_ms INTO last;
            RETURN NEXT last;
        END LOOP;
    END $$ LANGUAGE plpgsql;
    -- fleet provisioning (sqlite.ts migration 5 says what they hold)
    CREATE TABLE products (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        verify_key BYTEA NOT NULL,
        datastreams JSONB NOT NULL,
        allow_list JSONB,
        claim_limit INTEGER,
        created_ms BIGINT NOT NULL,
        revoked_ms BIGINT
    );
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        product TEXT NOT NULL REFERENCES products(id),
        hardware_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        feed BIGINT NOT NULL,
        key_id TEXT NOT NULL,
        firmware TEXT NOT NULL DEFAULT '',
        claimed_ms BIGINT NOT NULL,
        key_used_ms BIGINT,
        last_seen_ms BIGINT,
        rearmed_ms BIGINT,
        revoked_ms BIGINT,
        UNIQUE (product, hardware_id)
    );`,
    // which process committed datapoints last, and in which transaction (Store.lastCommits,
    // bus/unheard-commits.ts). Not in SQLite: one process there, whose changes cross to no one.
    `CREATE TABLE publishers (
        process TEXT PRIMARY KEY,
        last_txn BIGINT NOT NULL,
        seen_ms BIGINT NOT NULL
    );`,
    // server stamps [P§9] per feed, not per datastream (stamps.ts says why): each feed's last stamp in its
    // row, which every batch writing the feed holds locked, so stamps follow commit order over every
    // process whatever their clocks. reserve_stamps keeps its signature and what it returns per entry (the
    // last stamp reserved for it), so a process of the previous version, during an upgrade, stamps per feed
    // too. The stamps table is no longer written.
    `ALTER TABLE feeds ADD COLUMN last_stamp_ms BIGINT;
    UPDATE feeds SET last_stamp_ms = s.last_ms FROM (SELECT feed, max(last_ms) AS last_ms FROM stamps GROUP BY feed) s WHERE feeds.id = s.feed;
    -- reserves counts[i] stamps for (feeds[i], streams[i]); the entries of one feed share a first stamp,
    -- max(the latest now_ms of its entries, the feed's last stamp + 1), and the feed's last stamp moves past
    -- the most any of them reserved. Returns the last stamp reserved for each entry, in the order given.
    CREATE OR REPLACE FUNCTION reserve_stamps(feeds BIGINT[], streams TEXT[], counts INT[], now_ms BIGINT[]) RETURNS SETOF BIGINT AS $$
    DECLARE
        i INT;
        base_ms BIGINT;
        span INT;
        latest BIGINT;
    BEGIN
        FOR i IN 1 .. COALESCE(array_length(feeds, 1), 0) LOOP
            IF i = 1 OR feeds[i] IS DISTINCT FROM feeds[i - 1] THEN
                SELECT max(counts[j]), max(now_ms[j]) INTO span, latest FROM generate_subscripts(feeds, 1) AS j WHERE feeds[j] = feeds[i];
                UPDATE feeds AS f SET last_stamp_ms = GREATEST(f.last_stamp_ms + 1, latest) + span - 1 WHERE f.id = feeds[i]
                RETURNING f.last_stamp_ms - span + 1 INTO base_ms;
            END IF;
            RETURN NEXT base_ms + counts[i] - 1;
        END LOOP;
    END $$ LANGUAGE plpgsql;`,
    // the count of changes to keys, token revocations and feeds deleted (SQLite's 'generation'): a batch of
    // writes whose keys were checked against a count reads it in its transaction (PostgresStore.keysCount)
    `INSERT INTO settings (name, int_value) VALUES ('keys_generation', 0);`,
    // [P§8] a replay by sequence number (`after`): a feed's points in commit order (its seqs are drawn under
    // the feed's row lock), backfills included, without reading the whole feed
    `CREATE INDEX datapoints_by_feed_seq ON datapoints (feed, seq);`,
    // [P§8] each feed's last seq in its row, which every batch writing the feed holds locked: its changes carry
    // the one before them (StoredPoint.prevSeq), so that every process hands a feed's changes on in commit
    // order (hub/commit-order.ts), those written with their own `at` too
    `ALTER TABLE feeds ADD COLUMN last_seq BIGINT;
    UPDATE feeds SET last_seq = d.top FROM (SELECT feed, max(seq) AS top FROM datapoints GROUP BY feed) d WHERE feeds.id = d.feed;`,
    // [P§8] per datastream, the highest seq the retention deleted, in the statement that deleted it: a subscribe
    // with `after` below it is told that points after its cursor are gone (retention_gap). A table of its own,
    // which no batch of writes locks (a prune meeting a batch on a datastream's row could deadlock with it)
    `CREATE TABLE retention_trims (
        feed BIGINT NOT NULL,
        stream TEXT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (feed, stream)
    );`,
    // [P§8] a datastream's deletion takes a seq in its feed's chain (last_seq moves to it) and leaves it here:
    // a process that missed changes of the feed reads them again by seq (Store.changesAfter), and a deletion
    // after the seq it handed on, which no read can bring back, is seen. NULL: none since this version
    `ALTER TABLE feeds ADD COLUMN deleted_seq BIGINT;`,
    // [P§8] the seq a client sees is its feed's own: one sequence for the whole database (datapoint_seq) let
    // every tenant count the others' writes in the gaps between its own pushes' seqs. A batch now numbers a
    // feed's points on from its row's last_seq, which it holds locked (applyBatch), so a feed's seqs still
    // follow its commits over every process. Nothing is renumbered, so every cursor a client holds stays
    // meaningful, and every feed counts on from the sequence's last value: above every seq a client of it
    // can have been given (its points', its deletions', a deleted tail's, and those of points deleted before
    // last_seq was kept), as SQLite's migration 12 does. The sequence goes: a process of an earlier version
    // still running would draw numbers from it below a feed's last_seq; its writes now fail instead (stop
    // them before upgrading: docs/OPERATIONS.md).
    `UPDATE feeds SET last_seq = (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM datapoint_seq);
    DROP SEQUENCE datapoint_seq;`,
    // [P§8] which datastream a deletion's seq deleted: a process that missed it pushes it in a catch-up (what a live
    // subscriber got) instead of telling the feed's subscribers to resubscribe. Each name's newest deletion, and the
    // one before it (earlier_seq): two after the seq a process handed on cannot both be told apart. deleted_seq stays
    // (processes of the version before read it); a deletion that moves it without a row here (made by one of them,
    // or before this migration) leaves its seq in unnamed_deleted_seq (the trigger), which a catch-up cannot get past
    `CREATE TABLE datastream_deletions (
        feed BIGINT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        stream TEXT NOT NULL,
        seq BIGINT NOT NULL,
        earlier_seq BIGINT,
        PRIMARY KEY (feed, stream)
    );
    ALTER TABLE feeds ADD COLUMN unnamed_deleted_seq BIGINT;
    UPDATE feeds SET unnamed_deleted_seq = deleted_seq WHERE deleted_seq IS NOT NULL;
    CREATE FUNCTION feedline_unnamed_deletion() RETURNS trigger AS $$
    BEGIN
        IF NEW.deleted_seq IS DISTINCT FROM OLD.deleted_seq
           AND NOT EXISTS (SELECT 1 FROM datastream_deletions WHERE feed = NEW.id AND seq = NEW.deleted_seq) THEN
            NEW.unnamed_deleted_seq := NEW.deleted_seq;
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER feeds_unnamed_deletion BEFORE UPDATE OF deleted_seq ON feeds FOR EACH ROW EXECUTE FUNCTION feedline_unnamed_deletion();`,
    // [P§8] per datastream, also the newest `at` the retention deleted: a subscribe with `since` below it is told
    // that points after it are gone (retention_gap), from what was deleted, not from the configured retention. A
    // trim recorded before holds no `at`: bounded from what is left (rows.ts legacyTrimAtSql), as SQLite's 13 (schema 11)
    `ALTER TABLE retention_trims ADD COLUMN at_ms BIGINT NOT NULL DEFAULT 0;
    UPDATE retention_trims SET at_ms = ${legacyTrimAtSql("retention_trims")};`,
    // [P§8] a datastream's trims go with it, in its deletion's transaction, whichever version deletes it (its feed's
    // too: the cascade): one re-created under its name was told of the old one's deleted points (retention_gap);
    // those of the datastreams deleted before go now. And a trim written without its `at` (a process of schema 10
    // still running in a rolling upgrade: its retention inserts the seq alone, at_ms taking the default, and raises
    // the seq alone, at_ms left below what it deleted) is marked unknown (at_ms 0, which a replay bounds: rows.ts
    // trimAtSql): only the writes of this version on say at_written, which the trigger clears in each row it writes
    `DELETE FROM retention_trims t WHERE NOT EXISTS (SELECT 1 FROM datastreams s WHERE s.feed = t.feed AND s.id = t.stream);
    CREATE FUNCTION feedline_datastream_trims_deleted() RETURNS trigger AS $$
    BEGIN
        DELETE FROM retention_trims WHERE feed = OLD.feed AND stream = OLD.id;
        RETURN NULL;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER datastreams_trims_deleted AFTER DELETE ON datastreams FOR EACH ROW EXECUTE FUNCTION feedline_datastream_trims_deleted();
    ALTER TABLE retention_trims ADD COLUMN at_written BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE FUNCTION feedline_trim_at_written() RETURNS trigger AS $$
    BEGIN
        IF NOT NEW.at_written THEN
            NEW.at_ms := 0;
        END IF;
        NEW.at_written := FALSE;
        RETURN NEW;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER retention_trims_at_written BEFORE INSERT OR UPDATE ON retention_trims FOR EACH ROW EXECUTE FUNCTION feedline_trim_at_written();`,
]

export const SCHEMA_VERSION = MIGRATIONS.length

/**
 * Replay.seen of a read of one feed: a change with its transaction id, by the read's snapshot; one without
 * (read back from the store by a catch-up, hub/catch-up.ts, or published by an older version) by its seq: a
 * feed's seqs are drawn under its row lock, so every one up to the read's highest was committed before it.
 */
function seenIn(visible: (txn: number) => boolean, highSeq: number): (ch: CommitRef) => boolean {
    return (ch) => (ch.txn !== undefined ? visible(ch.txn) : ch.seq <= highSeq)
}

/** A row of a replay's one statement: a point, or (snapshot set) the head replayHeadSql reads. */
interface ReplayRow {
    stream: string | null
    at_ms: number | null
    value: string | null
    seq: number | null
    trimmed_seq: number | null
    trimmed_at_ms: number | null
    snapshot: string | null
}

/**
 * [P§8] The head row of a replay, in the statement (the snapshot) its points are read in: the feed's cursor, what the
 * retention deleted from the datastreams `trims` selects (the feed's or one stream's: their newest seq and `at`), and
 * the snapshot (Replay.seen). $1 is the feed. Its points follow, UNION ALL, with NULL for the last three columns.
 */
const replayHeadSql = (trims: string): string =>
    `SELECT NULL::text AS stream, NULL::bigint AS at_ms, NULL::text AS value, (SELECT last_seq FROM feeds WHERE id = $1) AS seq,
            t.seq AS trimmed_seq, t.at_ms AS trimmed_at_ms, pg_current_snapshot()::text AS snapshot
       FROM (SELECT max(seq) AS seq, max(${trimAtSql("retention_trims")}) AS at_ms FROM retention_trims WHERE ${trims}) t`

/** What a replay's head row (replayHeadSql) says. */
function replayHeadOf(rows: ReplayRow[]): Omit<SeqReplay, "points"> {
    const head = rows.find((r) => r.snapshot !== null)!
    const highSeq = head.seq ?? 0
    return { seen: seenIn(snapshotOf(head.snapshot!), highSeq), highSeq, trimmedSeq: head.trimmed_seq ?? 0, trimmedAtMs: head.trimmed_at_ms ?? undefined }
}

/** NOTIFY channel: keys or token revocations changed, or a feed was deleted (keysVersion, feedExists' memory). */
const KEYS_CHANNEL = "feedline_keys"
/** pg_advisory_lock keys (one 64-bit namespace per database): "feedline" in ASCII, then a purpose. */
const LOCK_MIGRATE = 0x666565646c696e01n
const LOCK_PROVISION = 0x666565646c696e02n
const LOCK_SERVERS = 0x666565646c696e03n
/**
 * Held shared by a batch of writes whose keys were checked (from before it reads the count of key changes
 * until it commits), and exclusively by a change of keys from its count's update until it commits: a write
 * commits before a revocation, or sees it and stores nothing (writePoints' keysAsOf).
 */
const LOCK_KEYS = 0x666565646c696e04n

/**
 * Connections per process: reads run in parallel on them while one batch of writes commits on another.
 * PostgreSQL's default allows 100 connections: 8 each leaves room for a dozen processes and the CLI.
 */
const POOL_CONNECTIONS = 8
/** A batch that failed on a deadlock or a serialization conflict is tried this many times in all before its writes are refused. */
const COMMIT_ATTEMPTS = 3
/**
 * A write is answered within this long of reaching the store, whatever PostgreSQL does: its batch (and
 * the batches before it) tried, tried again after a lost connection, its COMMIT's outcome asked for. A
 * stalled database gets each write a 503 E_STORE_FAILED within it, not one bound per batch queued ahead.
 */
const WRITE_TIMEOUT_MS = 10_000
/**
 * A batch whose connection was lost before it committed (pg_terminate_backend, a restart, a failover) is
 * tried again on a new connection after this pause, doubled each time up to RETRY_PAUSE_MAX_MS, until
 * its bound: a restarting PostgreSQL refuses connections for a moment.
 */
const RETRY_PAUSE_FIRST_MS = 50
const RETRY_PAUSE_MAX_MS = 1000
/**
 * A write refused "commit-unknown" (its COMMIT's outcome not learnt within the write's bound) has its transaction asked
 * about this often afterwards, for this long: once PostgreSQL says it committed, its points are pushed (Store.onLateCommits),
 * on every process, also when the client never resends or resends to another process (which does not remember them).
 */
const UNKNOWN_SETTLE_EVERY_MS = 1000
const UNKNOWN_SETTLE_FOR_MS = 10 * 60_000
/** Such transactions asked about at most (one refusal per COMMIT in flight when the database went away: few); past it, the oldest is given up (a resend to this process still finds its points). */
const MAX_UNSETTLED_COMMITS = 1000
/** The LISTEN connection, when lost, is made again after this long (and keysVersion moves: a change may have been missed). */
const LISTEN_RECONNECT_MS = 1000
/**
 * A query without an answer for this long is given up and its connection dropped: a database that stalls
 * (SIGSTOP, a network partition, a black hole) gets requests a 503 E_STORE_FAILED within it, never a wait
 * without end. Far above what any statement feedline runs takes (chunked deletes, one replay page).
 */
const QUERY_TIMEOUT_MS = 10_000
/** Opening a connection (TCP, startup, authentication) may take this long; a process starting against a stalled database fails saying so. */
const CONNECT_TIMEOUT_MS = 5000
/**
 * A transaction of a process that lost its connection holds its feeds' row locks until PostgreSQL
 * notices; PostgreSQL ends it after this long idle, so the other processes' writes to those feeds wait
 * at most this (then go on). A live transaction is never idle that long: its queries follow each other.
 */
const IDLE_IN_TRANSACTION_MS = 15_000
/** The LISTEN connection is asked for a round trip this often: one that broke without a sound (a partition) is noticed and made again. */
const LISTEN_CHECK_MS = 5000
/** A publisher's row (Store.lastCommits) is dropped this long after its last commit: its process is long gone. */
const PUBLISHER_ROW_KEPT_MS = 24 * 3600_000
/** Waiting for another process's migration or provisioning step (it may make a development CA): longer than a query. */
const LOCK_WAIT_MS = 120_000
export interface PostgresTimeouts {
    queryMs: number
    connectMs: number
    listenCheckMs: number
    writeMs: number
}
const TIMEOUTS: PostgresTimeouts = { queryMs: QUERY_TIMEOUT_MS, connectMs: CONNECT_TIMEOUT_MS, listenCheckMs: LISTEN_CHECK_MS, writeMs: WRITE_TIMEOUT_MS }

/** Every connection's settings: bounded waits, TCP keep-alive for links that die silently. */
function connectionSettings(t: PostgresTimeouts) {
    return { connectionTimeoutMillis: t.connectMs, query_timeout: t.queryMs, idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS, keepAlive: true }
}

/** bigint columns (int8, OID 20) as numbers: ids, ms and sequence numbers stay far below 2^53 */
const INT8_OID = 20
const TYPES = {
    getTypeParser: ((oid: number, format?: string) => (oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as any))) as typeof pg.types.getTypeParser,
}

export interface PostgresStoreOptions {
    /** postgres://user:password@host:port/database */
    url: string
    now?: () => number
    onCommit?: (ms: number, requests: number) => void
    onError?: (err: unknown) => void
    /** the LISTEN connection was lost or made again (for the log) */
    onNotice?: (message: string, err?: unknown) => void
    /** connections per process (default POOL_CONNECTIONS) */
    poolSize?: number
    /** tests: shorter bounds than TIMEOUTS's */
    timeouts?: Partial<PostgresTimeouts>
}

interface PendingWrite {
    feed: number
    points: PointInput[]
    nowMs: number
    /** performance.now() by which it is answered (WRITE_TIMEOUT_MS) */
    deadline: number
    /** writePoints' keysAsOf: checked again before the write is tried again */
    keysAsOf?: number
    /** the database's count of key changes as of keysAsOf (PostgresStore.keysCount): the batch's transaction checks it */
    keysCount?: number
    resolve: (points: StoredPoint[]) => void
    reject: (e: Error) => void
}

/** A PostgreSQL snapshot (pg_current_snapshot()::text, "xmin:xmax:xip,…"): which transactions it sees as committed. */
export function snapshotOf(text: string): (txn: number) => boolean {
    const [xminText, xmaxText, xipText] = text.split(":")
    const xmin = Number(xminText)
    const xmax = Number(xmaxText)
    const inProgress = new Set(xipText ? xipText.split(",").map(Number) : [])
    // a committed transaction is visible unless it started after the snapshot or was running then
    return (txn) => txn < xmin || (txn < xmax && !inProgress.has(txn))
}

/** SQLSTATEs after which the same transaction may simply be tried again. */
const RETRYABLE = new Set(["40001", "40P01"])

/**
 * The database could not be reached, went away or did not answer in time (as opposed to refusing a
 * statement): a connection error (ECONNREFUSED, …), SQLSTATE class 08 (connection exception), 57P01-03
 * (shut down, crashed, starting up), 53 (out of connections or memory), 25P03 (idle in a transaction too
 * long), or node-postgres's own words for a lost or timed-out connection.
 */
export function lostDatabase(e: unknown): boolean {
    const code = (e as { code?: unknown } | undefined)?.code
    if (typeof code === "string" && (/^(08|57P0|53)/.test(code) || code === "25P03" || /^E[A-Z]+$/.test(code))) return true
    return e instanceof Error && /Connection terminated|Query read timeout|timeout expired|Client has encountered a connection error|not queryable/i.test(e.message)
}

/** No answer by a deadline: an error lostDatabase() counts as a lost database. */
function noAnswerInTime(): Error {
    return Object.assign(new Error("no answer in time"), { code: "ETIMEDOUT" })
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)))

/** What a request is told when the database is out of reach; `commitUnknown`: it went away while confirming a commit. */
function unavailable(e: unknown, commitUnknown = false): StoreError {
    const why = `the database did not answer (${(e as Error).message})`
    return new StoreError(
        commitUnknown ? "commit-unknown" : "unavailable",
        commitUnknown
            ? `${why} while confirming this write: it may or may not have been stored; send it again (a datapoint with the same "at" is stored once)`
            : `${why}; nothing was written, try again`,
        STORE_RETRY_MS,
        e,
    )
}

/**
 * SQLSTATEs of the database failing to do what it was asked, not of the statement being wrong: class 58
 * (system error: 58030 io_error), XX (internal: data or index corrupted), 25006 (read-only transaction: a
 * standby after a failover), 55P03 (lock not available), 57014 (canceled: a statement timeout), 40001 and
 * 40P01 (serialization failure, deadlock, once their retries ran out). (Class 53, insufficient resources,
 * 53100 disk full among them, is a lost database: lostDatabase.)
 */
const STORAGE_SQLSTATE = /^(58|XX|25006$|55P03$|57014$|40001$|40P01$)/

/**
 * PostgreSQL's own failures, met in a call (storage/boundary.ts asks): a lost database is "unavailable",
 * a failure to do what it was asked (STORAGE_SQLSTATE) "commit-failed", both 503 E_STORE_FAILED with
 * retry_after_ms; anything else (a bad statement, a bug) is none: undefined.
 */
export function postgresFailure(e: unknown): StoreError | undefined {
    if (lostDatabase(e)) return unavailable(e)
    const code = e instanceof pg.DatabaseError ? e.code : undefined
    if (code === undefined || !STORAGE_SQLSTATE.test(code)) return undefined
    return new StoreError("commit-failed", `the database failed to do it (SQLSTATE ${code}); nothing of this request was done, send it again`, STORE_RETRY_MS, e)
}

/**
 * The database refused a statement for the data in it (SQLSTATE class 22 data exception, 23 integrity
 * constraint violation, 54 program limit exceeded: too large for it): the request's fault, not the
 * server's, and sending it again fails the same way. Any one write can make its batch's transaction fail
 * so, so flush finds which (commitBatch, isolate).
 */
function refusedValue(e: unknown): e is pg.DatabaseError {
    return e instanceof pg.DatabaseError && /^(2[23]|54)/.test(e.code ?? "")
}

/**
 * How many of a failed batch's parts may fail while isolate looks for the write at fault: one write's fault
 * fails one part per halving (log2 n of them); a failure that is every part's (a broken database) would
 * otherwise try each write alone.
 */
function isolationBudget(writes: number): number {
    return 2 * Math.ceil(Math.log2(Math.max(2, writes)))
}

/** What a write whose data the database refused is told (422 E_BAD_VALUE): the SQLSTATE, not the database's words. */
function valueRefused(e: pg.DatabaseError): StoreError {
    return new StoreError("value-refused", `the database refused this write's data (SQLSTATE ${e.code}); nothing of it was stored, and sending it again will not help`, undefined, e)
}

/** A point in a batch, with the request it came from. */
interface BatchPoint {
    request: number
    feed: number
    stream: string
    atMs: number
    value: string
}

/** What one attempt at a batch did: each write's points (or refusal), and its transaction's id (none when it found no feed). */
interface AppliedBatch {
    outcomes: (StoredPoint[] | StoreError)[]
    txn?: string
    /** the count of key changes the transaction read, when one of its writes had its keys checked */
    keysCount?: number
}

const identity = (feed: number, stream: string, atMs: number) => `${feed}\u0000${stream}\u0000${atMs}`

/**
 * Records that process `$process` committed transaction `$txn` at `$ms` (Store.recordCommitsAs), inside that
 * transaction; the arguments are the statement's parameter numbers. One process's recorded commits run one
 * at a time (PostgresStore.betweenBatches), so its last one is its newest.
 */
function recordPublisherSql(process: string, txn: string, ms: string): string {
    return `INSERT INTO publishers (process, last_txn, seen_ms) VALUES (${process}, ${txn}::bigint, ${ms})
            ON CONFLICT (process) DO UPDATE SET last_txn = excluded.last_txn, seen_ms = excluded.seen_ms`
}

/**
 * [P§5] `interval`: the first point of each interval of the range (aligned to the epoch: at_ms / interval), at
 * most `limit` of them, found by seeks on the primary key, one per point (newest first: two), never a read of
 * the whole range ($1 feed, $2 stream, $3 start, $4 end, $5 interval, $6 limit). A DISTINCT ON grouped every
 * point of the range: one tenant's `?start=0&interval=1` over a long history cost the database all processes
 * share a scan of all of it.
 */
const FIRSTS_OF_INTERVALS = `
    WITH RECURSIVE firsts(at_ms, value, n) AS (
        (SELECT at_ms, value, 1 FROM datapoints WHERE feed = $1 AND stream = $2 AND at_ms >= $3 AND at_ms <= $4 ORDER BY at_ms LIMIT 1)
        UNION ALL
        SELECT next.at_ms, next.value, f.n + 1 FROM firsts f, LATERAL (
            SELECT at_ms, value FROM datapoints
            WHERE feed = $1 AND stream = $2 AND at_ms >= (f.at_ms / $5::bigint + 1) * $5::bigint AND at_ms <= $4 ORDER BY at_ms LIMIT 1
        ) next WHERE f.n < $6
    )
    SELECT at_ms, value FROM firsts ORDER BY at_ms`
/** …newest first: the interval of the last point at or before a cursor, then that interval's first point. */
const FIRSTS_OF_INTERVALS_NEWEST = `
    WITH RECURSIVE buckets(bucket, n) AS (
        (SELECT at_ms / $5::bigint, 1 FROM datapoints WHERE feed = $1 AND stream = $2 AND at_ms >= $3 AND at_ms <= $4 ORDER BY at_ms DESC LIMIT 1)
        UNION ALL
        SELECT prev.at_ms / $5::bigint, b.n + 1 FROM buckets b, LATERAL (
            SELECT at_ms FROM datapoints
            WHERE feed = $1 AND stream = $2 AND at_ms >= $3 AND at_ms < b.bucket * $5::bigint ORDER BY at_ms DESC LIMIT 1
        ) prev WHERE b.n < $6
    )
    SELECT first.at_ms, first.value FROM buckets b, LATERAL (
        SELECT at_ms, value FROM datapoints
        WHERE feed = $1 AND stream = $2 AND at_ms >= GREATEST(b.bucket * $5::bigint, $3) AND at_ms <= $4 ORDER BY at_ms LIMIT 1
    ) first ORDER BY first.at_ms DESC`

export class PostgresStore implements StoreEngine {
    private readonly pool: pg.Pool
    private readonly now: () => number
    private pending: PendingWrite[] = []
    /** the points of writes refused "commit-unknown", for their resends (unknown-outcomes.ts) */
    private readonly unknownOutcomes = new UnknownOutcomes()
    /** those writes by transaction, asked about until PostgreSQL knows its outcome (settleUnknown) */
    private readonly unsettled = new Map<string, { writes: { feed: number; points: StoredPoint[]; stamped: StoredPoint[] }[]; untilMs: number }>()
    private settleTimer?: NodeJS.Timeout
    /** Store.onLateCommits */
    private lateCommits?: (feed: number, points: StoredPoint[]) => void
    /** the batch (or deletion, betweenBatches) committing now: one at a time */
    private committing?: Promise<void>
    /** deletions waiting for the turn (betweenBatches), each started by the commit before it as it ends */
    private readonly turnsWaiting: (() => void)[] = []
    private flushScheduled = false
    private closed = false
    private keysGeneration = 0
    /**
     * The database's count of key changes (settings 'keys_generation', moved by every change of keys, token
     * revocation and feed deletion, announced with it) as this process knew it when keysGeneration last
     * moved: a write checked against keysGeneration stores nothing if the count moved by its commit.
     */
    private keysCount?: number
    /** feeds known to exist; forgotten when any process deletes a feed (NOTIFY) */
    private readonly knownFeeds = new Set<number>()
    private listener?: pg.Client
    private listenTimer?: NodeJS.Timeout
    private listenCheck?: NodeJS.Timeout
    private checkingListener = false
    private claimed?: "alone" | "shared"
    /** Store.recordCommitsAs */
    private publisher?: string
    /** this store's name in its NOTIFY payloads: its own announcements were counted when it committed them */
    private readonly instance = randomBytes(8).toString("hex")

    private readonly timeouts: PostgresTimeouts

    private constructor(private readonly opts: PostgresStoreOptions) {
        this.now = opts.now ?? Date.now
        this.timeouts = { ...TIMEOUTS, ...opts.timeouts }
        this.pool = new pg.Pool({ connectionString: opts.url, max: opts.poolSize ?? POOL_CONNECTIONS, types: TYPES, ...connectionSettings(this.timeouts) })
        // an idle connection that breaks (the server restarted) is dropped by the pool; without a listener it would crash the process
        this.pool.on("error", (err) => opts.onNotice?.("a PostgreSQL connection was lost; the pool opens another", err))
    }

    /** Connects, migrates (one process at a time) and starts listening for key changes. */
    static async open(opts: PostgresStoreOptions): Promise<PostgresStore> {
        const store = new PostgresStore(opts)
        try {
            await store.migrate()
            await store.query("DELETE FROM publishers WHERE seen_ms < $1", [store.now() - PUBLISHER_ROW_KEPT_MS])
            await store.listen()
        } catch (e) {
            await store.pool.end().catch(() => {})
            // the cause (connect ECONNREFUSED …, no answer in time): the caller says where it tried
            if (!(e instanceof StoreError && e.cause instanceof Error)) throw e
            throw /timeout/i.test(e.cause.message) ? new Error(`no answer in time (${e.cause.message})`) : e.cause
        }
        return store
    }

    private async migrate(): Promise<void> {
        await this.transaction(async (c) => {
            await c.query({ text: "SELECT pg_advisory_xact_lock($1)", values: [LOCK_MIGRATE], query_timeout: LOCK_WAIT_MS } as pg.QueryConfig)
            await c.query("CREATE TABLE IF NOT EXISTS feedline_schema (version INT NOT NULL)")
            const row = (await c.query<{ version: number }>("SELECT version FROM feedline_schema")).rows[0]
            if (!row) await c.query("INSERT INTO feedline_schema (version) VALUES (0)")
            const version = row?.version ?? 0
            if (version > MIGRATIONS.length) {
                throw new Error(`the database has feedline schema version ${version}, newer than this server (${MIGRATIONS.length}); upgrade feedline`)
            }
            for (let v = version; v < MIGRATIONS.length; ++v) await c.query(MIGRATIONS[v])
            if (version < MIGRATIONS.length) await c.query("UPDATE feedline_schema SET version = $1", [MIGRATIONS.length])
        })
    }

    /** The LISTEN connection: key changes of every process, and the claim's advisory lock (held as long as it lives). */
    private async listen(): Promise<void> {
        const client = new pg.Client({ connectionString: this.opts.url, types: TYPES, ...connectionSettings(this.timeouts) })
        let count: number
        client.on("notification", (n) => this.announced(n.payload ?? ""))
        client.on("error", (err) => this.listenerLost(client, err))
        client.on("end", () => this.listenerLost(client))
        try {
            await client.connect()
            await client.query(`LISTEN ${KEYS_CHANNEL}`)
            if (this.claimed) await this.takeClaim(client, this.claimed)
            // read after LISTEN: a change announced from now on is heard, one committed before is counted here
            count = (await client.query<{ n: number }>("SELECT int_value AS n FROM settings WHERE name = 'keys_generation'")).rows[0].n
        } catch (e) {
            dropClient(client)
            throw e
        }
        this.listener = client
        this.listenCheck ??= setInterval(() => this.checkListener(), this.timeouts.listenCheckMs)
        this.listenCheck.unref()
        // whatever changed while no one listened counts now
        this.othersChanged(count)
    }

    /** A round trip on the LISTEN connection; none within QUERY_TIMEOUT_MS (a link gone silent) counts as lost. */
    private checkListener(): void {
        const client = this.listener
        if (!client || this.checkingListener) return
        this.checkingListener = true
        client
            .query("SELECT 1")
            .catch((e) => this.listenerLost(client, e))
            .finally(() => (this.checkingListener = false))
    }

    private listenerLost(client: pg.Client, err?: unknown): void {
        if (this.listener !== client || this.closed) return
        this.listener = undefined
        dropClient(client)
        this.opts.onNotice?.("the PostgreSQL connection that hears key changes was lost; making it again", err)
        const retry = () => {
            this.listenTimer = undefined
            if (this.closed) return
            this.listen().then(
                () => this.opts.onNotice?.("hearing key changes again"),
                (e) => {
                    this.opts.onNotice?.("could not make the PostgreSQL connection that hears key changes again", e)
                    this.listenTimer = setTimeout(retry, LISTEN_RECONNECT_MS)
                },
            )
        }
        this.listenTimer = setTimeout(retry, LISTEN_RECONNECT_MS)
    }

    /** A NOTIFY on the keys channel: "<store instance>:<count of key changes>" (a process of the previous version sends its instance alone). */
    private announced(payload: string): void {
        const [from, count] = payload.split(":")
        // this store's own: counted when it committed
        if (from !== this.instance) this.othersChanged(count === undefined ? undefined : Number(count))
    }

    /** Another process changed keys or deleted a feed (`count`: the count of key changes it made, when known). */
    private othersChanged(count?: number): void {
        this.keysMoved(count)
        this.knownFeeds.clear()
    }

    /** Keys may have changed: keysVersion moves, and with it the count of key changes it stands for (the highest known). */
    private keysMoved(count?: number): void {
        this.keysGeneration++
        if (count !== undefined && Number.isSafeInteger(count) && count > (this.keysCount ?? -1)) this.keysCount = count
    }

    /**
     * Inside a transaction that changes keys, revokes tokens or deletes a feed: the count of key changes moves
     * on, announced with its new value (NOTIFY, delivered at commit); returns it. `exclusive`: waits first for
     * the batches of writes that read the count now (they commit before this), and holds the next ones until
     * this commits (they see it).
     */
    private async countKeysChange(c: pg.PoolClient, exclusive: boolean): Promise<number> {
        if (exclusive) await c.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEYS])
        const count = (await c.query<{ n: number }>("UPDATE settings SET int_value = int_value + 1 WHERE name = 'keys_generation' RETURNING int_value AS n")).rows[0].n
        await c.query("SELECT pg_notify($1, $2)", [KEYS_CHANNEL, `${this.instance}:${count}`])
        return count
    }

    /**
     * A pool connection for `fn`. One that breaks meanwhile is dropped, not pooled again, and its error is
     * heard here: a connection checked out of the pool has no other listener, and an unheard "error"
     * event (PostgreSQL restarted, pg_terminate_backend) would end the process. A lost database is a
     * StoreError "unavailable" (503 E_STORE_FAILED), so the request gets a coded answer.
     */
    private async withClient<T>(fn: (c: pg.PoolClient) => Promise<T>, deadline?: number): Promise<T> {
        let c: pg.PoolClient
        try {
            c = await this.connectBy(deadline)
        } catch (e) {
            throw lostDatabase(e) ? unavailable(e) : e
        }
        let broken: Error | undefined
        const onError = (e: Error) => (broken ??= e)
        c.on("error", onError)
        // past the deadline the connection is dropped: the statement waiting on it fails as a lost database
        const left = deadline === undefined ? 0 : deadline - performance.now()
        const bound =
            deadline === undefined
                ? undefined
                : setTimeout(() => {
                      broken ??= noAnswerInTime()
                      destroyLink(c)
                  }, left)
        try {
            return await fn(c)
        } catch (e) {
            const lost = e instanceof StoreError ? e.failure === "unavailable" || e.failure === "commit-unknown" : lostDatabase(e)
            if (lost) broken ??= e as Error
            throw broken && !(e instanceof StoreError) ? unavailable(e) : e
        } finally {
            clearTimeout(bound)
            c.off("error", onError)
            c.release(broken)
        }
    }

    /** A pool connection, or a lost-database error when none is had by `deadline` (one had later goes back to the pool). */
    private async connectBy(deadline?: number): Promise<pg.PoolClient> {
        if (deadline === undefined) return this.pool.connect()
        const connecting = this.pool.connect()
        let timer: NodeJS.Timeout | undefined
        const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(noAnswerInTime()), deadline - performance.now())))
        try {
            return await Promise.race([connecting, late])
        } catch (e) {
            connecting.then((c) => c.release(), () => {})
            throw e
        } finally {
            clearTimeout(timer)
        }
    }

    private transaction<T>(fn: (c: pg.PoolClient) => Promise<T>, deadline?: number): Promise<T> {
        return this.withClient(async (c) => {
            await c.query("BEGIN")
            let out: T
            try {
                out = await fn(c)
            } catch (e) {
                if (!lostDatabase(e)) await c.query("ROLLBACK").catch(() => {})
                throw e
            }
            try {
                await c.query("COMMIT")
            } catch (e) {
                // COMMIT was sent: whether it took effect is not known
                throw lostDatabase(e) ? unavailable(e, true) : e
            }
            return out
        }, deadline)
    }

    /**
     * One statement on a pool connection, answered within QUERY_TIMEOUT_MS of being asked, the wait for a
     * connection included (all of them may be stuck on a stalled database); a lost database is a
     * StoreError "unavailable".
     */
    private query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
        return this.withClient((c) => c.query<R>(sql, params), performance.now() + this.timeouts.queryMs)
    }

    private async rows<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
        return (await this.query<R>(sql, params)).rows
    }

    async claim(use: "alone" | "shared"): Promise<void> {
        if (!this.listener) throw new StoreError("closed", "the store is not connected")
        await this.takeClaim(this.listener, use)
        this.claimed = use
    }

    /** A session lock on the listener's connection: exclusive for "alone", shared for "shared". */
    private async takeClaim(c: pg.Client, use: "alone" | "shared"): Promise<void> {
        const fn = use === "alone" ? "pg_try_advisory_lock" : "pg_try_advisory_lock_shared"
        const got = (await c.query<{ ok: boolean }>(`SELECT ${fn}($1) AS ok`, [LOCK_SERVERS])).rows[0].ok
        if (got) return
        throw new StoreError(
            "in-use",
            use === "alone"
                ? "another feedline server uses this database; several servers need --redis-url (pushes, the session list and per-key rate limits go from one to the others through Redis)"
                : "a feedline server without --redis-url uses this database alone; stop it, or start it with --redis-url too",
        )
    }

    async provisioning<T>(fn: () => Promise<T>): Promise<T> {
        return this.withClient(async (c) => {
            await c.query({ text: "SELECT pg_advisory_lock($1)", values: [LOCK_PROVISION], query_timeout: LOCK_WAIT_MS } as pg.QueryConfig)
            try {
                return await fn()
            } finally {
                await c.query("SELECT pg_advisory_unlock($1)", [LOCK_PROVISION])
            }
        })
    }

    async listFeeds(onlyIds?: number[]): Promise<FeedRecord[]> {
        const rows = onlyIds
            ? await this.rows<FeedRow>("SELECT * FROM feeds WHERE id = ANY($1::bigint[]) ORDER BY id", [onlyIds])
            : await this.rows<FeedRow>("SELECT * FROM feeds ORDER BY id")
        return rows.map(feedOf)
    }

    async getFeed(id: number): Promise<FeedRecord | undefined> {
        const [r] = await this.rows<FeedRow>("SELECT * FROM feeds WHERE id = $1", [id])
        return r && feedOf(r)
    }

    /** From memory, at once, for a feed known to exist; else a query. */
    feedExists(id: number): boolean | Promise<boolean> {
        return this.knownFeeds.has(id) || this.feedInDatabase(id)
    }

    private async feedInDatabase(id: number): Promise<boolean> {
        const known = (await this.rows("SELECT 1 FROM feeds WHERE id = $1", [id])).length > 0
        if (!known) return false
        if (this.knownFeeds.size >= MAX_KNOWN_FEEDS) this.knownFeeds.clear()
        this.knownFeeds.add(id)
        return true
    }

    async createFeed(input: { id?: number; title?: string }): Promise<FeedRecord> {
        const now = this.now()
        const title = input.title ?? ""
        const id = await this.transaction((c) => this.insertFeedRow(c, input.id, title, now))
        return { id, title, createdMs: now, updatedMs: now }
    }

    /** A new feed row, inside a transaction: with the given id, or above every id ever used [P§10]. */
    private async insertFeedRow(c: pg.PoolClient, wanted: number | undefined, title: string, now: number): Promise<number> {
        // the high-water row, locked: feeds are made one at a time, over every process
        const highWater = (await c.query<{ v: number }>("SELECT int_value AS v FROM settings WHERE name = 'feed_id_high_water' FOR UPDATE")).rows[0].v
        if (wanted !== undefined) {
            if ((await c.query("SELECT 1 FROM feeds WHERE id = $1", [wanted])).rowCount) {
                throw new StoreError("feed-exists", `feed ${wanted} exists already; leave out "id" to get a new one`)
            }
            if ((await c.query("SELECT 1 FROM retired_feeds WHERE id = $1", [wanted])).rowCount) {
                throw new StoreError(
                    "feed-id-retired",
                    `feed ${wanted} was deleted, and a deleted feed's id is never given out again (keys and subscriptions of the old feed must not reach a new one); leave out "id" to get a new one`,
                )
            }
        }
        const id = wanted ?? highWater + 1
        if (!Number.isSafeInteger(id)) throw new StoreError("no-feed-ids-left", `no feed ids are left above ${highWater}; give an explicit "id"`)
        await c.query("INSERT INTO feeds (id, title, created_ms, updated_ms) VALUES ($1, $2, $3, $3)", [id, title, now])
        await c.query("UPDATE settings SET int_value = GREATEST(int_value, $1) WHERE name = 'feed_id_high_water'", [id])
        return id
    }

    async updateFeed(id: number, changes: FeedUpdate): Promise<void> {
        const now = this.now()
        if (!changes.datastreams?.length) {
            if (changes.title !== undefined) await this.query("UPDATE feeds SET title = $1, updated_ms = $2 WHERE id = $3", [changes.title, now, id])
            return
        }
        const streams = changes.datastreams
        await this.transaction(async (c) => {
            await this.insertStreamRows(c, id, streams, now)
            if (changes.title !== undefined) await c.query("UPDATE feeds SET title = $1, updated_ms = $2 WHERE id = $3", [changes.title, now, id])
        })
    }

    /** Runs a chunked delete until it deletes less than a chunk; each chunk is its own statement (short locks; store.ts deleteInChunks: a failure midway is PartlyDeleted). */
    private deleteInChunks(where: string, params: unknown[]): Promise<number> {
        return deleteInChunks({
            chunk: async () =>
                (await this.query(`DELETE FROM datapoints WHERE ctid = ANY(ARRAY(SELECT ctid FROM datapoints WHERE ${where} LIMIT ${PRUNE_CHUNK_ROWS}))`, params)).rowCount ?? 0,
            chunkRows: PRUNE_CHUNK_ROWS,
            closed: () => this.closed,
            failureOf: (e) => this.failureOf(e),
        })
    }

    async deleteFeed(id: number): Promise<FeedDeletion | undefined> {
        // the bulk in chunks; the transaction below removes what was written meanwhile
        const chunked = await this.deleteInChunks("feed = $1", [id])
        this.knownFeeds.delete(id)
        const now = this.now()
        let count: number | undefined
        const deletion = await afterChunks(chunked, (e) => this.failureOf(e), () => this.betweenBatches(async (c): Promise<FeedDeletion | undefined> => {
            // the feed's row first, as every batch of writes does: writes to it wait, then find it gone
            if (!(await c.query("SELECT 1 FROM feeds WHERE id = $1 FOR UPDATE", [id])).rowCount) return undefined
            await c.query("DELETE FROM datapoints WHERE feed = $1", [id])
            await c.query("DELETE FROM stamps WHERE feed = $1", [id])
            await c.query("DELETE FROM feeds WHERE id = $1", [id])
            await c.query("INSERT INTO retired_feeds (id, deleted_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING", [id, now])
            // keys scoped to this feed lose it; one scoped to it alone is revoked (sqlite.ts says why)
            const done: FeedDeletion = { revokedKeys: [], detachedKeys: [] }
            const keys = await c.query<{ id: string; feeds: number[] }>(
                "SELECT id, feeds FROM api_keys WHERE revoked_ms IS NULL AND feeds @> jsonb_build_array($1::bigint) ORDER BY id FOR UPDATE",
                [id],
            )
            for (const k of keys.rows) {
                const rest = k.feeds.filter((f) => f !== id)
                if (rest.length === 0) {
                    await c.query("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2", [now, k.id])
                    done.revokedKeys.push(k.id)
                } else {
                    await c.query("UPDATE api_keys SET feeds = $1 WHERE id = $2", [JSON.stringify(rest), k.id])
                    done.detachedKeys.push(k.id)
                }
            }
            // not exclusive: this transaction holds the feed's row, which a batch that holds the lock shared may
            // wait for (a deadlock); a write racing this to the feed finds it gone, and the keys it changes lose
            // this feed alone
            count = await this.countKeysChange(c, false)
            const txn = await this.recordPublisher(c)
            return txn === undefined ? done : { ...done, txn }
        }))
        if (deletion) this.keysMoved(count)
        return deletion
    }

    async listDatastreams(feed: number): Promise<DatastreamRecord[]> {
        return (await this.rows<StreamRow>("SELECT * FROM datastreams WHERE feed = $1 ORDER BY id", [feed])).map(streamOf)
    }

    async getDatastream(feed: number, id: string): Promise<DatastreamRecord | undefined> {
        const [r] = await this.rows<StreamRow>("SELECT * FROM datastreams WHERE feed = $1 AND id = $2", [feed, id])
        return r && streamOf(r)
    }

    async createDatastreams(feed: number, ids: string[]): Promise<string[]> {
        const now = this.now()
        return this.transaction((c) => this.insertStreamRows(c, feed, ids, now))
    }

    /** New datastreams of an existing feed, in the transaction `c` runs: the ids made (those it lacked). */
    private async insertStreamRows(c: pg.PoolClient, feed: number, ids: string[], now: number): Promise<string[]> {
        if (!(await c.query("SELECT 1 FROM feeds WHERE id = $1 FOR KEY SHARE", [feed])).rowCount) throw new StoreError("no-such-feed", `feed ${feed} does not exist`)
        const made = await c.query<{ id: string }>(
            "INSERT INTO datastreams (feed, id, created_ms) SELECT $1, id, $3 FROM unnest($2::text[]) AS t(id) ON CONFLICT DO NOTHING RETURNING id",
            [feed, ids, now],
        )
        const created = new Set(made.rows.map((r) => r.id))
        return ids.filter((id) => created.has(id))
    }

    async deleteDatastream(feed: number, id: string): Promise<Deletion | undefined> {
        const chunked = await this.deleteInChunks("feed = $1 AND stream = $2", [feed, id])
        return afterChunks(chunked, (e) => this.failureOf(e), () => this.betweenBatches(async (c): Promise<Deletion | undefined> => {
            const locked = await c.query<{ last_seq: number | null }>("SELECT last_seq FROM feeds WHERE id = $1 FOR NO KEY UPDATE", [feed])
            await c.query("DELETE FROM datapoints WHERE feed = $1 AND stream = $2", [feed, id])
            if (!(await c.query("DELETE FROM datastreams WHERE feed = $1 AND id = $2", [feed, id])).rowCount) return undefined
            // [P§8] which datastream the feed's next seq deletes, for a catch-up (Store.changesAfter); before the row moves to it (its trigger)
            await c.query(
                `INSERT INTO datastream_deletions (feed, stream, seq) SELECT id, $2, COALESCE(last_seq, 0) + 1 FROM feeds WHERE id = $1
                 ON CONFLICT (feed, stream) DO UPDATE SET earlier_seq = datastream_deletions.seq, seq = excluded.seq`,
                [feed, id],
            )
            // [P§8] the feed's next seq, taken under its row lock as a batch's are (Deletion.seq)
            const moved = await c.query<{ seq: number }>(
                "UPDATE feeds SET last_seq = COALESCE(last_seq, 0) + 1, deleted_seq = COALESCE(last_seq, 0) + 1 WHERE id = $1 RETURNING last_seq AS seq",
                [feed],
            )
            const chain = moved.rows[0] ? { seq: moved.rows[0].seq, prevSeq: locked.rows[0]?.last_seq ?? 0 } : {}
            const txn = await this.recordPublisher(c)
            return txn === undefined ? chain : { ...chain, txn }
        }))
    }

    /**
     * A deletion's transaction, run between batches of writes: one process's commits that others must hear
     * of (its batches and deletions, Store.recordCommitsAs) then commit one at a time, so each one's
     * transaction id is above the one before and a process's last recorded commit is its newest
     * (bus/unheard-commits.ts compares them). A deletion waits for at most the batch committing now.
     */
    private betweenBatches<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
        return new Promise<T>((resolve, reject) => {
            // takes the turn at once (synchronously: nothing else can take it meanwhile)
            const start = () => {
                const run = this.transaction(fn)
                run.then(resolve, reject)
                this.committing = run.then(
                    () => this.nextTurn(),
                    () => this.nextTurn(),
                )
            }
            if (this.committing || this.flushScheduled) this.turnsWaiting.push(start)
            else start()
        })
    }

    /** The commit that had the turn is over: a deletion waiting goes next, else the writes that arrived meanwhile. */
    private nextTurn(): void {
        this.committing = undefined
        const waiting = this.turnsWaiting.shift()
        if (waiting) waiting()
        else if (this.pending.length) this.scheduleFlush()
    }

    /** Records this process's commit in the transaction `c` runs (Store.recordCommitsAs): its id, or undefined when it records none. */
    private async recordPublisher(c: pg.PoolClient): Promise<number | undefined> {
        if (this.publisher === undefined) return undefined
        const r = await c.query<{ txn: string }>(`WITH t AS (SELECT pg_current_xact_id()::text AS txn), published AS (${recordPublisherSql("$1", "(SELECT txn FROM t)", "$2")}) SELECT txn FROM t`, [
            this.publisher,
            this.now(),
        ])
        return Number(r.rows[0].txn)
    }

    writePoints(feed: number, points: PointInput[], nowMs = this.now(), keysAsOf?: number): Promise<StoredPoint[]> {
        if (this.closed) return Promise.reject(new StoreError("closed", "the server is shutting down; write again after reconnecting"))
        // a change of keys announced since the writer's key was checked: check it again (keysVersionAsKnown)
        if (keysAsOf !== undefined && keysAsOf !== this.keysGeneration) return Promise.reject(keysChanged())
        // ...and again in the commit, against the database's count of key changes (applyBatch)
        const keysCount = keysAsOf === undefined ? undefined : this.keysCount
        return new Promise((resolve, reject) => {
            this.pending.push({ feed, points, nowMs, deadline: performance.now() + this.timeouts.writeMs, keysAsOf, keysCount, resolve, reject })
            this.scheduleFlush()
        })
    }

    /** The next batch starts once the current one committed: what arrives meanwhile waits for it and goes together. */
    private scheduleFlush(): void {
        if (this.flushScheduled || this.committing) return
        this.flushScheduled = true
        setImmediate(() => {
            this.flushScheduled = false
            this.committing = this.flush().finally(() => this.nextTurn())
        })
    }

    /**
     * Commits every pending write in one transaction, then settles their promises. A batch whose connection
     * was lost is tried again on another while its bound (its oldest write's deadline) allows, when it is
     * known not to have committed: lost before its COMMIT was sent, or PostgreSQL says its transaction
     * aborted (pg_xact_status). One whose COMMIT took effect although its answer was lost is acknowledged
     * with what that attempt stored, so nothing is stored twice, a server stamp included.
     */
    private async flush(): Promise<void> {
        const batch = this.pending
        this.pending = []
        if (batch.length) await this.commitBatch(batch)
    }

    /**
     * flush's one batch: committed, tried again, or refused, each write answered. A batch that failed for
     * anything but a lost database (a write's data refused, a statement the database would not run for one
     * write, a timeout, a trigger) is tried again in parts (isolate), so that one request's problem fails
     * that request alone.
     */
    private async commitBatch(batch: PendingWrite[]): Promise<void> {
        const failed = await this.attempt(batch)
        if (failed === undefined) return
        this.opts.onNotice?.(`a batch of ${batch.length} writes failed; trying them again in parts, so that only the write at fault is refused`, failed.err)
        await this.isolate(failed.batch, failed.err, { failuresLeft: isolationBudget(failed.batch.length) })
    }

    /**
     * Tries `batch` (a part of one) again in halves, each in its own transaction, in request order (same
     * locks, stamps and key check per part), until the write at fault is alone: it is refused (422
     * E_BAD_VALUE when its data is the cause, else 503 E_STORE_FAILED with retry_after_ms), the others are
     * stored. A failure that is no one write's (every part fails: a broken database, a trigger failing every
     * commit) spends the budget of failed tries, past which what is left is refused 503 E_STORE_FAILED with
     * retry_after_ms: not stored, so sent again.
     */
    private async isolate(batch: PendingWrite[], err: unknown, budget: { failuresLeft: number }): Promise<void> {
        if (batch.length === 1) return this.refuseAlone(batch[0], err)
        if (budget.failuresLeft <= 0) return this.refuseAll(batch, err)
        const half = Math.ceil(batch.length / 2)
        for (const part of [batch.slice(0, half), batch.slice(half)]) {
            if (budget.failuresLeft <= 0) {
                this.refuseAll(part, err)
                continue
            }
            const failed = await this.attempt(part)
            if (failed === undefined) continue
            budget.failuresLeft--
            await this.isolate(failed.batch, failed.err, budget)
        }
    }

    /** A write that failed alone: the database refused its data (422), or failed it for a reason of its own (503, send it again). */
    private refuseAlone(w: PendingWrite, err: unknown): void {
        if (refusedValue(err)) {
            this.opts.onNotice?.("the database refused a write's data; that write is refused, nothing of it stored", err)
            return w.reject(valueRefused(err))
        }
        this.refuseAll([w], err)
    }

    /** Writes whose commit failed for no fault of their data: 503 E_STORE_FAILED with retry_after_ms, nothing of them stored. */
    private refuseAll(batch: PendingWrite[], err: unknown): void {
        this.opts.onError?.(err)
        const refusal = postgresFailure(err) ?? new StoreError("commit-failed", "the server could not store this write; nothing was written, send it again", STORE_RETRY_MS)
        for (const w of batch) w.reject(refusal)
    }

    /**
     * Commits `batch` in one transaction and answers its writes: tried again after a conflict or a lost
     * connection while its bound allows, refused 503 when the database stays out of reach or the outcome of
     * its COMMIT cannot be learnt. A failure of any other kind (the transaction surely rolled back: nothing of
     * it stored) answers nothing: the writes still waiting and the error are returned, for isolate.
     */
    private async attempt(batch: PendingWrite[]): Promise<{ batch: PendingWrite[]; err: unknown } | undefined> {
        const started = performance.now()
        const deadline = Math.min(...batch.map((w) => w.deadline))
        let outcomes: (StoredPoint[] | StoreError)[] | undefined
        let conflicts = 0
        let pauseMs = RETRY_PAUSE_FIRST_MS
        /** what the attempt now running did (the one that committed, after the loop) */
        let tried: AppliedBatch | undefined
        for (;;) {
            tried = undefined as AppliedBatch | undefined
            if (performance.now() >= deadline) {
                // its writes waited their bound behind earlier batches (a stalled database): not tried at all
                const late = unavailable(noAnswerInTime())
                for (const w of batch) w.reject(late)
                return undefined
            }
            try {
                outcomes = await this.transaction(async (c) => {
                    tried = await this.applyBatch(c, batch)
                    return tried.outcomes
                }, deadline)
                break
            } catch (e) {
                if (++conflicts < COMMIT_ATTEMPTS && RETRYABLE.has((e as { code?: string }).code ?? "")) continue
                let err = e
                if (e instanceof StoreError && e.failure === "commit-unknown") {
                    // a batch that found no feed wrote nothing: as good as not committed
                    const outcome = tried?.txn === undefined ? "aborted" : await this.commitOutcome(tried.txn, deadline)
                    if (outcome === "committed") {
                        outcomes = tried!.outcomes
                        break
                    }
                    if (outcome === "aborted") err = unavailable(e.cause)
                }
                if (err instanceof StoreError && err.failure === "unavailable" && performance.now() + pauseMs < deadline) {
                    this.opts.onNotice?.("a batch of writes lost its PostgreSQL connection before committing; trying it again", e)
                    await pause(pauseMs)
                    pauseMs = Math.min(pauseMs * 2, RETRY_PAUSE_MAX_MS)
                    // keys changed meanwhile (a revocation heard): those writes go back to have their key checked (writePoints' keysAsOf)
                    const stale = batch.filter((w) => w.keysAsOf !== undefined && w.keysAsOf !== this.keysGeneration)
                    for (const w of stale) w.reject(keysChanged())
                    if (stale.length) batch = batch.filter((w) => !stale.includes(w))
                    if (batch.length === 0) return undefined
                    continue
                }
                const lost = err instanceof StoreError && (err.failure === "unavailable" || err.failure === "commit-unknown")
                if (!lost) return { batch, err }
                // the database out of reach past the bound, or the COMMIT's outcome unknown: no part would do better
                this.opts.onError?.(err)
                // they may be stored: a resend that finds them so is answered written, and pushed then; or, first, the
                // store learns the COMMIT took effect (settleUnknown) and they are pushed then
                if ((err as StoreError).failure === "commit-unknown") {
                    const writes: { feed: number; points: StoredPoint[]; stamped: StoredPoint[] }[] = []
                    batch.forEach((w, i) => {
                        const triedPoints = tried?.outcomes[i]
                        this.unknownOutcomes.remember(w.feed, w.points, triedPoints instanceof StoreError ? undefined : triedPoints)
                        if (triedPoints === undefined || triedPoints instanceof StoreError || triedPoints.length === 0) return
                        // the points the server stamped: no resend can be the same point (it is stamped anew), so none claims them
                        const given = new Set(w.points.flatMap((p) => (p.atMs === undefined ? [] : [identity(w.feed, p.stream, p.atMs)])))
                        writes.push({ feed: w.feed, points: triedPoints, stamped: triedPoints.filter((p) => !given.has(identity(w.feed, p.stream, p.atMs))) })
                    })
                    // and pushed once PostgreSQL says the COMMIT took effect
                    if (tried?.txn !== undefined && writes.length) {
                        if (this.unsettled.size >= MAX_UNSETTLED_COMMITS) this.unsettled.delete(this.unsettled.keys().next().value!)
                        this.unsettled.set(tried.txn, { writes, untilMs: performance.now() + UNKNOWN_SETTLE_FOR_MS })
                        this.scheduleSettle()
                    }
                }
                for (const w of batch) w.reject(err as StoreError)
                return undefined
            }
        }
        this.opts.onCommit?.(performance.now() - started, batch.length)
        // keys changed since this process last heard (writes were refused for it): known from now on, without waiting for the announcement
        const read = tried?.keysCount
        if (read !== undefined && read > (this.keysCount ?? -1)) this.keysMoved(read)
        const answers = this.unknownOutcomes.size === 0 ? outcomes! : await this.withResends(batch, outcomes!)
        batch.forEach((w, i) => {
            const o = answers[i]
            if (o instanceof StoreError) w.reject(o)
            else w.resolve(o)
        })
        return undefined
    }

    /**
     * A committed batch's outcomes, with the points its writes resent of writes refused "commit-unknown" that
     * are stored (unknown-outcomes.ts) added as written: pushed then. Their seqs are read in one query before
     * any write of the batch is answered, so the batch's pushes keep their order; should it fail, the writes
     * are answered as committed (the resends acknowledged, not pushed).
     */
    private async withResends(batch: PendingWrite[], outcomes: (StoredPoint[] | StoreError)[]): Promise<(StoredPoint[] | StoreError)[]> {
        const resends = batch.map((w, i) => {
            const o = outcomes[i]
            return o instanceof StoreError ? [] : this.unknownOutcomes.resends(w.feed, w.points, o)
        })
        const asked = resends.flatMap((list, i) => list.map((r) => ({ feed: batch[i].feed, r })))
        if (asked.length === 0) return outcomes
        let seqs: Map<string, number>
        try {
            const rows = await this.rows<{ feed: number; stream: string; at_ms: number; seq: number }>(
                "SELECT d.feed, d.stream, d.at_ms, d.seq FROM datapoints d JOIN unnest($1::bigint[], $2::text[], $3::bigint[]) AS t(f, s, a) ON d.feed = t.f AND d.stream = t.s AND d.at_ms = t.a",
                [asked.map((a) => a.feed), asked.map((a) => a.r.stream), asked.map((a) => a.r.atMs)],
            )
            seqs = new Map(rows.map((r) => [identity(r.feed, r.stream, r.at_ms), r.seq]))
        } catch (e) {
            this.opts.onNotice?.("the seqs of points resent after 503 E_OUTCOME_UNKNOWN could not be read; they are acknowledged, not pushed", e)
            return outcomes
        }
        return outcomes.map((o, i) => (o instanceof StoreError || resends[i].length === 0 ? o : found(o, resends[i], (stream, atMs) => seqs.get(identity(batch[i].feed, stream, atMs)))))
    }

    onLateCommits(handler: (feed: number, points: StoredPoint[]) => void): void {
        this.lateCommits = handler
    }

    private scheduleSettle(): void {
        if (this.settleTimer !== undefined || this.closed || this.unsettled.size === 0) return
        this.settleTimer = setTimeout(() => {
            void this.settleUnknown().finally(() => {
                this.settleTimer = undefined
                this.scheduleSettle()
            })
        }, UNKNOWN_SETTLE_EVERY_MS)
        this.settleTimer.unref()
    }

    /**
     * Asks PostgreSQL about the transactions of writes refused "commit-unknown": committed, their points no resend has
     * claimed are handed to onLateCommits (pushed here and relayed to the other processes, as the write would have
     * been); aborted, they are forgotten (a resend stores them anew). Still in progress or out of reach: asked again,
     * until UNKNOWN_SETTLE_FOR_MS; then (and when PostgreSQL no longer knows the transaction) only a resend to this
     * process finds them.
     */
    private async settleUnknown(): Promise<void> {
        for (const [txn, u] of [...this.unsettled]) {
            if (this.closed) return
            let status: string | null | undefined
            try {
                status = (await this.rows<{ s: string | null }>("SELECT pg_xact_status($1::xid8) AS s", [txn]))[0].s
            } catch {
                status = undefined
            }
            if (status !== "committed" && status !== "aborted") {
                if (status === null || performance.now() >= u.untilMs) this.unsettled.delete(txn)
                continue
            }
            this.unsettled.delete(txn)
            for (const w of u.writes) {
                const late = this.unknownOutcomes.settled(w.feed, w.points, status === "committed")
                if (status === "committed") late.push(...w.stamped)
                if (late.length) this.lateCommits?.(w.feed, late.sort((x, y) => x.seq - y.seq))
            }
        }
    }

    /**
     * Whether transaction `txn` committed, asked on other connections until PostgreSQL knows (its backend
     * may still be finishing the COMMIT) or `deadline` passes: undefined when that could not be found out.
     */
    private async commitOutcome(txn: string, deadline: number): Promise<"committed" | "aborted" | undefined> {
        for (let pauseMs = RETRY_PAUSE_FIRST_MS; performance.now() < deadline; pauseMs = Math.min(pauseMs * 2, RETRY_PAUSE_MAX_MS)) {
            try {
                const r = await this.withClient((c) => c.query<{ s: string | null }>("SELECT pg_xact_status($1::xid8) AS s", [txn]), deadline)
                const status = r.rows[0].s
                if (status === "committed" || status === "aborted") return status
                if (status !== "in progress") return undefined
            } catch (e) {
                if (!(e instanceof StoreError && e.failure === "unavailable")) return undefined
            }
            if (performance.now() + pauseMs >= deadline) return undefined
            await pause(pauseMs)
        }
        return undefined
    }

    /** One batch inside its transaction: lock the feeds, stamp, upsert points, then datastreams and feeds. */
    private async applyBatch(c: pg.PoolClient, batch: PendingWrite[]): Promise<AppliedBatch> {
        // 1. the feeds' rows, sorted: writes to one feed from several processes commit in turn; this
        // transaction's id (flush asks for its outcome with it when a COMMIT's answer is lost)
        const wanted = [...new Set(batch.map((w) => w.feed))].sort((a, b) => a - b)
        const checked = batch.some((w) => w.keysCount !== undefined)
        const locked = checked
            ? await this.lockFeedsCheckingKeys(c, wanted)
            : await c.query<{ id: number; txn: string; last_stamp_ms: number | null; last_seq: number | null; keys?: number }>(
                  "SELECT id, pg_current_xact_id()::text AS txn, last_stamp_ms, last_seq FROM feeds WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE",
                  [wanted],
              )
        const existing = new Set(locked.rows.map((r) => r.id))
        const txnText = locked.rows[0]?.txn
        const keysCount = locked.rows[0]?.keys
        const outcomes: (StoredPoint[] | StoreError)[] = batch.map((w) => {
            if (!existing.has(w.feed)) return new StoreError("no-such-feed", `feed ${w.feed} does not exist`)
            // [P§7] its key was checked against keys that have changed since (another process revoked it, say): nothing of it is stored
            if (w.keysCount !== undefined && w.keysCount !== keysCount) return keysChanged()
            return []
        })
        // 2. stamps for points without `at`, reserved per feed in one call (its row is locked: commit order)
        const stamped = await this.stamp(c, batch, (request) => !(outcomes[request] instanceof StoreError))
        // 3. in request order; within one request the last of equal (stream, at) wins (as in sqlite.ts)
        const points: BatchPoint[] = []
        stamped.forEach((list, request) => {
            if (!list) return
            const feed = batch[request].feed
            const last = new Map<string, BatchPoint>()
            for (const p of list) last.set(identity(feed, p.stream, p.atMs), p)
            points.push(...last.values())
        })
        const prevSeq = new Map(locked.rows.map((r) => [r.id, r.last_seq ?? 0]))
        const changed = await this.upsertPoints(c, points, prevSeq)
        if (changed.length === 0) return { outcomes, txn: txnText, keysCount }
        // 4. datastreams' current value, min and max; the feeds' updated time and last seq
        await this.upsertStreams(c, changed, Math.max(...batch.map((w) => w.nowMs)))
        const topSeq = new Map<number, number>()
        for (const p of changed) topSeq.set(p.feed, Math.max(topSeq.get(p.feed) ?? 0, p.seq))
        const setFeeds = "UPDATE feeds SET updated_ms = $1, last_seq = t.seq FROM unnest($2::bigint[], $3::bigint[]) AS t(id, seq) WHERE feeds.id = t.id"
        const touched = [[...topSeq.keys()], [...topSeq.values()]]
        if (this.publisher === undefined) await c.query(setFeeds, [this.now(), ...touched])
        else {
            // in the same round trip: this process committed changes in this transaction (Store.recordCommitsAs)
            await c.query(`WITH published AS (${recordPublisherSql("$4", "$5", "$1")}) ${setFeeds}`, [this.now(), ...touched, this.publisher, txnText])
        }
        const txn = Number(txnText)
        for (const p of changed) (outcomes[p.request] as StoredPoint[]).push({ stream: p.stream, atMs: p.atMs, value: p.value, seq: p.seq, txn, prevSeq: prevSeq.get(p.feed) })
        for (const o of outcomes) if (!(o instanceof StoreError)) o.sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : a.atMs - b.atMs))
        return { outcomes, txn: txnText, keysCount }
    }

    /**
     * Step 1 of a batch with writes whose keys were checked (writePoints' keysAsOf): LOCK_KEYS shared, then,
     * in a statement of its own (a snapshot taken once the lock is held, so a change of keys that committed
     * before is seen), the feeds' rows as applyBatch locks them and the count of key changes. One round trip:
     * two statements in one simple query, the ids written in (integers).
     */
    private async lockFeedsCheckingKeys(c: pg.PoolClient, feeds: number[]): Promise<pg.QueryResult<{ id: number; txn: string; last_stamp_ms: number | null; last_seq: number | null; keys: number }>> {
        const ids = feeds.filter((f) => Number.isSafeInteger(f)).join(",")
        const results = (await c.query(
            `SELECT pg_advisory_xact_lock_shared(${LOCK_KEYS});
             SELECT id, pg_current_xact_id()::text AS txn, last_stamp_ms, last_seq, (SELECT int_value FROM settings WHERE name = 'keys_generation') AS keys
             FROM feeds WHERE id = ANY('{${ids}}'::bigint[]) ORDER BY id FOR NO KEY UPDATE`,
        )) as unknown as pg.QueryResult<{ id: number; txn: string; last_stamp_ms: number | null; last_seq: number | null; keys: number }>[]
        return results[1]
    }

    /** Each request's points with every missing `at` stamped (undefined for a request refused: its feed does not exist, or its keys changed). */
    private async stamp(c: pg.PoolClient, batch: PendingWrite[], stored: (request: number) => boolean): Promise<(BatchPoint[] | undefined)[]> {
        const need = new Map<string, { feed: number; stream: string; count: number; nowMs: number; next?: number }>()
        for (const [request, w] of batch.entries()) {
            if (!stored(request)) continue
            for (const p of w.points) {
                if (p.atMs !== undefined) continue
                const k = `${w.feed}\u0000${p.stream}`
                const n = need.get(k)
                if (n) {
                    n.count++
                    n.nowMs = Math.max(n.nowMs, w.nowMs)
                } else need.set(k, { feed: w.feed, stream: p.stream, count: 1, nowMs: w.nowMs })
            }
        }
        if (need.size) {
            // sorted: two processes stamping the same datastreams lock their rows in the same order
            const list = [...need.values()].sort((a, b) => a.feed - b.feed || (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0))
            const last = await c.query<{ last: number }>("SELECT reserve_stamps($1::bigint[], $2::text[], $3::int[], $4::bigint[]) AS last", [
                list.map((n) => n.feed),
                list.map((n) => n.stream),
                list.map((n) => n.count),
                list.map((n) => n.nowMs),
            ])
            list.forEach((n, i) => (n.next = last.rows[i].last - n.count + 1))
        }
        return batch.map((w, request) => {
            if (!stored(request)) return undefined
            return w.points.map((p) => {
                if (p.atMs !== undefined) return { request, feed: w.feed, stream: p.stream, atMs: p.atMs, value: p.value }
                const n = need.get(`${w.feed}\u0000${p.stream}`)!
                return { request, feed: w.feed, stream: p.stream, atMs: n.next!++, value: p.value }
            })
        })
    }

    /**
     * Upserts the points in rounds in which each identity (feed, stream, at) appears once (one statement
     * cannot change a row twice): round r holds each identity's r-th write, in request order, so the later
     * request's value wins as in sqlite.ts. Returns the points that changed something, with their seq.
     * [P§8] Seqs are per feed: each point is numbered on from its feed's last seq (`lastSeq`, read under the
     * row lock this transaction holds, so no other process numbers the feed meanwhile), in the order the
     * rounds apply them. A rewrite of an identical value stores nothing and its number goes unused: a gap
     * in its feed's seqs from that feed's own writes only (the feed's last_seq is its newest stored seq).
     */
    private async upsertPoints(c: pg.PoolClient, points: BatchPoint[], lastSeq: ReadonlyMap<number, number>): Promise<(BatchPoint & { seq: number })[]> {
        const rounds: Map<string, BatchPoint>[] = []
        for (const p of points) {
            const k = identity(p.feed, p.stream, p.atMs)
            let r = rounds.find((round) => !round.has(k))
            if (!r) rounds.push((r = new Map()))
            r.set(k, p)
        }
        const changed: (BatchPoint & { seq: number })[] = []
        const next = new Map(lastSeq)
        for (const round of rounds) {
            const list = [...round.values()].sort((a, b) => a.feed - b.feed || (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : a.atMs - b.atMs))
            const seqs = list.map((p) => {
                const seq = (next.get(p.feed) ?? 0) + 1
                next.set(p.feed, seq)
                return seq
            })
            // RETURNING yields a row only when something changed: a resent identical datapoint is no change [P§9]
            const r = await c.query<{ feed: number; stream: string; at_ms: number; seq: number }>(
                `INSERT INTO datapoints (feed, stream, at_ms, value, seq)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[])
                 ON CONFLICT (feed, stream, at_ms) DO UPDATE SET value = excluded.value, seq = excluded.seq
                 WHERE datapoints.value <> excluded.value
                 RETURNING feed, stream, at_ms, seq`,
                [list.map((p) => p.feed), list.map((p) => p.stream), list.map((p) => p.atMs), list.map((p) => p.value), seqs],
            )
            for (const row of r.rows) changed.push({ ...round.get(identity(row.feed, row.stream, row.at_ms))!, seq: row.seq })
        }
        // in the order they were applied: rounds, then requests
        return changed
    }

    /** Each changed datastream once: its newest point (the last written of equal `at`), and min/max of the numeric values. */
    private async upsertStreams(c: pg.PoolClient, changed: (BatchPoint & { seq: number })[], nowMs: number): Promise<void> {
        const byStream = new Map<string, { feed: number; id: string; value: string; at: number; min: number | null; max: number | null }>()
        // in commit order within the batch: the rounds' order is the order of writes to an identity
        for (const p of [...changed].sort((a, b) => a.seq - b.seq)) {
            const k = `${p.feed}\u0000${p.stream}`
            const num = numericOf(p.value)
            const s = byStream.get(k)
            if (!s) {
                byStream.set(k, { feed: p.feed, id: p.stream, value: p.value, at: p.atMs, min: num, max: num })
                continue
            }
            if (p.atMs >= s.at) {
                s.at = p.atMs
                s.value = p.value
            }
            if (num !== null) {
                s.min = s.min === null ? num : Math.min(s.min, num)
                s.max = s.max === null ? num : Math.max(s.max, num)
            }
        }
        const list = [...byStream.values()].sort((a, b) => a.feed - b.feed || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        // LEAST and GREATEST skip NULLs: a non-numeric value leaves min and max as they were
        await c.query(
            `INSERT INTO datastreams (feed, id, current_value, at_ms, min_value, max_value, created_ms)
             SELECT f, s, v, a, mn, mx, $7 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::float8[], $6::float8[]) AS t(f, s, v, a, mn, mx)
             ON CONFLICT (feed, id) DO UPDATE SET
               current_value = CASE WHEN datastreams.at_ms IS NULL OR excluded.at_ms >= datastreams.at_ms
                                    THEN excluded.current_value ELSE datastreams.current_value END,
               at_ms = GREATEST(datastreams.at_ms, excluded.at_ms),
               min_value = LEAST(datastreams.min_value, excluded.min_value),
               max_value = GREATEST(datastreams.max_value, excluded.max_value)`,
            [list.map((s) => s.feed), list.map((s) => s.id), list.map((s) => s.value), list.map((s) => s.at), list.map((s) => s.min), list.map((s) => s.max), nowMs],
        )
    }

    async history(feed: number, stream: string, q: HistoryQuery): Promise<{ atMs: number; value: string }[]> {
        const order = q.newest ? "DESC" : "ASC"
        const rows = q.intervalMs
            ? await this.rows<{ at_ms: number; value: string }>(q.newest ? FIRSTS_OF_INTERVALS_NEWEST : FIRSTS_OF_INTERVALS, [feed, stream, q.startMs, q.endMs, Math.trunc(q.intervalMs), q.limit])
            : await this.rows<{ at_ms: number; value: string }>(
                  `SELECT at_ms, value FROM datapoints WHERE feed = $1 AND stream = $2 AND at_ms >= $3 AND at_ms <= $4 ORDER BY at_ms ${order} LIMIT $5`,
                  [feed, stream, q.startMs, q.endMs, q.limit],
              )
        if (q.newest) rows.reverse()
        return rows.map((r) => ({ atMs: r.at_ms, value: r.value }))
    }

    async deletePoints(feed: number, stream: string, startMs: number, endMs: number): Promise<number> {
        const n = await this.deleteInChunks("feed = $1 AND stream = $2 AND at_ms >= $3 AND at_ms <= $4", [feed, stream, startMs, endMs])
        if (this.closed) return n
        // also when nothing went but the current value is in the range: a deletion sent again after one that
        // failed midway (PartlyDeleted) sets the current value that one could not
        await afterChunks(n, (e) => this.failureOf(e), () =>
            this.query(
                `UPDATE datastreams SET (current_value, at_ms) = (
                   SELECT value, at_ms FROM datapoints WHERE feed = $1 AND stream = $2 ORDER BY at_ms DESC LIMIT 1
                 ) WHERE feed = $1 AND id = $2 AND ($5 OR at_ms BETWEEN $3 AND $4)`,
                [feed, stream, startMs, endMs, n > 0],
            ),
        )
        return n
    }

    async replay(feed: number, stream: string | undefined, afterMs: number, limit: number, throughSeq = Number.MAX_SAFE_INTEGER): Promise<SeqReplay> {
        // one statement, one snapshot: the points, the feed's cursor (as replayAfterSeq) and the snapshot they were read in (Replay.seen)
        const filter = stream === undefined ? "feed = $1 AND at_ms > $2 AND seq <= $4" : "feed = $1 AND at_ms > $2 AND seq <= $4 AND stream = $5"
        const rows = await this.rows<ReplayRow>(
            `${replayHeadSql(stream === undefined ? "feed = $1" : "feed = $1 AND stream = $5")}
             UNION ALL
             (SELECT stream, at_ms, value, seq, NULL, NULL, NULL FROM datapoints WHERE ${filter} ORDER BY at_ms, stream LIMIT $3)`,
            stream === undefined ? [feed, afterMs, limit, throughSeq] : [feed, afterMs, limit, throughSeq, stream],
        )
        const points = rows
            .filter((r) => r.snapshot === null)
            .map((r) => ({ stream: r.stream!, atMs: r.at_ms!, value: r.value!, seq: r.seq! }))
            .sort((a, b) => a.atMs - b.atMs || (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0))
        return { points, ...replayHeadOf(rows) }
    }

    async replayAfterSeq(feed: number, stream: string | undefined, afterSeq: number | undefined, limit: number): Promise<SeqReplay> {
        // one statement, one snapshot: the points, the feed's cursor, what the retention deleted (trimmed)
        // and the snapshot (Replay.seen). A feed's seqs are drawn under its row lock (applyBatch), which a batch
        // holds until it commits: one still committing drew its seqs after every visible one, so it is above
        // highSeq and not seen. [P§8] The cursor is the feed's last_seq (its newest seq ever given, set in the
        // transaction that stored it; a primary-key read), as SQLite's: not max(seq) of its points, which a
        // range delete or the retention of its newest points would move back below a seq a client holds
        const filter = stream === undefined ? "feed = $1 AND seq > $2" : "feed = $1 AND seq > $2 AND stream = $4"
        const rows = await this.rows<ReplayRow>(
            `${replayHeadSql(stream === undefined ? "feed = $1" : "feed = $1 AND stream = $4")}
             UNION ALL
             (SELECT stream, at_ms, value, seq, NULL, NULL, NULL FROM datapoints WHERE ${filter} ORDER BY seq LIMIT $3)`,
            stream === undefined ? [feed, afterSeq ?? Number.MAX_SAFE_INTEGER, limit] : [feed, afterSeq ?? Number.MAX_SAFE_INTEGER, limit, stream],
        )
        const points = rows.filter((r) => r.snapshot === null).map((r) => ({ stream: r.stream!, atMs: r.at_ms!, value: r.value!, seq: r.seq! }))
        return { points, ...replayHeadOf(rows) }
    }

    recordCommitsAs(process: string): void {
        this.publisher = process
    }

    async lastSeqs(limit: number): Promise<{ seqs: Map<number, number>; complete: boolean }> {
        // seqs are per feed, so they say nothing of which feed was written last: the feeds' updated time does
        const rows = await this.rows<{ id: number; last_seq: number }>("SELECT id, last_seq FROM feeds WHERE last_seq IS NOT NULL ORDER BY updated_ms DESC LIMIT $1", [limit])
        return { seqs: new Map(rows.map((r) => [r.id, r.last_seq])), complete: rows.length < limit }
    }

    async changesAfter(after: Map<number, number>, limit: number): Promise<Map<number, FeedChanges>> {
        const feeds = [...after.keys()]
        // one statement, one snapshot: each feed's row, its datastreams' deletions and its points after the seq given (the (feed, seq) index)
        const rows = await this.rows<{ kind: "f" | "d" | "p"; feed: number; seq: number | null; other: number | null; stream: string | null; at_ms: number | null; value: string | null }>(
            `SELECT 'f' AS kind, id AS feed, last_seq AS seq, unnamed_deleted_seq AS other, NULL::text AS stream, NULL::bigint AS at_ms, NULL::text AS value FROM feeds WHERE id = ANY($1::bigint[])
             UNION ALL
             SELECT 'd', t.f, x.seq, x.earlier_seq, x.stream, NULL, NULL FROM unnest($1::bigint[], $2::bigint[]) AS t(f, s)
             CROSS JOIN LATERAL (SELECT stream, seq, earlier_seq FROM datastream_deletions WHERE feed = t.f AND seq > t.s ORDER BY seq LIMIT $3) x
             UNION ALL
             SELECT 'p', t.f, d.seq, NULL, d.stream, d.at_ms, d.value FROM unnest($1::bigint[], $2::bigint[]) AS t(f, s)
             CROSS JOIN LATERAL (SELECT stream, at_ms, value, seq FROM datapoints WHERE feed = t.f AND seq > t.s ORDER BY seq LIMIT $3) d`,
            [feeds, feeds.map((f) => after.get(f)), limit + 1],
        )
        const out = new Map<number, FeedChanges>()
        for (const r of rows) if (r.kind === "f") out.set(r.feed, { lastSeq: r.seq ?? 0, unnamedDeletionSeq: r.other ?? 0, deletions: [], points: [] })
        for (const r of rows) {
            const f = out.get(r.feed)
            if (r.kind === "d") f?.deletions.push({ stream: r.stream!, seq: r.seq!, earlierSeq: r.other ?? 0 })
            else if (r.kind === "p") f?.points.push({ stream: r.stream!, atMs: r.at_ms!, value: r.value!, seq: r.seq! })
        }
        for (const f of out.values()) {
            f.points.sort((a, b) => a.seq - b.seq)
            f.deletions.sort((a, b) => a.seq - b.seq)
        }
        return out
    }

    async lastCommits(): Promise<Map<string, number>> {
        const rows = await this.rows<{ process: string; last_txn: number }>("SELECT process, last_txn FROM publishers")
        return new Map(rows.map((r) => [r.process, r.last_txn]))
    }

    async prune(beforeMs: number): Promise<number> {
        let n = 0
        // one statement a chunk: the points and what it deleted from each datastream (SeqReplay.trimmedSeq, trimmedAtMs)
        const chunk = async (feed: number): Promise<number> => {
            const [{ deleted }] = await this.rows<{ deleted: number }>(
                `WITH gone AS (DELETE FROM datapoints WHERE ctid = ANY(ARRAY(SELECT ctid FROM datapoints WHERE feed = $1 AND at_ms < $2 LIMIT ${PRUNE_CHUNK_ROWS})) RETURNING stream, seq, at_ms),
                 raised AS (INSERT INTO retention_trims (feed, stream, seq, at_ms, at_written) SELECT $1, stream, max(seq), max(at_ms), TRUE FROM gone GROUP BY stream
                            ON CONFLICT (feed, stream) DO UPDATE SET ${raiseTrimSql("GREATEST")})
                 SELECT count(*)::int AS deleted FROM gone`,
                [feed, beforeMs],
            )
            return deleted
        }
        // the engines' one chunk loop (store.ts deleteInChunks), as SQLite's prune
        for (const { id } of await this.rows<{ id: number }>("SELECT id FROM feeds")) {
            n += await deleteInChunks({ chunk: () => chunk(id), chunkRows: PRUNE_CHUNK_ROWS, closed: () => this.closed, failureOf: (e) => this.failureOf(e) })
        }
        return n
    }

    async listKeys(): Promise<KeyRecord[]> {
        return (await this.rows<KeyRow>("SELECT * FROM api_keys ORDER BY created_ms, id")).map(keyOf)
    }

    /** A change to keys in one transaction, announced to every process (and counted here at once). */
    private async keysChange<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
        let count = 0
        const out = await this.transaction(async (c) => {
            const r = await fn(c)
            // last: the lock is held only for the count's update and the commit
            count = await this.countKeysChange(c, true)
            return r
        })
        this.keysMoved(count)
        return out
    }

    async insertKey(k: KeyRecord): Promise<void> {
        await this.keysChange((c) => this.insertKeyRow(c, k))
    }

    /** A key row, inside a transaction. */
    private async insertKeyRow(c: pg.PoolClient, k: KeyRecord): Promise<void> {
        // a new feed's id never lands on one a key was made for (that key would grant it)
        if (k.feeds?.length) await c.query("UPDATE settings SET int_value = GREATEST(int_value, $1) WHERE name = 'feed_id_high_water'", [Math.max(...k.feeds)])
        await c.query(
            "INSERT INTO api_keys (id, hash, hash_kind, label, permissions, feeds, master, created_ms, revoked_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [k.id, k.hash, k.hashKind, k.label, JSON.stringify(k.permissions), k.feeds ? JSON.stringify(k.feeds) : null, k.master, k.createdMs, k.revokedMs ?? null],
        )
    }

    async revokeKey(id: string, atMs: number): Promise<boolean> {
        return this.keysChange(async (c) => ((await c.query("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL", [atMs, id])).rowCount ?? 0) > 0)
    }

    async rehashKeys(changes: { id: string; from: Buffer; to: Buffer }[], kind: KeyHashKind): Promise<number> {
        if (this.closed) return 0
        return this.keysChange(async (c) => {
            let n = 0
            for (const ch of changes) n += (await c.query("UPDATE api_keys SET hash = $1, hash_kind = $2 WHERE id = $3 AND hash = $4", [ch.to, kind, ch.id, ch.from])).rowCount ?? 0
            return n
        })
    }

    async keyHashSalt(): Promise<Buffer> {
        return (await this.rows<{ v: Buffer }>("SELECT bytes_value AS v FROM settings WHERE name = 'key_hash_salt'"))[0].v
    }

    async storeId(): Promise<string> {
        return (await this.rows<{ v: string }>("SELECT text_value AS v FROM settings WHERE name = 'store_id'"))[0].v
    }

    async revokeTokenFamily(family: string, untilMs: number): Promise<void> {
        const now = this.now()
        await this.keysChange(async (c) => {
            await c.query("DELETE FROM revoked_token_families WHERE until_ms <= $1", [now])
            if (untilMs > now) {
                await c.query(
                    "INSERT INTO revoked_token_families (family, until_ms) VALUES ($1, $2) ON CONFLICT (family) DO UPDATE SET until_ms = GREATEST(revoked_token_families.until_ms, excluded.until_ms)",
                    [family, untilMs],
                )
            }
        })
    }

    async revokedTokenFamilies(): Promise<string[]> {
        return (await this.rows<{ family: string }>("SELECT family FROM revoked_token_families WHERE until_ms > $1", [this.now()])).map((r) => r.family)
    }

    async pruneRevokedTokenFamilies(): Promise<number> {
        return (await this.query("DELETE FROM revoked_token_families WHERE until_ms <= $1", [this.now()])).rowCount ?? 0
    }

    // ---- fleet: products and devices (the same as sqlite.ts; here a claim locks its product's row, so
    // claims of one product on several processes are decided one at a time against its claim limit) ----

    async insertProduct(p: ProductRecord): Promise<void> {
        await this.query(
            "INSERT INTO products (id, title, verify_key, datastreams, allow_list, claim_limit, created_ms, revoked_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [p.id, p.title, p.verifyKey, JSON.stringify(p.datastreams), p.allowList ? JSON.stringify(p.allowList) : null, p.claimLimit ?? null, p.createdMs, p.revokedMs ?? null],
        )
    }

    async listProducts(): Promise<ProductRecord[]> {
        return (await this.rows<ProductRow>("SELECT * FROM products ORDER BY created_ms, id")).map(productOf)
    }

    async getProduct(id: string): Promise<ProductRecord | undefined> {
        const [r] = await this.rows<ProductRow>("SELECT * FROM products WHERE id = $1", [id])
        return r && productOf(r)
    }

    async revokeProduct(id: string, atMs: number): Promise<boolean> {
        return ((await this.query("UPDATE products SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL", [atMs, id])).rowCount ?? 0) > 0
    }

    async listDevices(product?: string): Promise<DeviceRecord[]> {
        const rows =
            product === undefined
                ? await this.rows<DeviceRow>("SELECT * FROM devices ORDER BY claimed_ms, id")
                : await this.rows<DeviceRow>("SELECT * FROM devices WHERE product = $1 ORDER BY claimed_ms, id", [product])
        return rows.map(deviceOf)
    }

    async getDevice(id: string): Promise<DeviceRecord | undefined> {
        const [r] = await this.rows<DeviceRow>("SELECT * FROM devices WHERE id = $1", [id])
        return r && deviceOf(r)
    }

    async findDevice(product: string, hardwareId: string): Promise<DeviceRecord | undefined> {
        const [r] = await this.rows<DeviceRow>("SELECT * FROM devices WHERE product = $1 AND hardware_id = $2", [product, hardwareId])
        return r && deviceOf(r)
    }

    /** The product a claim is for, locked inside the claim's transaction: it must exist and take claims. */
    private async claimableProduct(c: pg.PoolClient, id: string): Promise<ProductRow> {
        const [p] = (await c.query<ProductRow>("SELECT * FROM products WHERE id = $1 FOR UPDATE", [id])).rows
        if (!p) throw new StoreError("no-such-product", `there is no product ${id}`)
        if (p.revoked_ms !== null) throw new StoreError("product-revoked", `product ${id} was revoked and takes no new claims; its devices keep working`)
        return p
    }

    private async activeDevices(c: pg.PoolClient, product: string): Promise<number> {
        return (await c.query<{ n: number }>("SELECT COUNT(*)::int AS n FROM devices WHERE product = $1 AND revoked_ms IS NULL", [product])).rows[0].n
    }

    /** A new feed for a device with its datastreams, inside a transaction. */
    private async deviceFeedRow(c: pg.PoolClient, title: string, datastreams: string[], now: number): Promise<number> {
        const feed = await this.insertFeedRow(c, undefined, title, now)
        await c.query("INSERT INTO datastreams (feed, id, created_ms) SELECT $1, id, $3 FROM unnest($2::text[]) AS t(id) ON CONFLICT DO NOTHING", [feed, datastreams, now])
        return feed
    }

    private async deviceRow(c: pg.PoolClient, id: string, lock = false): Promise<DeviceRow | undefined> {
        return (await c.query<DeviceRow>(`SELECT * FROM devices WHERE id = $1${lock ? " FOR UPDATE" : ""}`, [id])).rows[0]
    }

    async claimNewDevice(claim: NewDeviceClaim): Promise<DeviceRecord> {
        return this.keysChange(async (c) => {
            const p = await this.claimableProduct(c, claim.product)
            if ((await c.query("SELECT 1 FROM devices WHERE product = $1 AND hardware_id = $2", [claim.product, claim.hardwareId])).rowCount) {
                throw new StoreError("device-exists", `hardware id ${claim.hardwareId} has claimed from product ${claim.product} already`)
            }
            if (p.claim_limit !== null && (await this.activeDevices(c, claim.product)) >= p.claim_limit) {
                throw new StoreError("claim-limit", `product ${claim.product} has its limit of ${p.claim_limit} devices; raise it or revoke one`)
            }
            const feed = await this.deviceFeedRow(c, claim.feedTitle, claim.datastreams, claim.atMs)
            await this.insertKeyRow(c, { ...claim.key, feeds: [feed] })
            await c.query(
                "INSERT INTO devices (id, product, hardware_id, name, feed, key_id, firmware, claimed_ms) VALUES ($1, $2, $3, '', $4, $5, $6, $7)",
                [claim.deviceId, claim.product, claim.hardwareId, feed, claim.key.id, claim.firmware, claim.atMs],
            )
            return deviceOf((await this.deviceRow(c, claim.deviceId))!)
        })
    }

    async reissueDeviceKey(r: DeviceKeyReissue): Promise<DeviceRecord> {
        return this.keysChange(async (c) => {
            const d = await this.deviceRow(c, r.deviceId, true)
            if (!d) throw new StoreError("no-such-device", `there is no device ${r.deviceId}`)
            if (d.key_id !== r.expectKeyId) throw new StoreError("device-changed", `device ${r.deviceId} was given another key meanwhile; claim again`)
            await this.claimableProduct(c, d.product)
            // a device whose feed was deleted gets a new one: the old id is never given out again [P§10]
            const feedLives = (await c.query("SELECT 1 FROM feeds WHERE id = $1", [d.feed])).rowCount
            const feed = feedLives ? d.feed : await this.deviceFeedRow(c, r.feedTitle, r.datastreams, r.atMs)
            await c.query("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL", [r.atMs, d.key_id])
            await this.insertKeyRow(c, { ...r.key, feeds: [feed] })
            await c.query(
                "UPDATE devices SET key_id = $1, feed = $2, firmware = $3, key_used_ms = NULL, rearmed_ms = NULL, revoked_ms = NULL WHERE id = $4",
                [r.key.id, feed, r.firmware, r.deviceId],
            )
            return deviceOf((await this.deviceRow(c, r.deviceId))!)
        })
    }

    async renameDevice(id: string, name: string, atMs: number): Promise<boolean> {
        return this.transaction(async (c) => {
            const d = await this.deviceRow(c, id, true)
            if (!d) return false
            await c.query("UPDATE devices SET name = $1 WHERE id = $2", [name, id])
            await c.query("UPDATE feeds SET title = $1, updated_ms = $2 WHERE id = $3", [name, atMs, d.feed])
            return true
        })
    }

    async rearmDevice(id: string, atMs: number): Promise<boolean> {
        return this.transaction(async (c) => {
            const found = await this.deviceRow(c, id)
            if (!found) return false
            // the product's row first, as claims take it: a re-arm and a claim are counted one after the other
            const [p] = (await c.query<ProductRow>("SELECT * FROM products WHERE id = $1 FOR UPDATE", [found.product])).rows
            const d = (await this.deviceRow(c, id, true))!
            // a revoked device freed its place under the claim limit; re-armed, it takes one again
            if (d.revoked_ms !== null && p.claim_limit !== null && (await this.activeDevices(c, d.product)) >= p.claim_limit) {
                throw new StoreError("claim-limit", `product ${d.product} has its limit of ${p.claim_limit} devices; revoke one before re-arming device ${id}`)
            }
            await c.query("UPDATE devices SET rearmed_ms = $1, revoked_ms = NULL WHERE id = $2", [atMs, id])
            return true
        })
    }

    async revokeDevice(id: string, atMs: number): Promise<DeviceRecord | undefined> {
        return this.keysChange(async (c) => {
            const [r] = (await c.query<DeviceRow>("UPDATE devices SET revoked_ms = $1, rearmed_ms = NULL WHERE id = $2 AND revoked_ms IS NULL RETURNING *", [atMs, id])).rows
            if (!r) return undefined
            await c.query("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL", [atMs, r.key_id])
            return deviceOf(r)
        })
    }

    async markDeviceKeyUsed(deviceId: string, keyId: string, atMs: number): Promise<void> {
        if (this.closed) return
        await this.query("UPDATE devices SET key_used_ms = $1 WHERE id = $2 AND key_id = $3 AND key_used_ms IS NULL", [atMs, deviceId, keyId])
    }

    async noteDevicesSeen(seen: { deviceId: string; atMs: number }[]): Promise<void> {
        if (this.closed || seen.length === 0) return
        await this.query(
            "UPDATE devices d SET last_seen_ms = GREATEST(COALESCE(d.last_seen_ms, 0), s.at) FROM (SELECT id, MAX(at) AS at FROM unnest($1::text[], $2::bigint[]) AS t(id, at) GROUP BY id) s WHERE d.id = s.id",
            [seen.map((x) => x.deviceId), seen.map((x) => x.atMs)],
        )
    }

    keysVersion(): number {
        return this.keysGeneration
    }

    /** The same: what the LISTEN connection has heard is all this store knows, and knowing costs no read. */
    keysVersionAsKnown(): number {
        return this.keysGeneration
    }

    /**
     * A round trip on the LISTEN connection: PostgreSQL signals every listener when a NOTIFY commits, before
     * the committing client hears COMMIT, and sends pending notifications before it answers the next
     * query, so by the answer every announcement committed before this call has been heard.
     */
    async catchUp(): Promise<void> {
        await this.listener?.query("SELECT 1").catch(() => {})
    }

    /** What a commit survives, as the server reports it for this store's connections (logged at start). */
    /** [StoreEngine] postgresFailure: the boundary (storage/boundary.ts) asks it of whatever a call threw. */
    failureOf(e: unknown): StoreError | undefined {
        return postgresFailure(e)
    }

    async durability(): Promise<{ synchronousCommit: string; fsync: string }> {
        const r = await this.rows<{ sc: string; fs: string }>("SELECT current_setting('synchronous_commit') AS sc, current_setting('fsync') AS fs")
        return { synchronousCommit: r[0].sc, fsync: r[0].fs }
    }

    /** Commits what is pending, then closes the connections (the claim's lock goes with its connection). */
    async close(): Promise<void> {
        if (this.closed) return
        // new writes are refused from now on; those queued still commit
        this.closed = true
        while (this.committing || this.pending.length || this.flushScheduled) {
            if (this.committing) await this.committing
            else await new Promise((r) => setImmediate(r))
        }
        clearTimeout(this.listenTimer)
        clearInterval(this.listenCheck)
        clearTimeout(this.settleTimer)
        const listener = this.listener
        this.listener = undefined
        await listener?.end().catch(() => {})
        await this.pool.end()
    }
}

/** Ends a client without waiting for a link that may be dead: its socket is destroyed, its "error" heard. */
function dropClient(client: pg.Client): void {
    client.on("error", () => {})
    destroyLink(client)
    client.end().catch(() => {})
}

/** Destroys a client's socket: what it waits for fails at once (node-postgres: "Connection terminated unexpectedly"). */
function destroyLink(client: pg.Client): void {
    ;(client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy()
}
