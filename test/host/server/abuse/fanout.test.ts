// Issue 12, "Done means": one feed flooded with the largest fan-out the defaults allow must not stall
// another feed. `feedline serve` (defaults, in its own process so its memory can be read) gets 64
// subscribers on feed A (in a process of their own, test/e2e/flood-subscribers.ts) and 4 writers
// sending the biggest writes a request may hold (16 KiB: 439 datapoints, so one write owes ~28 000
// pushes and two reach MAX_OWED_PUSHES_PER_FEED) as fast as the default rate limit and the server's
// 429s let them, resending a refused write after its retry_after_ms as devices do. Meanwhile a quiet
// writer puts one datapoint on feed B every 25 ms and B's subscriber times each push (send → push).
// Shown: B's pushes arrive with p99 within QUIET_PUSH_P99_MS (the bound docs/RELIABILITY.md documents is 250 ms
// on this 2-core machine, measured 80-130 ms here with nothing else running; `npm run bench` measures it
// in its noisy-neighbour row; 5 s is asserted, half the lateness of the bug this test exists for, because
// npm test shares the machine with other suites and a p99 of ~160 pushes is nearly their maximum, which one
// stall of a loaded process sets: with two busy-looping processes beside it, 440-750 ms was measured, most
// of it the commit before the acknowledgement, ack → push p99 under 100 ms), server RSS stays under
// SERVER_RSS_BOUND_MIB, writes over the bound got 429 E_FANOUT_BUSY with retry_after_ms, and every
// acknowledged write reached every subscriber, each datapoint once (a refused one: nowhere). Before the
// hub's fair, bounded fan-out, a marker on another feed arrived 10-19 s late (issue 12).
import assert from "node:assert/strict"
import { fork, type ChildProcess } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import tls from "node:tls"
import { after, before, test } from "node:test"
import { fileURLToPath } from "node:url"
import { decodeServerLine, encodeRequest, MAX_OBJECT_BYTES, type Response } from "../../../../src/protocol.ts"
import { FANOUT_RETRY_MAX_MS, FANOUT_RETRY_MIN_MS, MAX_OWED_PUSHES_PER_FEED } from "../../../../devs/server/limits.ts"
import type { FloodReport } from "../../../e2e/flood-subscribers.ts"
import { startServerProcess, type ServerProcess } from "../../../e2e/server-process.ts"

const FLOOD_SUBSCRIBERS = fileURLToPath(new URL("../../../e2e/flood-subscribers.ts", import.meta.url))

const SUBSCRIBERS = 64
const WRITERS = 4
/** writes each writer keeps in flight */
const WINDOW = 4
const FLOOD_MS = 4000
const QUIET_EVERY_MS = 25
/**
 * asserted, send → push: a bound that tells the bug (a marker on another feed 10-19 s late) from a loaded
 * machine, not a measurement; the documented figure (docs/RELIABILITY.md) is 250 ms, measured by `npm run
 * bench` (noisy-neighbour row); the fair turns themselves are stepped on the hub's own clock in hub.test.ts.
 * The fan-out's own part (ack → push) is asserted apart, so that slow commits under load cannot hide it.
 */
const QUIET_PUSH_P99_MS = 5000
const QUIET_FANOUT_P99_MS = 5000
/**
 * the server's RSS while flooded: ~100 MiB idle under tsx, 140-165 MiB measured flooded; what the flood
 * may add is bounded by the feed's debt (MAX_OWED_PUSHES_PER_FEED, shared change objects) and each
 * connection's queue (MAX_QUEUE_BYTES)
 */
const SERVER_RSS_BOUND_MIB = 250
/** everything acknowledged must have arrived within this after the flood stops */
const DRAIN_WAIT_MS = 20_000
/** a blank line this often keeps idle connections alive [P§4] (the default timeout is 3 s) */
const HEARTBEAT_MS = 500

let server: ServerProcess
let dataDir: string
let ca: Buffer
let flood: ChildProcess | undefined

before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "feedline-fanout-"))
    server = await startServerProcess({ dataDir })
    ca = readFileSync(server.caCertPath)
})
after(async () => {
    flood?.kill()
    await server?.stop("SIGTERM")
    rmSync(dataDir, { recursive: true, force: true })
})

