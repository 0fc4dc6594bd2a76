// The parts of one server and how they connect: the hub, the router, the sessions and their admission,
// and the listeners of the three front doors (not yet listening). startServer (index.ts) opens the store,
// the bus, the key ring and the TLS material first, and listens after. The bus is connected here and only
// here: the hub relays through it and receives from it, the router asks it for the session list and the
// per-key budget, and when it was interrupted the feeds subscribed here are caught up from the store
// (hub.catchUp; their subscribers told to resubscribe with `after` only where that cannot be done); none of
// them knows whether it is the in-process bus or Redis.
import type http from "node:http"
import type https from "node:https"
import type net from "node:net"
import type { Server as TlsServer } from "node:tls"
import type { KeepaliveContract } from "../../src/keepalive.ts"
import type { KeyRing } from "./auth/keys.ts"
import type { ProvenKeys } from "./auth/proven-keys.ts"
import type { Bus, SessionDirectory, SessionEntry } from "./bus/bus.ts"
import { ApiError } from "./errors.ts"
import { firstVerifier, type Extension } from "./extensions.ts"
import { FeedStreams } from "./feed-streams.ts"
import type { Fleet } from "./fleet/fleet.ts"
import { sessionEntryOf } from "./handlers/session.ts"
import { Hub, hubClockOn, type Subscription } from "./hub/index.ts"
import { Admission, jitteredRetryMs } from "./listeners/admission.ts"
import { createTlsFront, type AppScheme } from "./listeners/app-port.ts"
import { PendingHandshakes } from "./listeners/handshakes.ts"
import { HttpConnections } from "./listeners/http-connections.ts"
import type { CorsPolicy } from "./listeners/cors.ts"
import { createHttpListener, HttpRequestsInFlight } from "./listeners/http.ts"
import { createProxyFront, type ProxyFrontOptions } from "./listeners/proxy-front.ts"
import { createDeviceFront, createTcpListener, createTlsListener, deviceSocket } from "./listeners/tls.ts"
import { WsListener } from "./listeners/ws.ts"
import {
    AUTH_DEADLINE_MS,
    HTTP_HEADERS_TIMEOUT_MS,
    HTTP_REFUSAL_LOG_EVERY_MS,
    HTTP_REQUEST_TIMEOUT_MS,
    KEY_RATE_BURST,
    KEY_RATE_PER_SECOND,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_ADDRESS,
    maxConnectionsPerKeyOf,
    MAX_HANDSHAKES_PER_ADDRESS,
    MAX_HTTP_CONNECTIONS,
    MAX_HTTP_CONNECTIONS_PER_ADDRESS,
    MAX_PENDING_HANDSHAKES,
    MAX_QUEUE_BYTES,
    MAX_UNAUTHENTICATED_PER_ADDRESS,
    MONITORING_BURST,
    MONITORING_RATE_PER_SECOND,
    PROXY_HEADER_TIMEOUT_MS,
    RATE_BURST,
    RATE_PER_SECOND,
    SLOW_CONSUMER_MS,
    STAMP_LEAD_LOG_EVERY_MS,
    STAMP_LEAD_WARN_MS,
    STRUCTURE_RATE_BURST,
    STRUCTURE_RATE_PER_SECOND,
    TLS_HANDSHAKE_TIMEOUT_MS,
} from "./limits.ts"
import { LogThrottle, type Logger } from "./log.ts"
import { KEY_CONNECTION_SHARES, type Metrics } from "./metrics.ts"
import type { ServerOptions } from "./options.ts"
import { Buckets, ClockedBuckets, refusalBudgetOf } from "./ratelimit.ts"
import { Router } from "./router.ts"
import type { Session, SessionDeps } from "./session.ts"
import { TimerWheel } from "./timer-wheel.ts"
import type { Store } from "./storage/store.ts"
import { StampLead } from "./stamp-lead.ts"
import { OpenSessions } from "./open-sessions.ts"
import type { TlsMaterial } from "./tls/material.ts"
import { tlsServerOptions } from "./tls/policy.ts"

