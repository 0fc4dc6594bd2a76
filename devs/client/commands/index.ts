// The client's subcommands, registered in devs/cli.ts next to the server's own (`serve`, `keys --data-dir`).

import type { ClientCommand, CommandIo } from "./common.ts"
import { runCommand, usageText } from "./common.ts"
import { devicesCommand } from "./devices.ts"
import { getCommand } from "./get.ts"
import { historyCommand } from "./history.ts"
import { keysCommand } from "./keys.ts"
import { productsCommand } from "./products.ts"
import { putCommand } from "./put.ts"
import { sessionsCommand } from "./sessions.ts"
import { subCommand } from "./sub.ts"

export type { ClientCommand, CommandIo }

export const CLIENT_COMMANDS: Record<string, ClientCommand> = {
    sub: subCommand,
    get: getCommand,
    put: putCommand,
    history: historyCommand,
    keys: keysCommand,
    sessions: sessionsCommand,
    products: productsCommand,
    devices: devicesCommand,
}

/** Runs `feedline NAME ...argv`; resolves with the exit status. Unknown names are the caller's business. */
export function runClientCommand(name: string, argv: string[], io: CommandIo): Promise<number> {
    return runCommand(CLIENT_COMMANDS[name], argv, io)
}

/** The process's own streams and environment; Ctrl-C stops `sub` cleanly. */
export function processIo(): CommandIo {
    const stop = new AbortController()
    process.once("SIGINT", () => stop.abort())
    process.once("SIGTERM", () => stop.abort())
    return {
        out: (t) => process.stdout.write(t),
        err: (t) => process.stderr.write(t),
        env: process.env,
        signal: stop.signal,
    }
}

/** Help lines for the bin's overview. */
export function clientCommandsHelp(): string {
    return Object.entries(CLIENT_COMMANDS)
        .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
        .join("\n")
}

/** A command's usage as `--help` prints it ("usage: ..."); for the bin's own help of `keys`. */
export function commandUsage(name: string): string {
    return usageText(CLIENT_COMMANDS[name].usage)
}
