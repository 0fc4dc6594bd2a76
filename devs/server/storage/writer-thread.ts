// The server's datapoint commits run on a worker thread that owns its own SQLite write connection, so
// that a commit and its fsync (synchronous=FULL: a millisecond or more) never stall the event loop that
// serves every connection. The writes of one event-loop turn go to the thread as one message; the thread
// commits every write message waiting in its inbox in one transaction (group commit), so the writes made
// while a commit runs all go in the next one, and answers after that transaction is durable;
// acknowledgements wait for that answer [P§9].
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads"
import type { StampedPoint as PointInput } from "./stamps.ts"
import { commitFailed, compactionFailed, refusalOf, refusedForKeys, storedPointsOf, storeErrorOf, writeOutcomeUnknown, type GroupCommitHooks, type StoreRefusal, type WriteRequest, type WrittenPairs } from "./point-writer.ts"
import type { StoredPoint, StoreError } from "./store.ts"
import type { Settles } from "../later.ts"
import { UnknownOutcomes } from "./unknown-outcomes.ts"
import { MainTrace, traceNow, WRITER_TRACE_PATH, type MainTiming, type ThreadTiming } from "./writer-trace.ts"

/**
 * Main → thread. `writes`: packed by packWrites (a flat array clones in a fraction of the time of objects).
 * `recoverAfterSeq`: the writes of a thread that stopped before answering them, sent again (PointWriter.commit).
 * `compact`: move the ingest journal into the tables now (a read must see what was acknowledged).
 */
export type ToWriter =
    | { kind: "write"; id: number; nowMs: number; writes: PackedWrites; trace?: MainTiming; recoverAfterSeq?: number }
    | { kind: "compact"; id: number }
    | { kind: "close" }

/** Per write: feed, keys' generation (-1: none), number of points, then stream, atMs, value per point. */
export type PackedWrites = (number | string)[]

/**
 * `into`: an array to fill again instead of a new one (WriterThread's own: postMessage has copied it by the time
 * it returns). Written by index, so that a message of the usual size allocates nothing: a new array grown by
 * push for 200 writes allocated ~170 B per write in copies as it grew. Its length is set last (a much shorter
 * batch trims it); it stays packed (no holes), which the structured clone copies as a dense array.
 */
export function packWrites(writes: WriteRequest[], into: PackedWrites = []): PackedWrites {
    let i = 0
    for (const w of writes) {
        i = put3(into, i, w.feed, w.keysGeneration ?? -1, w.points.length)
        for (const p of w.points) i = put3(into, i, p.stream, p.atMs, p.value)
    }
    if (into.length > i) into.length = i
    return into
}

/** packWrites' step: a, b and c at i, over what the array held or after it; the next index */
function put3(out: PackedWrites, i: number, a: number | string, b: number | string, c: number | string): number {
    if (i + 3 <= out.length) {
        out[i] = a
        out[i + 1] = b
        out[i + 2] = c
    } else out.push(a, b, c) // an array filled again never has fewer than i entries: no holes
    return i + 3
}

export function unpackWrites(packed: PackedWrites): WriteRequest[] {
    const writes: WriteRequest[] = []
    for (let i = 0; i < packed.length; ) {
        const feed = packed[i++] as number
        const keysGeneration = packed[i++] as number
        const n = packed[i++] as number
        const points: PointInput[] = new Array(n)
        for (let k = 0; k < n; ++k, i += 3) points[k] = { stream: packed[i] as string, atMs: packed[i + 1] as number, value: packed[i + 2] as string }
        writes.push(keysGeneration < 0 ? { feed, points } : { feed, points, keysGeneration })
    }
    return writes
}

/**
 * Per request of a message, in order: the number of its written pairs then the pairs, or -1 - i for the
 * refusal refusals[i]. A typed array: it crosses threads as one copy of bytes.
 */
export interface PackedOutcomes {
    written: Float64Array
    refusals: StoreRefusal[]
}

