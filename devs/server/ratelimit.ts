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
 * (and starts full when it comes back).
 */
export class Buckets {
    private readonly buckets = new Map<string, Bucket>()

    constructor(
        readonly config: BucketConfig,
        private readonly maxNames = MAX_TRACKED_ADDRESSES,
    ) {}

    private bucketOf(name: string, nowMs: number): Bucket {
        let b = this.buckets.get(name)
        if (b) this.buckets.delete(name) // re-insert: Map order is our LRU order
        else b = fullBucket(this.config, nowMs)
        this.buckets.set(name, b)
        if (this.buckets.size > this.maxNames) this.buckets.delete(this.buckets.keys().next().value as string)
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
