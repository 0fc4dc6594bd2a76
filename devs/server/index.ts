// startServer(): one process, three front doors (TLS device port; HTTPS REST + WSS on the app port, plain
// HTTP there only on loopback or when asked; optional plain TCP for development), one router, one store.
// See README "Running the server".
import { readFileSync } from "node:fs"
import type http from "node:http"
import type https from "node:https"
import type net from "node:net"
import { join } from "node:path"
import type { Duplex } from "node:stream"
import { keepaliveContractOf } from "../../src/protocol.ts"
import type { BearerVerifier } from "./auth/grant.ts"
import { KeyRing } from "./auth/keys.ts"
import { ensureCredentials, type Credentials } from "./credentials.ts"
import { firstVerifier, type ServerExtension } from "./extensions.ts"
import { ApiError, ConfigError } from "./errors.ts"
import { Hub, NODE_CLOCK } from "./hub/index.ts"
import { Admission, jitteredRetryMs } from "./listeners/admission.ts"
import { appSchemeOf, createTlsFront, isLoopbackHost, type AppScheme } from "./listeners/app-port.ts"
import { createHttpListener, type HttpHandler } from "./listeners/http.ts"
import { PendingHandshakes } from "./listeners/handshakes.ts"
import { createTcpListener, createTlsListener } from "./listeners/tls.ts"
import { WsListener } from "./listeners/ws.ts"
import { attachStream } from "./listeners/stream.ts"
import {
    AUTH_DEADLINE_MS,
    AUTH_FAILURES_BURST,
    AUTH_FAILURES_PER_MINUTE,
    HTTP_HEADERS_TIMEOUT_MS,
    HTTP_REQUEST_TIMEOUT_MS,
    KEY_RATE_BURST,
    KEY_RATE_PER_SECOND,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_ADDRESS,
    MAX_HANDSHAKES_PER_ADDRESS,
    MAX_PENDING_HANDSHAKES,
    MAX_QUEUE_BYTES,
    MAX_TRACKED_KEYS,
    MAX_UNAUTHENTICATED_PER_ADDRESS,
    RATE_BURST,
    RATE_PER_SECOND,
    SLOW_CONSUMER_MS,
    TLS_HANDSHAKE_TIMEOUT_MS,
} from "./limits.ts"
import { createLogger, type Logger } from "./log.ts"
import { Metrics } from "./metrics.ts"
import { Buckets } from "./ratelimit.ts"
import { Router } from "./router.ts"
import { Session, type SessionDeps, type Wire } from "./session.ts"
import { ServerStamps } from "./stamps.ts"
import { octal, securePrivateFolder } from "./storage/private-folder.ts"
import { SqliteStore } from "./storage/sqlite.ts"
import type { Store } from "./storage/store.ts"
import { ensureDevCertificate } from "./tls/devca.ts"
import { tlsServerOptions } from "./tls/policy.ts"

export type { BearerVerifier, Grant } from "./auth/grant.ts"
export type { Credentials } from "./credentials.ts"
export type { Extension, ServerCore, ServerExtension } from "./extensions.ts"
export type { HttpHandler } from "./listeners/http.ts"
export type { Session, Wire } from "./session.ts"

