// Child processes a test or a benchmark runs (servers, brokers, databases): a free port, waiting for one
// to listen, spawning with the tail of its output kept, and stopping it.
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process"
import net from "node:net"

/** A port that was free a moment ago on 127.0.0.1 (for servers that cannot be told to use port 0). */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer()
        srv.once("error", reject)
        srv.listen(0, "127.0.0.1", () => {
            const port = (srv.address() as net.AddressInfo).port
            srv.close(() => resolve(port))
        })
    })
}

/** Resolves once a TCP connection to the port succeeds; rejects after `timeoutMs` or if `child` exits. */
export async function waitForPort(port: number, timeoutMs: number, child: ChildProcess, what: string): Promise<void> {
    const until = performance.now() + timeoutMs
    while (performance.now() < until) {
        if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode} before listening`)
        const ok = await new Promise<boolean>((resolve) => {
            const s = net.connect(port, "127.0.0.1")
            s.once("connect", () => (s.destroy(), resolve(true)))
            s.once("error", () => resolve(false))
        })
        if (ok) return
        await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`)
}

/** Spawns a server process whose stderr is kept (last lines) for error messages. */
export function spawnServer(cmd: string, args: string[], opts: SpawnOptions = {}): { child: ChildProcess; stderrTail(): string } {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts })
    // a benchmark stopped half-way (Ctrl-C, a crash) must not leave servers behind
    const reap = () => child.kill("SIGKILL")
    process.once("exit", reap)
    child.once("exit", () => process.removeListener("exit", reap))
    let tail = ""
    const keep = (d: Buffer) => (tail = (tail + d.toString()).slice(-4000))
    child.stdout?.on("data", keep)
    child.stderr?.on("data", keep)
    return { child, stderrTail: () => tail }
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((r) => child.once("exit", r))
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
    await exited
    clearTimeout(timer)
}
