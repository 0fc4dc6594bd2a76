#!/usr/bin/env node
// feedline: the command line of the socket server. `feedline --help` lists the commands.
import { existsSync } from "node:fs"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { describeKey, KeyRing } from "./server/auth/keys.ts"
import { credentialsPath } from "./server/credentials.ts"
import { writeFileWhole } from "./server/write-whole.ts"
import { ApiError, ConfigError, UnavailableError } from "./server/errors.ts"
import { startServer, type ServerOptions } from "./server/index.ts"
import { outliveOutput } from "./server/log.ts"
import { isWorker, reportReady, runPrimary } from "./server/workers.ts"
import { mountDashboard } from "./dashboard/mount.ts"
import { octal, securePrivateFolder } from "./server/storage/private-folder.ts"
import { openStore } from "./server/engines.ts"
import { PERMISSIONS, type Permission } from "./server/auth/grant.ts"
import { refuseStaleBuild } from "./server/compiled.ts"
import { chooseDataDir, namedDir, SQLITE_FILE } from "./server/data-dir.ts"

/** ./data of the folder feedline runs in, as a server's data folder is (npm run serve: the package's own) */
const DEFAULT_DATA_DIR = "data"

const helpText = (clientCommandsHelp: string) => `feedline: socket server for field devices (protocol v1, docs/PROTOCOL.md)

Usage:
  feedline serve [options]             run the server (devices: TLS; apps: HTTPS /v2 + WSS /ws)
${LOCAL_KEYS_USAGE}
  feedline proxy --target HOST:PORT    fault-injection proxy in front of a server (\`feedline proxy --help\`)
  feedline --help

Client (over the network; \`feedline <command> --help\` for each):
${clientCommandsHelp}
  \`keys\` works over the network when given --server or --key (or $FEEDLINE_SERVER without --data-dir).

Common:
  --data-dir DIR        database, dev certificates, credentials.json  [FEEDLINE_DATA_DIR, default ./data of this folder]
  --database-url URL    PostgreSQL instead of SQLite in DIR: postgres://USER:PASSWORD@HOST:PORT/DATABASE
                                                        [FEEDLINE_DATABASE_URL]

serve:
  --redis-url URL       Redis between processes (pushes, session list, per-key rate): redis://HOST:PORT[/DB]
                        needed by a second process on one --database-url  [FEEDLINE_REDIS_URL]
  --workers N           N processes sharing the ports (one per core); needs --database-url and
                        --redis-url                     [FEEDLINE_WORKERS, default 1]
  --host ADDR           listen address                  [FEEDLINE_HOST, default 0.0.0.0]
  --device-port N       TLS device port (0: any free)   [FEEDLINE_DEVICE_PORT, default 7443]
  --app-port N          HTTPS + WSS port (same certificate as the device port; plain HTTP
                        when --host is loopback)        [FEEDLINE_APP_PORT, default 7080]
  --insecure-http       plain HTTP + WS on the app port on any --host: keys cross the network
                        in clear (behind a TLS-terminating proxy, or development only)
  --insecure-tcp-port N plain TCP device port, development only (off by default)
  --tls-cert FILE       PEM certificate chain           [FEEDLINE_TLS_CERT; default: dev CA in DIR/tls]
  --tls-key FILE        PEM private key                 [FEEDLINE_TLS_KEY]
                        both read again on SIGHUP (systemctl reload), served without a restart
  --keepalive PROFILE   device doors' keep-alive [P§4]  [FEEDLINE_KEEPALIVE, default field: 20 s / 30 s / 60 s;
                        seed: 300 / 1000 / 3000 ms, what the app door's WebSocket always announces]
  --heartbeat-ms N      keep-alive contract of every    [FEEDLINE_HEARTBEAT_MS, default 300 when any of the three
                        door, instead of the profiles    is given]
  --faulty-ms N         degraded after this silence     [FEEDLINE_FAULTY_MS, default: 3 heartbeats, >= 1000,
                                                         at most halfway to the timeout]
  --timeout-ms N        idle connections are closed     [FEEDLINE_TIMEOUT_MS, default 3000 when any of the three
                        after this silence               is given; else the profile's: 60 s field, 3 s seed]
  --retention-days N    delete older datapoints         [FEEDLINE_RETENTION_DAYS, default: keep]
  --token-max-age-hours N  a dashboard sign-in (POST /jwt token and its renewals) lasts at most N hours
                                                        [FEEDLINE_TOKEN_MAX_AGE_HOURS, default 24]
  --rate N              requests/s per connection (HTTP: per address)
                                                        [FEEDLINE_RATE, default 50, burst 2x]
  --key-rate N          requests/s per key, over all its connections
                                                        [FEEDLINE_KEY_RATE, default 200, burst 2x]
  --structure-rate N    changes/s per key to feeds and datastreams (making, deleting, renaming,
                        deleting points; not writing points), over all its connections; master
                        keys are not held to it          [FEEDLINE_STRUCTURE_RATE, default 10, burst 10x]
  --token-rate N        browser tokens/s per key (POST /jwt sign-ins and renewals), over all addresses
                                                        [FEEDLINE_TOKEN_RATE, default 1, burst 120x]
  --claim-rate N        device claims/s per address     [FEEDLINE_CLAIM_RATE, default 1, burst 100x]
  --product-claim-rate N  device claims/s per product   [FEEDLINE_PRODUCT_CLAIM_RATE, default 10, burst 50x]
  --max-connections N                                   [FEEDLINE_MAX_CONNECTIONS, default 4096]
  --max-connections-per-address N                       [FEEDLINE_MAX_CONNECTIONS_PER_ADDRESS, default 1024]
  --max-connections-per-key N  connections one key holds (master keys: any number)
                                                        [FEEDLINE_MAX_CONNECTIONS_PER_KEY, default max-connections/4]
  --max-http-connections N  app-port HTTP connections (not WebSockets); over it closed at accept
                                                        [FEEDLINE_MAX_HTTP_CONNECTIONS, default 1024]
  --max-http-connections-per-address N                  [FEEDLINE_MAX_HTTP_CONNECTIONS_PER_ADDRESS, default 256]
  --max-unauthenticated-per-address N  connections from one address without a valid key yet; over it
                        the oldest is closed            [FEEDLINE_MAX_UNAUTHENTICATED_PER_ADDRESS, default 64]
  --auth-deadline-ms N  a connection must send a valid key within N ms of its welcome
                                                        [FEEDLINE_AUTH_DEADLINE_MS, default 5000]
  --max-datastreams-per-feed N  a write that would take a feed past N datastreams is refused (422)
                                                        [FEEDLINE_MAX_DATASTREAMS_PER_FEED, default 1000]
  --max-handshakes-per-address N  pending TLS handshakes from one address; over it the oldest is
                        dropped                         [FEEDLINE_MAX_HANDSHAKES_PER_ADDRESS, default 128]
  --trusted-proxies LIST  addresses or networks (10.0.0.5,10.0.1.0/24,fd00::/64) of proxies (HAProxy with
                        send-proxy-v2) whose connections start with a PROXY header: the client address
                        it announces stands for the connection  [FEEDLINE_TRUSTED_PROXIES, default none]
  --cors-origins LIST   origins (https://app.example.com,http://localhost:3000) whose web pages may call the
                        REST API and POST /jwt from a browser, or * for any  [FEEDLINE_CORS_ORIGINS, default none]
  --log-level LEVEL     pino level                      [FEEDLINE_LOG_LEVEL, default info]
  --ready-file FILE     once listening, write {"devicePort","appPort","appScheme","caCertPath","pid"} there
                        (with --workers: once all listen; "pid" is the primary's, "workers" theirs)

${KEYS_CREATE_OPTIONS}`

