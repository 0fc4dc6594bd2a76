// Any byte stream (TLS socket, plain TCP socket, or any Duplex) as a session's wire [P§3]:
// lines out with "\n", bytes in through the session's framer.
import type { Duplex } from "node:stream"
import { CLOSE_GRACE_MS } from "../limits.ts"
import { Session, type SessionDeps, type Wire } from "../session.ts"

export function attachStream(deps: SessionDeps, stream: Duplex, transport: "tls" | "tcp", remoteAddress: string): Session {
    // What is sent in one event-loop turn (the acknowledgements of one group commit, pushes) leaves in
    // one socket write: one TLS record and one syscall instead of one per line. end() uncorks.
    let corked = false
    const uncork = () => {
        corked = false
        stream.uncork()
    }
    const write = (text: string) => {
        if (!corked) {
            corked = true
            stream.cork()
            process.nextTick(uncork)
        }
        stream.write(text)
    }
    const wire: Wire = {
        transport,
        remoteAddress,
        send: (lines) => write(lines.join("\n") + "\n"),
        heartbeat: () => write("\n"),
        bufferedBytes: () => stream.writableLength,
        end: () => {
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