/** A TLS connection that hands each line to `onLine` (raw text: the flood is too big to decode every push) and keeps itself alive. */
class LineClient {
    closed = false
    private partial = ""
    private readonly heartbeat: NodeJS.Timeout
    private constructor(
        readonly socket: tls.TLSSocket,
        public onLine: (line: string) => void,
    ) {
        socket.setEncoding("utf8")
        socket.on("data", (chunk: string) => {
            const text = this.partial + chunk
            let start = 0
            for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
                if (nl > start) this.onLine(text.slice(start, nl))
                start = nl + 1
            }
            this.partial = text.slice(start)
        })
        socket.on("close", () => (this.closed = true))
        socket.on("error", () => {})
        this.heartbeat = setInterval(() => socket.write("\n"), HEARTBEAT_MS)
    }

    static open(): Promise<LineClient> {
        return new Promise((resolve, reject) => {
            const socket = tls.connect({ host: "127.0.0.1", port: server.devicePort, ca, servername: "localhost" })
            socket.once("error", reject)
            const c = new LineClient(socket, (line) => {
                if (decodeServerLine(line).kind !== "welcome") return reject(new Error(`no welcome: ${line}`))
                c.onLine = () => {}
                resolve(c)
            })
        })
    }

    send(req: object): void {
        this.socket.write(encodeRequest(req as any) + "\n")
    }

    close(): void {
        clearInterval(this.heartbeat)
        this.socket.destroy()
    }
}

/** Requests matched to their responses by token on one connection. */
class Requester {
    private waiting = new Map<string, (r: Response) => void>()
    private next = 0
    constructor(readonly c: LineClient, private readonly onOther: (line: string) => void = () => {}) {
        c.onLine = (line) => {
            const d = decodeServerLine(line)
            const r = d.kind === "response" ? d.response! : undefined
            const w = r?.token === undefined ? undefined : this.waiting.get(r.token)
            if (w) {
                this.waiting.delete(r!.token!)
                w(r!)
            } else this.onOther(line)
        }
    }
    request(req: Record<string, unknown>): Promise<Response> {
        const token = `r${++this.next}`
        return new Promise((resolve) => {
            this.waiting.set(token, resolve)
            this.c.send({ ...req, token })
        })
    }
}

function rssMiB(pid: number): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m ? Number(m[1]) / 1024 : NaN
}

