// The orchestrator's handle on a load-generator child process.
import { fork, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { TargetAddress } from "./types.ts"
import type { ClosedLoopResult, NoisyResult, OpenResult, PacedResult } from "./phases.ts"
import type { WorkerRequest } from "./worker-main.ts"

const WORKER_ENTRY = fileURLToPath(new URL("./worker-main.ts", import.meta.url))

export class LoadGenWorker {
    private child: ChildProcess
    private nextId = 1
    private waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()

    private constructor() {
        this.child = fork(WORKER_ENTRY, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] })
        this.child.on("message", (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
            const w = this.waiting.get(m.id)
            this.waiting.delete(m.id)
            if (m.ok) w?.resolve(m.result)
            else w?.reject(new Error(`load generator: ${m.error}`))
        })
        this.child.on("exit", (code, signal) => {
            for (const w of this.waiting.values()) w.reject(new Error(`load generator exited (${code ?? signal})`))
            this.waiting.clear()
        })
    }

    static async start(address: TargetAddress, serverPid: number | number[]): Promise<LoadGenWorker> {
        const w = new LoadGenWorker()
        await w.call("init", address, serverPid)
        return w
    }

    get pid(): number {
        return this.child.pid!
    }

    private call<T>(op: WorkerRequest["op"], ...args: unknown[]): Promise<T> {
        const id = this.nextId++
        return new Promise<T>((resolve, reject) => {
            this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
            this.child.send({ id, op, args } satisfies WorkerRequest)
        })
    }

    openDevices(total: number, concurrency: number): Promise<OpenResult> {
        return this.call("openDevices", total, concurrency)
    }
    openSubscribers(total: number, concurrency: number): Promise<OpenResult> {
        return this.call("openSubscribers", total, concurrency)
    }
    closedLoop(devices: number, window: number, warmupMs: number, measureMs: number): Promise<ClosedLoopResult> {
        return this.call("closedLoop", devices, window, warmupMs, measureMs)
    }
    paced(ratePerS: number, warmupMs: number, measureMs: number): Promise<PacedResult> {
        return this.call("paced", ratePerS, warmupMs, measureMs)
    }
    openQuiet(): Promise<number> {
        return this.call("openQuiet")
    }
    noisy(floodDevices: number, window: number, quietRatePerS: number, warmupMs: number, measureMs: number): Promise<NoisyResult> {
        return this.call("noisy", floodDevices, window, quietRatePerS, warmupMs, measureMs)
    }
    counts(): Promise<{ devices: number; subscribers: number; unexpectedCloses: number; firstClose?: string }> {
        return this.call("counts")
    }
    async stop(): Promise<void> {
        if (this.child.exitCode !== null) return
        const exited = new Promise((r) => this.child.once("exit", r))
        await this.call("closeAll").catch(() => {})
        this.child.disconnect()
        const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000)
        await exited
        clearTimeout(timer)
    }
}
