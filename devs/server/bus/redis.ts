// The bus of several servers on one store: Redis (`--redis-url`, ioredis).
//   - changes: published on one channel (pub/sub) as JSON, each with the publishing process's id; every
//     process hears every change and hands those of others to its hub. Pub/sub keeps nothing: a process
//     whose subscription connection broke may have missed changes, so it says so (onInterrupted) when the
//     link breaks, every SUBSCRIBER_PING_MS while it is down, and when it is back.
//   - the session list: each process writes its entries every SESSION_ANNOUNCE_MS into a hash of its own
//     that expires after SESSION_TTL_MS, so a process that dies drops out of every list within that;
//     the set of processes is a Redis set, pruned of those whose hash is gone.
//   - the per-key budget: one token bucket per key in Redis, taken by a Lua script (atomic) on Redis's
//     own clock (the processes' clocks may differ); requests of one turn go to Redis in one round trip
//     (auto-pipelining). When Redis cannot be asked, requests are let through (logged): a broken
//     limiter must not stop a fleet.
import { Redis } from "ioredis"
import type { Grant } from "../auth/grant.ts"
import type { HubMessage } from "../hub/index.ts"
import { LogThrottle, type Logger } from "../log.ts"
import { retryHintMs, TAKEN, type BucketConfig, type Take } from "../ratelimit.ts"
import type { Bus, KeyRate, SessionDirectory, SessionEntry } from "./bus.ts"
import { newProcessId } from "./local.ts"
import { redactedUrl } from "../redacted-url.ts"
import { backoffDelayMs, type BackoffConfig } from "../../../src/backoff.ts"
import { UnavailableError } from "../errors.ts"
import { UnheardCommits } from "./unheard-commits.ts"

/** Every key and channel of one store's processes: `feedline:<store id>:…` (Store.storeId), so the processes of two stores on one Redis never hear each other. */
class Names {
    readonly changes: string
    readonly processes: string
    constructor(private readonly prefix: string) {
        this.changes = `${prefix}changes`
        this.processes = `${prefix}processes`
    }
    sessions(processId: string): string {
        return `${this.prefix}sessions:${processId}`
    }
    bucket(keyId: string): string {
        return `${this.prefix}key-rate:${keyId}`
    }
}

/**
 * Each process writes its session entries this often; another process's list shows a new connection
 * within about this long (docs/OPERATIONS.md "Running more than one process").
 */
const SESSION_ANNOUNCE_MS = 1000
/** ... and they expire this long after the last write: a dead process's connections leave the lists within 5 s. */
const SESSION_TTL_MS = 5000
/**
 * A GET /sessions reads the other processes' entries from Redis at most this often (lists within it share one
 * read): each list read every process's hash whole and parsed every entry, so a key's 200 requests a second
 * were 200 full reads of the deployment's connections, for entries that change once per SESSION_ANNOUNCE_MS.
 */
export const OTHERS_SESSIONS_FRESH_MS = 500
/** Connecting to Redis at start may take this long; then the server does not start (the error says where it tried). */
const CONNECT_TIMEOUT_MS = 10_000
/** Shutting down waits this long for Redis to take what was published, then drops the link (Redis may be the thing that is down). */
const CLOSE_WAIT_MS = 3000
/**
 * A command without an answer for this long fails (Redis stalled, or a link gone silent): the per-key
 * budget then lets the request through, as when Redis is down, instead of holding it for as long as Redis stalls.
 */
const COMMAND_TIMEOUT_MS = 1000
/**
 * The subscription connection is pinged this often; no answer within PING_TIMEOUT_MS and it is made again
 * (onInterrupted). While it is down, onInterrupted is said this often too: the feeds subscribed here are
 * caught up from the store meanwhile.
 */
const SUBSCRIBER_PING_MS = 2000
const PING_TIMEOUT_MS = 5000
/**
 * After a question to Redis about a budget failed (or timed out), requests are let through without
 * asking for this long: while Redis is away, only one request in this long waits for it.
 */
