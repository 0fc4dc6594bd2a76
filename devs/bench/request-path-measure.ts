// The measurement of `npm run bench:request-path` (devs/bench/request-path.ts says what it measures); a
// function of its own so that npm test can run it tiny (test/host/bench/request-path-smoke.test.ts).
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { Session as Inspector } from "node:inspector/promises"
import os, { tmpdir } from "node:os"
import { join } from "node:path"
import { encodeShortRequest } from "../../src/protocol.ts"
import { startServer } from "../server/index.ts"
import type { Wire } from "../server/session.ts"
import type { PointInput, StoredPoint, Store } from "../server/storage/store.ts"
import { updateBody } from "./loadgen/payload.ts"

const SESSIONS = 50
const PER_CHUNK = 4
/** distinct chunks per session, cycled (built before measuring) */
const CHUNKS_PER_SESSION = 40

class CountingWire implements Wire {
    readonly transport = "tcp" as const
    readonly remoteAddress = "127.0.0.1"
    lines = 0
    constructor(private readonly onLines: (n: number) => void) {}
    send(lines: string[]): void {
        this.lines += lines.length
        this.onLines(lines.length)
    }
    heartbeat(): void {}
    bufferedBytes(): number {
        return 0
    }
    end(): void {}
}

/** The store as the server opened it, but writes answered at once with the points as stored. */
function storeAnsweringWritesAtOnce(store: Store): Store {
    let seq = 0
    store.writePoints = (_feed: number, points: PointInput[], nowMs = Date.now()): Promise<StoredPoint[]> =>
        Promise.resolve(points.map((p) => ({ stream: p.stream, atMs: p.atMs ?? nowMs, value: p.value, seq: ++seq })))
    return store
}

/**
 * CPU time of the calling thread (the main thread: the event loop), ms, from /proc (Linux; clock ticks of
 * 10 ms); undefined elsewhere. process.cpuUsage() counts every thread, the writer thread's too.
 */
function threadCpuMs(): number | undefined {
    try {
        // fields after the command's closing parenthesis: state is the 3rd, utime the 14th, stime the 15th
        const f = readFileSync("/proc/thread-self/stat", "utf8").split(") ")[1].split(" ")
        return ((Number(f[11]) + Number(f[12])) * 1000) / 100
    } catch {
        return undefined
    }
}

export interface RequestPathFigures {
    /** CPU time per update of each measured round, µs (with realStore: the main thread's alone, where /proc tells it) */
    usPerUpdate: number[]
    /** bytes allocated per update (sampleAlloc), KB */
    kbAllocatedPerUpdate?: number
}

/** What `npm run bench:request-path` measures (see there), printed through `log` and returned. */
/**
 * `realStore`: the store as it runs (its SQLite writer thread, the durable commit): each round's 200 writes then
 * go to the thread as one message and come back as one answer, so the figure adds the main thread's side of
 * that hop (stamps, the writer's client, the structured clone each way, the answers' promise steps), which
 * the socket-level bench cannot separate from its load; the figure is the main thread's own CPU.
 */