export interface ServerOptions {
    /** SQLite db, dev CA, credentials.json live here */
    dataDir: string
    /** default "127.0.0.1" (the CLI's `serve` uses "0.0.0.0") */
    host?: string
    /** TLS device port, default 7443, 0 = ephemeral */
    devicePort?: number
    /** HTTPS + WSS (/ws) port (plain HTTP on loopback: appTls), default 7080, 0 = ephemeral */
    appPort?: number
    /**
     * [P§1] serve the app port over TLS with the device port's certificate and policy. Default: true
     * unless `host` is a loopback address. false on another address needs `insecureHttp`.
     */
    appTls?: boolean
    /** allow (and choose) plain HTTP on an app port other hosts can reach: keys cross the network in clear */
    insecureHttp?: boolean
    /** plain TCP device port for development; off unless set (0 = ephemeral) */
    insecureTcpPort?: number
    /** [P§4] keep-alive contract announced in the welcome: 300 / 1000 / 3000 ms; faulty derived when not given (keepaliveContractOf) */
    heartbeatMs?: number
    faultyMs?: number
    timeoutMs?: number
    /** PEM files; without them a dev CA and a localhost certificate are made in dataDir/tls */
    tlsCertPath?: string
    tlsKeyPath?: string
    /** pino level; "silent" in tests */
    logLevel?: string
    /** where logs go (default stdout) */
    logDestination?: NodeJS.WritableStream
    /** delete datapoints older than this many days (checked hourly); default: keep everything */
    retentionDays?: number
    /** requests per second per connection (token bucket) and its burst; HTTP: per remote address */
    ratePerSecond?: number
    rateBurst?: number
    /** requests per second per key over all its connections and doors, and its burst (default 200, 400) */
    keyRatePerSecond?: number
    keyRateBurst?: number
    /** open connections in all (default 4096), from one remote address (1024), and from one address without a valid key yet (64) */
    maxConnections?: number
    maxConnectionsPerAddress?: number
    maxUnauthenticatedPerAddress?: number
    /** [P§7] a connection must make an authenticated request within this long of its welcome (default 5000 ms) */
    authDeadlineMs?: number
    /** a TLS handshake must finish in this time (default 10 s) */
    handshakeTimeoutMs?: number
    /** sockets whose TLS handshake has not finished, per remote address (default 128) and in all (1024); over: the oldest is dropped */
    maxHandshakesPerAddress?: number
    maxPendingHandshakes?: number
    /** HTTP headers must arrive within this (default 10 s) and a whole request within this (30 s) */
    httpHeadersTimeoutMs?: number
    httpRequestTimeoutMs?: number
    /** outgoing queue bound per connection, and how long it may stay congested */
    maxQueueBytes?: number
    slowConsumerMs?: number
    /** SQLite synchronous mode: FULL (default, survives power loss) or NORMAL */
    synchronous?: "FULL" | "NORMAL"
    /** [P§7] verifies `Bearer <token>` credentials; without it (or an extension's) bearer tokens are refused */
    verifyBearer?: BearerVerifier
    /** extra routes on the app port, tried in order after /v2, /ws, /healthz and /metrics, before the extensions' */
    httpHandlers?: HttpHandler[]
    /** tools mounted on this server (the dashboard and POST /jwt: devs/dashboard/mount.ts), given its key ring and limiter */
    extensions?: ServerExtension[]
    /** the server's clock, ms since the epoch (default Date.now); tests move it by hand to check rules of seconds or days without waiting */
    now?: () => number
    /**
     * Tests only: the store the server uses, made from the one it opened (e.g. one whose commits a test
     * can hold open, to see that no acknowledgement leaves before its commit returned). Unset: the SQLite store itself.
     */
    wrapStore?: (store: Store) => Store
}

export interface RunningServer {
    devicePort: number
    appPort: number
    /** [P§1] "https" (and wss) or "http" (and ws) on the app port */
    appScheme: AppScheme
    /** set when insecureTcpPort was */
    insecureTcpPort?: number
    /** dev CA PEM (for NODE_EXTRA_CA_CERTS / tls `ca`); with your own certificate, the certificate itself */
    caCertPath: string
    /** bootstrap credentials, also in dataDir/credentials.json */
    credentials: Credentials
    /** true when this start made the credentials (print them once) */
    credentialsCreated: boolean
    /** the key ring: verify a key (e.g. for POST /jwt), create or revoke keys */
    keys: KeyRing
    store: Store
    metrics: Metrics
    log: Logger
    /** serve the protocol over any other transport: a session on `wire` (welcome first, then requests) */
    attachWire(wire: Wire): Session
    /** serve the device protocol over any byte stream (an in-memory Duplex, a serial link, …) */
    attachDuplex(stream: Duplex, remoteAddress?: string): Session
    /** graceful: stop accepting, let requests in flight finish, flush writes, send a final notice, close */
    close(): Promise<void>
}

