// What every fleet schedule checks once its fleet is back (docs/RELIABILITY.md, "A fleet comes back"), for
// test/host/server/abuse/fleet-*.test.ts: every device current (subscribed, outbox acknowledged) and holding
// every command written meanwhile, each once; every acknowledged write in the store; every refusal with a
// code and a retry_after_ms. An operator (the master key, over TLS) writes the commands and reads the writes.
import assert from "node:assert/strict"
import { performance } from "node:perf_hooks"
import { FeedlineConnection } from "../../../devs/client/connection.ts"
import type { Credentials } from "../../../devs/server/index.ts"
import { backoffDelayMs, CLIENT_BACKOFF, type ReconnectConfig } from "../../../src/backoff.ts"
import type { Response } from "../../../src/protocol.ts"
import type { Fleet, Loss } from "./fleet.ts"
import { until } from "./until.ts"

/** The server a schedule runs against, as it is now (a restart replaces it). */
export interface FleetServer {
    devicePort: number
    ca: Buffer
    credentials: Credentials
    stderr(): string
}

/**
 * The firmware's policy (src/backoff.ts DEFAULT_BACKOFF: 500 ms, 2ⁿ, a 60 s cap, reset after 20 s up) with a
 * 4 s cap, so that a schedule ends in seconds: the cap bounds how long a device waits once the server is back
 * (the longest wait it may draw), not how often it dials.
 */
export const FLEET_BACKOFF: ReconnectConfig = { baseMs: 500, capMs: 4000, stableMs: 20_000 }

/** how many times the operator sends one request the server answers "not now" */
const OPERATOR_ATTEMPTS = 20

/** A bound for a hung test, not a timing assertion: every device back well within it on a loaded machine. */
export const ALL_BACK_LIMIT_MS = 60_000

/** Losses by the server's code (else the client's), for the log lines and failure messages. */
export function summarize(losses: Loss[]): string {
    const by = new Map<string, number>()
    for (const l of losses) {
        const k = l.serverCode ?? l.code
        by.set(k, (by.get(k) ?? 0) + 1)
    }
    return [...by].map(([k, n]) => `${k} ${n}`).join(", ") || "none"
}

/**
 * The 429 E_KEY_RATE_LIMITED among `losses`, by the request refused and whether it came before `disruptedAtMs`:
 * a schedule queues a write in every outbox at once before each disruption and again after it, so on one
 * key a fleet larger than the key's burst is refused for its own writes whatever the disruption did
 * (docs/RELIABILITY.md, "A fleet comes back"). "again": refusals of a retry (the same request refused
 * before), what the server's retry hints are meant to keep few [P§6].
 */
export function keyRefusals(losses: Loss[], disruptedAtMs: number): string {
    const keyed = losses.filter((l) => l.serverCode === "E_KEY_RATE_LIMITED")
    if (keyed.length === 0) return "none"
    const count = (before: boolean, refused: Loss["refused"]) => {
        const these = keyed.filter((l) => l.atMs < disruptedAtMs === before && l.refused === refused)
        return `${these.length} ${refused}s (${these.filter((l) => l.again).length} again)`
    }
    return `before the disruption ${count(true, "write")}, ${count(true, "subscribe")}; after it ${count(false, "write")}, ${count(false, "subscribe")}`
}

export class FleetChecks {
    private commandsWritten = 0
    /** every write's `at` is a ms of its own: writes are idempotent per (feed, datastream, at) */
    private nextAtMs: number
    private readonly firstAtMs: number

    constructor(
        private readonly server: () => FleetServer,
        private readonly streams: { command: string; write: string } = { command: "cmd", write: "w" },
    ) {
        this.firstAtMs = this.nextAtMs = Date.now() - 600_000
    }

    /** the `at` (ms) of the next write a device queues */
    nextAt(): number {
        return ++this.nextAtMs
    }

    /** A master-key client: writes commands, reads what was stored. */
    operator(): Promise<FeedlineConnection> {
        const s = this.server()
        return FeedlineConnection.connect({ server: `tls://127.0.0.1:${s.devicePort}`, apiKey: s.credentials.masterKey, ca: s.ca })
    }

