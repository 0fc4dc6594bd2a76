// A fleet of simulated devices for the fault schedules (test/host/server/abuse/fleet-reconnect.test.ts): each
// one holds a protocol connection the way the firmware's link does (docs/FIRMWARE.md, "Link states"):
// it subscribes to its commands with `since` = the last `at` it handled, sends what its outbox holds (one
// point per connection, resent with the same `at` until acknowledged), and on any loss waits the link's
// backoff (src/backoff.ts: full jitter, the counter reset only after `stableMs` up, a server's
// retry_after_ms a floor) before dialling again. It records what the test checks: commands handled (and any
// handled twice), writes acknowledged, refusals with their codes and retry hints, attempts, when it was back.
import { performance } from "node:perf_hooks"
import { attemptAfterDrop, backoffDelayMs, resubscribeAfterMs, retryAfterRefusalMs, type ReconnectConfig } from "../../../src/backoff.ts"
import type { Response } from "../../../src/protocol.ts"
import { FeedlineConnection } from "../../../devs/client/connection.ts"
import { ClientError, statusError } from "../../../devs/client/errors.ts"

/** A fleet flashed as docs/FLEET.md says: no key, a product and each board's activation code; it claims at its first connection. */
export interface FleetClaim {
    productId: string
    /** the board's activation code */
    code(hardwareId: string): string
}

export interface FleetOptions {
    size: number
    /**
     * where devices dial: tls://127.0.0.1:PORT (the server's device port, or a fault proxy's) or
     * ws://127.0.0.1:PORT/ws (the app port's WebSocket)
     */
    address: () => string
    ca: Buffer
    /** the key and feed every device shares; a claiming fleet (`claim`) gets its own on its first connection */
    apiKey?: string
    feedId?: number
    claim?: FleetClaim
    backoff: ReconnectConfig
    /** the datastream devices subscribe to (commands) and the one they write to */
    commandStream: string
    writeStream: string
    /** the first subscription's since: commands after it are every device's */
    since: number
    /** local addresses to dial from (device i uses localAddresses[i % n]); default: the system's choice (127.0.0.1) */
    localAddresses?: string[]
    random?: () => number
}

/** One refusal or loss a device saw: what ended a connection (or an attempt), and the wait it then chose. */
export interface Loss {
    /** the client's code (E_UNREACHABLE, E_NOTICE, E_STATUS, …) and the server's E_ code when it gave one */
    code: string
    serverCode?: string
    retryAfterMs?: number
    /** performance.now() when it was seen */
    atMs: number
    /** the client's message (for failure reports) */
    message: string
    /** the delay the device then waited before dialling again */
    delayMs: number
    /** how long the connection had been up (0: it never got a welcome; -1: a request refused, the connection kept) */
    upForMs: number
    /** the request refused on a connection kept (upForMs -1): what a storm's refusals were spent on */
    refused?: "subscribe" | "write"
    /** that request (the same subscribe on the same connection, the same outbox point) was refused before: a retry refused again */
    again?: boolean
}

export class FleetDevice {
    /** commands handled: value -> times handled (more than 1 is a duplicate); each command has a value of its own */
    readonly handled = new Map<string, number>()
    /** its key and feed: the fleet's, or what its claim gave it */
    apiKey: string | undefined
    feedId: number | undefined
    /** claims answered with a key (more than 1: the device lost its key and claimed again) */
    claims = 0
    /** a name unique in the fleet, its hardware id when it claims */
    readonly hardwareId: string
    /** writes acknowledged: their `at`s (ms) */
    readonly acked: number[] = []
    readonly losses: Loss[] = []
    attempts = 0
    /** subscribed and its outbox empty: up to date with the server */
    current = false
    /** performance.now() when it last became current */
    currentAtMs = 0
    private lastCommandAt: string | undefined
    private attempt = 0
    private conn?: FeedlineConnection
    private stopped = false
    private wake?: () => void
    /** the point waiting in the outbox (its `at` stays the same until acknowledged) */
    private outbox: { at: number; value: string } | undefined
    /** the `at` of the outbox point last refused (Loss.again) */
    private refusedAt: number | undefined
    private seq = 0
    /** the send of the outbox under way (one at a time) */
    private flushing: Promise<void> = Promise.resolve()
    private readonly done: Promise<void>

