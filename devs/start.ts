// `npm start`: the whole product on one machine, no board needed.
//   1. the server on its embedded default (SQLite in ./data, development CA, feed and keys provisioned);
//   2. the firmware (src/) in the DeviceScript simulator with simulated sensors, over TLS, flashed as a fleet
//      board is (docs/FLEET.md): the server's address, a product id and its activation code, no key. On the
//      first run it claims its own feed and key; its flash is a file in the data folder, so the next run
//      uses what it kept. FEEDLINE_SIM_BOARDS=2 starts two boards claiming from the one product;
//   3. a readable live log: what the devices print, what the server stores, what to try next.
// Ctrl-C stops the simulator, then the server (graceful: pending writes flushed). SIGHUP reloads the server's
// TLS certificate, as for `feedline serve`.
import { spawn, type ChildProcess } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"
import { Writable } from "node:stream"
import { parseEnv } from "node:util"
import { startServer, type RunningServer } from "./server/index.ts"
import { ConfigError } from "./server/errors.ts"
import { outliveOutput } from "./server/log.ts"
import { mountDashboard } from "./dashboard/mount.ts"
import { subscribeForever } from "./client/subscriber.ts"
import { FeedlineConnection } from "./client/connection.ts"
import { activationCode, parseProductSecret } from "./server/fleet/claim-codes.ts"
import { PRIVATE_FILE_MODE } from "./server/storage/private-folder.ts"
import { PACKAGE_ROOT, refuseStaleBuild } from "./server/compiled.ts"
import { chooseDataDir, namedDir } from "./server/data-dir.ts"

const ROOT = PACKAGE_ROOT
const GEN_DIR = join(ROOT, ".devicescript", "start")
const DEVS = join(ROOT, "node_modules", ".bin", "devs")
/** `devs run --test` ends the run after -T ms; the demo runs until Ctrl-C, so: 24 days (setTimeout's limit). */
const SIMULATOR_RUN_MS = 2_000_000_000

const env = process.env
/** The product the simulated boards claim from: its id and secret, kept in the data folder (only the owner may read it). */
const DEMO_PRODUCT_FILE = "demo-product.json"
/** FEEDLINE_DATA_DIR (empty: not set), else data/ of the package; never the package root itself (data-dir.ts) */
const dataDirChoice = chooseDataDir(namedDir(env.FEEDLINE_DATA_DIR), join(ROOT, "data"), ROOT, [DEMO_PRODUCT_FILE, "*.flash"])
const dataDir = dataDirChoice.dir
const devicePort = Number(env.FEEDLINE_DEVICE_PORT ?? 7443)
/** simulated boards, each its own simulator process (about 300 MB and a share of a core each) */
const boardCount = Math.max(1, Math.min(4, Number(env.FEEDLINE_SIM_BOARDS ?? 1) || 1))
/** Every simulated board reports deviceIdentifier("self") = 12abdd2289421234: each gets its own stable id (setting HW_ID). */
const simHardwareId = (n: number) => `sim-board-${n}`
const appPort = Number(env.FEEDLINE_APP_PORT ?? 7080)
const color = process.stdout.isTTY && !env.NO_COLOR
const paint = (code: number, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s)
const say = (who: "start" | "server" | "device", text: string) => {
    const tag = { start: paint(36, "start "), server: paint(35, "server"), device: paint(32, "device") }[who]
    process.stdout.write(`${tag} | ${text}\n`)
}

/** pino JSON lines from the server, shown as one readable line each (warnings and errors only). */
function serverLogSink(): Writable {
    return new Writable({
        write(chunk, _enc, done) {
            for (const line of chunk.toString().split("\n")) {
                if (!line.trim()) continue
                try {
                    const o = JSON.parse(line)
                    const level = o.level >= 50 ? "error" : o.level >= 40 ? "warn" : "info"
                    say("server", `${level}: ${o.msg}${o.code ? ` (${o.code})` : ""}`)
                } catch {
                    say("server", line)
                }
            }
            done()
        },
    })
}