// the local `keys` (the data folder's store), shared by `feedline --help` and `feedline keys --help`
const LOCAL_KEYS_USAGE = `  feedline keys create [options]       make an API key; prints it once
  feedline keys list [--json]          list keys (never the keys themselves)
  feedline keys revoke <id>            revoke a key; open connections using it lose it at once`

const KEYS_CREATE_OPTIONS = `keys create:
  --label TEXT          what the key is for
  --permissions LIST    comma-separated: ${PERMISSIONS.join(",")}  (default read,update)
  --feeds LIST          comma-separated feed ids, or * for all (default *)
  --master              a master key: everything, every feed (so no --feeds), feeds and keys
  --secret SECRET       import an existing key instead of making one (12-128 characters)
`

/** `feedline keys --help` without a server: both ways of managing keys, not the whole command list. */
const keysHelpText = (remoteUsage: string) => `On the server machine, the data folder's keys (--data-dir DIR, default ./${DEFAULT_DATA_DIR} or $FEEDLINE_DATA_DIR;
--database-url URL for PostgreSQL):
${LOCAL_KEYS_USAGE}

${KEYS_CREATE_OPTIONS}
Over the network, with --server or --key (or $FEEDLINE_SERVER without --data-dir), a master key:
${remoteUsage}
`

class UsageError extends Error {}

