// Token buckets, pure: the caller passes the time (and, for a refusal's hint, the randomness). One per
// connection for requests; by name, one per key for requests, per remote address for HTTP requests and failed
// authentications (limits.ts says why).
import { MAX_TRACKED_ADDRESSES, REFUSAL_BURSTS, RETRY_JITTER_SHARE } from "./limits.ts"

export interface Bucket {
    tokens: number
    updatedMs: number
    /**
     * The turn promised to the last request refused (ms, same clock): each refusal is told to come back one
     * token after the one refused before it, so a crowd refused at once is spread over the time the bucket
     * needs to serve it (retryTurnMs). In the past once the shortage is over.
     */
    queuedUntilMs: number
}

export interface BucketConfig {
    /** tokens added per second */
    ratePerSecond: number
    /** capacity: the largest burst */
    burst: number
}

export interface Take {
    ok: boolean
    /** when not ok: ms until this request's turn (retryTurnMs), jittered (retryHintMs) */
    retryAfterMs: number
}

/** [P§6] The budget of the refusals a door answers without taking the request, for a request rate `rate` (limits.ts REFUSAL_BURSTS says why). */
export function refusalBudgetOf(rate: BucketConfig): BucketConfig {
    return { ratePerSecond: rate.ratePerSecond, burst: rate.burst * REFUSAL_BURSTS }
}

export function fullBucket(cfg: BucketConfig, nowMs: number): Bucket {
    return { tokens: cfg.burst, updatedMs: nowMs, queuedUntilMs: -Infinity }
}

function refill(bucket: Bucket, cfg: BucketConfig, nowMs: number): void {
    const elapsed = Math.max(0, nowMs - bucket.updatedMs)
    bucket.tokens = Math.min(cfg.burst, bucket.tokens + (elapsed * cfg.ratePerSecond) / 1000)
    bucket.updatedMs = nowMs
}

/** What take() and peek() answer when a token is there: one object for every request, not one each. */
export const TAKEN: Take = Object.freeze({ ok: true, retryAfterMs: 0 })

/**
 * [P§6] The wait (ms from `nowMs`) until a request refused now can be served, on a bucket just refilled to
 * `nowMs` with less than one token: one token after the turn promised to the request refused before it, or
 * the time until one token, whichever is later. So the k-th of a crowd refused at one instant is told the
 * time of the k-th token to come, not all of them the time of the first (which brought most of them back
 * together to be refused again). A turn is at most the time the bucket takes to fill from empty
 * (burst / rate: 2 s for a key's 200/s with bursts of 400) ahead: a crowd larger than that is over the
 * budget whatever it is told, and one client that ignores its hints cannot push everyone's turn further.
 * Mutates `bucket.queuedUntilMs` only; the tokens stay (a refusal spends nothing). The Redis budget
 * (bus/redis.ts TAKE_TOKEN_LUA) decides the same way, on Redis's clock.
 */
export function retryTurnMs(bucket: Bucket, cfg: BucketConfig, nowMs: number): number {
    const tokenMs = 1000 / cfg.ratePerSecond
    const oneTokenAtMs = nowMs + (1 - bucket.tokens) * tokenMs
    const afterQueueMs = bucket.queuedUntilMs + tokenMs
    const turnAtMs = Math.min(oneTokenAtMs > afterQueueMs ? oneTokenAtMs : afterQueueMs, nowMs + cfg.burst * tokenMs)
    if (turnAtMs > bucket.queuedUntilMs) bucket.queuedUntilMs = turnAtMs
    return turnAtMs - nowMs
}

/**
 * [P§6] retry_after_ms of a refusal whose turn is `waitMs` away: that in whole ms (rounded up), plus up to
 * RETRY_JITTER_SHARE of it drawn uniformly (`rand01` in [0, 1)), floored. Never sooner than the turn (a hint
 * is a floor: a request back before its turn would only be refused again); the spread decorrelates requests
 * given close turns by different limiters or processes, and the clients add their own (src/backoff.ts
 * retryAfterRefusalMs).
 */