    constructor(
        readonly index: number,
        private readonly o: FleetOptions,
    ) {
        this.apiKey = o.apiKey
        this.feedId = o.feedId
        this.hardwareId = `fleet-${index}`
        this.done = this.run()
    }

    /** queues the next point to write (sent now if connected, else on the next connection) */
    queueWrite(atMs: number): void {
        this.seq++
        this.outbox = { at: atMs, value: `${this.index}:${this.seq}` }
        this.current = false
        if (this.conn && this.conn.state !== "closed") void this.flush(this.conn)
    }

    async stop(): Promise<void> {
        this.stopped = true
        this.conn?.close()
        this.wake?.()
        await this.done
    }

    private async run(): Promise<void> {
        const random = this.o.random ?? Math.random
        const localAddress = this.o.localAddresses?.[this.index % this.o.localAddresses.length]
        while (!this.stopped) {
            this.attempts++
            let upSinceMs: number | undefined
            let loss: ClientError
            try {
                const c = (this.conn = await FeedlineConnection.connect({ server: this.o.address(), apiKey: this.apiKey, ca: this.o.ca, localAddress }))
                upSinceMs = performance.now()
                const lost = new Promise<ClientError>((resolve) => c.once("close", (e) => resolve(e ?? new ClientError("E_CLOSED", "closed"))))
                // a board without a key claims first, and goes on on this connection with what it got
                const claimRefused = this.stopped || this.apiKey !== undefined ? undefined : await this.claim(c)
                const refused = this.stopped ? undefined : (claimRefused ?? (await this.subscribe(c)))
                if (refused || this.stopped) c.close()
                else await this.flush(c)
                loss = refused ?? (await lost)
            } catch (e) {
                this.conn?.close()
                loss = e instanceof ClientError ? e : new ClientError("E_CLOSED", String((e as Error)?.message ?? e))
            }
            this.conn = undefined
            this.current = false
            if (this.stopped) return
            const upForMs = upSinceMs === undefined ? 0 : performance.now() - upSinceMs
            this.attempt = attemptAfterDrop(this.o.backoff, this.attempt, upForMs)
            const delayMs = backoffDelayMs(this.o.backoff, this.attempt, random(), loss.retryAfterMs ?? 0)
            this.attempt++
            this.losses.push({ code: loss.code, serverCode: loss.serverCode, retryAfterMs: loss.retryAfterMs, atMs: performance.now(), message: loss.message, delayMs, upForMs })
            await new Promise<void>((resolve) => {
                const t = setTimeout(resolve, delayMs)
                this.wake = () => (clearTimeout(t), resolve())
            })
        }
    }

    /**
     * Subscribes from the last command handled. A refusal "not now" (429 E_KEY_RATE_LIMITED in a storm on a
     * shared key, 5xx) is asked again on this connection when the firmware would (src/backoff.ts
     * resubscribeAfterMs); another refusal is returned: the link drops and dials again.
     */
    private async subscribe(c: FeedlineConnection): Promise<ClientError | undefined> {
        for (let again = false; ; again = true) {
            const refused = await this.subscribeOnce(c)
            const waitMs = refused?.status === undefined ? -1 : resubscribeAfterMs(refused.status, refused.retryAfterMs ?? 0, (this.o.random ?? Math.random)())
            if (refused === undefined || waitMs < 0 || c.state === "closed") return refused
            this.losses.push({ code: refused.code, serverCode: refused.serverCode, retryAfterMs: refused.retryAfterMs, atMs: performance.now(), message: refused.message, delayMs: waitMs, upForMs: -1, refused: "subscribe", again })
            await new Promise((resolve) => setTimeout(resolve, waitMs))
            if ((c.state as string) === "closed" || this.stopped) return undefined
        }
    }

