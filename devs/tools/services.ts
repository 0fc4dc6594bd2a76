// Throw-away PostgreSQL, Redis and HAProxy for tests and the benchmark: each in a temporary folder, on a
// free port of 127.0.0.1, as a child process that stop() ends and whose folder it deletes. Nothing here
// touches a system-wide service (devs/tools/install-system-deps.sh installs the Debian packages and
// stops the services they start). available() says why one cannot run here, so a test can skip with a
// reason a person can act on.
import { execFileSync, type ChildProcess } from "node:child_process"
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { freePort, spawnServer, stopChild, waitForPort } from "./child-processes.ts"

/** What each service needs installed, in the words of install-system-deps.sh. */
const INSTALL_HINT = "bash devs/tools/install-system-deps.sh (or apt-get install -y postgresql redis-server haproxy)"
/** A database's first start (initdb, then the server accepting connections): seconds, more on a loaded machine. */
const START_TIMEOUT_MS = 60_000
/** The user PostgreSQL runs as when we are root: it refuses to run as root. Debian's package makes it. */
const POSTGRES_USER = "postgres"

export interface RunningService {
    /** postgres://… or redis://… */
    url: string
    port: number
    pid: number
    /** ends the process and deletes its folder */
    stop(): Promise<void>
}

/** The folder holding initdb and postgres: FEEDLINE_POSTGRES_BIN_DIR, PATH, or the newest /usr/lib/postgresql/N/bin. */
export function postgresBinDir(): string | undefined {
    const override = process.env.FEEDLINE_POSTGRES_BIN_DIR
    if (override) return existsSync(join(override, "initdb")) ? override : undefined
    const versions = existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").filter((v) => /^\d+$/.test(v)) : []
    for (const v of versions.sort((a, b) => Number(b) - Number(a))) {
        const dir = `/usr/lib/postgresql/${v}/bin`
        if (existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres"))) return dir
    }
    for (const dir of (process.env.PATH ?? "").split(":")) if (dir && existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres"))) return dir
    return undefined
}

export function redisBin(): string | undefined {
    const override = process.env.FEEDLINE_REDIS_BIN
    if (override) return existsSync(override) ? override : undefined
    return ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find(existsSync)
}

export function haproxyBin(): string | undefined {
    const override = process.env.FEEDLINE_HAPROXY_BIN
    if (override) return existsSync(override) ? override : undefined
    return ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy", "/usr/bin/haproxy"].find(existsSync)
}

function uidOf(user: string): { uid: number; gid: number } | undefined {
    try {
        const id = (flag: string) => Number(execFileSync("id", [flag, user], { encoding: "utf8", stdio: "pipe" }).trim())
        return { uid: id("-u"), gid: id("-g") }
    } catch {
        return undefined
    }
}

/** Why the named services cannot run here (missing packages, no user to run PostgreSQL as), or undefined when they can. */
export function unavailable(...services: ("postgresql" | "redis" | "haproxy")[]): string | undefined {
    const missing: string[] = []
    for (const s of services) {
        if (s === "postgresql" && !postgresBinDir()) missing.push("postgresql")
        if (s === "redis" && !redisBin()) missing.push("redis-server")
        if (s === "haproxy" && !haproxyBin()) missing.push("haproxy")
    }
    if (missing.length) return `${missing.join(", ")} not installed; install with ${INSTALL_HINT}`
    if (services.includes("postgresql") && process.getuid?.() === 0 && !uidOf(POSTGRES_USER)) {
        return `running as root, and there is no "${POSTGRES_USER}" user to run PostgreSQL as (Debian's postgresql package makes it)`
    }
    return undefined
}

/**
 * The skip reason for tests that need these services: why they cannot run here, or undefined. With
 * CI=true never a reason: CI installs them (install-system-deps.sh fails there if it cannot), so the tests
 * run and fail with the reason rather than let a CI run go green by skipping what it was meant to test.
 */
export function skipUnlessInstalled(...services: ("postgresql" | "redis" | "haproxy")[]): string | undefined {
    return process.env.CI === "true" ? undefined : unavailable(...services)
}

export interface PostgresOptions {
    /** the database to create (default "feedline") */
    database?: string
    /** fsync and synchronous_commit: on (as in production) or off (faster tests; a crash of the machine may lose commits) */
    durable?: boolean
    /** more `-c name=value` settings */
    settings?: Record<string, string | number>
    log?: (line: string) => void
}

/**
 * initdb in a temporary folder, then postgres on a free port (as the `postgres` user when we are root),
 * with a database made for the caller. Connections over TCP on 127.0.0.1 only, trusted (no password):
 * nothing else can reach it.
 */
export async function startPostgres(o: PostgresOptions = {}): Promise<RunningService> {
    const why = unavailable("postgresql")
    if (why) throw new Error(why)
    const bin = postgresBinDir()!
    const asUser = process.getuid?.() === 0 ? uidOf(POSTGRES_USER) : undefined
    const dir = mkdtempSync(join(tmpdir(), "feedline-pg-"))
    const data = join(dir, "data")
    const sockets = join(dir, "sockets")
    mkdirSync(sockets)
    if (asUser) {
        chownSync(dir, asUser.uid, asUser.gid)
        chownSync(sockets, asUser.uid, asUser.gid)
    }
    chmodSync(dir, 0o700)
    const superuser = asUser ? POSTGRES_USER : userInfo().username
    try {
        execFileSync(join(bin, "initdb"), ["-D", data, "-U", superuser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"], {
            stdio: "pipe",
            timeout: START_TIMEOUT_MS,
            ...(asUser ?? {}),
        })
    } catch (e) {
        rmSync(dir, { recursive: true, force: true })
        throw new Error(`initdb failed: ${String((e as { stderr?: Buffer }).stderr ?? e)}`)
    }
    const durable = o.durable ?? true
    const settings: Record<string, string | number> = {
        listen_addresses: "127.0.0.1",
        unix_socket_directories: sockets,
        fsync: durable ? "on" : "off",
        synchronous_commit: durable ? "on" : "off",
        full_page_writes: durable ? "on" : "off",
        max_connections: 200,
        shared_buffers: "128MB",
        ...o.settings,
    }
    for (let attempt = 0; ; attempt++) {
        const port = await freePort()
        const args = ["-D", data, "-p", String(port), ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])]
        const { child, stderrTail } = spawnServer(join(bin, "postgres"), args, asUser ?? {})
        try {
            await waitForPort(port, START_TIMEOUT_MS, child, "postgres")
            const database = o.database ?? "feedline"
            await createDatabase(`postgres://${superuser}@127.0.0.1:${port}/postgres`, database)
            o.log?.(`postgres ${bin} on 127.0.0.1:${port} (${durable ? "durable" : "fsync off"})`)
            return serviceOf(`postgres://${superuser}@127.0.0.1:${port}/${database}`, port, child, dir, "SIGINT")
        } catch (e) {
            await stopChild(child, 2000)
            // another process took the port between freePort() and the start: once more on another
            if (attempt < 2 && /could not (bind|create)|in use/i.test(stderrTail())) continue
            rmSync(dir, { recursive: true, force: true })
            throw new Error(`postgres did not start: ${(e as Error).message}\n${stderrTail()}`)
        }
    }
}

