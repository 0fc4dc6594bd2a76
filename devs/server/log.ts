// Structured logs (pino JSON). Keys never reach a log line: requests are logged by method, resource and
// status only, and anything that might carry a key is redacted as a second line of defence.
import { writeSync } from "node:fs"
import { pino, type DestinationStream, type Logger } from "pino"
import { ConfigError } from "./errors.ts"

export type { Logger }

export function createLogger(level = "info", destination?: NodeJS.WritableStream | DestinationStream): Logger {
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

/** After a failed write, the log's descriptor is tried again this long later; the lines in between are dropped. */
export const LOG_RETRY_AFTER_MS = 10_000

type Boom = ReturnType<typeof pino.destination>

/**
 * The log's destination: stdout (or stderr) written through pino's own SonicBoom, which must not end the
 * server when the descriptor fails. A terminal that was closed (EIO: the server took the SIGHUP for the
 * certificate reload and lives on), a pipe whose reader exited (EPIPE), a full disk under a redirect (ENOSPC):
 * SonicBoom emits the error, and with no listener (pino keeps one for EPIPE alone) that was an uncaught
 * exception, and the exit that followed hung for good in pino's flush at exit (SonicBoom's flushSync retries a
 * failed write every 100 ms for ever): a process that neither served nor ended. Here a SonicBoom that failed is
 * dropped with its buffer, the lines from then on are counted and dropped, and LOG_RETRY_AFTER_MS later the
 * next line is written straight to the descriptor: written, a new SonicBoom takes the lines again; failed,
 * another period of dropping (a full disk may have room again; a closed terminal fails once more). One failed
 * write per period, and nothing logged about it: that would only go where it failed (the count is on /metrics).
 */
export class LogDestination implements DestinationStream {
    /** lines dropped because the descriptor failed (not counting those SonicBoom held when it failed) */
    droppedLines = 0
    /** failed writes; the last one's code */
    failures = 0
    lastErrorCode: string | undefined
    private boom: Boom | undefined
    private failedAtMs: number | undefined

    constructor(
        /** stdout or stderr: the ones SonicBoom never closes, so a failed one can be tried again */
        private readonly fd: 1 | 2,
        private readonly o: { retryAfterMs?: number; nowMs?: () => number } = {},
    ) {}

    write(line: string): void {
        if (this.boom) {
            this.boom.write(line)
            return
        }
        let rest = line
        if (this.failedAtMs !== undefined) {
            if (this.nowMs() - this.failedAtMs < (this.o.retryAfterMs ?? LOG_RETRY_AFTER_MS)) {
                this.droppedLines++
                return
            }
            try {
                rest = Buffer.from(line).subarray(writeSync(this.fd, line)).toString()
            } catch (e) {
                this.droppedLines++
                this.failed(e as NodeJS.ErrnoException)
                return
            }
            this.failedAtMs = undefined
        }
        this.boom = this.open()
        if (rest) this.boom.write(rest)
    }

    /** The descriptor is being written (false: given up until the next try). */
    get writing(): boolean {
        return this.boom !== undefined
    }

    private open(): Boom {
        // pino.destination's SonicBoom, as pino makes for stdout by default (asynchronous writes, flushed at exit)
        const boom = pino.destination({ dest: this.fd, sync: false })
        boom.on("error", (err: NodeJS.ErrnoException) => {
            // pino's own listener re-emits every error but EPIPE: the same failure may come twice
            if (this.boom !== boom) return
            this.boom = undefined
            // drops its buffer and its flush at exit; leaves fd 1 or 2 open
            boom.destroy()
            this.failed(err)
        })
        return boom
    }

    private failed(err: NodeJS.ErrnoException): void {
        this.failures++
        this.lastErrorCode = err.code ?? err.message
        this.failedAtMs = this.nowMs()
    }

    private nowMs(): number {
        return (this.o.nowMs ?? (() => performance.now()))()
    }
}

/**
 * Keeps a stream of the process's own output (process.stdout, process.stderr) from ending the server when its
 * reader goes away: without a listener, a write error there (EIO after the terminal closed, EPIPE) is an
 * uncaught exception. What is written to it after that is lost, as nothing else can be done with it.
 */
export function outliveOutput(stream: NodeJS.WriteStream): void {
    if (stream.listenerCount("error") === 0) stream.on("error", () => {})
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