const LIMITER_PAUSE_MS = 1000
const LET_THROUGH: Take = { ok: true, retryAfterMs: 0 }
/** A limiter that cannot reach Redis logs at most once per this long. */
const LIMITER_LOG_EVERY_MS = 10_000

/**
 * A token bucket per key: KEYS[1] the bucket, ARGV[1] tokens per second, ARGV[2] burst. Returns
 * {1, 0} when a token was taken, {0, ms until this request's turn} when not: ratelimit.ts retryTurnMs,
 * decided the same way here ('queued' is the turn promised to the last refusal), jittered by the caller.
 * Time is Redis's (TIME).
 */
const TAKE_TOKEN_LUA = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'queued')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local ok = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
else
  local token_ms = 1000 / rate
  local turn = now + (1 - tokens) * token_ms
  local queued = tonumber(b[3])
  if queued and queued + token_ms > turn then turn = queued + token_ms end
  turn = math.min(turn, now + burst * token_ms)
  if not queued or turn > queued then queued = turn end
  retry = math.ceil(turn - now)
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now), 'queued', tostring(queued))
end
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {ok, retry}
`

type TakeToken = (key: string, rate: number, burst: number) => Promise<[number, number]>

interface Envelope {
    /** the publishing process */
    p: string
    /** its count of publishes (1, 2, 3, …): a receiver drops one it heard already and notices one that never came */
    n: number
    /**
     * `{events: []}` carries only the count: sent after a publish failed, so the others notice the gap
     * without waiting for the next change (and processes of an older version, during an upgrade, ignore it)
     */
    m: HubMessage
}

/**
 * The store's record of every process's last commit is read this often (CommitLog.last), and a commit
 * whose changes have not arrived UNHEARD_LAPSE_MS after it was first seen there counts as missed
 * (unheard-commits.ts): far above the milliseconds a publish takes, so a busy process is not mistaken for
 * one that lost its changes.
 */
const COMMIT_CHECK_MS = 1000
const UNHEARD_LAPSE_MS = 5000
/**
 * The read of that record that sets what counts as heard (at start, and when the link to Redis is back) is
 * tried again after a failure with this backoff (full jitter): the catch-up that covers what it counts as
 * heard must read the store after it, so nothing goes on without it. At start it is given CONNECT_TIMEOUT_MS.
 */
const BASELINE_RETRY: BackoffConfig = { baseMs: 100, capMs: 2000 }

/** The store's record of which process committed what (Store.recordCommitsAs, Store.lastCommits). */
export interface CommitLog {
    recordAs(process: string): void
    last(): Promise<Map<string, number>>
}

/** Publishers whose last count a process remembers; past this it forgets them all (and checks each anew from its next message). */
const MAX_PUBLISHERS_HEARD = 10_000

export class RedisBus implements Bus {
    readonly kind = "redis"
    readonly processId = newProcessId()
    private readonly messageHandlers: ((m: HubMessage) => void)[] = []
    private readonly interruptedHandlers: ((why: string) => void)[] = []
    /**
     * the subscription connection lost its link since it last was subscribed, or it is subscribed again but the
     * store's record of commits has not been read since (the return is not said before it is: resubscribe)
     */
    private broken = false
    /** times the subscription connection closed: a return under way whose link closed again stops (the next "ready" starts anew) */
    private linkDrops = 0
    /** why the link counts as down, said with the notices every SUBSCRIBER_PING_MS */
    private downWhy = "the link to Redis is down"
    private closing = false
    private readonly limiterLog = new LogThrottle(LIMITER_LOG_EVERY_MS)
    /** the per-key limit does not ask Redis before this (LIMITER_PAUSE_MS; the callers' monotonic clock) */
    private limiterPausedUntilMs = 0
    /** [0, 1), drawn for a budget refusal's jitter (ratelimit.ts retryHintMs) */
    private readonly random: () => number = Math.random
    private pinger?: NodeJS.Timeout
    /** publishes so far (Envelope.n) */
    private published = 0
    /** a publish failed: the next "ready" sends the count */
    private owesCount = false
    /** each other publisher's last count heard */
    private readonly heard = new Map<string, number>()
    private pinging = false
    /** commits of others whose changes never arrived (CommitLog) */
    private readonly unheard = new UnheardCommits(this.processId, UNHEARD_LAPSE_MS)
    private commitCheck?: NodeJS.Timeout
    private commits?: CommitLog
    /** the read of the store's record of commits under way */
    private checkingCommits?: Promise<void>

    private constructor(
        /** commands: publish, sessions, rate limits */
        private readonly client: Redis,
        /** the subscription (a connection in subscriber mode takes no other commands) */
        private readonly subscriber: Redis,
        private readonly log: Logger,
        private readonly names: Names,
    ) {
        client.defineCommand("takeToken", { numberOfKeys: 1, lua: TAKE_TOKEN_LUA })
        client.on("ready", () => this.publishCount())
        subscriber.on("message", (_channel: string, text: string) => this.received(text))
        subscriber.on("close", () => {
            this.linkDrops++
            this.downWhy = "the link to Redis is down"
            this.interrupted("the link to Redis broke")
        })
        subscriber.on("ready", () => void this.resubscribe())
        // ioredis retries by itself; an unhandled "error" event would end the process
        for (const c of [client, subscriber]) c.on("error", (err) => this.log.warn({ err: err.message }, "Redis connection error; retrying"))
    }

    /** Connects both connections and subscribes; rejects (with where it tried) when Redis cannot be reached in time. */
    static async connect(url: string, log: Logger, storeId: string, commits?: CommitLog): Promise<RedisBus> {
        const options = { lazyConnect: true, enableAutoPipelining: true, maxRetriesPerRequest: 2, connectTimeout: CONNECT_TIMEOUT_MS }
        const client = new Redis(url, { ...options, commandTimeout: COMMAND_TIMEOUT_MS })
        // subscribed again by this bus after a reconnect, to know when Redis has confirmed it (resubscribe)
        const subscriber = new Redis(url, { ...options, enableAutoPipelining: false, autoResubscribe: false })
        const bus = new RedisBus(client, subscriber, log, new Names(`feedline:${storeId}:`))
        try {
            await withTimeout(Promise.all([client.connect(), subscriber.connect()]), CONNECT_TIMEOUT_MS, `Redis at ${redactedUrl(url)} did not answer within ${CONNECT_TIMEOUT_MS} ms`)
            await subscriber.subscribe(bus.names.changes)
        } catch (e) {
            client.disconnect()
            subscriber.disconnect()
            throw e
        }
        bus.pinger = setInterval(() => bus.pingSubscriber(), SUBSCRIBER_PING_MS)
        bus.pinger.unref()
        if (commits) {
            commits.recordAs(bus.processId)
            // what was committed before this process serves anyone counts as heard: its subscribers' replays hold
            // it. Not read, a later read would take its place and count as heard what was committed after the
            // hub read the feeds' last seqs (index.ts): a dead publisher's commit of that window never pushed
            const startedMs = performance.now()
            const read = await bus.readBaseline(commits, () => performance.now() - startedMs < CONNECT_TIMEOUT_MS)
            if (read !== true) {
                await bus.close()
                throw new UnavailableError(`PostgreSQL's record of commits could not be read within ${CONNECT_TIMEOUT_MS} ms (${read.message})`)
            }
            bus.commits = commits
            bus.commitCheck = setInterval(() => void bus.checkCommits(commits), COMMIT_CHECK_MS)
            bus.commitCheck.unref()
        }
        return bus
    }

    /**
     * The subscription connection is back. A change published before Redis has confirmed the SUBSCRIBE
     * (ioredis is `ready` before that) does not reach this process, so the return is said only once it has:
     * every change published from then on arrives, and every one committed before the catch-up that
     * follows is in the store it reads. The store's record of commits is read before that catch-up too:
     * what it counts as heard is in the catch-up's read (with the return said at `ready`, a change of
     * that window, on a feed that then went quiet, was never pushed here).
     */
    private async resubscribe(): Promise<void> {
        if (!this.broken || this.closing) return
        const drops = this.linkDrops
        const same = () => this.broken && !this.closing && this.linkDrops === drops
        try {
            await this.subscriber.subscribe(this.names.changes)
        } catch (err) {
            // the link broke again (its next "ready" tries again) or Redis refused: still down, the ping's notices go on
            return this.log.warn({ err: (err as Error).message }, "subscribing again to the changes of the other processes failed")
        }
        if (!same()) return
        // what was committed until now counts as heard: the catch-up below reads it from the store; what follows is
        // checked. The read must succeed before the return is said: taken by a later read instead, it would count as
        // heard what was committed after the catch-up's read (a dead publisher's commit, its feed quiet, never pushed).
        // Until then the link counts as down: the feeds subscribed here are caught up from the store every
        // SUBSCRIBER_PING_MS meanwhile, as while it was down
        this.unheard.rebaseline()
        if (this.commits) {
            this.downWhy = "the link to Redis is back, but PostgreSQL's record of commits could not be read yet"
            if ((await this.readBaseline(this.commits, same)) !== true || !same()) return
        }
        this.broken = false
        this.downWhy = "the link to Redis is down"
        // changes published while the link was down never arrive
        this.interruptedHandlers.forEach((h) => h("the link to Redis is back; changes published meanwhile were missed"))
    }

    /**
     * Reads the store's record of commits as what counts as heard (UnheardCommits' baseline), trying again
     * with BASELINE_RETRY's backoff while `still()`: true once read, else the last failure.
     */
    private async readBaseline(commits: CommitLog, still: () => boolean): Promise<true | Error> {
        for (let attempt = 0; ; attempt++) {
            let failure: Error
            try {
                const last = await commits.last()
                if (!still()) return new Error("given up")
                // the baseline: nothing is late in it
                this.unheard.check(last, performance.now())
                return true
            } catch (err) {
                failure = err as Error
            }
            const waitMs = backoffDelayMs(BASELINE_RETRY, attempt, Math.random(), 0)
            this.log.warn({ err: failure.message, attempt: attempt + 1, retryInMs: waitMs }, "reading PostgreSQL's record of commits failed; reading it again (the other processes' changes are caught up from the store meanwhile)")
            await new Promise((r) => setTimeout(r, waitMs).unref())
            if (!still()) return failure
        }
    }

    /**
     * Pub/sub says nothing when no message comes: a subscription connection that went silent (Redis
     * stalled, a partition) would leave subscribers without the others' pushes and without a word. A ping
     * not answered in time counts as a broken link: the connection is made again, and subscribers told.
     */
    private pingSubscriber(): void {
        // while the link is down nothing of the others arrives: they are caught up from the store meanwhile (wiring.ts)
        if (this.broken && !this.closing) this.interruptedHandlers.forEach((h) => h(this.downWhy))
        if (this.pinging || this.closing || this.subscriber.status !== "ready") return
        this.pinging = true
        withTimeout(this.subscriber.ping(), PING_TIMEOUT_MS, "no answer to a ping")
            .catch((err) => {
                if (this.closing) return
                this.log.warn({ err: (err as Error).message }, "the Redis subscription connection did not answer; making it again")
                this.interrupted("the link to Redis stopped answering")
                this.subscriber.disconnect(true)
            })
            .finally(() => (this.pinging = false))
    }

    /**
     * A process that committed changes while its link to Redis was down, and died before it was back,
     * never publishes them, nor anything after that would show the gap: the store's record of its last
     * commit does (unheard-commits.ts).
     */
    private checkCommits(commits: CommitLog): Promise<void> {
        if (this.closing || this.broken) return Promise.resolve()
        // one read at a time; a caller waiting for the baseline waits for the read under way
        return (this.checkingCommits ??= commits
            .last()
            .then((last) => {
                if (this.closing || this.broken) return
                const late = this.unheard.check(last, performance.now())
                if (late.length === 0) return
                this.log.warn({ publishers: late }, "changes another process committed did not arrive")
                this.interruptedHandlers.forEach((h) => h("changes another process committed did not arrive"))
            })
            // the store unreachable: its writes fail too; the next check looks again
            .catch(() => {})
            .finally(() => (this.checkingCommits = undefined)))
    }

    private interrupted(why: string): void {
        if (this.closing || this.broken) return
        this.broken = true
        this.interruptedHandlers.forEach((h) => h(why))
    }

    private received(text: string): void {
        let e: Envelope
        try {
            e = JSON.parse(text) as Envelope
        } catch {
            return this.log.warn("an unreadable message on the feedline changes channel: ignored")
        }
        if (e.p === this.processId) return // this process's hub had it already
        const last = this.heard.get(e.p)
        // ioredis sends a command again after a reconnect when its answer was lost: Redis may have published it already
        if (last !== undefined && e.n <= last) return
        if (this.heard.size >= MAX_PUBLISHERS_HEARD) this.heard.clear()
        this.heard.set(e.p, e.n)
        if (last !== undefined && e.n > last + 1) {
            // the publisher's link to Redis broke while this one's held: its changes in between never came
            this.log.warn({ publisher: e.p, missed: e.n - last - 1 }, "changes another process published did not arrive")
            this.interruptedHandlers.forEach((h) => h("changes another process published did not arrive"))
        }
        // the commits it carries (changes, deletions) have reached this process
        if ("events" in e.m) {
            for (const ev of e.m.events) if (ev.txn !== undefined) this.unheard.heardFrom(e.p, ev.txn)
        } else if (e.m.txn !== undefined) this.unheard.heardFrom(e.p, e.m.txn)
        if ("events" in e.m && e.m.events.length === 0) return // the count alone
        for (const h of this.messageHandlers) h(e.m)
    }

    publish(message: HubMessage): void {
        if (this.closing) return
        const text = JSON.stringify({ p: this.processId, n: ++this.published, m: message } satisfies Envelope, (_k, v) => (v === Infinity ? "Infinity" : v))
        this.client.publish(this.names.changes, text).catch((err) => {
            this.log.error({ err: err.message }, "publishing changes to the other processes failed or timed out; if they never arrive, the others tell their subscribers to resubscribe")
            // the count alone, as soon as Redis takes commands again: the others see the gap and tell their subscribers
            this.owesCount = true
            if (this.client.status === "ready") this.publishCount()
        })
    }

    private publishCount(): void {
        if (!this.owesCount) return
        this.owesCount = false
        this.publish({ events: [] })
    }

    onMessage(handler: (message: HubMessage) => void): void {
        this.messageHandlers.push((m) => handler(reviveInfinity(m)))
    }

    onInterrupted(handler: (why: string) => void): void {
        this.interruptedHandlers.push(handler)
    }

    sessionDirectory(local: (viewer?: Grant) => SessionEntry[]): SessionDirectory {
        const key = this.names.sessions(this.processId)
        const announce = async () => {
            const entries = local()
            const tx = this.client.multi().del(key)
            if (entries.length) tx.hset(key, Object.fromEntries(entries.map((e) => [e.id, JSON.stringify(e)])))
            // an empty hash does not exist: a process without connections has nothing to expire
            await tx.pexpire(key, SESSION_TTL_MS).sadd(this.names.processes, this.processId).exec()
        }
        const timer = setInterval(() => void announce().catch((err) => this.log.warn({ err: err.message }, "announcing this process's sessions to Redis failed")), SESSION_ANNOUNCE_MS)
        timer.unref()
        void announce().catch(() => {})
        /** the last read of the others' entries, shared by the lists within OTHERS_SESSIONS_FRESH_MS of it */
        let othersRead: { atMs: number; entries: Promise<SessionEntry[]> } | undefined
        return {
            list: async (viewer) => {
                const mine = local(viewer)
                const nowMs = performance.now()
                if (othersRead === undefined || nowMs - othersRead.atMs >= OTHERS_SESSIONS_FRESH_MS) othersRead = { atMs: nowMs, entries: this.othersSessions() }
                const read = othersRead
                let others: SessionEntry[] = []
                try {
                    others = await read.entries
                } catch (err) {
                    if (othersRead === read) othersRead = undefined // the next list asks again
                    this.log.warn({ err: (err as Error).message }, "reading other processes' sessions from Redis failed; listing this process's only")
                }
                return [...mine, ...others]
            },
            close: async () => {
                clearInterval(timer)
                const withdrawn = this.client.multi().del(key).srem(this.names.processes, this.processId).exec()
                await withTimeout(withdrawn, CLOSE_WAIT_MS, "").catch(() => {})
            },
        }
    }

    private async othersSessions(): Promise<SessionEntry[]> {
        const processes = (await this.client.smembers(this.names.processes)).filter((p) => p !== this.processId)
        if (processes.length === 0) return []
        const pipeline = this.client.pipeline()
        for (const p of processes) pipeline.hvals(this.names.sessions(p))
        const results = (await pipeline.exec()) ?? []
        const out: SessionEntry[] = []
        const gone: string[] = []
        results.forEach(([err, values], i) => {
            const list = err ? [] : (values as string[])
            if (!err && list.length === 0) gone.push(processes[i])
            for (const v of list) out.push(JSON.parse(v) as SessionEntry)
        })
        // a process whose hash expired (it died, or has no connections now): out of the set until it announces again
        if (gone.length) await this.client.srem(this.names.processes, ...gone)
        return out
    }

    keyRate(config: BucketConfig): KeyRate {
        const takeToken = (this.client as unknown as { takeToken: TakeToken }).takeToken.bind(this.client)
        return {
            config,
            take: (keyId: string, elapsedMs: number): Take | Promise<Take> => {
                // Redis is known to be away: let the request through at once rather than queue a question for it
                if (this.client.status !== "ready" || elapsedMs < this.limiterPausedUntilMs) return LET_THROUGH
                return takeToken(this.names.bucket(keyId), config.ratePerSecond, config.burst).then(
                    ([ok, turnMs]) => (ok === 1 ? TAKEN : { ok: false, retryAfterMs: retryHintMs(turnMs, this.random()) }),
                    (err) => {
                        this.limiterPausedUntilMs = elapsedMs + LIMITER_PAUSE_MS
                        if (this.limiterLog.due(Date.now())) this.log.warn({ err: (err as Error).message }, "the per-key limit could not ask Redis; requests are let through meanwhile")
                        return LET_THROUGH
                    },
                )
            },
        }
    }

    async close(): Promise<void> {
        if (this.closing) return
        this.closing = true
        clearInterval(this.pinger)
        clearInterval(this.commitCheck)
        // QUIT is answered after every command sent before it: what was published has reached Redis
        const quit = Promise.allSettled([this.client.quit(), this.subscriber.quit()])
        await withTimeout(quit, CLOSE_WAIT_MS, "").catch(() => {})
        this.client.disconnect()
        this.subscriber.disconnect()
    }
}

/** Feed and datastream deletions carry seq Infinity, which JSON cannot: sent as "Infinity", read back here. */
function reviveInfinity(m: HubMessage): HubMessage {
    if ("events" in m) for (const ev of m.events) if ((ev.seq as unknown) === "Infinity") ev.seq = Infinity
    return m
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer))
}
