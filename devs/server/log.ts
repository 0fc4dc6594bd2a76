// Structured logs (pino JSON). Keys never reach a log line: requests are logged by method, resource and
// status only, and anything that might carry a key is redacted as a second line of defence.
import { pino, type Logger } from "pino"
import { ConfigError } from "./errors.ts"

export type { Logger }

export function createLogger(level = "info", destination?: NodeJS.WritableStream): Logger {
    if (level !== "silent" && !Object.hasOwn(pino.levels.values, level)) {
        throw new ConfigError(`--log-level: no level "${level}"; use ${[...Object.keys(pino.levels.values), "silent"].join(", ")}`)
    }
    return pino(
        {
            name: "feedline",
            level,
            redact: { paths: ["headers", "*.headers", "key", "*.key", "apiKey", "*.apiKey", "secret", "*.secret"], censor: "[redacted]" },
        },
        destination as any,
    )
}

/**
 * For a line that an attacker or an outage could repeat thousands of times a second: `due(nowMs)` is true
 * at most once per `everyMs`, and says how many calls it stood for since the last time it was (1 the first
 * time); 0 when this one is not to be logged.
 */
export class LogThrottle {
    private lastMs = -Infinity
    private since = 0

    constructor(private readonly everyMs: number) {}

    due(nowMs: number): number {
        this.since++
        if (nowMs - this.lastMs < this.everyMs) return 0
        this.lastMs = nowMs
        const n = this.since
        this.since = 0
        return n
    }
}
