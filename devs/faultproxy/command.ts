// `feedline proxy` / `node dist/devs/faultproxy/cli.js`: the fault-injection proxy for people.
// Reads commands from stdin (one per line) and, with --control, from a loopback HTTP port.

import fs from "node:fs"
import readline from "node:readline"
import type http from "node:http"
import { FaultProxyError } from "./faults.ts"
import { FaultProxy } from "./proxy.ts"
import { parseSchedule } from "./schedule.ts"
import { runControl, startControlServer } from "./control.ts"

export const PROXY_USAGE = `usage: feedline proxy --target HOST:PORT [--listen HOST:PORT] [--schedule FILE.json] [--control HOST:PORT]

  --listen    where devices connect (default 127.0.0.1:7444)
  --target    the feedline server's device port (default 127.0.0.1:7443)
  --schedule  JSON: {"repeatMs":MS,"steps":[{"atMs":MS,"do":"COMMAND"}]}
  --control   also take commands over HTTP: curl -d 'blackhole for=5000' HOST:PORT

Commands (stdin, one per line, or POSTed to --control):
  refuse [for=MS] [mode=refused|reset]   new connections are refused (ECONNREFUSED) or reset
  accept                                 stop refusing
  reset                                  RST every open connection, both sides
  blackhole [dir=up|down|both] [for=MS] [scope=all|existing]
                                         forward nothing, close nothing (a Wi-Fi drop); scope=existing:
                                         only open connections, silenced for good (a lost NAT mapping)
  latency MS [jitter=MS] [dir=…] [for=MS]
  throttle BYTES_PER_S [dir=…] [for=MS]
  split BYTES [gap=MS] [dir=…] [for=MS]   forward every write in pieces of at most BYTES
  cut BYTES [frame=line|tls|raw] [dir=…] [repeat]
                                         cut the next connection after BYTES of a line / TLS record
  off refuse|blackhole|latency|throttle|split|cut|all [dir=…]     clear = off all
  status
dir: up = device → server, down = server → device (default both).`

function hostPort(v: string | undefined, name: string, dflt: string): { host: string; port: number } {
    const text = v ?? dflt
    const colon = text.lastIndexOf(":")
    const port = Number(text.slice(colon + 1))
    if (colon < 1 || !Number.isInteger(port) || port < 0 || port > 65535) {
        throw new FaultProxyError("E_BAD_OPTIONS", `${name} must be HOST:PORT such as 127.0.0.1:7444, got ${JSON.stringify(text)}`)
    }
    return { host: text.slice(0, colon), port }
}

export interface ProxyCliArgs {
    listen: { host: string; port: number }
    target: { host: string; port: number }
    schedulePath?: string
    control?: { host: string; port: number }
}

export function parseProxyArgs(argv: string[]): ProxyCliArgs {
    const flags: Record<string, string> = {}
    for (let i = 0; i < argv.length; i += 2) {
        const name = argv[i]
        if (!["--listen", "--target", "--schedule", "--control"].includes(name) || argv[i + 1] === undefined) {
            throw new FaultProxyError("E_BAD_OPTIONS", `unexpected argument ${JSON.stringify(name)}\n${PROXY_USAGE}`)
        }
        flags[name] = argv[i + 1]
    }
    return {
        listen: hostPort(flags["--listen"], "--listen", "127.0.0.1:7444"),
        target: hostPort(flags["--target"], "--target", "127.0.0.1:7443"),
        schedulePath: flags["--schedule"],
        control: flags["--control"] ? hostPort(flags["--control"], "--control", "") : undefined,
    }
}

function readSchedule(path: string) {
    let json: unknown
    try {
        json = JSON.parse(fs.readFileSync(path, "utf8"))
    } catch (e) {
        throw new FaultProxyError("E_BAD_SCHEDULE", `cannot read the schedule ${path}: ${(e as Error).message}`)
    }
    return parseSchedule(json)
}

/**
 * Runs the proxy until stdin closes or SIGINT/SIGTERM. Returns the process exit code:
 * 0 after a clean stop, 2 for bad arguments or an unreadable schedule.
 */
export async function runProxyCli(argv: string[]): Promise<number> {
    if (argv.includes("--help") || argv.includes("-h")) {
        console.log(PROXY_USAGE)
        return 0
    }
    let args: ProxyCliArgs
    let proxy: FaultProxy
    try {
        args = parseProxyArgs(argv)
        const schedule = args.schedulePath ? readSchedule(args.schedulePath) : undefined
        proxy = new FaultProxy({ listen: args.listen, target: args.target, schedule })
    } catch (e) {
        console.error(`feedline proxy: ${(e as Error).message}`)
        return 2
    }
    const log = (msg: string) => console.error(`${new Date().toISOString()} proxy: ${msg}`)
    proxy.on("connection", (c) => log(`#${c.id} connected`))
    proxy.on("close", (c) => log(`#${c.id} closed (up ${c.bytesUp} B, down ${c.bytesDown} B)`))
    proxy.on("refused", () => log("connection reset on accept (refuse mode=reset)"))
    proxy.on("cut", (c) => log(`#${c.id} cut mid-frame (${c.dir})`))
    proxy.on("reset", (n) => log(`reset ${n} connection(s)`))
    proxy.on("fault", (text) => log(`fault: ${text}`))
    proxy.on("targetError", (e) => log(`#${e.id} target unreachable: ${e.code}`))
    proxy.on("listenError", (e) => log(`cannot listen: ${(e as Error).message}`))

    let control: http.Server | undefined
    try {
        await proxy.start()
        if (args.control) control = await startControlServer(proxy, args.control.host, args.control.port)
    } catch (e) {
        console.error(`feedline proxy: ${(e as Error).message}`)
        await proxy.close()
        return 2
    }
    log(
        `listening on ${args.listen.host}:${proxy.port} -> ${args.target.host}:${args.target.port}` +
            (control ? `, control on http://${args.control!.host}:${(control.address() as { port: number }).port}` : "") +
            "; type a command (help: --help)"
    )

    return new Promise<number>((resolve) => {
        const rl = readline.createInterface({ input: process.stdin, terminal: false })
        let stopping = false
        const stop = async () => {
            if (stopping) return
            stopping = true
            rl.close()
            control?.close()
            await proxy.close()
            log("stopped")
            resolve(0)
        }
        rl.on("line", (line) => {
            if (line.trim() === "") return
            if (line.trim() === "help") return void console.log(PROXY_USAGE)
            const r = runControl(proxy, line)
            console.log(r.ok ? `ok; faults: ${r.faults.join(", ") || "none"}; ${JSON.stringify(r.stats)}` : `${r.code}: ${r.error}`)
        })
        // stdin closing (e.g. `< /dev/null`, a finished pipe) does not stop a proxy that was given other ways to be driven
        rl.on("close", () => {
            if (!control && !args.schedulePath) void stop()
        })
        process.once("SIGINT", () => void stop())
        process.once("SIGTERM", () => void stop())
    })
}
