// Token buckets, pure: the caller passes the time. One per connection for requests, one per remote
// address for failed authentications (see limits.ts for the numbers and their reasons).
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

/** Takes one token if there is one. Mutates `bucket`. */
export function take(bucket: Bucket, cfg: BucketConfig, nowMs: number): Take {
    refill(bucket, cfg, nowMs)
    if (bucket.tokens >= 1) {
        bucket.tokens -= 1
        return { ok: true, retryAfterMs: 0 }
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1000) / cfg.ratePerSecond) }
}

/** Whether a token is there, without taking it. */
export function peek(bucket: Bucket, cfg: BucketConfig, nowMs: number): Take {
    refill(bucket, cfg, nowMs)
    if (bucket.tokens >= 1) return { ok: true, retryAfterMs: 0 }
    return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1000) / cfg.ratePerSecond) }
}

/** Buckets keyed by remote address, bounded: the least recently used address is forgotten first. */
export class AddressBuckets {
    private readonly buckets = new Map<string, Bucket>()

    constructor(
        private readonly cfg: BucketConfig,
        private readonly maxAddresses = MAX_TRACKED_ADDRESSES,
    ) {}

    private bucketOf(address: string, nowMs: number): Bucket {
        let b = this.buckets.get(address)
        if (b) this.buckets.delete(address) // re-insert: Map order is our LRU order
        else b = fullBucket(this.cfg, nowMs)
        this.buckets.set(address, b)
        if (this.buckets.size > this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value as string)
        return b
    }

    take(address: string, nowMs: number): Take {
        return take(this.bucketOf(address, nowMs), this.cfg, nowMs)
    }

    peek(address: string, nowMs: number): Take {
        const b = this.buckets.get(address)
        return b ? peek(b, this.cfg, nowMs) : { ok: true, retryAfterMs: 0 }
    }
}
