// Token buckets, pure: the caller passes the time. One per connection for requests; by name, one per key
// for requests, per remote address for HTTP requests and failed authentications (limits.ts says why).
import { MAX_TRACKED_ADDRESSES } from "./limits.ts"

export interface Bucket {
    tokens: number
    updatedMs: number
}

export interface BucketConfig {
    /** tokens added per second */
    ratePerSecond: number
    /** capacity: the largest burst */
    burst: number
}

export interface Take {
    ok: boolean
    /** when not ok: ms until one token is there again */
    retryAfterMs: number
}

export function fullBucket(cfg: BucketConfig, nowMs: number): Bucket {
    return { tokens: cfg.burst, updatedMs: nowMs }
}

function refill(bucket: Bucket, cfg: BucketConfig, nowMs: number): void {
    const elapsed = Math.max(0, nowMs - bucket.updatedMs)
    bucket.tokens = Math.min(cfg.burst, bucket.tokens + (elapsed * cfg.ratePerSecond) / 1000)
    bucket.updatedMs = nowMs
}

/** What take() and peek() answer when a token is there: one object for every request, not one each. */
const TAKEN: Take = Object.freeze({ ok: true, retryAfterMs: 0 })

/** Takes one token if there is one. Mutates `bucket`. */
export function take(bucket: Bucket, cfg: BucketConfig, nowMs: number): Take {
    refill(bucket, cfg, nowMs)
    if (bucket.tokens >= 1) {
        bucket.tokens -= 1
        return TAKEN
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1000) / cfg.ratePerSecond) }
}

/** Whether a token is there, without taking it. */
export function peek(bucket: Bucket, cfg: BucketConfig, nowMs: number): Take {
    refill(bucket, cfg, nowMs)
    if (bucket.tokens >= 1) return TAKEN
    return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1000) / cfg.ratePerSecond) }
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
        return take(this.bucketOf(name, nowMs), this.config, nowMs)
    }

    peek(name: string, nowMs: number): Take {
        const b = this.buckets.get(name)
        return b ? peek(b, this.config, nowMs) : TAKEN
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
