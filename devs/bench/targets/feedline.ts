// The feedline server, started through its bin (`devs/bin/feedline serve`, the compiled CLI) in its own process, with the
// same throwaway certificate as the MQTT peers when the CLI accepts one: on SQLite (the default), or on
// a throw-away PostgreSQL and Redis (devs/tools/services.ts) with one or two worker processes, whose
// CPU and memory figures then include PostgreSQL's and Redis's processes.
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { compiledCli, PACKAGE_ROOT, packageBin } from "../../server/compiled.ts"
import { topSelfTime } from "../cpu-profile.ts"
import { startPostgres, startRedis, unavailable, type RunningService } from "../../tools/services.ts"
import { spawnServer, stopChild, type RunningTarget, type SkippedTarget, type StartTarget, type TargetContext, type TargetName } from "./target.ts"

const REPO = PACKAGE_ROOT
/** the CLI's source: the benchmark skips feedline until it exists */
const FEEDLINE_CLI_SOURCE = join(REPO, "devs/cli.ts")
const START_TIMEOUT_MS = 30_000
/** [P§4] the metered-link keep-alive, used when every target should idle like MQTT's 60 s keepalive */
const METERED_HEARTBEAT_MS = 25_000
const METERED_TIMEOUT_MS = 60_000
/** per-connection request rate that never binds in the benchmark */
const UNLIMITED_RATE_PER_S = 1_000_000
/** above the largest connection step of the full profile */
const MAX_CONNECTIONS = 20_000
/** the idle connections of the scaling steps never send a request: an auth deadline past any phase */
const NO_AUTH_DEADLINE_MS = 24 * 3600_000

interface ReadyFile {
    devicePort: number
    appPort: number
    appScheme: "http" | "https"
    caCertPath: string
    pid: number
}

let helpText: string | undefined
function cliHelp(): string {
    if (helpText === undefined) {
        try {
            const bin = packageBin()
            helpText = execFileSync(bin.command, ["serve", "--help"], {
                cwd: REPO,
                env: bin.env,
                encoding: "utf8",
                stdio: "pipe",
                timeout: 20_000,
            })
        } catch (e) {
            const x = e as { stdout?: string; stderr?: string }
            helpText = `${x.stdout ?? ""}${x.stderr ?? ""}`
        }
    }
    return helpText
}

/** Whether `devs/cli.ts serve` exists yet (the server is written in parallel with the benchmark). */
export function feedlineAvailable(): boolean {
    return existsSync(FEEDLINE_CLI_SOURCE)
}

export const startFeedline: StartTarget = (ctx) => startFeedlineOn(ctx, "feedline")
export const startFeedlinePg: StartTarget = (ctx) => startFeedlineOn(ctx, "feedline-pg", { workers: 1 })
export const startFeedlinePg2: StartTarget = (ctx) => startFeedlineOn(ctx, "feedline-pg-2w", { workers: 2 })

