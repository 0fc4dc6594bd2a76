// startServer(): one process, three front doors (TLS device port; HTTPS REST + WSS on the app port, plain
// HTTP there only on loopback or when asked; optional plain TCP for development), one router, one store.
// In order: the settings checked, the data folder, the store, the bus and the key ring (engines.ts), the
// first start's credentials and the TLS material (tls/material.ts) under the data folder's lock, the parts
// wired (wiring.ts), listening, background work (background.ts); close() is shutdown.ts. See
// docs/OPERATIONS.md "Running the server" and "Running more than one process".
import { readFileSync } from "node:fs"
import type net from "node:net"
import { join } from "node:path"
import type { Duplex } from "node:stream"
import { keepaliveContractOf } from "../../src/keepalive.ts"
import { PACKAGE_ROOT } from "./compiled.ts"
import { KeyRing } from "./auth/keys.ts"
import { ProvenKeys } from "./auth/proven-keys.ts"
import { startBackgroundWork } from "./background.ts"
import { ensureCredentials } from "./credentials.ts"
import { claimStore, openBus, openStore } from "./engines.ts"
import { ConfigError } from "./errors.ts"
import { appSchemeOf, isLoopbackHost } from "./listeners/app-port.ts"
import { trustedProxiesOf } from "./listeners/proxy-front.ts"
import { corsPolicyOf } from "./listeners/cors.ts"
import { attachStream } from "./listeners/stream.ts"
import { Fleet } from "./fleet/fleet.ts"
import {
    APP_KEEPALIVE_PROFILE,
    AUTH_FAILURES_BURST,
    AUTH_FAILURES_PER_MINUTE,
    CLAIM_BURST_PER_ADDRESS,
    CLAIM_BURST_PER_PRODUCT,
    CLAIM_RATE_PER_ADDRESS,
    CLAIM_RATE_PER_PRODUCT,
    connectionBoundProblem,
    DEVICE_KEEPALIVE_PROFILE,
    KEEPALIVE_PROFILES,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_ADDRESS,
    MAX_HTTP_CONNECTIONS,
    MAX_HTTP_CONNECTIONS_PER_ADDRESS,
} from "./limits.ts"
import { createLogger, LogDestination } from "./log.ts"
import { Metrics } from "./metrics.ts"
import type { RunningServer, ServerOptions } from "./options.ts"
import { Buckets, ClockedBuckets } from "./ratelimit.ts"
import { Session, type Wire } from "./session.ts"
import { shutDown } from "./shutdown.ts"
import { octal, securePrivateFolder } from "./storage/private-folder.ts"
import { withFolderLock } from "./storage/folder-lock.ts"
import type { Store } from "./storage/store.ts"
import { loadTlsMaterial } from "./tls/material.ts"
import { TlsCertificates } from "./tls/reload.ts"
import { wireServer } from "./wiring.ts"

export type { BearerVerifier, Grant } from "./auth/grant.ts"
export type { Credentials } from "./credentials.ts"
export type { Extension, ServerCore, ServerExtension } from "./extensions.ts"
export type { HttpHandler } from "./listeners/http.ts"
export type { RunningServer, ServerOptions } from "./options.ts"
export type { Session, Wire } from "./session.ts"

export const SERVER_VERSION: string = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")).version

/** Why a port could not be opened, as a setting to change (the flag that names it). */
function listenProblem(err: NodeJS.ErrnoException, port: number, host: string, flag: string): Error {
    const what = `${flag} ${port} on --host ${host}`
    // the system's error stays the cause: a caller with settings of its own (npm start's variables) can name them
    const problem = (reason: string) => new ConfigError(`${what}: ${reason}`, { cause: err })
    if (err.code === "EADDRINUSE") return problem("the port is in use by another program (another feedline server?); choose another port, or 0 for any free one")
    if (err.code === "EACCES") return problem("this user may not open that port (ports under 1024 need privileges); choose a port of 1024 or above")
    if (err.code === "EADDRNOTAVAIL" || err.code === "ENOTFOUND" || err.code === "EAI_AGAIN") {
        return problem(`${host} is not an address of this machine (${err.code}); use 0.0.0.0 (all), 127.0.0.1 (this machine only) or one of its addresses`)
    }
    if (err.code === "ERR_SOCKET_BAD_PORT") return problem("a port is a whole number from 0 to 65535")
    return err
}

