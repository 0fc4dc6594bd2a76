// Requests in flight [P§5, P§6]: short tokens unique for the life of the link, and an acknowledgement
// deadline per request. A missed deadline is treated like silence (the link reconnects).

/** What a request was for, so its response can be routed. */
export type RequestKind = "batch" | "subscribe"

export interface PendingRequest {
    token: string
    kind: RequestKind
    /** ds.millis() when sent: the round-trip time is measured from here */
    sentMs: number
    deadlineMs: number
    /** the batch id, or the subscription's index */
    ref: number
}

export class RequestTable {
    /** never reset, so a late response from an earlier connection can never match a new request */
    private counter = 0
    private pending: PendingRequest[] = []

    /** A fresh token: a counter in base 36, 1-5 characters for years of traffic (it is echoed in every response). */
    nextToken(): string {
        this.counter++
        return base36(this.counter)
    }

    add(token: string, kind: RequestKind, ref: number, nowMs: number, ackMs: number) {
        this.pending.push({ token: token, kind: kind, sentMs: nowMs, deadlineMs: nowMs + ackMs, ref: ref })
    }

    /** Removes and returns the request with this token; undefined for unknown, duplicate or late tokens. */
    take(token: string): PendingRequest {
        for (let i = 0; i < this.pending.length; ++i) {
            const p = this.pending[i]
            if (p.token === token) {
                this.pending.insert(i, -1)
                return p
            }
        }
        return undefined
    }

    /** The first request whose acknowledgement is overdue, if any. */
    overdue(nowMs: number): PendingRequest {
        for (let i = 0; i < this.pending.length; ++i) if (nowMs >= this.pending[i].deadlineMs) return this.pending[i]
        return undefined
    }

    /** True while a request of this kind is in flight. */
    has(kind: RequestKind): boolean {
        for (let i = 0; i < this.pending.length; ++i) if (this.pending[i].kind === kind) return true
        return false
    }

    size(): number {
        return this.pending.length
    }

    /** On disconnect: the connection's requests can no longer be answered. */
    clear() {
        this.pending = []
    }
}

const DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"

/** n ≥ 1 in base 36 (DeviceScript numbers have no toString(radix)). */
export function base36(n: number): string {
    let out = ""
    while (n > 0) {
        out = DIGITS36.charAt(n % 36) + out
        n = Math.floor(n / 36)
    }
    return out
}