/** What the wiring starts from: the server's settings and the parts made before it. */
export interface Foundations {
    opts: ServerOptions
    version: string
    appScheme: AppScheme
    /** [P§4] what the device doors announce (TLS device port, plain TCP, attached streams) */
    keepalive: KeepaliveContract
    /** [P§4] what the app door's WebSocket announces */
    appKeepalive: KeepaliveContract
    tls: TlsMaterial
    /** [PROXY protocol] the proxies whose connections start with a PROXY header (checked: trustedProxiesOf) */
    trustedProxies?: net.BlockList
    /** web apps' origins that may call the app port from a browser (checked: corsPolicyOf); undefined: none */
    cors?: CorsPolicy
    store: Store
    /** what crosses to the other processes on the store (bus/bus.ts) */
    bus: Bus
    keys: KeyRing
    fleet: Fleet
    /** failed authentications per remote address (shared with the extensions) */
    authFailures: ClockedBuckets
    /** keys that authenticated from each address lately (shared with the extensions: POST /jwt) */
    provenKeys: ProvenKeys
    extensions: Extension[]
    log: Logger
    metrics: Metrics
    now: () => number
    /** time gone by, ms (monotonic): what durations are measured with */
    elapsedMs: () => number
}

export interface Wired {
    hub: Hub
    sessions: OpenSessions<Session>
    /** every process's sessions (this one's announced on the bus) */
    directory: SessionDirectory
    sessionDeps: SessionDeps
    /** the device port's TLS server */
    tlsServer: net.Server
    /** the servers that present the certificate: the device port's, and the app port's when it speaks HTTPS */
    tlsServers: TlsServer[]
    /** what listens on the device port: the TLS server, or the PROXY protocol front before it (--trusted-proxies) */
    deviceListener: net.Server
    /** the app port's server: the HTTP server itself, or the front that hands TLS to it */
    appServer: net.Server
    /** what listens on the app port: appServer, or the PROXY protocol front before it */
    appListener: net.Server
    httpServer: http.Server
    /** its requests being answered (the shutdown waits for them) */
    httpRequests: HttpRequestsInFlight
    ws: WsListener
    /** the plain-TCP development port, when asked for */
    tcpServer?: net.Server
}

