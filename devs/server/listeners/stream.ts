// Any byte stream (TLS socket, plain TCP socket, or any Duplex) as a session's wire [P§3]:
// lines out with "\n", bytes in through the session's framer.
import type { Duplex } from "node:stream"
import { CLOSE_GRACE_MS } from "../limits.ts"
import { Session, type SessionDeps, type Wire } from "../session.ts"

/**
 * What a stream is sent in one event-loop turn (the acknowledgements of one group commit, pushes) leaves
 * in one socket write of one string: one TLS record and one syscall instead of one per line, and no
 * cork/uncork or writev of many small chunks. One flush for every stream with output, once per turn.
 */
class TurnOutput {
    private readonly due: StreamWire[] = []
    private scheduled = false
    private readonly flushAll = () => {
        this.scheduled = false
        const due = this.due.splice(0)
        for (const o of due) o.flush()
    }

    /** `o` has output: flush it before this turn ends */
    add(o: StreamWire): void {
        this.due.push(o)
        if (this.scheduled) return
        this.scheduled = true
        process.nextTick(this.flushAll)
    }
}

const turnOutput = new TurnOutput()

/** where a stream's wire sits on the stream itself, for the listeners below (as `ws` keeps its socket's WebSocket) */
const WIRE = Symbol("feedline.wire")
type WiredStream = Duplex & { [WIRE]: StreamWire }

/**
 * A stream as a session's wire: one object per connection that holds the stream, its session and this
 * turn's output, with methods instead of a closure each, and listeners shared by every stream (they find
 * the wire on the stream). An idle connection's memory is mostly Node's TLS socket; this keeps feedline's
 * own share small (docs/performance-history.md, "Memory at rest and per connection, second pass").
 */
class StreamWire implements Wire {
    private pending = ""
    session!: Session

    constructor(
        private readonly stream: Duplex,
        readonly transport: "tls" | "tcp",
        readonly remoteAddress: string,
    ) {}

    send(lines: string[]): void {
        this.write(lines.length === 1 ? lines[0] + "\n" : lines.join("\n") + "\n")
    }

    heartbeat(): void {
        this.write("\n")
    }

    private write(text: string): void {
        if (this.pending === "") turnOutput.add(this)
        this.pending += text
    }

    flush(): void {
        if (this.pending === "") return
        const text = this.pending
        this.pending = ""
        if (!this.stream.destroyed) this.stream.write(text)
    }

    /** bytes not yet handed to the operating system, this turn's included (UTF-16 units of those: close enough for the bounds) */
    bufferedBytes(): number {
        return this.stream.writableLength + this.pending.length
    }

    pause(): void {
        this.stream.pause()
    }

    resume(): void {
        this.stream.resume()
    }

    end(): void {
        this.flush()
        this.stream.end()
        setTimeout(destroyStream, CLOSE_GRACE_MS, this.stream).unref()
    }
}

function destroyStream(stream: Duplex): void {
    stream.destroy()
}

function onData(this: WiredStream, chunk: Buffer): void {
    this[WIRE].session.receiveBytes(chunk)
}

function onClose(this: WiredStream): void {
    this[WIRE].session.closed()
}

/** the peer's half-close (attachStream keeps the stream half open): its requests are answered, then it closes */
function onEnd(this: WiredStream): void {
    this[WIRE].session.peerEnded()
}

/** what was queued went out: reads held while the queue was full may go on */
function onDrain(this: WiredStream): void {
    this[WIRE].session.drained()
}

/**
 * An error leaves the stream unusable; it is destroyed (its close ends the session). Node destroys it itself for
 * most errors, but not for every TLS one: a renegotiation refused (ERR_TLS_RENEGOTIATION_DISABLED), or
 * over its limit (ERR_TLS_SESSION_ATTACK), was reported and the connection went on renegotiating.
 */
function onError(this: WiredStream, err: Error): void {
    this[WIRE].session.transportError(err)
    this.destroy()
}

export function attachStream(deps: SessionDeps, stream: Duplex, transport: "tls" | "tcp", remoteAddress: string): Session {
    const wire = new StreamWire(stream, transport, remoteAddress)
    const session = (wire.session = new Session(deps, wire))
    ;(stream as WiredStream)[WIRE] = wire
    // [P§3] a client that half-closes after its requests (`openssl s_client`, a pipe) still gets their answers: the
    // stream stays writable after the peer's end (onEnd). Set here, once a session holds it, not on the listener:
    // a socket still in its TLS handshake must close with its peer.
    stream.allowHalfOpen = true
    stream.on("data", onData)
    stream.on("close", onClose)
    stream.on("end", onEnd)
    stream.on("drain", onDrain)
    stream.on("error", onError)
    session.start()
    return session
}