function listen(server: net.Server, port: number, host: string, flag: string): Promise<number> {
    return new Promise((resolve, reject) => {
        const failed = (err: NodeJS.ErrnoException) => reject(listenProblem(err, port, host, flag))
        server.once("error", failed)
        try {
            server.listen(port, host, () => {
                server.off("error", failed)
                resolve((server.address() as net.AddressInfo).port)
            })
        } catch (e) {
            failed(e as NodeJS.ErrnoException) // a port out of range is thrown, not emitted
        }
    })
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
    const host = opts.host ?? "127.0.0.1"
    // [P§4] explicit values set every door's contract; without them each door announces its profile
    const explicit = opts.heartbeatMs !== undefined || opts.faultyMs !== undefined || opts.timeoutMs !== undefined
    const profile = KEEPALIVE_PROFILES[opts.keepaliveProfile ?? DEVICE_KEEPALIVE_PROFILE]
    if (!profile) throw new ConfigError(`--keepalive: no profile "${opts.keepaliveProfile}"; use ${Object.keys(KEEPALIVE_PROFILES).join(" or ")}`)
    if (explicit && opts.keepaliveProfile !== undefined) throw new ConfigError("give --keepalive or --heartbeat-ms/--faulty-ms/--timeout-ms, not both")
    const keepalive = explicit ? keepaliveContractOf(opts.heartbeatMs, opts.faultyMs, opts.timeoutMs) : { contract: profile, error: undefined }
    if (!keepalive.contract) throw new ConfigError(`keep-alive settings (--heartbeat-ms, --faulty-ms, --timeout-ms): ${keepalive.error}`)
    const appKeepalive = explicit ? keepalive.contract : KEEPALIVE_PROFILES[APP_KEEPALIVE_PROFILE]
    const app = appSchemeOf(host, opts)
    if (!app.scheme) throw new ConfigError(`app port: ${app.error}`)
    const appScheme = app.scheme
    const bounds = connectionBoundProblem([
        { flag: "--max-connections", value: opts.maxConnections, instead: `default ${MAX_CONNECTIONS}` },
        { flag: "--max-connections-per-address", value: opts.maxConnectionsPerAddress, instead: `default ${MAX_CONNECTIONS_PER_ADDRESS}` },
        // the one a user may mean as "no limit": say how to have that
        { flag: "--max-connections-per-key", value: opts.maxConnectionsPerKey, instead: `to hold keys to no bound of their own, pass --max-connections's value, ${opts.maxConnections ?? MAX_CONNECTIONS}` },
        { flag: "--max-http-connections", value: opts.maxHttpConnections, instead: `default ${MAX_HTTP_CONNECTIONS}` },
        { flag: "--max-http-connections-per-address", value: opts.maxHttpConnectionsPerAddress, instead: `default ${MAX_HTTP_CONNECTIONS_PER_ADDRESS}` },
    ])
    if (bounds) throw new ConfigError(bounds)
    const trustedProxies = opts.trustedProxies?.length ? trustedProxiesOf(opts.trustedProxies) : undefined
    const cors = corsPolicyOf(opts.corsOrigins)
    const now = opts.now ?? Date.now
    // durations (keep-alive, deadlines, rates, the retention's guard) on the monotonic clock: a step of the wall clock moves none
    const elapsedMs = opts.elapsedMs ?? (() => performance.now())
    // stdout unless told otherwise: a descriptor that fails (the terminal closed) drops lines, it does not end the server
    const logOutput = opts.logDestination ? undefined : new LogDestination(1)
    const log = createLogger(opts.logLevel ?? "info", opts.logDestination ?? logOutput)
    const metrics = new Metrics()
    if (logOutput) metrics.sampleOnRender(() => metrics.logLinesDropped.set({}, logOutput.droppedLines))
    // every datapoint, the key hashes and the token secret live here: owner-only, narrowed when found wider
    for (const fix of securePrivateFolder(opts.dataDir, opts.dataFiles)) {
        if (fix.error) log.error({ path: fix.path, mode: octal(fix.from), error: fix.error }, "the data folder is readable by other users and could not be narrowed; fix its permissions")
        else log.warn({ path: fix.path, from: octal(fix.from), to: octal(fix.to) }, "the data folder was readable by other users; narrowed it")
    }

    const opened = await openStore({ ...opts, serving: true }, {
        onCommit: (ms) => metrics.storeCommit.observe(ms / 1000),
        onError: (err) => log.error({ err }, "store commit failed; the writes were refused (503), nothing was acknowledged"),
        // the one log line of a call's storage failure, background work's too (they do not log a StoreError again)
        onFailure: (failure, call) => log.error({ err: failure.cause, call, failure: failure.failure }, "storage failed; nothing of that call was done (a request was answered 503 E_STORE_FAILED)"),
        log,
    })
    const store: Store = opts.wrapStore ? opts.wrapStore(opened.store) : opened.store
    let bus
    try {
        bus = await openBus(opts.redisUrl, log, store)
        await claimStore(store, bus)
    } catch (e) {
        await bus?.close()
        await store.close()
        throw e
    }
    // a start that fails from here on (a port in use, a certificate that will not load) lets go of what it
    // opened, the store's server lock included, so that the same process may start again
    let wired: ReturnType<typeof wireServer> | undefined
    try {
        const keys = new KeyRing(store, now)
        // failed keys per address live in this process alone: on the monotonic clock (a wall-clock step neither lifts nor holds a lockout)
        const authFailures = new ClockedBuckets(new Buckets({ ratePerSecond: AUTH_FAILURES_PER_MINUTE / 60, burst: AUTH_FAILURES_BURST }), elapsedMs)
        // one for the router and POST /jwt: a key proven on either passes the lockout on both
        const provenKeys = new ProvenKeys()
        const fleet = new Fleet(store, now, log, {
            perAddress: bus.keyRate({ ratePerSecond: opts.claimRatePerAddress ?? CLAIM_RATE_PER_ADDRESS, burst: opts.claimBurstPerAddress ?? CLAIM_BURST_PER_ADDRESS }),
            perProduct: bus.keyRate({ ratePerSecond: opts.claimRatePerProduct ?? CLAIM_RATE_PER_PRODUCT, burst: opts.claimBurstPerProduct ?? CLAIM_BURST_PER_PRODUCT }),
            elapsedMs,
        })
        await fleet.reload()
        // tools (the dashboard at /, POST /jwt and `Bearer <jwt>` credentials), mounted with what they may use
        const extensions = (opts.extensions ?? []).map((mount) => mount({ dataDir: opts.dataDir, keys, authFailures, provenKeys, keyUsed: (keyId) => fleet.keyAuthenticated(keyId, true), keyRate: (config) => bus.keyRate(config), now, elapsedMs, log }))
        const pruned = await store.pruneRevokedTokenFamilies()
        if (pruned) log.info({ pruned }, "forgot signed-out token families past their end")
        // the first of several processes starting at once makes the credentials and the dev CA; the others find them
        const { credentials, created, tls } = await withFolderLock(opts.dataDir, async () => {
            const made = await store.provisioning(() => ensureCredentials(opts.dataDir, store, keys, now))
            return { ...made, tls: await loadTlsMaterial(opts, log) }
        })

        const w = (wired = wireServer({ opts, version: SERVER_VERSION, appScheme, trustedProxies, cors, keepalive: keepalive.contract, appKeepalive, tls, store, bus, keys, fleet, authFailures, provenKeys, extensions, log, metrics, now, elapsedMs }))
        const certificates = new TlsCertificates(tls, w.tlsServers, { log, metrics, now })
        // [P§8] several processes: what was committed before this one heard the others (hub/commit-order.ts)
        await w.hub.syncCommitOrder()
        const devicePort = await listen(w.deviceListener, opts.devicePort ?? 7443, host, "--device-port")
        const appPort = await listen(w.appListener, opts.appPort ?? 7080, host, "--app-port")
        if (appScheme === "http" && !isLoopbackHost(host)) log.warn({ host, port: appPort }, "plain HTTP app port open (--insecure-http): keys and tokens cross the network in clear")
        const insecureTcpPort = w.tcpServer ? await listen(w.tcpServer, opts.insecureTcpPort!, host, "--insecure-tcp-port") : undefined
        if (w.tcpServer) log.warn({ port: insecureTcpPort }, "plain TCP device port open: development only, keys travel unencrypted")
        const background = startBackgroundWork({ keys, store, fleet, log, now, elapsedMs, retentionDays: opts.retentionDays })
        if (cors) log.info({ corsOrigins: opts.corsOrigins }, "the app port answers cross-origin calls from these origins' pages")
        if (opts.trustedProxies?.length) log.info({ trustedProxies: opts.trustedProxies }, "device and app ports read the PROXY protocol from these proxies")
        log.info(
            { host, devicePort, appPort, appScheme, dataDir: opts.dataDir, version: SERVER_VERSION, store: opened.durability, bus: bus.kind, process: bus.processId },
            "feedline server listening",
        )

        // every server, listening or behind a front that listens
        const listeners = [...new Set([w.deviceListener, w.tlsServer, w.appListener, w.appServer, w.httpServer, ...(w.tcpServer ? [w.tcpServer] : [])])]
        let closing: Promise<void> | undefined
        const close = () =>
            (closing ??= (background.stop(), shutDown({ listeners, httpServer: w.httpServer, httpRequests: w.httpRequests, ws: w.ws, sessions: w.sessions, hub: w.hub, store, fleet, bus, directory: w.directory, log })))

        const attachWire = (wire: Wire) => {
            const session = new Session(w.sessionDeps, wire)
            session.start()
            return session
        }
        const attachDuplex = (stream: Duplex, remoteAddress = "duplex") => attachStream(w.sessionDeps, stream, "tcp", remoteAddress)
        const reloadTls = () => certificates.reload()
        return { devicePort, appPort, appScheme, insecureTcpPort, caCertPath: tls.caCertPath, credentials, credentialsCreated: created, keys, store, fleet, metrics, log, attachWire, attachDuplex, reloadTls, close }
    } catch (e) {
        for (const l of [wired?.deviceListener, wired?.appListener, wired?.tcpServer]) if (l?.listening) l.close()
        wired?.ws.close()
        await bus.close()
        await store.close()
        throw e
    }
}