export async function measureRequestPath(opts: { rounds: number; updatesPerRound: number; sampleAlloc: boolean; realStore?: boolean; log: (line: string) => void }): Promise<RequestPathFigures> {
    const { rounds, updatesPerRound, sampleAlloc, log } = opts
    const realStore = opts.realStore === true
    const scratch = mkdtempSync(join(tmpdir(), "feedline-request-path-"))
    const storeSays = realStore ? "the real store: its writer thread's hop, main thread's CPU" : "store writes answered at once"
    log(`feedline request path (no sockets, ${storeSays}): ${SESSIONS} sessions, ${PER_CHUNK} updates per chunk; load average ${os.loadavg()[0].toFixed(1)}`)
    const server = await startServer({
        dataDir: scratch,
        devicePort: 0,
        appPort: 0,
        ratePerSecond: 1e9,
        rateBurst: 1e9,
        keyRatePerSecond: 1e9,
        keyRateBurst: 1e9,
        logDestination: createWriteStream(join(scratch, "server.log")),
        wrapStore: realStore ? undefined : storeAnsweringWritesAtOnce,
    })
    try {
        const { feedId, deviceKey } = server.credentials
        let answered = 0
        let wanted = 0
        let wake: (() => void) | undefined
        const onLines = (n: number) => {
            answered += n
            if (answered >= wanted && wake) wake()
        }
        const until = (n: number) => {
            wanted = n
            return answered >= n ? Promise.resolve() : new Promise<void>((r) => (wake = r))
        }
        const sessions = Array.from({ length: SESSIONS }, () => server.attachWire(new CountingWire(onLines)))
        const at = Date.now()
        const line = (device: number, seq: number, key?: string) =>
            encodeShortRequest({ method: "put", resource: `/feeds/${feedId}`, headers: key ? { "X-ApiKey": key } : undefined, body: updateBody(device, seq, at + seq), token: seq.toString(36) }) + "\n"
        // [P§7] auth once per connection; the welcome is each wire's first line
        sessions.forEach((s, d) => s.receiveBytes(Buffer.from(line(d, 0, deviceKey))))
        await until(2 * SESSIONS)
        const chunks = sessions.map((_, d) =>
            Array.from({ length: CHUNKS_PER_SESSION }, (_, c) => Buffer.from(Array.from({ length: PER_CHUNK }, (_, k) => line(d, 1 + c * PER_CHUNK + k)).join(""))),
        )
        const runRound = async (updates: number) => {
            for (let done = 0, c = 0; done < updates; done += SESSIONS * PER_CHUNK, c = (c + 1) % CHUNKS_PER_SESSION) {
                const target = answered + SESSIONS * PER_CHUNK
                for (let d = 0; d < SESSIONS; d++) sessions[d].receiveBytes(chunks[d][c])
                await until(target)
            }
        }
        await runRound(2 * updatesPerRound) // warm-up: the JIT's tiers
        const perUpdate: number[] = []
        let kbAllocatedPerUpdate: number | undefined
        for (let r = 0; r < rounds; r++) {
            const before = answered
            const cpu0 = process.cpuUsage()
            const thread0 = realStore ? threadCpuMs() : undefined
            const t0 = performance.now()
            await runRound(updatesPerRound)
            const cpu = process.cpuUsage(cpu0)
            const thread1 = realStore ? threadCpuMs() : undefined
            const n = answered - before
            const us = thread0 !== undefined && thread1 !== undefined ? ((thread1 - thread0) * 1000) / n : (cpu.user + cpu.system) / n
            perUpdate.push(us)
            log(`  round ${r + 1}: ${us.toFixed(2)} µs CPU per update, ${((n / (performance.now() - t0)) * 1000).toFixed(0)} updates/s`)
        }
        if (sampleAlloc) {
            const inspector = new Inspector()
            inspector.connect()
            await inspector.post("HeapProfiler.startSampling", { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
            const before = answered
            await runRound(updatesPerRound)
            const n = answered - before
            const { profile } = await inspector.post("HeapProfiler.stopSampling")
            const samples = (profile as unknown as { samples: { size: number; nodeId: number }[] }).samples
            const bytes = samples.reduce((sum, s) => sum + s.size, 0)
            inspector.disconnect()
            kbAllocatedPerUpdate = bytes / n / 1024
            log(`  allocated: ${kbAllocatedPerUpdate.toFixed(2)} KB per update (sampled, collected objects included); where, by the allocating function:`)
            const where = new Map<number, string>()
            type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children: Node[] }
            const visit = (node: Node) => {
                const cf = node.callFrame
                where.set(node.id, `${cf.functionName || "(anonymous)"} ${cf.url.replace(/^.*\/(devs|src|node_modules)\//, "$1/")}:${cf.lineNumber + 1}`)
                node.children.forEach(visit)
            }
            visit(profile.head as unknown as Node)
            const byPlace = new Map<string, number>()
            for (const s of samples) byPlace.set(where.get(s.nodeId)!, (byPlace.get(where.get(s.nodeId)!) ?? 0) + s.size)
            for (const [place, b] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, 15)) log(`    ${(b / n).toFixed(0).padStart(5)} B  ${place}`)
        }
        const sorted = [...perUpdate].sort((a, b) => a - b)
        log(`range: ${sorted[0].toFixed(2)}–${sorted[sorted.length - 1].toFixed(2)} µs CPU per update, median ${sorted[Math.floor(sorted.length / 2)].toFixed(2)}; load average ${os.loadavg()[0].toFixed(1)}`)
        return { usPerUpdate: perUpdate, kbAllocatedPerUpdate }
    } finally {
        await server.close()
        rmSync(scratch, { recursive: true, force: true })
    }
}