function percentile(sorted: number[], p: number): number {
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

test("a flooded feed does not stall another: quiet pushes on time, memory bounded, every acknowledged write pushed to every subscriber, the rest 429 E_FANOUT_BUSY", { timeout: 180_000 }, async () => {
    const { masterKey, deviceKey, feedId: noisy } = server.credentials
    const admin = new Requester(await LineClient.open())
    const created = await admin.request({ method: "post", resource: "/feeds", headers: { "X-ApiKey": masterKey }, body: { title: "quiet" } })
    assert.equal(created.status, 201, JSON.stringify(created))
    const quiet: number = (created.body as any).id

    // the biggest write one request may hold: one datastream per writer, `at` = base + write × 1000 + k
    const base = Date.now() - 3600_000
    const bodyOf = (writer: number, write: number, points: number) => ({
        datastreams: [{ id: `w${writer}`, datapoints: Array.from({ length: points }, (_, k) => ({ at: base + write * 1000 + k, value: String(write) })) }],
    })
    let POINTS = 1
    const size = (p: number) => encodeRequest({ method: "put", resource: `/feeds/${noisy}`, body: bodyOf(WRITERS, 99_999, p), token: "r99999" } as any).length + 1
    while (size(POINTS + 1) <= MAX_OBJECT_BYTES) POINTS++
    const perWrite = POINTS * SUBSCRIBERS
    console.log(`# ${POINTS} datapoints per write (${size(POINTS)} bytes) × ${SUBSCRIBERS} subscribers = ${perWrite} pushes per write; a feed may owe ${MAX_OWED_PUSHES_PER_FEED}`)
    assert.ok(perWrite * 2 > MAX_OWED_PUSHES_PER_FEED, "two writes in flight reach the bound")

    // 64 subscribers on the noisy feed, in a process of their own, counting datapoints per (writer, write)
    flood = fork(FLOOD_SUBSCRIBERS, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] })
    const fromFlood = (op: string) =>
        new Promise<any>((resolve, reject) => {
            const onMessage = (m: any) => {
                if (m.op !== op && m.op !== "error") return
                flood!.off("message", onMessage)
                if (m.op === "error") reject(new Error(`flood subscribers: ${m.error}`))
                else resolve(m)
            }
            flood!.on("message", onMessage)
        })
    const opened = fromFlood("opened")
    flood!.send({ op: "open", port: server.devicePort, caPath: server.caCertPath, key: deviceKey, resource: `/feeds/${noisy}`, count: SUBSCRIBERS })
    await opened
    const report = async (): Promise<FloodReport> => {
        const r = fromFlood("report")
        flood!.send({ op: "report" })
        return (await r).report
    }

    // the quiet feed: one subscriber timing every push
    const sentAt = new Map<number, number>()
    const ackedAt = new Map<number, number>()
    const pushedAt = new Map<number, number>()
    const latencies: number[] = []
    const quietSub = await LineClient.open()
    const quietAck = new Promise<void>((resolve) => {
        quietSub.onLine = (line) => {
            const r = decodeServerLine(line).response
            if (r?.token !== "q") return
            if (r.body === undefined) return resolve()
            const n = Number((r.body as any).current_value)
            pushedAt.set(n, performance.now())
            latencies[n] = pushedAt.get(n)! - sentAt.get(n)!
        }
    })
    quietSub.send({ method: "subscribe", resource: `/feeds/${quiet}`, headers: { "X-ApiKey": masterKey }, token: "q" })
    await quietAck
    const quietWriter = new Requester(await LineClient.open())

    // flood, and write the quiet feed, at the same time
    const rssSamples: number[] = []
    const rssTimer = setInterval(() => rssSamples.push(rssMiB(server.pid)), 100)
    const floodEnd = performance.now() + FLOOD_MS
    const acked = new Set<string>()
    const abandoned = new Set<string>()
    const refusals = new Map<string, number>()
    const hints: number[] = []
    const otherFailures: string[] = []
    const writers = await Promise.all(Array.from({ length: WRITERS }, async () => new Requester(await LineClient.open())))
    const writeLoop = async (writer: number, lane: number) => {
        const w = writers[writer]
        for (let write = lane; performance.now() < floodEnd; write += WINDOW) {
            const key = `${writer}.${write}`
            for (;;) {
                const r = await w.request({ method: "put", resource: `/feeds/${noisy}`, headers: { "X-ApiKey": deviceKey }, body: bodyOf(writer, write, POINTS) })
                if (r.status === 200) {
                    acked.add(key)
                    break
                }
                const body = r.body as any
                if (r.status !== 429) {
                    otherFailures.push(`${r.status} ${body?.code}`)
                    return
                }
                refusals.set(body.code, (refusals.get(body.code) ?? 0) + 1)
                if (body.code === "E_FANOUT_BUSY") hints.push(body.retry_after_ms)
                // as a device does: nothing was stored, send the same write again after the hint
                await sleep(body.retry_after_ms)
                if (performance.now() >= floodEnd) {
                    abandoned.add(key)
                    break
                }
            }
        }
    }
    // one datapoint every QUIET_EVERY_MS, not waiting for the previous acknowledgement (a device's sensor does not wait either)
    const quietLoop = async () => {
        let n = 0
        const failures: string[] = []
        const acks: Promise<void>[] = []
        while (performance.now() < floodEnd + 1000) {
            const i = n++
            sentAt.set(i, performance.now())
            const body = { datastreams: [{ id: "marker", datapoints: [{ at: base + i, value: String(i) }] }] }
            acks.push(
                quietWriter.request({ method: "put", resource: `/feeds/${quiet}`, headers: { "X-ApiKey": masterKey }, body }).then((r) => {
                    ackedAt.set(i, performance.now())
                    if (r.status !== 200) failures.push(`${r.status} ${(r.body as any)?.code}`)
                }),
            )
            await sleep(QUIET_EVERY_MS)
        }
        await Promise.all(acks)
        return { sent: n, failures }
    }
    const [q] = await Promise.all([quietLoop(), ...Array.from({ length: WRITERS * WINDOW }, (_, i) => writeLoop(i % WRITERS, Math.floor(i / WRITERS)))])

    // everything acknowledged arrives (wait for it, do not sleep for it)
    const expected = [...acked].map((k) => `w${k}`)
    let received: Map<string, number>[] = []
    let floodReport: FloodReport
    const complete = () => received.every((m) => expected.every((k) => m.get(k) === POINTS)) && latencies.filter((x) => x !== undefined).length === q.sent
    const drainFrom = performance.now()
    do {
        floodReport = await report()
        received = floodReport.counts.map((c) => new Map(c))
        if (complete() || floodReport.closed > 0) break
        await sleep(100)
    } while (performance.now() - drainFrom < DRAIN_WAIT_MS)
    clearInterval(rssTimer)
    rssSamples.push(rssMiB(server.pid))

    const sorted = latencies.filter((x) => x !== undefined).sort((a, b) => a - b)
    const p50 = percentile(sorted, 50)
    const p99 = percentile(sorted, 99)
    const rssMax = Math.max(...rssSamples)
    const pushed = expected.length * perWrite
    console.log(
        `# flood of ${FLOOD_MS} ms: ${acked.size} writes acknowledged (${pushed} pushes to ${SUBSCRIBERS} subscribers), ` +
            `refused ${[...refusals].map(([c, n]) => `${n} × ${c}`).join(", ")}; retry hints ${Math.min(...hints)}-${Math.max(...hints)} ms; ${abandoned.size} refused writes given up at the end`,
    )
    // the push's way split at the acknowledgement: the commit (durable, shared with the flood's writes) and the fan-out after it
    const gaps = (from: Map<number, number>, to: Map<number, number>) => [...to].map(([n, t]) => Math.max(0, t - from.get(n)!)).sort((a, b) => a - b)
    const commit = gaps(sentAt, ackedAt)
    const fanout = gaps(ackedAt, pushedAt)
    console.log(
        `# quiet feed: ${sorted.length}/${q.sent} pushes, send → push p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms ` +
            `(send → ack p99 ${percentile(commit, 99).toFixed(1)} ms, ack → push p99 ${percentile(fanout, 99).toFixed(1)} ms); server RSS max ${rssMax.toFixed(0)} MiB`,
    )

    assert.deepEqual(otherFailures, [], "the flood got only 200s and 429s")
    assert.deepEqual(q.failures, [], "every quiet write was acknowledged")
    assert.equal(floodReport.closed, 0, "no subscriber was dropped")
    assert.deepEqual(floodReport.strays, [], "subscribers got nothing but their pushes")
    // every acknowledged write reached every subscriber, each datapoint once; nothing of a refused one
    for (const [s, m] of received.entries()) {
        const missing = expected.filter((k) => m.get(k) !== POINTS)
        assert.deepEqual(missing.map((k) => `${k}: ${m.get(k) ?? 0}`), [], `subscriber ${s}: acknowledged writes not (or not exactly) pushed`)
        const unacked = [...m.keys()].filter((k) => !expected.includes(k))
        assert.deepEqual(unacked, [], `subscriber ${s}: pushes of writes that were never acknowledged`)
    }
    assert.ok((refusals.get("E_FANOUT_BUSY") ?? 0) > 0, "writes over the bound were refused 429 E_FANOUT_BUSY")
    assert.ok(hints.every((h) => h >= FANOUT_RETRY_MIN_MS && h <= FANOUT_RETRY_MAX_MS), `retry hints within bounds: ${Math.min(...hints)}-${Math.max(...hints)}`)
    assert.ok(acked.size >= 4, `the flooded feed still took writes (${acked.size})`)
    assert.equal(sorted.length, q.sent, "every quiet push arrived")
    assert.ok(p99 <= QUIET_PUSH_P99_MS, `quiet feed push latency p99 ${p99.toFixed(1)} ms (bound ${QUIET_PUSH_P99_MS} ms)`)
    assert.ok(percentile(fanout, 99) <= QUIET_FANOUT_P99_MS, `quiet feed ack → push p99 ${percentile(fanout, 99).toFixed(1)} ms (bound ${QUIET_FANOUT_P99_MS} ms)`)
    assert.ok(rssMax <= SERVER_RSS_BOUND_MIB, `server RSS ${rssMax.toFixed(0)} MiB (bound ${SERVER_RSS_BOUND_MIB} MiB)`)
    // the operator sees it too: every refusal counted, nothing owed once delivered
    const metrics = await (await fetch(`http://127.0.0.1:${server.appPort}/metrics`)).text()
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1])
    assert.equal(metric("feedline_fanout_busy_total"), refusals.get("E_FANOUT_BUSY"))
    assert.equal(metric("feedline_pushes_owed"), 0)

    flood!.send({ op: "close" })
    for (const c of [quietSub, quietWriter.c, admin.c, ...writers.map((w) => w.c)]) c.close()
})