export function retryHintMs(waitMs: number, rand01: number): number {
    const turnMs = Math.ceil(waitMs)
    return turnMs + Math.floor(turnMs * RETRY_JITTER_SHARE * rand01)
}

/**
 * Takes one token if there is one, else says when to come back (`random`, default Math.random: looked up and
 * drawn only for a refusal, so the accept path costs what it did). Mutates `bucket`.
 */
export function take(bucket: Bucket, cfg: BucketConfig, nowMs: number, random?: () => number): Take {
    refill(bucket, cfg, nowMs)
    if (bucket.tokens >= 1) {
        bucket.tokens -= 1
        return TAKEN
    }
    return { ok: false, retryAfterMs: retryHintMs(retryTurnMs(bucket, cfg, nowMs), (random ?? Math.random)()) }
}

/**
 * Whether a token is there, without taking it. A refusal here takes no turn (nothing is queued for: the
 * failed-key lockout peeks, and spends a token per failure elsewhere): the time until one token, jittered.
 */
export function peek(bucket: Bucket, cfg: BucketConfig, nowMs: number, random?: () => number): Take {
    refill(bucket, cfg, nowMs)
    if (bucket.tokens >= 1) return TAKEN
    return { ok: false, retryAfterMs: retryHintMs(((1 - bucket.tokens) * 1000) / cfg.ratePerSecond, (random ?? Math.random)()) }
}

/**
 * Buckets by name (a remote address, a key id), bounded: the least recently used name is forgotten first
 * (and starts full when it comes back). Map order is the LRU order; a name used again is moved to its
 * newest end only once it has drifted into the older half, so the hot path (the same few keys, request
 * after request) does not delete and re-insert on every request, and a name is never forgotten within
 * maxNames / 2 insertions of its last use.
 */
export class Buckets {
    private readonly buckets = new Map<string, Bucket & { movedAt: number }>()
    /** insertions and moves so far: a name moved at `movedAt` has at most `moves - movedAt` names after it */
    private moves = 0

    constructor(
        readonly config: BucketConfig,
        private readonly maxNames = MAX_TRACKED_ADDRESSES,
        /** [0, 1), drawn for a refusal's jitter only */
        private readonly random: () => number = Math.random,
    ) {}

    private bucketOf(name: string, nowMs: number): Bucket {
        let b = this.buckets.get(name)
        if (b === undefined) {
            b = { ...fullBucket(this.config, nowMs), movedAt: ++this.moves }
            this.buckets.set(name, b)
            if (this.buckets.size > this.maxNames) this.buckets.delete(this.buckets.keys().next().value as string)
        } else if (this.moves - b.movedAt >= this.maxNames / 2) {
            this.buckets.delete(name)
            this.buckets.set(name, b)
            b.movedAt = ++this.moves
        }
        return b
    }

    take(name: string, nowMs: number): Take {
        return take(this.bucketOf(name, nowMs), this.config, nowMs, this.random)
    }

    peek(name: string, nowMs: number): Take {
        const b = this.buckets.get(name)
        return b ? peek(b, this.config, nowMs, this.random) : TAKEN
    }
}

/**
 * Buckets that read their own clock: for a window that lives only in this process (failed keys per address,
 * shared by the router, the claims and the extensions), on the monotonic clock (ServerOptions.elapsedMs), so a
 * step of the wall clock neither lifts a lockout early nor holds one longer. One clock for every caller: none
 * passes a time of its own.
 */
export class ClockedBuckets {
    constructor(
        private readonly buckets: Buckets,
        private readonly clockMs: () => number,
    ) {}

    get config(): BucketConfig {
        return this.buckets.config
    }

    take(name: string): Take {
        return this.buckets.take(name, this.clockMs())
    }

    peek(name: string): Take {
        return this.buckets.peek(name, this.clockMs())
    }
}
