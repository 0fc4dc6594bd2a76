// The graceful stop [P§6]: stop accepting, let requests in flight finish, push what was acknowledged,
// send every connection the final notice with a jittered reconnect hint, flush the store, close.
import type http from "node:http"
import type net from "node:net"
import { ApiError, logBackgroundFailure } from "./errors.ts"
import type { Fleet } from "./fleet/fleet.ts"
import type { Bus, SessionDirectory } from "./bus/bus.ts"
import type { Hub } from "./hub/index.ts"
import { jitteredRetryMs } from "./listeners/admission.ts"
import type { HttpRequestsInFlight } from "./listeners/http.ts"
import type { WsListener } from "./listeners/ws.ts"
import type { Logger } from "./log.ts"
import type { Session } from "./session.ts"
import type { Store } from "./storage/store.ts"

/** Requests in flight get this long to finish during shutdown. */
const SHUTDOWN_DRAIN_MS = 2000
/** Then HTTP connections still open are closed, this long after the final notices. */
const HTTP_CLOSE_AFTER_MS = 1000

export interface Running {
    /** every listening server (device port, app port and the HTTPS server behind its front, plain TCP) */
    listeners: net.Server[]
    httpServer: http.Server
    /** the HTTP requests being answered: let finish as the connections' are */
    httpRequests: Pick<HttpRequestsInFlight, "count">
    ws: WsListener
    sessions: Set<Session>
    hub: Hub
    store: Store
    fleet: Fleet
    bus: Bus
    directory: SessionDirectory
    log: Logger
}

function closeServer(server: net.Server): Promise<void> {
    return new Promise((resolve) => server.close(() => resolve()))
}

export async function shutDown(r: Running): Promise<void> {
    r.log.info("shutting down")
    // 1. stop accepting connections and requests
    const stopped = r.listeners.map(closeServer)
    r.ws.close()
    for (const s of r.sessions) s.draining = true
    // 2. let requests in flight finish (their writes commit, their acknowledgements go out)
    // on the monotonic clock, as the push drain below: a step of the wall clock must not cut the drain short
    const deadline = performance.now() + SHUTDOWN_DRAIN_MS
    const inFlight = () => r.httpRequests.count > 0 || [...r.sessions].some((s) => s.inflight > 0)
    while (inFlight() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
    // what was acknowledged is pushed before the connections close (bounded: each feed owes at most MAX_OWED_PUSHES_PER_FEED)
    r.hub.drain(performance.now() + SHUTDOWN_DRAIN_MS)
    // 3. the final notice [P§6], with a jittered reconnect hint
    for (const s of [...r.sessions]) {
        s.closeWith(new ApiError(503, "E_SHUTTING_DOWN", "the server is shutting down; reconnect after retry_after_ms", jitteredRetryMs()))
    }
    r.httpServer.closeIdleConnections()
    // 4. flush pending writes (devices' last-seen times too) and close the store; this process's sessions
    // leave the list, and what it published reaches the other processes before the bus disconnects
    await r.fleet.flushSeen().catch((err) => logBackgroundFailure(r.log, err, "writing devices' last-seen times failed"))
    await r.store.close()
    await r.directory.close()
    await r.bus.close()
    setTimeout(() => r.httpServer.closeAllConnections(), HTTP_CLOSE_AFTER_MS).unref()
    await Promise.all(stopped)
    r.log.info("stopped")
}