    /** [fleet] Claims this board's feed and key on `c` (docs/FLEET.md "Claiming"); a refusal is returned: the link drops and dials again. */
    private async claim(c: FeedlineConnection): Promise<ClientError | undefined> {
        const claim = this.o.claim!
        try {
            const r = await c.send("post", `/products/${claim.productId}/claims`, { body: { hardware_id: this.hardwareId, code: claim.code(this.hardwareId), firmware: "fleet" } })
            if (r.status === 200 || r.status === 201) {
                const body = r.body as { key: string; feed: number }
                this.apiKey = body.key
                this.feedId = body.feed
                this.claims++
                return undefined
            }
            return statusError(r.status, r.resource, r.body)
        } catch (e) {
            // lost meanwhile: the connection's close says why; no answer in time: the link drops
            if (c.state === "closed") return undefined
            return e instanceof ClientError ? e : new ClientError("E_CLOSED", String(e))
        }
    }

    private async subscribeOnce(c: FeedlineConnection): Promise<ClientError | undefined> {
        const since = this.lastCommandAt ?? this.o.since
        const onPush = (push: Response) => {
            const body = push.body as { at?: string; current_value?: string } | undefined
            const at = body?.at
            if (push.status !== 200 || at === undefined || body?.current_value === undefined) return
            this.handled.set(body.current_value, (this.handled.get(body.current_value) ?? 0) + 1)
            if (this.lastCommandAt === undefined || at > this.lastCommandAt) this.lastCommandAt = at
        }
        try {
            await c.subscribe(`/feeds/${this.feedId}/datastreams/${this.o.commandStream}`, { since }, onPush)
            return undefined
        } catch (e) {
            // lost meanwhile: the connection's close says why; no answer in time (E_TIMEOUT): the link drops, as the firmware's does
            if (c.state === "closed") return undefined
            return e instanceof ClientError ? e : new ClientError("E_CLOSED", String(e))
        }
    }

    /**
     * Sends the outbox on `c`, after any send still running (on this connection, or on one lost meanwhile,
     * which gives up at its next step); then the device is current if nothing is left and `c` is still up.
     */
    private flush(c: FeedlineConnection): Promise<void> {
        const run = this.flushing.then(() => this.sendOutbox(c))
        this.flushing = run.catch(() => {})
        return run.then(() => {
            if (c.state !== "closed" && c === this.conn && this.outbox === undefined && !this.current) {
                this.currentAtMs = performance.now()
                this.current = true
            }
        })
    }

    private async sendOutbox(c: FeedlineConnection): Promise<void> {
        for (;;) {
            const point = this.outbox
            if (point === undefined || c.state === "closed") break
            let r: Response
            try {
                r = await c.send("put", `/feeds/${this.feedId}`, { body: { datastreams: [{ id: this.o.writeStream, datapoints: [{ at: point.at, value: point.value }] }] } })
            } catch {
                // lost, or no answer in time (then the link drops, as the firmware's does): resent on the next connection, same `at`
                c.close()
                return
            }
            if (r.status === 200) {
                this.acked.push(point.at)
                if (this.outbox === point) this.outbox = undefined
                continue
            }
            const retryMs = (r.body as { retry_after_ms?: number } | undefined)?.retry_after_ms
            if (retryMs === undefined) throw new Error(`device ${this.index}: write refused ${r.status} ${JSON.stringify(r.body)}`)
            // as the firmware's link waits after a refused batch: the hint and a spread
            const delayMs = retryAfterRefusalMs(retryMs, (this.o.random ?? Math.random)())
            const again = this.refusedAt === point.at
            this.refusedAt = point.at
            this.losses.push({ code: "E_STATUS", serverCode: (r.body as { code?: string }).code, retryAfterMs: retryMs, atMs: performance.now(), message: `write refused ${r.status}`, delayMs, upForMs: -1, refused: "write", again })
            await new Promise((resolve) => setTimeout(resolve, delayMs))
        }
    }
}

export class Fleet {
    readonly devices: FleetDevice[]
    constructor(readonly o: FleetOptions) {
        this.devices = Array.from({ length: o.size }, (_, i) => new FleetDevice(i, o))
    }
    /** devices subscribed with an empty outbox */
    current(): number {
        return this.devices.filter((d) => d.current).length
    }
    async stop(): Promise<void> {
        await Promise.all(this.devices.map((d) => d.stop()))
    }
    /** every loss of every device (refusals, drops, resets) */
    losses(): Loss[] {
        return this.devices.flatMap((d) => d.losses)
    }
}