export function wireServer(f: Foundations): Wired {
    const { opts, store, bus, keys, log, metrics, now, tls } = f
    // one timer wheel for the connections' keep-alive checks and the subscriptions' ends (timeout, token
    // expiry), fan-out turns on Node's own (tests of the hub inject their clock)
    const wheel = new TimerWheel()
    const hub = new Hub({
        store,
        clock: hubClockOn(wheel),
        onCount: (n) => metrics.subscriptions.set({}, n),
        onBusy: () => metrics.fanoutBusy.add(),
        relay: bus.kind === "local" ? undefined : (m) => bus.publish(m),
        limits: opts.stampOrderHoldMs === undefined ? undefined : { stampOrderHoldMs: opts.stampOrderHoldMs },
        onHeld: () => metrics.pushesHeld.add(),
        // [P§8] a change stamped before others of its feed never came: the hub catches the feed up from the store
        onOrderGap: () => metrics.pushOrderGaps.add(),
        // [P§8] a catch-up could not bring them what they missed: only those feeds' subscribers resubscribe
        onMissed: (feeds) => {
            const [first] = feeds.values()
            const why = feeds.size === 1 ? first : `${first} (and ${feeds.size - 1} more feeds)`
            const told = resubscribe((sub) => feeds.has(sub.feed), why)
            metrics.catchUps.add({ outcome: "told" }, feeds.size)
            metrics.pushesInterrupted.add({ scope: "feed" }, told)
        },
        onCaughtUp: (o, why) => {
            if (o.repaired) metrics.catchUps.add({ outcome: "repaired" }, o.repaired)
            if (o.deleted) metrics.catchUps.add({ outcome: "deleted" }, o.deleted)
            if (o.pushes) metrics.pushesCaughtUp.add({}, o.pushes)
            if (o.repaired || o.deleted || o.told.size) log.info({ why, checked: o.checked, repaired: o.repaired, pushes: o.pushes, deleted: o.deleted, told: o.told.size }, "caught up feeds whose changes may have been missed from the store")
        },
    })
    bus.onMessage((m) => hub.receive(m))
    // [P§9] a write refused 503 E_OUTCOME_UNKNOWN whose commit took effect after all (PostgreSQL): pushed then, resent or not
    store.onLateCommits?.((feed, points) => hub.publishCommitted(feed, points))
    metrics.sampleOnRender(() => metrics.pushesOwed.set({}, hub.totalOwed))
    // keys or tokens changed (revoked here, by the CLI, another process, or signed out): end the subscriptions they no longer allow
    keys.onReload(() => hub.recheck())
    // [fleet] keys changed (a claim here or in another process, a device revoked): which keys are devices'
    keys.onReload(() => void f.fleet.reload())
    const sessions = new OpenSessions<Session>()
    /**
     * Changes from other processes were missed and could not be caught up from the store: the connections
     * holding such subscriptions are told to catch up by replay, as after any reconnect [P§8]; how many.
     */
    const resubscribe = (which: (sub: Subscription) => boolean, why: string): number => {
        const holding = [...sessions].filter((s) => hub.subscriptionsOf(s).some(which))
        log.warn({ why, connections: holding.length }, "pushes from other processes may have been missed; telling subscribers to resubscribe")
        for (const s of holding) {
            s.closeWith(new ApiError(503, "E_PUSHES_INTERRUPTED", `${why}: pushes may have been missed; reconnect and subscribe with after = the seq of the last push handled (since, a replay by at, leaves out backfills)`, jitteredRetryMs()))
        }
        return holding.length
    }
    // [P§8] changes of the others may have been missed: every feed subscribed here is caught up from the store
    // (the hub: those it cannot catch up are told, onMissed); only when the store cannot be read either is every subscriber told
    bus.onInterrupted((why) => {
        hub.catchUp(why).catch((err) => {
            hub.dropWaiting()
            metrics.pushesInterrupted.add({ scope: "process" }, resubscribe(() => true, `${why}, and the store could not be read to catch up (${(err as Error).message})`))
            // what was committed meanwhile counts as handed on (the replays hold it): no change waits for it
            void hub.syncCommitOrder().catch((e) => log.warn({ err: (e as Error).message }, "reading the feeds' last stamps failed; pushes go out as heard until the next read"))
        })
    })
    // one entry per connection for its whole life (its fields are read from it): listing makes none
    const entries = new WeakMap<Session, SessionEntry>()
    const entryOf = (s: Session) => {
        let e = entries.get(s)
        if (e === undefined) entries.set(s, (e = sessionEntryOf(s, hub, bus.processId)))
        return e
    }
    const directory = bus.sessionDirectory((viewer) => Array.from(sessions.visibleTo(viewer), entryOf))
    const stampLead = new StampLead(STAMP_LEAD_WARN_MS, STAMP_LEAD_LOG_EVERY_MS, ({ feed, leadMs, writes }) => {
        metrics.stampsAhead.add()
        if (writes > 0) log.warn({ feed, leadMs, writes }, `a feed's server stamps lead this process's clock by more than ${STAMP_LEAD_WARN_MS} ms: more than one stamped write a millisecond to it, or another process's clock ahead of this one's (docs/PROTOCOL.md §9)`)
    })
    metrics.sampleOnRender(() => metrics.stampLead.set({}, stampLead.takeMostMs() / 1000))
    const router = new Router({
        store,
        keys,
        hub,
        metrics,
        log,
        now,
        elapsedMs: f.elapsedMs,
        authFailures: f.authFailures,
        provenKeys: f.provenKeys,
        keyRate: bus.keyRate({ ratePerSecond: opts.keyRatePerSecond ?? KEY_RATE_PER_SECOND, burst: opts.keyRateBurst ?? KEY_RATE_BURST }),
        structureRate: bus.keyRate({ ratePerSecond: opts.structureRatePerSecond ?? STRUCTURE_RATE_PER_SECOND, burst: opts.structureRateBurst ?? STRUCTURE_RATE_BURST }),
        verifyBearer: firstVerifier([opts.verifyBearer, ...f.extensions.map((e) => e.verifyBearer)].filter((v) => v !== undefined)),
        fleet: f.fleet,
        feedStreams: new FeedStreams({ idsOf: async (feed: number) => (await store.listDatastreams(feed)).map((d) => d.id), max: opts.maxDatastreamsPerFeed }),
        sessions: directory,
        processId: bus.processId,
        stampLead,
    })
    const rate = { ratePerSecond: opts.ratePerSecond ?? RATE_PER_SECOND, burst: opts.rateBurst ?? RATE_BURST }
    const maxConnections = opts.maxConnections ?? MAX_CONNECTIONS
    const admission = new Admission({
        maxConnections,
        maxPerAddress: opts.maxConnectionsPerAddress ?? MAX_CONNECTIONS_PER_ADDRESS,
        maxUnauthenticatedPerAddress: opts.maxUnauthenticatedPerAddress ?? MAX_UNAUTHENTICATED_PER_ADDRESS,
        maxPerKey: opts.maxConnectionsPerKey ?? maxConnectionsPerKeyOf(maxConnections),
    })
    metrics.keyConnectionsLimit.set({}, admission.limits.maxPerKey)
    metrics.sampleOnRender(() => {
        const { most, keysAtLeast } = admission.keyConnections(KEY_CONNECTION_SHARES)
        metrics.keyConnectionsMost.set({}, most)
        KEY_CONNECTION_SHARES.forEach((share, i) => metrics.keysNearConnectionLimit.set({ share: String(share) }, keysAtLeast[i]))
    })
    const sessionDeps: SessionDeps = {
        keepaliveWheel: wheel,
        router,
        hub,
        metrics,
        log,
        now,
        elapsedMs: f.elapsedMs,
        sessions,
        admission,
        config: {
            version: f.version,
            ...f.keepalive,
            rate,
            refusals: refusalBudgetOf(rate),
            authDeadlineMs: opts.authDeadlineMs ?? AUTH_DEADLINE_MS,
            maxQueueBytes: opts.maxQueueBytes ?? MAX_QUEUE_BYTES,
            slowConsumerMs: opts.slowConsumerMs ?? SLOW_CONSUMER_MS,
        },
    }
    const startedMs = now()
    const handshakeTimeout = opts.handshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS
    // one bound on pending TLS handshakes for both TLS ports
    const maxPendingHandshakes = opts.maxPendingHandshakes ?? MAX_PENDING_HANDSHAKES
    const handshakes = new PendingHandshakes(
        { perAddress: opts.maxHandshakesPerAddress ?? MAX_HANDSHAKES_PER_ADDRESS, total: maxPendingHandshakes, deadlineMs: handshakeTimeout },
        (why, address) => {
            metrics.handshakesDropped.add({ bound: why })
            log.debug({ remote: address, bound: why }, why === "deadline" ? "dropped a TLS handshake past its deadline" : "dropped the oldest pending TLS handshake to make room")
        },
    )
    const tlsServer = createTlsListener(sessionDeps, { cert: tls.cert, key: tls.key, handshakeTimeoutMs: handshakeTimeout, maxConnections, handshakes, maxPendingHandshakes })
    const proxyRefused = (code: string) => metrics.proxyHeadersRefused.add({ code })
    const ws = new WsListener({ ...sessionDeps, config: { ...sessionDeps.config, ...f.appKeepalive } })
    // the app port's HTTP connections: their own budget, so that HTTP can never take the device port's descriptors
    const refusalLog = new LogThrottle(HTTP_REFUSAL_LOG_EVERY_MS)
    const httpConnections = new HttpConnections(
        { total: opts.maxHttpConnections ?? MAX_HTTP_CONNECTIONS, perAddress: opts.maxHttpConnectionsPerAddress ?? MAX_HTTP_CONNECTIONS_PER_ADDRESS },
        (bound, address) => {
            metrics.httpConnectionsRefused.add({ bound })
            const refused = refusalLog.due(now())
            if (refused) log.warn({ remote: address, bound, refused }, "HTTP connections over their bound closed at accept (feedline_http_connections_refused_total counts them all)")
        },
    )
    metrics.sampleOnRender(() => metrics.httpConnectionsOpen.set({}, httpConnections.open))
    const httpRequests = new HttpRequestsInFlight()
    const httpServer: http.Server = createHttpListener(
        {
            connections: httpConnections,
            inFlight: httpRequests,
            router,
            metrics,
            log,
            ws,
            rate: new ClockedBuckets(new Buckets(rate), f.elapsedMs),
            refusals: new ClockedBuckets(new Buckets(refusalBudgetOf(rate)), f.elapsedMs),
            monitoring: new ClockedBuckets(new Buckets({ ratePerSecond: MONITORING_RATE_PER_SECOND, burst: MONITORING_BURST }), f.elapsedMs),
            now,
            health: () => ({ status: "ok", version: f.version, uptime_s: Math.round((now() - startedMs) / 1000), connections: sessions.size }),
            extraHandlers: [...(opts.httpHandlers ?? []), ...f.extensions.flatMap((e) => e.httpHandlers ?? [])],
            cors: f.cors,
        },
        // [P§1] the device port's certificate and TLS policy
        f.appScheme === "https" ? { ...tlsServerOptions(tls.cert, tls.key), handshakeTimeout } : undefined,
        { headersTimeoutMs: opts.httpHeadersTimeoutMs ?? HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: opts.httpRequestTimeoutMs ?? HTTP_REQUEST_TIMEOUT_MS },
    )
    // HTTPS listens behind a front that answers plain HTTP sent to it (listeners/app-port.ts)
    const appServer: net.Server = f.appScheme === "https" ? createTlsFront(httpServer as https.Server, log, handshakes, proxyRefused) : httpServer
    // counted where the app port's connections arrive (after a trusted proxy's header, under the address it announces)
    httpConnections.guard(appServer)
    // [PROXY protocol] behind trusted proxies each port listens through a front that reads their header first
    const trusted = f.trustedProxies
    const front = (door: string, behind: net.Server, handOver: (s: net.Socket) => void, more: Partial<ProxyFrontOptions> = {}) =>
        createProxyFront({ door, behind, trusted: trusted!, headerTimeoutMs: opts.proxyHeaderTimeoutMs ?? PROXY_HEADER_TIMEOUT_MS, log, onRefused: proxyRefused, handOver, ...more })
    const deviceListener = trusted
        ? front("device", tlsServer, (s) => tlsServer.emit("connection", s), {
              tlsServer,
              untrusted: deviceSocket(tlsServer, handshakes, log, proxyRefused),
              maxConnections: tlsServer.maxConnections,
          })
        : createDeviceFront(tlsServer, handshakes, log, proxyRefused)
    const appListener = trusted
        ? front(
              "app",
              appServer,
              (s) => {
                  appServer.emit("connection", s)
                  // the front paused it: the TLS front or the HTTP server behind reads it from here (its bytes after the header first)
                  s.resume()
              },
              { tlsServer: f.appScheme === "https" ? (httpServer as https.Server) : undefined },
          )
        : appServer
    const tcpServer = opts.insecureTcpPort === undefined ? undefined : createTcpListener(sessionDeps, maxConnections)
    // the servers that present the certificate: a reload swaps it in on each (tls/reload.ts)
    const tlsServers: TlsServer[] = f.appScheme === "https" ? [tlsServer, httpServer as https.Server] : [tlsServer]
    return { hub, sessions, directory, sessionDeps, tlsServer, tlsServers, deviceListener, appServer, appListener, httpServer, httpRequests, ws, tcpServer }
}