/** The demo's product (made on the first run, through the API as an operator would) and its signing key. */
async function demoProduct(server: RunningServer): Promise<{ id: string; code: (hardwareId: string) => string }> {
    const file = join(dataDir, DEMO_PRODUCT_FILE)
    const c = await FeedlineConnection.connect({ server: `tls://localhost:${server.devicePort}`, apiKey: server.credentials.masterKey, ca: readFileSync(server.caCertPath) })
    try {
        let kept: { id: string; secret: string } | undefined = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined
        if (kept && (await c.send("get", `/products/${kept.id}`)).status !== 200) kept = undefined // the data folder was reset
        if (!kept) {
            const r = await c.send("post", "/products", { body: { title: "npm start demo", datastreams: ["temp", "humidity"] } })
            if (r.status !== 201) throw new Error(`making the demo product failed: ${r.status} ${JSON.stringify(r.body)}`)
            kept = { id: r.body.id, secret: r.body.secret }
            writeFileSync(file, JSON.stringify(kept) + "\n", { mode: PRIVATE_FILE_MODE })
            chmodSync(file, PRIVATE_FILE_MODE)
            say("start", `made product ${kept.id} ("npm start demo"); its secret is in ${relative(ROOT, file)}`)
        }
        const parsed = parseProductSecret(kept.secret)!
        return { id: kept.id, code: (hardwareId) => activationCode(parsed.signingKey, parsed.productId, hardwareId) }
    } finally {
        c.close()
    }
}

/** Settings a simulated board gets: .env.defaults, then .env.local, then where this server really is, and its claim credentials instead of a key. */
function deviceSettings(server: RunningServer, product: { id: string; code: (hardwareId: string) => string }, hardwareId: string): Record<string, unknown> {
    const settings: Record<string, unknown> = {}
    for (const file of [".env.defaults", ".env.local"]) {
        const path = join(ROOT, file)
        if (!existsSync(path)) continue
        for (const [k, v] of Object.entries(parseEnv(readFileSync(path, "utf8")))) {
            if (k.startsWith("WIFI_")) continue // the simulator has no Wi-Fi
            let value: unknown = v
            try {
                value = JSON.parse(v ?? "") // as DeviceScript's deploy does: numbers and booleans keep their type
            } catch {}
            settings[k] = value
        }
    }
    // the simulator connects to this server, whatever .env.local says for a real board
    settings.SRV_HOST = "localhost"
    settings.SRV_PORT = server.devicePort
    // a fleet board: no feed or key (written again at every start, they would replace what it claimed)
    delete settings.FEED_ID
    delete settings.API_KEY
    settings.PRODUCT_ID = product.id
    settings.CLAIM_CODE = product.code(hardwareId)
    settings.HW_ID = hardwareId
    return settings
}

function writeEntry(settings: Record<string, unknown>, board: number): string {
    mkdirSync(GEN_DIR, { recursive: true })
    const src = (path: string) => relative(GEN_DIR, join(ROOT, "src", path)).split("\\").join("/")
    const writes = Object.entries(settings)
        .filter(([k]) => k.length <= 13) // DeviceScript refuses longer setting keys
        .map(([k, v]) => `await writeSetting(${JSON.stringify(k)}, ${JSON.stringify(v)})`)
        .join("\n")
    // one file per process: a test may run `npm start` while a person does
    const path = join(GEN_DIR, `entry-${process.pid}-${board}.ts`)
    writeFileSync(
        path,
        `// generated by devs/start.ts for \`npm start\`: settings first (devs run does not deploy them), then the device,
// which claims its feed and key first (a fleet board: src/net/claim.ts)
import * as ds from "@devicescript/core"
import { writeSetting } from "@devicescript/settings"
import { startDevice } from "${src("app/device")}"
import { simBoard } from "${src("foundation/config")}"
import { SIMULATOR_DRIVERS } from "${src("sensors/simulated")}"
${writes}
await startDevice(simBoard(), SIMULATOR_DRIVERS)
while (true) await ds.sleep(3600000)
`
    )
    return path
}

