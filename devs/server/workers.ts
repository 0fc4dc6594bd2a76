// `feedline serve --workers N`: N server processes on one machine sharing its listening ports (Node's
// cluster module: the primary accepts and hands connections to the workers in turn). The primary serves
// nothing itself: it starts the workers, starts a new one when one dies, on SIGTERM or SIGINT tells
// each to drain (shutdown.ts) and exits once they have, and passes SIGHUP (reload the TLS certificate,
// tls/reload.ts) on to each: the workers present the certificate, the primary only hands sockets over.
// The workers are ordinary servers on one PostgreSQL and one Redis, as several machines' would be
// (docs/OPERATIONS.md "Running more than one process").
import cluster, { type Worker } from "node:cluster"
import { watchHandoffs } from "./cluster-handoffs.ts"

/** A worker that dies is replaced after this long (a crash loop does not spin the machine). */
const RESTART_AFTER_MS = 1000
/** A draining worker gets this long to finish (shutdown.ts needs a few seconds at most), then it is killed. */
const STOP_WAIT_MS = 20_000

/** What a worker tells the primary once it listens. */
export interface WorkerReady {
    kind: "feedline-ready"
    devicePort: number
    appPort: number
    appScheme: string
    caCertPath: string
    insecureTcpPort?: number
}

export function isWorkerReady(m: unknown): m is WorkerReady {
    return typeof m === "object" && m !== null && (m as { kind?: unknown }).kind === "feedline-ready"
}

export interface WorkersOptions {
    count: number
    /** once every worker listens: where they listen (the primary writes the ready file) */
    onReady(ready: WorkerReady, workerPids: number[]): void
    log(message: string): void
}

/** This process is a worker the primary started (its server tells the primary when it listens). */
export const isWorker = cluster.isWorker

/** Runs the primary until it is told to stop; resolves with the exit code. */
export function runPrimary(o: WorkersOptions): Promise<number> {
    return new Promise((resolve) => {
        const live = new Set<Worker>()
        const ready = new Set<Worker>()
        /** workers that were starting at a SIGHUP: it is passed on once they listen (they may have read the files before) */
        const owesReload = new Set<Worker>()
        let everyoneReady = false
        let stopping = false
        let exitCode = 0

        const start = () => {
            const w = cluster.fork()
            live.add(w)
            // a worker gone without answering for connections handed to it: they are closed, not left hanging.
            // Both events: a channel with a handle in flight never emits "disconnect" (Node waits for the
            // handle's receipt first), and a worker may close its channel some time before it exits.
            const handoffs = watchHandoffs(w.process)
            const closeUntaken = () => {
                const closed = handoffs.closeUntaken()
                if (closed) o.log(`worker ${w.process.pid} went away before taking ${closed} connection(s) handed to it; closed them (their clients connect again)`)
            }
            w.process.once("disconnect", closeUntaken)
            w.process.once("exit", closeUntaken)
            w.on("message", (m: unknown) => {
                if (!isWorkerReady(m)) return
                ready.add(w)
                if (owesReload.delete(w)) w.process.kill("SIGHUP")
                if (!everyoneReady && ready.size === o.count) {
                    everyoneReady = true
                    o.onReady(m, [...live].map((x) => x.process.pid!))
                }
            })
            w.on("exit", (code, signal) => {
                live.delete(w)
                owesReload.delete(w)
                const wasReady = ready.delete(w)
                if (stopping) {
                    if (live.size === 0) resolve(exitCode)
                    return
                }
                if (!wasReady && !everyoneReady) {
                    // a worker that could not start (bad settings, no database): the others would fail alike
                    o.log(`a worker exited with ${signal ?? code} before it listened; stopping`)
                    stopAll(typeof code === "number" && code !== 0 ? code : 1)
                    return
                }
                o.log(`worker ${w.process.pid} exited with ${signal ?? code}; starting another in ${RESTART_AFTER_MS} ms`)
                setTimeout(() => !stopping && start(), RESTART_AFTER_MS)
            })
        }

        const stopAll = (code: number) => {
            if (stopping) return
            stopping = true
            exitCode = code
            for (const w of live) w.process.kill("SIGTERM")
            setTimeout(() => live.forEach((w) => w.process.kill("SIGKILL")), STOP_WAIT_MS).unref()
            if (live.size === 0) resolve(exitCode)
        }
        process.on("SIGTERM", () => stopAll(0))
        process.on("SIGINT", () => stopAll(0))
        process.on("SIGHUP", () => {
            o.log(`SIGHUP: reloading the TLS certificate in ${live.size} worker(s)`)
            // one still starting may not take the signal yet (Node's default ends it): it gets it once it listens
            for (const w of live) {
                if (ready.has(w)) w.process.kill("SIGHUP")
                else owesReload.add(w)
            }
        })
        for (let i = 0; i < o.count; i++) start()
    })
}

/** In a worker: tells the primary this worker listens. */
export function reportReady(ready: Omit<WorkerReady, "kind">): void {
    process.send?.({ kind: "feedline-ready", ...ready } satisfies WorkerReady)
}