export function packOutcomes(outcomes: (WrittenPairs | StoreError)[]): PackedOutcomes {
    let size = 0
    for (const o of outcomes) size += Array.isArray(o) ? 1 + o.length : 1
    const written = new Float64Array(size)
    const refusals: StoreRefusal[] = []
    let i = 0
    for (const o of outcomes) {
        if (!Array.isArray(o)) {
            written[i++] = -1 - refusals.length
            refusals.push(refusalOf(o))
            continue
        }
        written[i++] = o.length
        for (const x of o) written[i++] = x
    }
    return { written, refusals }
}

/**
 * Thread → main. `written`: the answer to the write messages `ids` (in the order sent), committed in one
 * transaction; `outcomes`: their requests', in that order. One answer for them all: its `seq` is the
 * high-water after all of them, so no message of the commit is answered before the others (writer-thread.ts lost()).
 * `commitMs`: how long the transaction took (absent when it failed). `traces`: per message, as `ids`.
 * `keysGeneration`: the keys' generation as the thread's latest commit read it (PointWriter.keysGeneration).
 * `seq` (written, ready): the journal's seq high-water after the commit (absent after one rolled back), as opened.
 */
export type FromWriter =
    | { kind: "written"; ids: number[]; outcomes: PackedOutcomes; commitMs?: number; keysGeneration: number; seq?: number; traces?: ThreadTiming[] }
    | { kind: "compacted"; id: number; failed?: string }
    | { kind: "ready"; seq: number }
    | { kind: "error"; message: string; stack?: string }
    | { kind: "closed" }

/**
 * A lost thread's unanswered writes go to a new thread as a recovery (lost()); when that thread dies too,
 * again, from the same mark, up to this many recoveries in a row. Past it they are refused "commit-unknown":
 * the writes themselves may be what ends the threads.
 */
export const MAX_RECOVERIES = 3

export interface WriterThreadData {
    path: string
    synchronous: "FULL" | "NORMAL"
}

/**
 * What the thread starts with: its inbox (the ToWriter messages; the thread takes them itself, it runs
 * no event loop) and the doorbell it sleeps on (an Int32Array over it; DOORBELL_RUNG counts the
 * messages sent, raised after each is in the inbox). Its answers go to its parent port as usual.
 */
export interface WriterThreadStart extends WriterThreadData {
    inbox: MessagePort
    doorbell: SharedArrayBuffer
    /** started for a lost thread's recovery (its first message): the journal is left as it is until then (PointWriter's compactOnOpen) */
    recovering: boolean
}

/** The doorbell's slot that counts the messages sent to the thread. */
export const DOORBELL_RUNG = 0

/** A write on its way, and who hears its outcome (writeTo's `to`). */
interface Waiting extends WriteRequest {
    to: Settles<StoredPoint[]>
}


/**
 * The thread's entry: the compiled .js beside this file; under tsx (development, tests) the TypeScript
 * one, through a small ES module that registers tsx in the thread first (a loader given to the process
 * with --import does not reach worker threads on Node 20).
 */
function entry(): URL {
    if (import.meta.url.endsWith(".js")) return new URL("./writer-thread-main.js", import.meta.url)
    const tsxApi = import.meta.resolve("tsx/esm/api")
    const main = new URL("./writer-thread-main.ts", import.meta.url).href
    const boot = `import { register } from ${JSON.stringify(tsxApi)}; register(); await import(${JSON.stringify(main)})`
    return new URL(`data:text/javascript,${encodeURIComponent(boot)}`)
}