export const SERVER_VERSION: string = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version

/** Requests in flight get this long to finish during shutdown. */
const SHUTDOWN_DRAIN_MS = 2000
/**
 * Keys are reloaded this often when the store says another process (the `feedline keys` CLI) changed
 * them, and every subscription is re-checked: a revoked key's idle subscriptions end within a second
 * (README, [P§8]), half of it this interval, the rest margin for a busy event loop. A look costs one
 * `PRAGMA data_version`.
 */
const KEY_REFRESH_MS = 500
const RETENTION_CHECK_MS = 3600_000

function listen(server: net.Server, port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
        server.once("error", reject)
        server.listen(port, host, () => {
            server.off("error", reject)
            resolve((server.address() as net.AddressInfo).port)
        })
    })
}

function closeServer(server: net.Server): Promise<void> {
    return new Promise((resolve) => server.close(() => resolve()))
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
    const host = opts.host ?? "127.0.0.1"
    const keepalive = keepaliveContractOf(opts.heartbeatMs, opts.faultyMs, opts.timeoutMs)
    if (!keepalive.contract) throw new ConfigError(`keep-alive settings (--heartbeat-ms, --faulty-ms, --timeout-ms): ${keepalive.error}`)
    const app = appSchemeOf(host, opts)
    if (!app.scheme) throw new ConfigError(`app port: ${app.error}`)
    const appScheme = app.scheme
    const now = opts.now ?? Date.now
    const log = createLogger(opts.logLevel ?? "info", opts.logDestination)
    const metrics = new Metrics()
    // every datapoint, the key hashes and the token secret live here: owner-only, narrowed when found wider
    for (const fix of securePrivateFolder(opts.dataDir)) {
        if (fix.error) log.error({ path: fix.path, mode: octal(fix.from), error: fix.error }, "the data folder is readable by other users and could not be narrowed; fix its permissions")
        else log.warn({ path: fix.path, from: octal(fix.from), to: octal(fix.to) }, "the data folder was readable by other users; narrowed it")
    }

    const sqlite = new SqliteStore({
        path: join(opts.dataDir, "feedline.db"),
        synchronous: opts.synchronous,
        onCommit: (ms) => metrics.storeCommit.observe(ms / 1000),
        onError: (err) => log.error({ err }, "store commit failed; the writes were refused (503), nothing was acknowledged"),
    })
    const store: Store = opts.wrapStore ? opts.wrapStore(sqlite) : sqlite
    const keys = new KeyRing(store, now)
    const authFailures = new Buckets({ ratePerSecond: AUTH_FAILURES_PER_MINUTE / 60, burst: AUTH_FAILURES_BURST })
    // tools (the dashboard at /, POST /jwt and `Bearer <jwt>` credentials), mounted with what they may use
    const extended = (opts.extensions ?? []).map((mount) => mount({ dataDir: opts.dataDir, keys, authFailures, now, log }))
    const pruned = await store.pruneRevokedTokenFamilies()
    if (pruned) log.info({ pruned }, "forgot signed-out token families past their end")
    const { credentials, created } = await ensureCredentials(opts.dataDir, store, keys, now)

    let cert: string | Buffer, key: string | Buffer, caCertPath: string
    if (opts.tlsCertPath || opts.tlsKeyPath) {
        if (!opts.tlsCertPath || !opts.tlsKeyPath) throw new ConfigError("give both a TLS certificate and its key (--tls-cert and --tls-key)")
        cert = readFileSync(opts.tlsCertPath)
        key = readFileSync(opts.tlsKeyPath)
        caCertPath = opts.tlsCertPath
    } else {
        const dev = await ensureDevCertificate(opts.dataDir)
        cert = readFileSync(dev.certPath)
        key = readFileSync(dev.keyPath)
        caCertPath = dev.caCertPath
        if (dev.created) log.info({ caCertPath }, "made a development CA; trust it with NODE_EXTRA_CA_CERTS=" + caCertPath)
    }

    // subscription timeouts and fan-out turns on Node's timers (tests of the hub inject their own)
    const hub = new Hub({ store, clock: NODE_CLOCK, onCount: (n) => metrics.subscriptions.set({}, n), onBusy: () => metrics.fanoutBusy.add() })
    metrics.sampleOnRender(() => metrics.pushesOwed.set({}, hub.totalOwed))
    // keys or tokens changed (revoked here, by the CLI, or signed out): end the subscriptions they no longer allow
    keys.onReload(() => hub.recheck())
    const sessions = new Set<Session>()
    const router = new Router({
        store,
        keys,
        hub,
        metrics,
        log,
        now,
        stamps: new ServerStamps(),
        authFailures,
        keyRate: new Buckets({ ratePerSecond: opts.keyRatePerSecond ?? KEY_RATE_PER_SECOND, burst: opts.keyRateBurst ?? KEY_RATE_BURST }, MAX_TRACKED_KEYS),
        verifyBearer: firstVerifier([opts.verifyBearer, ...extended.map((e) => e.verifyBearer)].filter((v) => v !== undefined)),
        connections: sessions,
    })
    const rate = { ratePerSecond: opts.ratePerSecond ?? RATE_PER_SECOND, burst: opts.rateBurst ?? RATE_BURST }
    const maxConnections = opts.maxConnections ?? MAX_CONNECTIONS
    const admission = new Admission({
        maxConnections,
        maxPerAddress: opts.maxConnectionsPerAddress ?? MAX_CONNECTIONS_PER_ADDRESS,
        maxUnauthenticatedPerAddress: opts.maxUnauthenticatedPerAddress ?? MAX_UNAUTHENTICATED_PER_ADDRESS,
    })
    const sessionDeps: SessionDeps = {
        router,
        hub,
        metrics,
        log,
        now,
        sessions,
        admission,
        config: {
            version: SERVER_VERSION,
            ...keepalive.contract,
            rate,
            authDeadlineMs: opts.authDeadlineMs ?? AUTH_DEADLINE_MS,
            maxQueueBytes: opts.maxQueueBytes ?? MAX_QUEUE_BYTES,
            slowConsumerMs: opts.slowConsumerMs ?? SLOW_CONSUMER_MS,
        },
    }
    const startedMs = now()
    const handshakeTimeout = opts.handshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS
    // one bound on pending TLS handshakes for both TLS ports
    const maxPendingHandshakes = opts.maxPendingHandshakes ?? MAX_PENDING_HANDSHAKES
    const handshakes = new PendingHandshakes({ perAddress: opts.maxHandshakesPerAddress ?? MAX_HANDSHAKES_PER_ADDRESS, total: maxPendingHandshakes }, (why, address) => {
        metrics.handshakesDropped.add({ bound: why })
        log.debug({ remote: address, bound: why }, "dropped the oldest pending TLS handshake to make room")
    })
    const tlsServer = createTlsListener(sessionDeps, { cert, key, handshakeTimeoutMs: handshakeTimeout, maxConnections, handshakes, maxPendingHandshakes })
    const ws = new WsListener(sessionDeps)
    const httpServer: http.Server = createHttpListener(
        {
            router,
            metrics,
            log,
            ws,
            rate: new Buckets(rate),
            now,
            health: () => ({ status: "ok", version: SERVER_VERSION, uptime_s: Math.round((now() - startedMs) / 1000), connections: sessions.size }),
            extraHandlers: [...(opts.httpHandlers ?? []), ...extended.flatMap((e) => e.httpHandlers ?? [])],
        },
        // [P§1] the device port's certificate and TLS policy
        appScheme === "https" ? { ...tlsServerOptions(cert, key), handshakeTimeout } : undefined,
        { headersTimeoutMs: opts.httpHeadersTimeoutMs ?? HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: opts.httpRequestTimeoutMs ?? HTTP_REQUEST_TIMEOUT_MS },
    )
    const tcpServer = opts.insecureTcpPort === undefined ? undefined : createTcpListener(sessionDeps, maxConnections)

    const devicePort = await listen(tlsServer, opts.devicePort ?? 7443, host)
    // HTTPS listens behind a front that answers plain HTTP sent to it (listeners/app-port.ts)
    const appListener: net.Server = appScheme === "https" ? createTlsFront(httpServer as https.Server, log, handshakes) : httpServer
    const appPort = await listen(appListener, opts.appPort ?? 7080, host)
    if (appScheme === "http" && !isLoopbackHost(host)) log.warn({ host, port: appPort }, "plain HTTP app port open (--insecure-http): keys and tokens cross the network in clear")
    const insecureTcpPort = tcpServer ? await listen(tcpServer, opts.insecureTcpPort!, host) : undefined
    if (tcpServer) log.warn({ port: insecureTcpPort }, "plain TCP device port open: development only, keys travel unencrypted")

    // keys stored before imported and generated keys were told apart: scrypt, in the background
    void keys.upgradeLegacyHashes().then(
        (n) => n && log.info({ keys: n }, "re-hashed the keys stored by an older version with scrypt"),
        (err) => log.error({ err }, "re-hashing old keys with scrypt failed; they keep working with their SHA-256"),
    )
    const keyRefresh = setInterval(() => void keys.refresh().catch((err) => log.error({ err }, "reloading keys failed")), KEY_REFRESH_MS)
    keyRefresh.unref()
    let retention: NodeJS.Timeout | undefined
    if (opts.retentionDays !== undefined) {
        const prune = () =>
            store
                .prune(now() - opts.retentionDays! * 86_400_000)
                .then((n) => n && log.info({ deleted: n, retentionDays: opts.retentionDays }, "retention: deleted old datapoints"))
                .catch((err) => log.error({ err }, "retention failed"))
        void prune()
        retention = setInterval(prune, RETENTION_CHECK_MS)
        retention.unref()
    }
    log.info({ host, devicePort, appPort, appScheme, dataDir: opts.dataDir, version: SERVER_VERSION, store: sqlite.durability() }, "feedline server listening")

    let closing: Promise<void> | undefined
    const close = () =>
        (closing ??= (async () => {
            log.info("shutting down")
            clearInterval(keyRefresh)
            if (retention) clearInterval(retention)
            // 1. stop accepting connections and requests
            const stopped = [tlsServer, appListener, ...(appListener !== httpServer ? [httpServer] : []), ...(tcpServer ? [tcpServer] : [])].map(closeServer)
            ws.close()
            for (const s of sessions) s.draining = true
            // 2. let requests in flight finish (their writes commit, their acknowledgements go out)
            const deadline = now() + SHUTDOWN_DRAIN_MS
            while ([...sessions].some((s) => s.inflight > 0) && now() < deadline) await new Promise((r) => setTimeout(r, 5))
            // what was acknowledged is pushed before the connections close (bounded: each feed owes at most MAX_OWED_PUSHES_PER_FEED)
            hub.drain(performance.now() + SHUTDOWN_DRAIN_MS)
            // 3. the final notice [P§6], with a jittered reconnect hint
            for (const s of [...sessions]) {
                s.closeWith(new ApiError(503, "E_SHUTTING_DOWN", "the server is shutting down; reconnect after retry_after_ms", jitteredRetryMs()))
            }
            httpServer.closeIdleConnections()
            // 4. flush pending writes and close the store
            await store.close()
            setTimeout(() => httpServer.closeAllConnections(), 1000).unref()
            await Promise.all(stopped)
            log.info("stopped")
        })())

    const attachWire = (wire: Wire) => {
        const session = new Session(sessionDeps, wire)
        session.start()
        return session
    }
    const attachDuplex = (stream: Duplex, remoteAddress = "duplex") => attachStream(sessionDeps, stream, "tcp", remoteAddress)
    return { devicePort, appPort, appScheme, insecureTcpPort, caCertPath, credentials, credentialsCreated: created, keys, store, metrics, log, attachWire, attachDuplex, close }
}