async function startFeedlineOn(ctx: TargetContext, name: TargetName, scaled?: { workers: number }): Promise<RunningTarget | SkippedTarget> {
    if (!feedlineAvailable()) return { name, skipped: "not yet: devs/cli.ts does not exist (the server is not ready)" }
    let services: RunningService[] = []
    if (scaled) {
        const why = unavailable("postgresql", "redis")
        if (why) return { name, skipped: why }
        // durable, as in production: fsync and synchronous_commit on, like the SQLite row's synchronous=FULL
        try {
            services = [await startPostgres({ durable: true })]
            services.push(await startRedis())
        } catch (e) {
            await Promise.all(services.map((x) => x.stop()))
            return { name, skipped: `PostgreSQL or Redis did not start: ${(e as Error).message.split("\n")[0]}` }
        }
    }
    const stopServices = () => Promise.all(services.map((s) => s.stop()))
    // a fresh folder per start: a ready file left by an earlier start must not be mistaken for this one
    const runDir = mkdtempSync(join(ctx.workDir, "run-"))
    const dataDir = join(runDir, "data")
    const readyFile = join(runDir, "ready.json")
    const args = ["serve", "--data-dir", dataDir, "--device-port", "0", "--app-port", "0", "--ready-file", readyFile]
    const help = cliHelp()
    const notes: string[] = []
    if (scaled) {
        const [postgres, redis] = services
        args.push("--database-url", postgres.url, "--redis-url", redis.url, "--workers", String(scaled.workers))
        notes.push(
            `${name}: feedline on PostgreSQL (durable: fsync and synchronous_commit on) and Redis on this machine, ${scaled.workers} worker process${scaled.workers > 1 ? "es" : ""}; its CPU and memory figures include PostgreSQL's and Redis's processes`,
        )
    }
    // The server's per-connection rate limit (default 50 requests/s) would cap the closed-loop phase
    // at 50 × connections; the MQTT peers have none, so the comparison runs with it out of the way.
    if (help.includes("--rate")) {
        args.push("--rate", String(UNLIMITED_RATE_PER_S))
        notes.push(`feedline ran with --rate ${UNLIMITED_RATE_PER_S} (default 50 requests/s per connection) so the limit does not cap the load phases`)
    }
    if (help.includes("--key-rate")) {
        args.push("--key-rate", String(UNLIMITED_RATE_PER_S))
        notes.push(`feedline ran with --key-rate ${UNLIMITED_RATE_PER_S} (default 200 requests/s per key): every load connection uses one key`)
    }
    if (help.includes("--max-connections")) {
        args.push("--max-connections", String(MAX_CONNECTIONS))
        notes.push(`feedline ran with --max-connections ${MAX_CONNECTIONS} (default 4096) for the connection-scaling steps`)
    }
    if (help.includes("--max-connections-per-key")) {
        args.push("--max-connections-per-key", String(MAX_CONNECTIONS))
        notes.push(`feedline ran with --max-connections-per-key ${MAX_CONNECTIONS} (default a quarter of --max-connections): every load connection uses one key`)
    }
    // every scaling step's device writes its own datastream (d<i>) of the one load feed
    if (help.includes("--max-datastreams-per-feed")) {
        args.push("--max-datastreams-per-feed", String(MAX_CONNECTIONS))
        notes.push(`feedline ran with --max-datastreams-per-feed ${MAX_CONNECTIONS} (default 1000): each connection of the scaling steps writes its own datastream of one feed`)
    }
    // every load connection comes from 127.0.0.1, and the scaling steps' idle ones never send a key
    if (help.includes("--max-connections-per-address")) {
        args.push("--max-connections-per-address", String(MAX_CONNECTIONS), "--max-unauthenticated-per-address", String(MAX_CONNECTIONS))
        args.push("--max-handshakes-per-address", String(MAX_CONNECTIONS), "--auth-deadline-ms", String(NO_AUTH_DEADLINE_MS))
        notes.push(
            `feedline ran with its per-address limits at ${MAX_CONNECTIONS} and --auth-deadline-ms ${NO_AUTH_DEADLINE_MS}: every load connection comes from one address, and idle ones send no key`,
        )
    }
    if (!(process.env.FEEDLINE_BENCH_SERVER_ARGS ?? "").includes("--log-level")) notes.push("feedline logged at its default level (info)")
    if (help.includes("--tls-cert") && help.includes("--tls-key")) args.push("--tls-cert", ctx.tls.certPath, "--tls-key", ctx.tls.keyPath)
    else notes.push("feedline used its own dev CA certificate (the CLI takes no --tls-cert)")
    if (ctx.meteredKeepAlive) {
        if (help.includes("--heartbeat-ms") && help.includes("--timeout-ms")) {
            args.push("--heartbeat-ms", String(METERED_HEARTBEAT_MS), "--timeout-ms", String(METERED_TIMEOUT_MS))
        } else notes.push("feedline CLI has no --heartbeat-ms: idle connections ran at the default 300 ms heartbeat")
    }
    // FEEDLINE_BENCH_SERVER_ARGS: extra `serve` flags, to try a setting (e.g. --log-level warn)
    const extra = (process.env.FEEDLINE_BENCH_SERVER_ARGS ?? "").split(" ").filter(Boolean)
    if (extra.length) {
        args.push(...extra)
        notes.push(`feedline ran with extra flags: ${extra.join(" ")}`)
    }
    // FEEDLINE_BENCH_CPU_PROFILE_DIR: where the .cpuprofile files go (kept, for a profiler's own view); else a throwaway folder
    const profileDir = process.env.FEEDLINE_BENCH_CPU_PROFILE_DIR || join(runDir, "cpu-profile")
    // Node refuses --cpu-prof in NODE_OPTIONS, so a profiled server is the compiled CLI under node itself, without the bin's allocator settings
    const profiled = process.env.FEEDLINE_BENCH_CPU_PROFILE === "1"
    if (profiled) notes.push("feedline ran under node --cpu-prof directly (not through its bin: without the bin's allocator settings)")
    const bin = packageBin()
    const { child, stderrTail } = profiled
        ? spawnServer(process.execPath, ["--cpu-prof", "--cpu-prof-dir", profileDir, compiledCli(), ...args], { cwd: REPO })
        : spawnServer(bin.command, args, { cwd: REPO, env: bin.env })
    const until = performance.now() + START_TIMEOUT_MS
    let ready: ReadyFile | undefined
    while (!ready && performance.now() < until && child.exitCode === null) {
        try {
            ready = JSON.parse(readFileSync(readyFile, "utf8")) as ReadyFile
        } catch {
            await new Promise((r) => setTimeout(r, 50))
        }
    }
    if (!ready) {
        await stopChild(child)
        await stopServices()
        return { name, skipped: `feedline server did not become ready: ${child.exitCode !== null ? `exit ${child.exitCode}` : "timeout"}\n${stderrTail()}` }
    }
    const creds = JSON.parse(readFileSync(join(dataDir, "credentials.json"), "utf8")) as { masterKey: string; feedId: number; deviceKey: string }
    const usesOurCert = args.includes("--tls-cert")
    const caPath = usesOurCert ? ctx.tls.caPath : ready.caCertPath
    return {
        name,
        // with PostgreSQL: feedline's processes (the --workers primary and its workers), PostgreSQL's and Redis's
        pid: scaled ? [ready.pid, ...services.map((x) => x.pid)] : ready.pid,
        address: {
            kind: "feedline",
            host: "127.0.0.1",
            port: ready.devicePort,
            caPath,
            feedId: creds.feedId,
            deviceKey: creds.deviceKey,
            readKey: creds.masterKey,
        },
        metrics: { url: `${ready.appScheme}://127.0.0.1:${ready.appPort}/metrics`, caPath },
        notes: scaled ? notes : [`feedline server via its bin (devs/bin/feedline serve: compiled JavaScript, the bin's allocator settings) on Node ${process.version}, SQLite store`, ...notes],
        stop: async () => {
            await stopChild(child, 10_000)
            await stopServices()
            const top = topSelfTime(profileDir)
            if (top.length) ctx.log(`  feedline server CPU profile (self time, ${ctx.meteredKeepAlive ? "connection scaling" : "load phases"}):\n${top.map((l) => "    " + l).join("\n")}`)
        },
    }
}