/** One simulated board; its flash (program and settings: the key it claimed) lives in `flashFile` across runs. */
function runSimulator(entry: string, caCertPath: string, flashFile: string, onLine: (line: string) => void): ChildProcess {
    const child = spawn(DEVS, ["run", relative(ROOT, entry), "--test", "--test-self-exit", "-T", String(SIMULATOR_RUN_MS)], {
        cwd: ROOT,
        env: {
            ...env,
            NODE_EXTRA_CA_CERTS: caCertPath,
            FEEDLINE_SIM_FLASH: flashFile,
            NODE_OPTIONS: `${env.NODE_OPTIONS ?? ""} --require ${join(ROOT, "devs", "tools", "sim-flash.cjs")}`.trim(),
        },
        stdio: ["ignore", "pipe", "pipe"],
    })
    let partial = ""
    const onData = (chunk: Buffer) => {
        partial += chunk.toString()
        let nl: number
        while ((nl = partial.indexOf("\n")) >= 0) {
            const line = partial.slice(0, nl).replace(/\x1b\[[0-9;]*m/g, "")
            partial = partial.slice(nl + 1)
            if (line.startsWith("WASM> ")) onLine(line.slice(6))
            else if (/error|exception/i.test(line)) onLine(line)
        }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    return child
}

/** The app port as this machine reaches it: http://127.0.0.1 on loopback (the default), else https://localhost (the dev certificate's name). */
function appBase(server: RunningServer): string {
    return server.appScheme === "https" ? `https://localhost:${server.appPort}` : `http://127.0.0.1:${server.appPort}`
}

function hints(server: RunningServer) {
    const { masterKey } = server.credentials
    const http = appBase(server)
    const curl = server.appScheme === "https" ? `curl --cacert ${relative(ROOT, server.caCertPath)}` : "curl"
    say("start", `server up: devices tls://localhost:${server.devicePort}, apps ${http} (REST /v2, WebSocket /ws)`)
    say("start", `dashboard:   ${http}/   (sign in with the master key below)`)
    say("start", `master key:  ${masterKey}   (also in ${relative(ROOT, join(dataDir, "credentials.json"))})`)
    say("start", `the fleet:   npx feedline devices list --server tls://localhost:${server.devicePort} --key ${masterKey} --ca ${relative(ROOT, server.caCertPath)}`)
    say("start", "Ctrl-C stops everything.")
}

/** What to try with a board's feed, once it is known (claimed now, or kept from an earlier run). */
function feedHints(server: RunningServer, feedId: number) {
    const { masterKey } = server.credentials
    const http = appBase(server)
    const curl = server.appScheme === "https" ? `curl --cacert ${relative(ROOT, server.caCertPath)}` : "curl"
    say("start", `read a feed: ${curl} -H "X-ApiKey: ${masterKey}" ${http}/v2/feeds/${feedId}`)
    say("start", `command:     ${curl} -X PUT -H "X-ApiKey: ${masterKey}" -d '{"current_value":"1"}' ${http}/v2/feeds/${feedId}/datastreams/led`)
    say("start", `subscribe:   npx feedline sub /feeds/${feedId} --server ${http} --key ${masterKey}${server.appScheme === "https" ? ` --ca ${relative(ROOT, server.caCertPath)}` : ""}`)
}

async function main() {
    refuseStaleBuild("npm start")
    // closing the terminal must not crash the demo at its next line (EIO, EPIPE): the simulators get the
    // terminal's SIGHUP too and end, which stops the demo as Ctrl-C does
    outliveOutput(process.stdout)
    outliveOutput(process.stderr)
    // SIGHUP, as for `feedline serve`: the server reads its TLS certificate again (the development one, in
    // the data folder: unchanged unless its files were replaced). Node's default for it ends the process and
    // leaves the simulators running: taken from here on, and one that arrives while the server starts is done once it has
    let reloadTls: (() => void) | undefined
    let reloadAsked = false
    process.on("SIGHUP", () => (reloadTls ? reloadTls() : (reloadAsked = true)))
    if (dataDirChoice.notice) say("start", dataDirChoice.notice)
    mkdirSync(dataDir, { recursive: true, mode: 0o700 }) // owner-only, as the server wants it (it would narrow it, and say so)
    let server: RunningServer
    try {
        server = await startServer({
            dataDir,
            // the package root, where an old empty FEEDLINE_DATA_DIR put the database: only the data's files are narrowed
            dataFiles: dataDirChoice.dataFiles,
            devicePort,
            appPort,
            host: env.FEEDLINE_HOST ?? "127.0.0.1",
            logLevel: env.FEEDLINE_LOG_LEVEL ?? "warn",
            logDestination: serverLogSink(),
            extensions: [mountDashboard()], // the dashboard at /, POST /jwt
        })
    } catch (e: any) {
        if (e?.cause?.code === "EADDRINUSE") {
            say("start", `port ${e.cause.port} is already in use (another feedline running?). Stop it, or choose ports: FEEDLINE_DEVICE_PORT=7444 FEEDLINE_APP_PORT=7081 npm start`)
            process.exit(1)
        }
        // another server on this data folder, a database that is not one, ...: the reason, not a stack trace
        if (e instanceof ConfigError) {
            say("start", `${e.message} (npm start: the data folder is FEEDLINE_DATA_DIR, ${dataDir})`)
            process.exit(1)
        }
        throw e
    }
    reloadTls = () => {
        const r = server.reloadTls()
        say("start", r.ok ? `SIGHUP: TLS certificate reloaded (${r.certificate.subject}, until ${r.certificate.notAfter})` : `SIGHUP: TLS certificate not reloaded (${r.code}: ${r.message}); still serving the previous one`)
    }
    if (reloadAsked) reloadTls()
    if (!server.credentials.masterKey) {
        say("start", `${dataDir} has keys but no credentials.json, so this demo has no master key to make its product with; start on a fresh FEEDLINE_DATA_DIR`)
        await server.close()
        process.exit(1)
    }
    hints(server)
    const product = await demoProduct(server)

    // what the server stores, as it stores it: a subscription to each board's feed, once the board says which
    const stopWatching = new AbortController()
    const watches: Promise<unknown>[] = []
    const watchFeed = (feedId: number, tag: string) =>
        watches.push(
            subscribeForever({
                server: appBase(server),
                ca: server.appScheme === "https" ? readFileSync(server.caCertPath) : undefined,
                apiKey: server.credentials.masterKey,
                resource: `/feeds/${feedId}`,
                onPush: (p) => {
                    const b = p.body ?? {}
                    if (b.id !== undefined && !String(b.id).startsWith("_")) say("server", `${tag}stored ${b.id} = ${b.current_value}  (at ${b.at})`)
                },
                signal: stopWatching.signal,
            }).catch((e) => say("server", `watching feed ${feedId} failed: ${e.message}`)),
        )

    const boards: { entry: string; sim: ChildProcess }[] = []
    for (let n = 1; n <= boardCount; n++) {
        const hardwareId = simHardwareId(n)
        const tag = boardCount > 1 ? `[${hardwareId}] ` : ""
        const entry = writeEntry(deviceSettings(server, product, hardwareId), n)
        say("start", `starting the firmware in the DeviceScript simulator as board ${hardwareId} of product ${product.id} (${relative(ROOT, entry)})`)
        let watching = false
        const sim = runSimulator(entry, server.caCertPath, join(dataDir, `${hardwareId}.flash`), (line) => {
            say("device", tag + line)
            // "link: tls://localhost:7443 feed 2, …": the feed it claimed (the link starts after the claim), or kept
            const feed = /^link: \S+ feed (\d+),/.exec(line)
            if (feed && !watching) {
                watching = true
                watchFeed(Number(feed[1]), tag)
                feedHints(server, Number(feed[1]))
            }
        })
        boards.push({ entry, sim })
    }

    let stopping = false
    const stop = async (why: string, code: number) => {
        if (stopping) return
        stopping = true
        say("start", `${why}: stopping the simulator and the server`)
        for (const b of boards) b.sim.kill("SIGTERM")
        stopWatching.abort()
        await Promise.all(watches)
        await server.close()
        for (const b of boards) rmSync(b.entry, { force: true })
        say("start", "stopped")
        process.exit(code)
    }
    process.on("SIGINT", () => stop("Ctrl-C", 0))
    process.on("SIGTERM", () => stop("SIGTERM", 0))
    for (const b of boards) b.sim.on("close", (code) => stop(`the simulator ended (exit ${code})`, code === 0 ? 0 : 1))
}

await main()
