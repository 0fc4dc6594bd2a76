// How big each benchmark phase is. The full profile is what `npm run bench` runs; the smoke profile
// (FEEDLINE_BENCH_SMOKE=1) runs every code path in a few seconds so the benchmark cannot rot.

export interface Profile {
    name: "full" | "smoke"
    /** closed loop: devices each keeping `window` updates in flight; the best run counts (noise on a
     * shared machine only ever lowers throughput, so the best of `rounds` is the capacity estimate) */
    throughput: { devices: number; windows: number[]; rounds: number; warmupMs: number; measureMs: number }
    /** open loop at a fixed moderate rate, with subscribers receiving every update; of `rounds` the
     * least disturbed one (lowest ack p99) counts, since a neighbour's burst only ever adds latency */
    latency: { devices: number; subscribers: number; ratePerS: number; rounds: number; warmupMs: number; measureMs: number }
    /**
     * noisy neighbour: `floodDevices` devices flood the main feed (closed loop, `window` in flight each)
     * with `floodSubscribers` subscribers on it, while one device writes a second feed at `quietRatePerS`
     * and its one subscriber's push latency is measured; of `rounds` the least disturbed one counts
     */
    noisy: { floodDevices: number; window: number; floodSubscribers: number; quietRatePerS: number; rounds: number; warmupMs: number; measureMs: number }
    /** a server's idle RSS is read this long after its start, every target alike: V8 shrinks a young
     * generation that grew while modules loaded only after ~8 s (feedline 72.6 -> 66.1 MiB), and the
     * figure is meant to be what a server holds at rest, not during its start */
    idleRssAfterStartMs: number
    /** idle connections at the target's default keep-alive (feedline: 300 ms heartbeat) */
    defaultKeepAliveIdle: { connections: number; settleMs: number; measureMs: number }
    /** idle connections held open, measured at each step (metered keep-alive for feedline) */
    connections: { steps: number[]; settleMs: number; measureMs: number }
    /** TLS handshakes in flight at once while opening connections */
    openConcurrency: number
    /** feedline's SQLite store alone */
    ingest: { datapoints: number; batchSizes: number[] }
    /** DeviceScript simulator: updates per wire case (≤ 40: the DS MQTT client recurses once per
     * coalesced PUBACK and overflows its 100-frame stack beyond that), recovery runs, per-board builds */
    /** wireRounds: how often the firmware wire benchmark times each path (VM time: the median of rounds) */
    firmware: { updates: number; wireRounds: number; recoveryRuns: number; outbox: boolean; boards: boolean }
}

export const FULL: Profile = {
    name: "full",
    throughput: { devices: 50, windows: [1, 8, 32], rounds: 2, warmupMs: 1500, measureMs: 5000 },
    latency: { devices: 50, subscribers: 10, ratePerS: 1000, rounds: 3, warmupMs: 2000, measureMs: 8000 },
    noisy: { floodDevices: 20, window: 16, floodSubscribers: 50, quietRatePerS: 20, rounds: 2, warmupMs: 2000, measureMs: 8000 },
    idleRssAfterStartMs: 12_000,
    defaultKeepAliveIdle: { connections: 1000, settleMs: 2000, measureMs: 5000 },
    connections: { steps: [1000, 5000, 10_000], settleMs: 3000, measureMs: 3000 },
    openConcurrency: 64,
    ingest: { datapoints: 200_000, batchSizes: [1, 10, 100, 1000] },
    firmware: { updates: 80, wireRounds: 5, recoveryRuns: 5, outbox: true, boards: true },
}

export const SMOKE: Profile = {
    name: "smoke",
    throughput: { devices: 3, windows: [2], rounds: 1, warmupMs: 100, measureMs: 400 },
    latency: { devices: 3, subscribers: 2, ratePerS: 100, rounds: 1, warmupMs: 100, measureMs: 500 },
    noisy: { floodDevices: 2, window: 2, floodSubscribers: 3, quietRatePerS: 20, rounds: 1, warmupMs: 100, measureMs: 500 },
    idleRssAfterStartMs: 0,
    defaultKeepAliveIdle: { connections: 10, settleMs: 100, measureMs: 300 },
    connections: { steps: [10], settleMs: 100, measureMs: 300 },
    openConcurrency: 8,
    ingest: { datapoints: 2000, batchSizes: [1, 100] },
    firmware: { updates: 4, wireRounds: 1, recoveryRuns: 1, outbox: false, boards: false },
}

export function profileFromEnv(env: NodeJS.ProcessEnv = process.env): Profile {
    return env.FEEDLINE_BENCH_SMOKE === "1" ? SMOKE : FULL
}