/** Creates `database`, retrying while the server still starts up (it listens before it accepts connections). */
async function createDatabase(adminUrl: string, database: string): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
        const client = new pg.Client({ connectionString: adminUrl })
        try {
            await client.connect()
            await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`)
            return
        } catch (e) {
            // 57P03: the database system is starting up
            if ((e as { code?: string }).code !== "57P03" && !/ECONNREFUSED|starting up/.test(String(e)) || Date.now() > deadline) throw e
            await new Promise((r) => setTimeout(r, 100))
        } finally {
            await client.end().catch(() => {})
        }
    }
}

/** A new, empty database on the same server as `url` (one server, several databases: one per test). */
export async function createScratchDatabase(url: string, name: string): Promise<string> {
    const u = new URL(url)
    const admin = new URL(url)
    admin.pathname = "/postgres"
    await createDatabase(admin.toString(), name)
    u.pathname = `/${name}`
    return u.toString()
}

/** redis-server on a free port: no persistence (no RDB snapshots, no append-only file), nothing on disk kept. */
export async function startRedis(o: { log?: (line: string) => void } = {}): Promise<RunningService> {
    const why = unavailable("redis")
    if (why) throw new Error(why)
    const dir = mkdtempSync(join(tmpdir(), "feedline-redis-"))
    for (let attempt = 0; ; attempt++) {
        const port = await freePort()
        const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--protected-mode", "yes"]
        const { child, stderrTail } = spawnServer(redisBin()!, args)
        try {
            await waitForPort(port, START_TIMEOUT_MS, child, "redis-server")
            o.log?.(`redis-server on 127.0.0.1:${port}`)
            return serviceOf(`redis://127.0.0.1:${port}`, port, child, dir, "SIGTERM")
        } catch (e) {
            await stopChild(child, 2000)
            if (attempt < 2 && /in use/i.test(stderrTail())) continue
            rmSync(dir, { recursive: true, force: true })
            throw new Error(`redis-server did not start: ${(e as Error).message}\n${stderrTail()}`)
        }
    }
}

export interface RunningHaproxy {
    pid: number
    stop(): Promise<void>
    /** what HAProxy printed (health check changes: "Server feedline_devices/a is DOWN") */
    output(): string
}

/** haproxy -f <config> in the foreground (-db); the config's own listeners say where it listens. */
export async function startHaproxy(config: string, waitForPorts: number[]): Promise<RunningHaproxy> {
    const why = unavailable("haproxy")
    if (why) throw new Error(why)
    const dir = mkdtempSync(join(tmpdir(), "feedline-haproxy-"))
    const file = join(dir, "haproxy.cfg")
    writeFileSync(file, config)
    const { child, stderrTail } = spawnServer(haproxyBin()!, ["-f", file, "-db"])
    try {
        for (const port of waitForPorts) await waitForPort(port, START_TIMEOUT_MS, child, "haproxy")
    } catch (e) {
        await stopChild(child, 2000)
        rmSync(dir, { recursive: true, force: true })
        throw new Error(`haproxy did not start: ${(e as Error).message}\n${stderrTail()}`)
    }
    return {
        pid: child.pid!,
        output: stderrTail,
        stop: async () => {
            await stopChild(child, 5000)
            rmSync(dir, { recursive: true, force: true })
        },
    }
}

function serviceOf(url: string, port: number, child: ChildProcess, dir: string, signal: NodeJS.Signals): RunningService {
    return {
        url,
        port,
        pid: child.pid!,
        stop: async () => {
            if (child.exitCode === null && child.signalCode === null) {
                const exited = new Promise((r) => child.once("exit", r))
                child.kill(signal)
                const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
                await exited
                clearTimeout(timer)
            }
            rmSync(dir, { recursive: true, force: true })
        },
    }
}
