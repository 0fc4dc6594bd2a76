// What startServer() takes and what it returns (index.ts). Limits' defaults and reasons: limits.ts.
import type { Duplex } from "node:stream"
import type { BearerVerifier } from "./auth/grant.ts"
import type { KeyRing } from "./auth/keys.ts"
import type { KeepaliveProfile } from "./limits.ts"
import type { Credentials } from "./credentials.ts"
import type { Fleet } from "./fleet/fleet.ts"
import type { ServerExtension } from "./extensions.ts"
import type { AppScheme } from "./listeners/app-port.ts"
import type { HttpHandler } from "./listeners/http.ts"
import type { Logger } from "./log.ts"
import type { Metrics } from "./metrics.ts"
import type { Session, Wire } from "./session.ts"
import type { Store } from "./storage/store.ts"
import type { TlsReload } from "./tls/reload.ts"

export interface ServerOptions {
    /** SQLite db, dev CA, credentials.json live here (several processes may share it: provisioning is locked) */
    dataDir: string
    /**
     * Set when dataDir is not a folder of the data's own (data-dir.ts DataDirChoice.dataFiles: the working
     * folder an empty FEEDLINE_DATA_DIR once put the database in): the names of the data's files there, the
     * only entries narrowed to the owner; the folder itself and the rest are left as found.
     */
    dataFiles?: string[]
    /** PostgreSQL instead of SQLite: postgres://USER:PASSWORD@HOST:PORT/DATABASE */
    databaseUrl?: string
    /** Redis carries pushes, the session list and per-key budgets between processes: redis://HOST:PORT[/DB] */
    redisUrl?: string
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
    /**
     * [P§4] keep-alive contract announced in the welcome on every door; faulty derived when not given
     * (keepaliveContractOf). Without any of them each door announces its profile (limits.ts
     * KEEPALIVE_PROFILES): the device doors `keepaliveProfile` (default "field": 20 s / 30 s / 60 s),
     * the app door's WebSocket "seed" (300 / 1000 / 3000 ms).
     */
    heartbeatMs?: number
    faultyMs?: number
    timeoutMs?: number
    keepaliveProfile?: KeepaliveProfile
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
    /** changes to feeds and datastreams (making, deleting, renaming; deleting points) per second per key, and their burst (default 10, 100); master keys are not held to it */
    structureRatePerSecond?: number
    structureRateBurst?: number
    /** [fleet] device claims per second from one remote address and their burst (default 1, 100), and per product (10, 500) */
    claimRatePerAddress?: number
    claimBurstPerAddress?: number
    claimRatePerProduct?: number
    claimBurstPerProduct?: number
    /** open connections in all (default 4096), from one remote address (1024), and from one address without a valid key yet (64) */
    maxConnections?: number
    maxConnectionsPerAddress?: number
    /** open connections counted against one (non-master) key (default a quarter of maxConnections: 1024) */
    maxConnectionsPerKey?: number
    maxUnauthenticatedPerAddress?: number
    /** app-port HTTP connections (not WebSockets) in all (default 1024) and from one remote address (256); over: closed at the accept */
    maxHttpConnections?: number
    maxHttpConnectionsPerAddress?: number
    /** [P§7] a connection must make an authenticated request within this long of its welcome (default 5000 ms) */
    authDeadlineMs?: number
    /** [P§10] a write that would take a feed past this many datastreams is refused, 422 E_TOO_MANY_DATASTREAMS (default 1000) */
    maxDatastreamsPerFeed?: number
    /** a TLS handshake must finish in this time (default 10 s) */
    handshakeTimeoutMs?: number
    /** sockets whose TLS handshake has not finished, per remote address (default 128) and in all (1024); over: the oldest is dropped */
    maxHandshakesPerAddress?: number
    maxPendingHandshakes?: number
    /**
     * [PROXY protocol] addresses and networks (CIDR: "10.0.0.0/24", "fd00::/64") of proxies (HAProxy with
     * send-proxy-v2) whose connections to the device port and the app port must start with a PROXY header
     * (v1 or v2); the client address it announces then stands for the connection everywhere (limits,
     * claims, logs, /v2/sessions). Connections from anywhere else are served as without it. Default: none.
     */
    trustedProxies?: string[]
    /**
     * [CORS] origins (exact: "https://app.example.com", "http://localhost:3000") whose web pages may call the
     * app port's REST API and POST /jwt from a browser, or ["*"] for any; checked at start (E_BAD_CONFIG).
     * Default: none, no CORS headers (the dashboard, same-origin, needs none). The WebSocket takes any origin
     * either way: no credential on this port is ambient (docs/OPERATIONS.md).
     */
    corsOrigins?: string[]
    /** a trusted proxy's header must arrive within this (default 5000 ms: limits.ts PROXY_HEADER_TIMEOUT_MS) */
    proxyHeaderTimeoutMs?: number
    /** HTTP headers must arrive within this (default 10 s) and a whole request within this (30 s) */
    httpHeadersTimeoutMs?: number
    httpRequestTimeoutMs?: number
    /** [P§8] several processes: a feed's change waits this long for its change stamped before it, from another process (default 5000: limits.ts STAMP_ORDER_HOLD_MS) */
    stampOrderHoldMs?: number
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
     * Time gone by, ms from any origin (default performance.now()): what a connection's keep-alive, auth deadline,
     * slow-consumer rule and request rate measure. Not `now`, which NTP, a resumed VM or an operator steps; tests
     * that move time by hand for those rules move both.
     */
    elapsedMs?: () => number
    /**
     * Tests only: the store the server uses, made from the one it opened (e.g. one whose commits a test
     * can hold open, to see that no acknowledgement leaves before its commit returned). Unset: the store itself.
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
    /** [fleet] claim limits and devices' last-seen times */
    fleet: Fleet
    metrics: Metrics
    log: Logger
    /** serve the protocol over any other transport: a session on `wire` (welcome first, then requests) */
    attachWire(wire: Wire): Session
    /** serve the device protocol over any byte stream (an in-memory Duplex, a serial link, …) */
    attachDuplex(stream: Duplex, remoteAddress?: string): Session
    /**
     * Reads --tls-cert / --tls-key (or the development certificate) again and, if they pass the checks, serves
     * them from the next handshake on, on both TLS ports; open connections keep theirs. What `feedline serve`
     * does on SIGHUP. A failed check keeps the previous certificate (logged as E_TLS_RELOAD with its code).
     */
    reloadTls(): TlsReload
    /** graceful: stop accepting, let requests in flight finish, flush writes, send a final notice, close */
    close(): Promise<void>
}