export class WriterThread {
    private worker?: Worker
    /** the thread's inbox and doorbell (WriterThreadStart), this side */
    private inbox?: MessagePort
    private doorbell?: Int32Array
    private nextId = 1
    /** messages sent and not answered, each with its writes and their promises in order */
    private readonly inflight = new Map<number, Waiting[]>()
    /** the recovery in flight (lost()): its message, the seq mark it decides from, and how many recoveries in a row it is */
    private recovery?: { id: number; afterSeq: number; tries: number }
    /** the points of writes refused "commit-unknown", for their resends */
    private readonly unknownOutcomes = new UnknownOutcomes()
    /**
     * the seq high-water as of the last message the thread answered (or as it opened): only the writer thread
     * journals, in message order, so every seq above it was given by a message not answered yet (lost())
     */
    private answeredSeq: number | undefined
    /** the writes not sent yet: they go in one message at the end of the event-loop turn (sendSoon) */
    private queued: Waiting[] = []
    /** FEEDLINE_WRITER_TRACE (writer-trace.ts): when the oldest queued write was queued, and each message's stamps */
    private readonly trace = WRITER_TRACE_PATH ? { file: new MainTrace(`${WRITER_TRACE_PATH}`), firstQueuedAt: 0, sent: new Map<number, MainTiming>() } : undefined
    private scheduled = false
    /** the writes' message's array, filled again for each message (packWrites) */
    private readonly packed: PackedWrites = []
    /**
     * The turn's writes go in one message at its end, whatever is on its way: a message that comes while the
     * thread commits waits in its inbox (no wake-up), and goes in the next commit with every other waiting
     * there. (Holding writes on this side until an answer came, with two messages on their way, put the writes
     * made during a slow commit two commits behind it instead of one: performance-history.md, "Ack p99 over
     * the day".)
     */
    private readonly sendSoon = () => {
        this.scheduled = false
        this.send()
    }
    /** the compaction asked for and not answered: every read waiting meanwhile waits for it */
    private compaction?: { id: number; done: Promise<void>; resolve: () => void; reject: (e: Error) => void }
    private closing?: Promise<void>
    private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = []
    private isReady = false

    constructor(
        private readonly data: WriterThreadData,
        private readonly hooks: GroupCommitHooks,
        private readonly now: () => number,
        /** a stored point's seq as the store's own connection reads it: for a resend after "commit-unknown" (unknown-outcomes.ts) */
        private readonly pointSeq?: (feed: number, stream: string, atMs: number) => number | undefined,
    ) {}

    /** `keysGeneration`: see WriteRequest. */
    write(feed: number, points: PointInput[], keysGeneration?: number): Promise<StoredPoint[]> {
        return new Promise((resolve, reject) => this.writeTo(feed, points, keysGeneration, { resolve, reject }))
    }

    /**
     * write() with its outcome to `to`, called as the answer is read: no promise step between the commit and
     * whoever acknowledges it (later.ts). `to` must not throw (one that does is reported, and the other
     * writes of the answer are still settled).
     */
    writeTo(feed: number, points: PointInput[], keysGeneration: number | undefined, to: Settles<StoredPoint[]>): void {
        if (this.trace && this.queued.length === 0) this.trace.firstQueuedAt = traceNow()
        this.queued.push({ feed, points, keysGeneration, to })
        if (!this.scheduled) {
            this.scheduled = true
            setImmediate(this.sendSoon)
        }
    }

    private send(): void {
        const batch = this.queued
        this.queued = []
        if (batch.length === 0) return
        const worker = this.started()
        const id = this.nextId++
        this.inflight.set(id, batch)
        if (this.inflight.size === 1) worker.ref() // an unanswered write keeps the process alive
        const m: ToWriter = { kind: "write", id, nowMs: this.now(), writes: packWrites(batch, this.packed) }
        if (this.trace) this.trace.sent.set(id, (m.trace = { firstQueuedAt: this.trace.firstQueuedAt, sentAt: traceNow() }))
        this.toThread(m)
    }

    /** Puts a message in the started thread's inbox, then rings (the thread may be asleep on the doorbell). */
    private toThread(m: ToWriter): void {
        this.inbox!.postMessage(m)
        Atomics.add(this.doorbell!, DOORBELL_RUNG, 1)
        Atomics.notify(this.doorbell!, DOORBELL_RUNG)
    }

