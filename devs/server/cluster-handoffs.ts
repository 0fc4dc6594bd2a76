// The connections the cluster primary has handed to one worker and that the worker has not yet taken.
//
// Why: Node's cluster (round-robin, the default on Linux) accepts each connection in the primary and sends
// its handle to a worker; the primary keeps its own copy until the worker answers "accepted" (it then
// closes its copy) or "not accepted" (a worker closing its ports: the connection goes to another worker).
// A worker that exits before it has read the message (a crash, SIGKILL, the OOM killer) never answers,
// and Node keeps the primary's copy open for ever: the client stays connected to no one, its TLS handshake
// unanswered, until its own timeout. Node offers no hook for this, so the primary watches its own IPC
// channel to the worker: a "newconn" message carrying a handle is a hand-off, a reply with that message's
// sequence number ("ack") ends it. When the channel closes, the hand-offs left can no longer be answered,
// and their connections are closed: the clients see the close at once and connect again (to a live
// worker). These are the cluster module's internal messages (lib/internal/cluster: `cmd: "NODE_CLUSTER"`,
// `act: "newconn"`, `seq`, `ack`), unchanged since Node 0.12; test/host/server/workers-handoff.test.ts
// fails if that ever changes.
import type { ChildProcess } from "node:child_process"

interface ClusterMessage {
    cmd?: unknown
    act?: unknown
    seq?: unknown
    ack?: unknown
}

/** the primary's copy of an accepted connection (a libuv TCP handle) */
interface ConnectionHandle {
    close(): void
}

const isCluster = (m: unknown): m is ClusterMessage => typeof m === "object" && m !== null && (m as ClusterMessage).cmd === "NODE_CLUSTER"

export interface HandoffWatch {
    /** connections handed to the worker and not answered yet */
    readonly untaken: number
    /** Closes every connection the worker can no longer take (its channel closed); returns how many. */
    closeUntaken(): number
}

/** Watches one worker's channel from the primary; call before the worker can be handed anything (right after fork). */
export function watchHandoffs(child: ChildProcess): HandoffWatch {
    const pending = new Map<number, ConnectionHandle>()
    const send = child.send.bind(child) as (...args: unknown[]) => boolean
    child.send = ((message: unknown, handle?: unknown, ...rest: unknown[]) => {
        if (isCluster(message) && message.act === "newconn" && typeof message.seq === "number" && handle) pending.set(message.seq, handle as ConnectionHandle)
        return send(message, handle, ...rest)
    }) as ChildProcess["send"]
    // the worker's answers come to the primary as internal messages (child_process emits NODE_* ones so)
    child.on("internalMessage" as "message", (message: unknown) => {
        if (isCluster(message) && typeof message.ack === "number") pending.delete(message.ack)
    })
    return {
        get untaken() {
            return pending.size
        },
        closeUntaken() {
            const n = pending.size
            for (const handle of pending.values()) handle.close()
            pending.clear()
            return n
        },
    }
}