    /**
     * One request of the operator, sent again while the server says "not now" (429, 503):
     * the master key spends the key's request budget too, and a soak's fleet has 500 feeds to write and read.
     */
    private async ask(op: FeedlineConnection, method: "put" | "get", resource: string, o: { body?: unknown; params?: Record<string, string | number> }): Promise<Response> {
        for (let attempt = 1; ; attempt++) {
            const r = await op.send(method, resource, o)
            const retryAfterMs = (r.body as { retry_after_ms?: unknown } | undefined)?.retry_after_ms
            if ((r.status !== 429 && r.status !== 503) || typeof retryAfterMs !== "number" || attempt >= OPERATOR_ATTEMPTS) return r
            // backoff with the hint a floor (the CLI's put does the same): 500 requests at once on one connection all meet the bucket together
            await new Promise((resolve) => setTimeout(resolve, backoffDelayMs(CLIENT_BACKOFF, attempt - 1, Math.random(), retryAfterMs)))
        }
    }

    /** Writes the next command (values "c1", "c2", …: a value is at most 32 characters) to the feeds of `fleet`; its value. */
    async writeCommand(fleet: Fleet): Promise<string> {
        const value = `c${++this.commandsWritten}`
        let op: FeedlineConnection | undefined
        try {
            op = await this.operator()
            const feeds = new Set(fleet.devices.map((d) => d.feedId!))
            const answers = await Promise.all([...feeds].map((feed) => this.ask(op!, "put", `/feeds/${feed}/datastreams/${this.streams.command}`, { body: { current_value: value } })))
            for (const r of answers) assert.equal(r.status, 200, JSON.stringify(r.body))
            return value
        } catch (e) {
            // the operator's connection failed (not an answer): what the server logged meanwhile says why, or that it said nothing
            if (e instanceof assert.AssertionError) throw e
            throw new Error(`the operator could not write command ${value} (${(e as { code?: string }).code ?? "no code"}: ${(e as Error).message}); the server's log: ${this.server().stderr().slice(-2000) || "(nothing)"}`, { cause: e })
        } finally {
            op?.close()
        }
    }

    /** the `at`s (ms) stored on each feed's write datastream */
    async storedWrites(feeds: Iterable<number>): Promise<Map<number, Set<number>>> {
        const op = await this.operator()
        const out = new Map<number, Set<number>>()
        try {
            for (const feed of feeds) {
                const got = new Set<number>()
                out.set(feed, got)
                let start = new Date(this.firstAtMs - 100_000).toISOString()
                for (;;) {
                    const r = await this.ask(op, "get", `/feeds/${feed}/datastreams/${this.streams.write}`, { params: { start, limit: 1000 } })
                    if (r.status === 404) break // nothing written yet
                    assert.equal(r.status, 200, JSON.stringify(r.body))
                    const points = ((r.body as { datapoints?: { at: string }[] }).datapoints ?? []) as { at: string }[]
                    for (const p of points) got.add(Date.parse(p.at))
                    if (points.length < 1000) break
                    start = new Date(Date.parse(points[points.length - 1]!.at) + 1).toISOString()
                }
            }
        } finally {
            op.close()
        }
        return out
    }

    /** Waits until every device is current and holds every command in `commands`; how long that took (ms). */
    async waitAllBack(fleet: Fleet, commands: string[], what: string): Promise<number> {
        const t0 = performance.now()
        const size = fleet.devices.length
        await until(
            () =>
                `${what}: ${fleet.current()}/${size} devices current, ${fleet.devices.filter((d) => commands.every((c) => d.handled.has(c))).length} holding every command; ` +
                `losses ${summarize(fleet.losses())}; ${this.server().stderr().slice(-500)}`,
            () => fleet.devices.every((d) => d.current && commands.every((c) => d.handled.has(c))),
            ALL_BACK_LIMIT_MS,
            50,
        )
        return performance.now() - t0
    }