    /**
     * Resolves once the thread has moved its journal into the tables (point-writer.ts), so that a read on
     * another connection sees every write acknowledged before this call. One compaction on its way serves
     * every caller meanwhile: the thread answers in order, so a write acknowledged before the call was
     * journaled before the thread gets to the compaction, whenever that was asked for.
     */
    compact(): Promise<void> {
        if (this.compaction) return this.compaction.done
        let resolve!: () => void
        let reject!: (e: Error) => void
        const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)))
        this.compaction = { id: this.nextId++, done, resolve, reject }
        this.askToCompact()
        return done
    }

    private askToCompact(): void {
        const worker = this.started()
        worker.ref() // a read waits for the answer
        this.toThread({ kind: "compact", id: this.compaction!.id })
    }

    /** An idle thread does not keep the process alive; one that owes an answer, or is closing, does. */
    private unrefIfIdle(): void {
        if (this.inflight.size === 0 && !this.compaction && !this.closing) this.worker?.unref()
    }

    /**
     * Starts the thread now and resolves once it has opened its connection (the server waits for this
     * before it listens: starting a thread takes a while, which the first write must not wait for).
     */
    ready(): Promise<void> {
        this.started()
        if (this.isReady) return Promise.resolve()
        return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }))
    }

    private started(recovering = false): Worker {
        if (this.worker) return this.worker
        this.isReady = false
        const { port1, port2 } = new MessageChannel()
        const doorbell = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT)
        const worker = new Worker(entry(), { workerData: { ...this.data, inbox: port2, doorbell, recovering } satisfies WriterThreadStart, transferList: [port2] })
        worker.unref()
        this.inbox = port1
        this.doorbell = new Int32Array(doorbell)
        worker.on("message", (m: FromWriter) => this.received(m))
        worker.on("error", (err) => this.lost(worker, err))
        worker.on("exit", (code) => this.lost(worker, new Error(`the SQLite writer thread exited (code ${code})`)))
        this.worker = worker
        return worker
    }

    private received(m: FromWriter): void {
        if (m.kind === "ready") {
            this.answeredSeq = m.seq
            this.isReady = true
            for (const w of this.readyWaiters.splice(0)) w.resolve()
            return
        }
        if (m.kind === "error") return this.hooks.onError?.(Object.assign(new Error(m.message), { stack: m.stack }))
        if (m.kind === "compacted") {
            const c = this.compaction
            if (c?.id !== m.id) return
            this.compaction = undefined
            this.unrefIfIdle()
            if (m.failed === undefined) c.resolve()
            else c.reject(compactionFailed())
            return
        }
        if (m.kind !== "written") return
        const waiting: Waiting[] = []
        m.ids.forEach((id, k) => {
            const ws = this.inflight.get(id)
            if (!ws) return
            this.inflight.delete(id)
            if (this.recovery?.id === id) this.recovery = undefined
            const sent = this.trace?.sent.get(id)
            if (sent && m.traces) {
                this.trace!.sent.delete(id)
                this.trace!.file.answered(sent, m.traces[k], ws.length)
            }
            for (const w of ws) waiting.push(w)
        })
        if (waiting.length === 0) return
        if (m.seq !== undefined) this.answeredSeq = m.seq
        this.unrefIfIdle()
        if (m.commitMs !== undefined) this.hooks.onCommit?.(m.commitMs, waiting.length)
        const { written, refusals } = m.outcomes
        this.hooks.onKeysGeneration?.(m.keysGeneration, refusedForKeys(refusals))
        // read straight from the packed outcomes (packOutcomes): each write resolves with its points as stored
        let i = 0
        for (const w of waiting) {
            const n = written[i++]
            if (n < 0) {
                this.settle(w, undefined, storeErrorOf(refusals[-1 - n]))
                continue
            }
            const stored = storedPointsOf(w.points, written, i, n)
            this.settle(w, this.unknownOutcomes.size === 0 || !this.pointSeq ? stored : this.unknownOutcomes.resent(w.feed, w.points, stored, (stream, atMs) => this.pointSeq!(w.feed, stream, atMs)))
            i += n
        }
    }

    /**
     * Tells a write's listener its outcome (`stored`, else `error`), synchronously: the session's acknowledgement
     * may be sent from in here. A listener that throws (it must not) is reported, so that the answer's other
     * writes are settled still.
     */
    private settle(w: Waiting, stored: StoredPoint[] | undefined, error?: Error): void {
        try {
            if (stored !== undefined) w.to.resolve(stored)
            else w.to.reject(error)
        } catch (e) {
            this.hooks.onError?.(e)
        }
    }

    /**
     * The thread died. What it had not answered may have been committed (it may have died between a commit and
     * its answer), so it is not refused as "not written": it goes again first, with the same stamps, to a new
     * thread, as a recovery (PointWriter.commit's recoverAfterSeq) that decides from the store what the lost
     * commits wrote; each write is then answered as any write is, written or refused, stored once. Should the
     * recovery itself be lost (the new thread dies too), what is unanswered goes again from the same mark (every
     * journal row above it is still a lost commit's: nothing was answered since), so a server stamp is kept and a point
     * stored once; past MAX_RECOVERIES in a row, or with the high-water unknown, the writes are refused
     * "commit-unknown" (503 E_OUTCOME_UNKNOWN: send it again; the same `at`s are stored once [P§9], and a
     * resend found stored is pushed then: unknown-outcomes.ts). The next write starts a new thread.
     */
    private lost(worker: Worker, err: Error): void {
        if (this.worker !== worker) return
        this.worker = undefined
        this.inbox?.close()
        this.inbox = undefined
        for (const w of this.readyWaiters.splice(0)) w.reject(err)
        if (this.closing) return
        this.hooks.onError?.(err)
        const unanswered = [...this.inflight.values()].flat()
        // a recovery unanswered: no answer came since its mark, so the lost commits are all above it still
        const lostRecovery = this.recovery
        const after = lostRecovery ? lostRecovery.afterSeq : this.answeredSeq
        const tries = (lostRecovery?.tries ?? 0) + 1
        this.inflight.clear()
        this.recovery = undefined
        this.answeredSeq = undefined // the new thread says it when it opens
        if (after === undefined || tries > MAX_RECOVERIES) {
            const unknown = writeOutcomeUnknown()
            for (const w of unanswered) {
                // they may be stored: a resend that finds them so is answered written, and pushed then
                this.unknownOutcomes.remember(w.feed, w.points)
                this.settle(w, undefined, unknown)
            }
        } else if (unanswered.length) this.recover(unanswered, after, tries)
        // a new thread moves what the lost one journaled when it starts; the reads waiting learn when from it
        if (this.compaction) this.askToCompact()
        // what waited for the lost thread's answer goes to a new one
        if (this.queued.length && !this.scheduled) {
            this.scheduled = true
            setImmediate(this.sendSoon)
        }
    }

    /** Sends a lost thread's unanswered writes to a new one, before anything else (lost()). */
    private recover(writes: Waiting[], afterSeq: number, tries: number): void {
        const worker = this.started(true)
        const id = this.nextId++
        this.inflight.set(id, writes)
        this.recovery = { id, afterSeq, tries }
        worker.ref()
        this.toThread({ kind: "write", id, nowMs: this.now(), writes: packWrites(writes), recoverAfterSeq: afterSeq })
    }

    /** Sends what is queued, lets the thread commit it and close its connection, and waits for it to end. */
    close(): Promise<void> {
        return (this.closing ??= this.closeNow())
    }

    private async closeNow(): Promise<void> {
        this.send()
        const worker = this.worker
        if (!worker) return
        worker.ref()
        const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()))
        this.toThread({ kind: "close" })
        await exited
        this.trace?.file.flush()
        this.inbox?.close()
        // answers cannot come any more: the thread answers every write before the close, so one unanswered
        // now is one it died holding, committed or not (lost() sends none to a new thread while closing)
        const unknown = writeOutcomeUnknown()
        for (const waiting of this.inflight.values()) for (const w of waiting) this.settle(w, undefined, unknown)
        this.inflight.clear()
        this.compaction?.reject(commitFailed())
        this.compaction = undefined
    }
}