function intOf(name: string, v: string | undefined): number | undefined {
    if (v === undefined || v === "") return undefined
    const n = Number(v)
    if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number, not "${v}"`)
    return n
}

/** A comma-separated list, without empty entries; undefined when not given. */
function listOf(v: string | undefined): string[] | undefined {
    const entries = (v ?? "").split(",").map((e) => e.trim()).filter((e) => e !== "")
    return entries.length ? entries : undefined
}

/** A TCP port: 0 (any free one) to 65535. */
function portOf(name: string, v: string | undefined): number | undefined {
    const n = intOf(name, v)
    if (n !== undefined && n > 65535) throw new UsageError(`--${name} must be a port from 0 (any free one) to 65535, not ${n}`)
    return n
}

/** A positive whole number of hours, in ms. */
function hoursOf(name: string, v: string | undefined): number | undefined {
    const h = intOf(name, v)
    if (h === 0) throw new UsageError(`--${name} must be at least 1`)
    return h === undefined ? undefined : h * 3600_000
}

/** --data-dir, else FEEDLINE_DATA_DIR (empty: not set), else ./data; a database an empty setting left in the working folder is used, and said (data-dir.ts) */
function dataDirOf(v: string | undefined): Pick<ServerOptions, "dataDir" | "dataFiles"> {
    const { dir, notice, dataFiles } = chooseDataDir(namedDir(v, process.env.FEEDLINE_DATA_DIR), DEFAULT_DATA_DIR, ".")
    if (notice) process.stderr.write(`feedline: ${notice}\n`)
    return { dataDir: dir, dataFiles }
}

async function serve(args: string[]): Promise<void> {
    // a server started in a terminal outlives it (SIGHUP is the certificate reload): its output going away
    // (EIO, EPIPE) must not end it; the log's own descriptor is handled by the server (log.ts LogDestination)
    outliveOutput(process.stdout)
    outliveOutput(process.stderr)
    const { values: v } = parseArgs({
        args,
        options: {
            "data-dir": { type: "string" },
            "database-url": { type: "string" },
            "redis-url": { type: "string" },
            workers: { type: "string" },
            host: { type: "string" },
            "device-port": { type: "string" },
            "app-port": { type: "string" },
            "insecure-tcp-port": { type: "string" },
            "insecure-http": { type: "boolean" },
            "tls-cert": { type: "string" },
            "tls-key": { type: "string" },
            keepalive: { type: "string" },
            "heartbeat-ms": { type: "string" },
            "faulty-ms": { type: "string" },
            "timeout-ms": { type: "string" },
            "retention-days": { type: "string" },
            "token-max-age-hours": { type: "string" },
            rate: { type: "string" },
            "key-rate": { type: "string" },
            "structure-rate": { type: "string" },
            "token-rate": { type: "string" },
            "claim-rate": { type: "string" },
            "product-claim-rate": { type: "string" },
            "max-connections": { type: "string" },
            "max-datastreams-per-feed": { type: "string" },
            "max-connections-per-address": { type: "string" },
            "max-connections-per-key": { type: "string" },
            "max-http-connections": { type: "string" },
            "max-http-connections-per-address": { type: "string" },
            "max-unauthenticated-per-address": { type: "string" },
            "auth-deadline-ms": { type: "string" },
            "max-handshakes-per-address": { type: "string" },
            "trusted-proxies": { type: "string" },
            "cors-origins": { type: "string" },
            "log-level": { type: "string" },
            "ready-file": { type: "string" },
        },
    })
    const env = process.env
    const rate = intOf("rate", v.rate ?? env.FEEDLINE_RATE)
    const keyRate = intOf("key-rate", v["key-rate"] ?? env.FEEDLINE_KEY_RATE)
    const structureRate = intOf("structure-rate", v["structure-rate"] ?? env.FEEDLINE_STRUCTURE_RATE)
    const tokenRate = intOf("token-rate", v["token-rate"] ?? env.FEEDLINE_TOKEN_RATE)
    const claimRate = intOf("claim-rate", v["claim-rate"] ?? env.FEEDLINE_CLAIM_RATE)
    const productClaimRate = intOf("product-claim-rate", v["product-claim-rate"] ?? env.FEEDLINE_PRODUCT_CLAIM_RATE)
    const opts: ServerOptions = {
        ...dataDirOf(v["data-dir"]),
        databaseUrl: v["database-url"] ?? (env.FEEDLINE_DATABASE_URL || undefined),
        redisUrl: v["redis-url"] ?? (env.FEEDLINE_REDIS_URL || undefined),
        host: v.host ?? env.FEEDLINE_HOST ?? "0.0.0.0",
        devicePort: portOf("device-port", v["device-port"] ?? env.FEEDLINE_DEVICE_PORT),
        appPort: portOf("app-port", v["app-port"] ?? env.FEEDLINE_APP_PORT),
        insecureTcpPort: portOf("insecure-tcp-port", v["insecure-tcp-port"]),
        insecureHttp: v["insecure-http"],
        tlsCertPath: v["tls-cert"] ?? env.FEEDLINE_TLS_CERT,
        tlsKeyPath: v["tls-key"] ?? env.FEEDLINE_TLS_KEY,
        keepaliveProfile: (v.keepalive ?? env.FEEDLINE_KEEPALIVE) as ServerOptions["keepaliveProfile"],
        heartbeatMs: intOf("heartbeat-ms", v["heartbeat-ms"] ?? env.FEEDLINE_HEARTBEAT_MS),
        faultyMs: intOf("faulty-ms", v["faulty-ms"] ?? env.FEEDLINE_FAULTY_MS),
        timeoutMs: intOf("timeout-ms", v["timeout-ms"] ?? env.FEEDLINE_TIMEOUT_MS),
        retentionDays: intOf("retention-days", v["retention-days"] ?? env.FEEDLINE_RETENTION_DAYS),
        ratePerSecond: rate,
        rateBurst: rate === undefined ? undefined : 2 * rate,
        keyRatePerSecond: keyRate,
        keyRateBurst: keyRate === undefined ? undefined : 2 * keyRate,
        structureRatePerSecond: structureRate,
        structureRateBurst: structureRate === undefined ? undefined : 10 * structureRate,
        // the bursts keep the defaults' shape: a bench of boards switched on together claims at once
        claimRatePerAddress: claimRate,
        claimBurstPerAddress: claimRate === undefined ? undefined : 100 * claimRate,
        claimRatePerProduct: productClaimRate,
        claimBurstPerProduct: productClaimRate === undefined ? undefined : 50 * productClaimRate,
        maxConnections: intOf("max-connections", v["max-connections"] ?? env.FEEDLINE_MAX_CONNECTIONS),
        maxConnectionsPerAddress: intOf("max-connections-per-address", v["max-connections-per-address"] ?? env.FEEDLINE_MAX_CONNECTIONS_PER_ADDRESS),
        maxConnectionsPerKey: intOf("max-connections-per-key", v["max-connections-per-key"] ?? env.FEEDLINE_MAX_CONNECTIONS_PER_KEY),
        maxHttpConnections: intOf("max-http-connections", v["max-http-connections"] ?? env.FEEDLINE_MAX_HTTP_CONNECTIONS),
        maxHttpConnectionsPerAddress: intOf("max-http-connections-per-address", v["max-http-connections-per-address"] ?? env.FEEDLINE_MAX_HTTP_CONNECTIONS_PER_ADDRESS),
        maxUnauthenticatedPerAddress: intOf("max-unauthenticated-per-address", v["max-unauthenticated-per-address"] ?? env.FEEDLINE_MAX_UNAUTHENTICATED_PER_ADDRESS),
        authDeadlineMs: intOf("auth-deadline-ms", v["auth-deadline-ms"] ?? env.FEEDLINE_AUTH_DEADLINE_MS),
        maxDatastreamsPerFeed: intOf("max-datastreams-per-feed", v["max-datastreams-per-feed"] ?? env.FEEDLINE_MAX_DATASTREAMS_PER_FEED),
        maxHandshakesPerAddress: intOf("max-handshakes-per-address", v["max-handshakes-per-address"] ?? env.FEEDLINE_MAX_HANDSHAKES_PER_ADDRESS),
        trustedProxies: listOf(v["trusted-proxies"] ?? env.FEEDLINE_TRUSTED_PROXIES),
        corsOrigins: listOf(v["cors-origins"] ?? env.FEEDLINE_CORS_ORIGINS),
        logLevel: v["log-level"] ?? env.FEEDLINE_LOG_LEVEL ?? "info",
        // the dashboard at /, POST /jwt and `Bearer <jwt>` credentials
        extensions: [
            mountDashboard({
                tokenMaxAgeMs: hoursOf("token-max-age-hours", v["token-max-age-hours"] ?? env.FEEDLINE_TOKEN_MAX_AGE_HOURS),
                // the burst keeps the default's shape: a wall of dashboards on one key reloading at once
                tokenMintRatePerSecond: tokenRate,
                tokenMintBurst: tokenRate === undefined ? undefined : 120 * tokenRate,
            }),
        ],
    }
    const workers = intOf("workers", v.workers ?? env.FEEDLINE_WORKERS) ?? 1
    if (workers < 1) throw new UsageError("--workers must be at least 1")
    if (workers > 1 && (!opts.databaseUrl || !opts.redisUrl)) {
        throw new UsageError(
            `--workers ${workers} needs --database-url and --redis-url: the processes share their data through PostgreSQL, and pushes, the session list and per-key rate limits through Redis. With SQLite, run one process (--workers 1)`,
        )
    }
    if (workers > 1 && !isWorker) {
        const code = await runPrimary({
            count: workers,
            log: (message) => process.stderr.write(`feedline: ${message}\n`),
            onReady: (ready, pids) => {
                if (v["ready-file"]) writeFileWhole(v["ready-file"], JSON.stringify({ ...ready, kind: undefined, pid: process.pid, workers: pids }) + "\n")
            },
        })
        process.exit(code)
    }
    // SIGHUP reloads the TLS certificate (tls/reload.ts). Node's default for it is to end the process: taken
    // from here on, and one that arrives while the server starts (a worker the primary just forked) is done once it has
    let reloadTls: (() => void) | undefined
    let reloadAsked = false
    process.on("SIGHUP", () => (reloadTls ? reloadTls() : (reloadAsked = true)))
    const server = await startServer(opts)
    reloadTls = () => void server.reloadTls()
    if (reloadAsked) reloadTls()
    if (server.credentialsCreated) {
        // printed once; the log never carries keys
        process.stderr.write(
            `\nNew data folder: made a master key, feed ${server.credentials.feedId} and a device key for it.\n` +
                `  master key: ${server.credentials.masterKey}\n  device key: ${server.credentials.deviceKey}\n` +
                `They are kept in ${credentialsPath(opts.dataDir)} (mode 0600). Trust the dev CA with NODE_EXTRA_CA_CERTS=${server.caCertPath}\n\n`,
        )
    }
    const ready = { devicePort: server.devicePort, appPort: server.appPort, appScheme: server.appScheme, caCertPath: server.caCertPath, insecureTcpPort: server.insecureTcpPort }
    // a worker of --workers tells its primary, which writes the ready file once all of them listen
    if (isWorker) reportReady(ready)
    else if (v["ready-file"]) {
        try {
            writeFileWhole(v["ready-file"], JSON.stringify({ ...ready, pid: process.pid }) + "\n")
        } catch (e) {
            // whoever waits for it would wait for ever: stop, and say why
            await server.close()
            throw new ConfigError(`cannot write --ready-file ${v["ready-file"]} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give a path in a folder this user may write`)
        }
    }
    let stopping = false
    const stop = (signal: string) => {
        if (stopping) return
        stopping = true
        server.log.info({ signal }, "stopping")
        server.close().then(
            () => process.exit(0),
            (err) => {
                server.log.error({ err }, "shutdown failed")
                process.exit(1)
            },
        )
    }
    process.on("SIGTERM", () => stop("SIGTERM"))
    process.on("SIGINT", () => stop("SIGINT"))
}

async function keys(args: string[]): Promise<void> {
    const [sub, ...rest] = args
    const { values: v, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
            "data-dir": { type: "string" },
            "database-url": { type: "string" },
            label: { type: "string" },
            permissions: { type: "string" },
            feeds: { type: "string" },
            master: { type: "boolean" },
            secret: { type: "string" },
            json: { type: "boolean" },
        },
    })
    const { dataDir, dataFiles } = dataDirOf(v["data-dir"])
    const databaseUrl = v["database-url"] ?? (process.env.FEEDLINE_DATABASE_URL || undefined)
    // run from the wrong folder, the default ./data holds no database: a key made in a new one would never
    // work, so say so (a folder named with --data-dir may be new: keys made before the first start)
    const named = namedDir(v["data-dir"], process.env.FEEDLINE_DATA_DIR) !== undefined
    if (!databaseUrl && !named && !existsSync(join(dataDir, SQLITE_FILE)))
        throw new UsageError(`${dataDir} holds no feedline database (feedline.db): run this where the server's data folder is, or name it with --data-dir (or --database-url, or --server to ask a running server)`)
    for (const fix of securePrivateFolder(dataDir, dataFiles)) {
        process.stderr.write(fix.error ? `feedline: ${fix.path} is ${octal(fix.from)} (readable by other users) and could not be narrowed: ${fix.error}\n` : `feedline: ${fix.path} was ${octal(fix.from)}, readable by other users; made it ${octal(fix.to)}\n`)
    }
    // the server's store: the SQLite file in the data folder, or the PostgreSQL database of --database-url
    const { store } = await openStore({ dataDir, databaseUrl })
    const ring = new KeyRing(store)
    try {
        if (sub === "create") {
            const permissions = (v.permissions ?? "read,update").split(",").map((p) => p.trim()) as Permission[]
            const bad = permissions.find((p) => !PERMISSIONS.includes(p))
            if (bad) throw new UsageError(`unknown permission "${bad}"; use ${PERMISSIONS.join(", ")}`)
            let feeds: number[] | undefined
            if (v.feeds !== undefined && v.feeds !== "*") {
                feeds = v.feeds.split(",").map((f) => {
                    const n = Number(f.trim())
                    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--feeds takes feed ids such as 1,7 (or *), not "${f}"`)
                    return n
                })
            }
            const { record, secret } = await ring.create({ label: v.label, permissions, feeds, master: v.master, secret: v.secret })
            process.stdout.write(JSON.stringify({ ...describeKey(record), key: secret }) + "\n")
            process.stderr.write("Keep this key now: only its hash is stored.\n")
        } else if (sub === "list") {
            // the same table (or --json array) as `keys list` over the network
            const [{ printList }, { KEYS_VIEW }] = await Promise.all([import("./client/commands/list.ts"), import("./client/commands/keys.ts")])
            printList((text) => process.stdout.write(text), (await ring.list()).map(describeKey), KEYS_VIEW, { json: v.json })
        } else if (sub === "revoke") {
            const id = positionals[0]
            if (!id) throw new UsageError("say which key: feedline keys revoke <id> (ids are in `feedline keys list`)")
            if (!(await ring.revoke(id))) throw new UsageError(`there is no unrevoked key with id ${id}; \`feedline keys list\` shows the keys' ids (a revoked one says so)`)
            process.stdout.write(`revoked ${id}\n`)
        } else throw new UsageError(`unknown keys command "${sub ?? ""}"; use create, list or revoke`)
    } finally {
        await store.close()
    }
}

/** `keys` is the client's (over the network, devs/client) when it names a server or a key; else the local one. */
function isRemoteKeys(args: string[]): boolean {
    if (args.some((a) => a.startsWith("--data-dir"))) return false // a data folder is always local
    if (args.some((a) => /^(-s|-k|--server|--key)(=|$)/.test(a))) return true
    return Boolean(process.env.FEEDLINE_SERVER) && !args.some((a) => a.startsWith("--data-dir")) // set empty is unset, as elsewhere
}

async function main(argv: string[]): Promise<void> {
    refuseStaleBuild("feedline")
    const [command, ...rest] = argv
    // the server process loads neither the client's commands nor the proxy (~1.5 MiB of its idle RSS)
    if (command === "serve" && !rest.includes("--help")) return serve(rest)
    const client = await import("./client/commands/index.ts")
    if (command !== undefined && Object.hasOwn(client.CLIENT_COMMANDS, command) && (command !== "keys" || isRemoteKeys(rest))) {
        process.exitCode = await client.runClientCommand(command, rest, client.processIo())
        return
    }
    if (command === "proxy") {
        const { runProxyCli } = await import("./faultproxy/command.ts")
        process.exitCode = await runProxyCli(rest) // handles its own --help
        return
    }
    if (command === "keys" && (rest.includes("--help") || rest.includes("-h"))) {
        process.stdout.write(keysHelpText(client.commandUsage("keys")))
        return
    }
    if (command === undefined || command === "--help" || command === "-h" || command === "help" || rest.includes("--help")) {
        process.stdout.write(helpText(client.clientCommandsHelp()))
        return
    }
    if (command === "keys") return keys(rest)
    throw new UsageError(`unknown command "${command}"`)
}

main(process.argv.slice(2)).catch((err) => {
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof ApiError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
        process.stderr.write(`feedline: ${err.message}\nRun \`feedline --help\` for usage.\n`)
        process.exit(2)
    }
    if (err instanceof UnavailableError) {
        process.stderr.write(`feedline: ${err.message}\n`)
        process.exit(1)
    }
    // the operating system refused something (a file, a socket): its message names it; a stack would not help
    const sys = err as NodeJS.ErrnoException
    if (typeof sys.code === "string" && typeof sys.syscall === "string") {
        process.stderr.write(`feedline: ${sys.message}\n`)
        process.exit(1)
    }
    process.stderr.write(`feedline: ${(err as Error).stack ?? err}\n`)
    process.exit(1)
})
