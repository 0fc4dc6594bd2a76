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
