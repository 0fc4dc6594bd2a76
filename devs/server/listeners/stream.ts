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
    private readonly due: StreamOutput[] = []
    private scheduled = false
    private readonly flushAll = () => {
        this.scheduled = false
        const due = this.due.splice(0)
        for (const o of due) o.flush()
    }

    /** `o` has output: flush it before this turn ends */
    add(o: StreamOutput): void {
        this.due.push(o)
        if (this.scheduled) return
        this.scheduled = true
        process.nextTick(this.flushAll)
    }
}

const turnOutput = new TurnOutput()

class StreamOutput {
    private pending = ""

    constructor(private readonly stream: Duplex) {}

    write(text: string): void {
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
}

export function attachStream(deps: SessionDeps, stream: Duplex, transport: "tls" | "tcp", remoteAddress: string): Session {
    const out = new StreamOutput(stream)
    const wire: Wire = {
        transport,
        remoteAddress,
        send: (lines) => out.write(lines.length === 1 ? lines[0] + "\n" : lines.join("\n") + "\n"),
        heartbeat: () => out.write("\n"),
        bufferedBytes: () => out.bufferedBytes(),
        end: () => {
            out.flush()
            stream.end()
            setTimeout(() => stream.destroy(), CLOSE_GRACE_MS).unref()
        },
    }
    const session = new Session(deps, wire)
    stream.on("data", (chunk: Buffer) => session.receiveBytes(chunk))
    stream.on("close", () => session.closed())
    stream.on("error", (err) => deps.log.debug({ session: session.id, err: err.message }, "connection error"))
    session.start()
    return session
}
