// Mosquitto, the reference MQTT broker, from Debian's package, on 127.0.0.1 with a TLS listener.
import { execFileSync } from "node:child_process"
import { existsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { freePort, spawnServer, stopChild, waitForPort, type StartTarget } from "./target.ts"

const CANDIDATES = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
const START_TIMEOUT_MS = 10_000

/** FEEDLINE_BENCH_MOSQUITTO_BIN names another binary (or a missing one, to exercise the skip path). */
function findMosquitto(): string | undefined {
    const override = process.env.FEEDLINE_BENCH_MOSQUITTO_BIN
    if (override) return existsSync(override) ? override : undefined
    return CANDIDATES.find((p) => existsSync(p))
}

function version(bin: string): string {
    try {
        // `mosquitto -h` prints "mosquitto version X" and exits 3
        execFileSync(bin, ["-h"], { encoding: "utf8", stdio: "pipe" })
    } catch (e) {
        const m = /version ([\d.]+)/.exec(String((e as { stdout?: string }).stdout))
        if (m) return m[1]
    }
    return "unknown"
}

/** apt-get install, only when allowed and running as root; returns why it could not, or undefined. */
function install(log: (l: string) => void): string | undefined {
    if (process.getuid?.() !== 0) return "not root, so the benchmark cannot apt-get install it"
    try {
        log("installing mosquitto from Debian (apt-get update && apt-get install -y mosquitto)...")
        execFileSync("apt-get", ["update", "-qq"], { stdio: "pipe", timeout: 180_000 })
        execFileSync("apt-get", ["install", "-y", "-qq", "mosquitto"], {
            stdio: "pipe",
            timeout: 300_000,
            env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
        })
        return undefined
    } catch (e) {
        return `apt-get install mosquitto failed: ${(e as Error).message.split("\n")[0]}`
    }
}

export const startMosquitto: StartTarget = async (ctx) => {
    const override = process.env.FEEDLINE_BENCH_MOSQUITTO_BIN
    let bin = findMosquitto()
    let why = override ? `FEEDLINE_BENCH_MOSQUITTO_BIN=${override} does not exist` : "smoke runs do not install packages"
    if (!bin && !override && ctx.mayInstall) {
        why = install(ctx.log) ?? "apt-get reported success but no binary was found"
        bin = findMosquitto()
    }
    if (!bin) return { name: "mosquitto", skipped: `mosquitto is not installed (${why}); install it with: apt-get install -y mosquitto` }
    const port = await freePort()
    const conf = join(ctx.workDir, "mosquitto.conf")
    writeFileSync(
        conf,
        [
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            // run as whoever started the bench: root would otherwise switch to the mosquitto user and lose the key
            ...(process.getuid?.() === 0 ? ["user root"] : []),
            "max_connections -1",
            // small request/response messages: Nagle's algorithm would add tens of ms (feedline's and
            // Aedes's sockets are set the same way)
            "set_tcp_nodelay true",
            "allow_anonymous true",
            `listener ${port} 127.0.0.1`,
            `cafile ${ctx.tls.caPath}`,
            `certfile ${ctx.tls.certPath}`,
            `keyfile ${ctx.tls.keyPath}`,
            "",
        ].join("\n")
    )
    const { child, stderrTail } = spawnServer(bin, ["-c", conf])
    try {
        await waitForPort(port, START_TIMEOUT_MS, child, "mosquitto")
    } catch (e) {
        await stopChild(child)
        return { name: "mosquitto", skipped: `mosquitto did not start: ${(e as Error).message}\n${stderrTail()}` }
    }
    return {
        name: "mosquitto",
        pid: child.pid!,
        address: { kind: "mqtt", host: "127.0.0.1", port, caPath: ctx.tls.caPath, feedId: 1 },
        notes: [`mosquitto ${version(bin)} (Debian package), single-threaded, persistence off, anonymous, no ACLs`],
        stop: () => stopChild(child),
    }
}
