// What every client command shares: the connection flags and their environment variables, argument
// parsing with usage errors, and running a command so that every failure becomes one clear line on
// stderr and an exit status (errors.ts EXIT_CODES).

import fs from "node:fs"
import { parseArgs, type ParseArgsConfig } from "node:util"
import { FeedlineConnection, type ConnectOptions } from "../connection.ts"
import { ClientError, EXIT_CODES } from "../errors.ts"

export const DEFAULT_SERVER = "tls://localhost:7443"

/** Where a command writes, and what it reads from its environment; tests pass their own. */
export interface CommandIo {
    out: (text: string) => void
    err: (text: string) => void
    env: Record<string, string | undefined>
    /** aborts long-running commands (sub) */
    signal?: AbortSignal
}

export interface ClientCommand {
    summary: string
    usage: string
    run(argv: string[], io: CommandIo): Promise<void>
}

export const CONNECTION_OPTIONS = {
    server: { type: "string", short: "s" },
    key: { type: "string", short: "k" },
    ca: { type: "string" },
    "timeout-ms": { type: "string" },
    help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"]

export const CONNECTION_USAGE = `connection:
  -s, --server URL   tls://host:7443 (device port), or the app port: https://host:7080 or wss://host:7080/ws
                     (http://, ws:// when the server listens on loopback, as npm start's)  [$FEEDLINE_SERVER, default ${DEFAULT_SERVER}]
  -k, --key KEY      API key, or "Bearer <jwt>"                             [$FEEDLINE_KEY]
      --ca FILE      PEM of the CA to trust (dev CA: <data-dir>/tls/ca.pem) [$FEEDLINE_CA]
      --timeout-ms N how long to wait for a response (default 10000)`

export function usageError(message: string, usage: string): ClientError {
    return new ClientError("E_USAGE", `${message}\n\n${usageText(usage)}`)
}

/** "usage: " before a command's usage, its further forms (lines starting `feedline `) aligned under the first. */
export function usageText(usage: string): string {
    return `usage: ${usage.replace(/\n(?=feedline )/g, "\n       ")}`
}

/** parseArgs with our usage text on every mistake. */
export function parse<O extends ParseArgsConfig["options"]>(argv: string[], options: O, usage: string) {
    try {
        return parseArgs({ args: argv, options: { ...CONNECTION_OPTIONS, ...options }, allowPositionals: true, strict: true })
    } catch (e) {
        throw usageError((e as Error).message, usage)
    }
}

export function connectOptions(values: Record<string, unknown>, env: CommandIo["env"]): ConnectOptions {
    const server = (values.server as string | undefined) ?? env.FEEDLINE_SERVER ?? DEFAULT_SERVER
    const apiKey = (values.key as string | undefined) ?? env.FEEDLINE_KEY
    const caFile = (values.ca as string | undefined) ?? env.FEEDLINE_CA
    let ca: Buffer | undefined
    if (caFile) {
        try {
            ca = fs.readFileSync(caFile)
        } catch (e) {
            throw new ClientError("E_USAGE", `cannot read the CA file ${caFile}: ${(e as NodeJS.ErrnoException).code ?? e}`)
        }
    }
    const t = values["timeout-ms"] as string | undefined
    const requestTimeoutMs = t === undefined ? undefined : Number(t)
    if (requestTimeoutMs !== undefined && !(requestTimeoutMs > 0)) throw new ClientError("E_USAGE", `--timeout-ms must be a positive number of ms, not "${t}"`)
    if (!apiKey) throw new ClientError("E_USAGE", "no API key: pass --key KEY or set FEEDLINE_KEY")
    return { server, apiKey, ca, requestTimeoutMs }
}

/** Connects, runs `fn`, and always closes. */
export async function withConnection<T>(values: Record<string, unknown>, io: CommandIo, fn: (c: FeedlineConnection) => Promise<T>): Promise<T> {
    const c = await FeedlineConnection.connect(connectOptions(values, io.env))
    try {
        return await fn(c)
    } finally {
        c.close()
    }
}

/** Runs a command and returns its exit status; errors are printed, never thrown. */
export async function runCommand(cmd: ClientCommand, argv: string[], io: CommandIo): Promise<number> {
    if (argv.includes("--help") || argv.includes("-h")) {
        io.out(`${usageText(cmd.usage)}\n`)
        return 0
    }
    try {
        await cmd.run(argv, io)
        return 0
    } catch (e) {
        if (e instanceof ClientError) {
            io.err(`error ${e.code}: ${e.message}\n`)
            return EXIT_CODES[e.code]
        }
        io.err(`error: ${(e as Error)?.stack ?? e}\n`)
        return 1
    }
}

/** `name=value` pairs -> an object; for params and `put` values. */
export function pairs(items: string[], usage: string): Record<string, string> {
    const out: Record<string, string> = {}
    for (const item of items) {
        const i = item.indexOf("=")
        if (i <= 0) throw usageError(`"${item}" is not name=value`, usage)
        out[item.slice(0, i)] = item.slice(i + 1)
    }
    return out
}

/** Writes a JSON value, pretty for people or compact for pipes (--json). */
export function printJson(io: Pick<CommandIo, "out">, v: unknown, compact: boolean): void {
    io.out((compact ? JSON.stringify(v) : JSON.stringify(v, null, 2)) + "\n")
}
