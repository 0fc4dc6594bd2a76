// Requests in flight [P§5, P§6]: tokens unique for the life of the table, a response matched to its
// request by token (once: a duplicate or late response matches nothing), and an answer deadline per
// request. Pure: the caller passes its clock readings and decides what a missed deadline means (the
// firmware link reconnects, the client library and the dashboard page fail that request).
// Import-free and shared like src/protocol.ts: the firmware link, the client library (`feedline sub`,
// put, …), the dashboard page (served as /requests.js) and the load generator match responses with it.

export interface PendingRequest {
    token: string
    /** what the request was for ("batch", "subscribe", "put", …), so its response can be routed */
    kind: string
    /** the caller's clock when sent: the round-trip time is measured from here */
    sentMs: number
    deadlineMs: number
    /** the caller's own data: a batch id, a subscription, the promise to settle */
    ref: any
}

/** @devsWhenUsed: a method the image never calls, such as takeOverdue() (the client library), is not compiled into it (docs/FIRMWARE.md "Program size") */
export class RequestTable {
    /** never reset, so a late response from an earlier connection can never match a new request */
    private counter = 0
    private pending: PendingRequest[] = []

    /** `prefix` tells requests of different tables on one connection apart ("" on the device: its tokens stay short). */
    constructor(private prefix: string = "") {}

    /** A fresh token: the prefix and a counter in base 36, 1-5 characters for years of traffic (it is echoed in every response). */
    nextToken(): string {
        this.counter++
        return this.prefix + base36(this.counter)
    }

    /** Records a request sent at `nowMs` whose answer is due within `timeoutMs`. */
    add(token: string, kind: string, ref: any, nowMs: number, timeoutMs: number): PendingRequest {
        const p: PendingRequest = { token: token, kind: kind, sentMs: nowMs, deadlineMs: nowMs + timeoutMs, ref: ref }
        this.pending.push(p)
        return p
    }

    /** Removes and returns the request with this token; undefined for unknown, duplicate or late tokens. */
    take(token: string | undefined): PendingRequest | undefined {
        for (let i = 0; i < this.pending.length; ++i) {
            const p = this.pending[i]
            if (p.token === token) {
                this.removeAt(i)
                return p
            }
        }
        return undefined
    }

    /** Removes and returns every request whose answer is overdue. */
    takeOverdue(nowMs: number): PendingRequest[] {
        const late: PendingRequest[] = []
        for (let i = 0; i < this.pending.length; ) {
            if (nowMs >= this.pending[i].deadlineMs) {
                late.push(this.pending[i])
                this.removeAt(i)
            } else ++i
        }
        return late
    }

    /** How long from `nowMs` until the earliest deadline of the requests in flight: 0 when one is overdue, undefined when none is in flight. */
    msToNextDeadline(nowMs: number): number | undefined {
        let next: number | undefined = undefined
        for (let i = 0; i < this.pending.length; ++i) if (next === undefined || this.pending[i].deadlineMs < next) next = this.pending[i].deadlineMs
        if (next === undefined) return undefined
        return next > nowMs ? next - nowMs : 0
    }

    size(): number {
        return this.pending.length
    }

    /** On disconnect: the connection's requests can no longer be answered. Returns them, so each can be failed. */
    clear(): PendingRequest[] {
        const gone = this.pending
        this.pending = []
        return gone
    }

    /** (DeviceScript arrays have no splice) */
    private removeAt(i: number) {
        for (let j = i; j + 1 < this.pending.length; ++j) this.pending[j] = this.pending[j + 1]
        this.pending.pop()
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