    /** What every schedule asserts once the fleet is back: refusals with a code and a hint, each command once, every acknowledged write stored. */
    async checkFleet(fleet: Fleet, commands: string[], label: string, sinceMs: number) {
        const losses = fleet.losses().filter((l) => l.atMs >= sinceMs)
        // every refusal the server sent (a notice or a refused request) named a code and said when to come back
        const refusals = losses.filter((l) => l.serverCode !== undefined)
        const withoutHint = refusals.filter((l) => !(typeof l.retryAfterMs === "number" && l.retryAfterMs > 0))
        assert.deepEqual(withoutHint, [], `${label}: refusals without retry_after_ms`)
        for (const d of fleet.devices) {
            for (const c of commands) assert.equal(d.handled.get(c), 1, `${label}: device ${d.index} handled command ${c} ${d.handled.get(c) ?? 0} times`)
            const twice = [...d.handled].filter(([, n]) => n > 1)
            assert.deepEqual(twice, [], `${label}: device ${d.index} handled commands twice`)
        }
        const stored = await this.storedWrites(new Set(fleet.devices.map((d) => d.feedId!)))
        const lost = fleet.devices.flatMap((d) => d.acked.filter((at) => !stored.get(d.feedId!)!.has(at)).map((at) => `device ${d.index}: ${at}`))
        assert.deepEqual(lost, [], `${label}: acknowledged writes missing from the store`)
        const attempts = fleet.devices.map((d) => d.attempts)
        let storedCount = 0
        for (const s of stored.values()) storedCount += s.size
        return { losses, refusals, stored: storedCount, maxAttempts: Math.max(...attempts) }
    }
}

/** One disruption of a schedule: what brings the fleet's connections down, and what brings the server back (if it went). */
export interface Disruption {
    label: string
    /** resolves once the disruption is done: the server gone (how it exited) or the network cut */
    down(): Promise<string>
    /** brings the server back (a restart on the same ports and data folder); none: nothing to bring back */
    up?(): Promise<void>
}

/**
 * Runs `disruptions` in turn on a fleet that is up: before each, a write in every outbox and a command; while
 * the server is away another write in every outbox; once it is back another command (replayed to devices
 * still away). Then every device back and every invariant checked; a line logged per disruption.
 */
export async function throughDisruptions(checks: FleetChecks, fleet: Fleet, commands: string[], disruptions: Disruption[]): Promise<void> {
    for (const d of disruptions) {
        const roundStartMs = performance.now()
        // a write in every outbox while the server is up: acknowledged or resent after the disruption
        for (const dev of fleet.devices) dev.queueWrite(checks.nextAt())
        commands.push(await checks.writeCommand(fleet))
        const disruptedAtMs = performance.now()
        const how = await d.down()
        // a write queued while the devices are cut off: sent once they are back
        for (const dev of fleet.devices) dev.queueWrite(checks.nextAt())
        await d.up?.()
        const backAt = performance.now()
        // a command written while devices are still away: their renewed subscriptions replay it
        commands.push(await checks.writeCommand(fleet))
        await checks.waitAllBack(fleet, commands, d.label)
        const allBackMs = performance.now() - backAt
        const r = await checks.checkFleet(fleet, commands, d.label, roundStartMs)
        console.log(
            `# ${d.label} (${how}): ${fleet.devices.length} devices current ${(allBackMs / 1000).toFixed(1)} s after the ${d.up ? "server was ready" : "disruption ended"}; ` +
                `losses ${summarize(r.losses)} (E_KEY_RATE_LIMITED: ${keyRefusals(r.losses, disruptedAtMs)}); at most ${r.maxAttempts} attempts by one device since the start; ${r.stored} writes stored`,
        )
    }
}

/** The fleet's first connection (a storm too), checked as a disruption is; with `command`, one written before it connects. */
export async function coldStart(checks: FleetChecks, fleet: Fleet, where: string, o: { command: boolean }): Promise<string[]> {
    const t0 = performance.now()
    const commands = o.command ? [await checks.writeCommand(fleet)] : []
    await checks.waitAllBack(fleet, commands, `${where}: cold start`)
    const r = await checks.checkFleet(fleet, commands, `${where}: cold start`, t0)
    console.log(`# ${where}, cold start: ${fleet.devices.length} devices current in ${((performance.now() - t0) / 1000).toFixed(1)} s; losses ${summarize(r.losses)}`)
    return commands
}
