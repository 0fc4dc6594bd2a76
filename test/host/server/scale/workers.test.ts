// `feedline serve --workers N` (issue 14): N processes sharing the listening ports, on one PostgreSQL and
// one Redis; connections are spread over them, what one acknowledges reaches subscribers on another, a
// worker that dies is replaced, SIGHUP to the primary reloads the TLS certificate in every worker, and
// SIGTERM to the primary drains them all. Without PostgreSQL and Redis
// the flag is refused with what to do. Skipped, counted, where PostgreSQL or Redis is not installed.
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { after, before, describe, test } from "node:test"
import { startServerProcess, type ServerProcess } from "../../../e2e/server-process.ts"
import { SCALE_SKIP, startScaleServices, type ScaleServices } from "../../harness/scale.ts"
import { CertificateFiles, testCertificate } from "../../harness/certificates.ts"
import { http, TlsClient } from "../../harness/server-harness.ts"
import { until } from "../../harness/until.ts"
import { compiledCli } from "../../../../devs/server/compiled.ts"

const execFileAsync = promisify(execFile)
/** the workers serve --tls-cert / --tls-key files: A at start, B from the SIGHUP test on */
const [A, B] = [await testCertificate(), await testCertificate()]
/** how long a client waits for a connection's welcome before it tries again (a device: CONNECT_S) */
const OPEN_GIVE_UP_MS = 3000

test("--workers 2 without --database-url and --redis-url is refused, saying what it needs", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-workers-"))
    try {
        const r = await execFileAsync(process.execPath, [compiledCli(), "serve", "--data-dir", dataDir, "--workers", "2"]).catch((e) => e)
        assert.equal(r.code, 2)
        assert.match(r.stderr, /--workers 2 needs --database-url and --redis-url/)
    } finally {
        rmSync(dataDir, { recursive: true, force: true })
    }
})

describe("feedline serve --workers 2", { skip: SCALE_SKIP }, () => {
    let services: ScaleServices
    let server: ServerProcess
    let dataDir: string
    let ready: { workers: number[] }
    let files: CertificateFiles
    before(async () => {
        services = await startScaleServices()
        dataDir = mkdtempSync(join(tmpdir(), "feedline-workers-"))
        files = new CertificateFiles(dataDir)
        files.install(A)
        server = await startServerProcess({ dataDir, args: ["--workers", "2", "--database-url", await services.database(), "--redis-url", services.redis.url, ...files.args] })
        ready = JSON.parse(readFileSync(join(dataDir, "ready.json"), "utf8"))
    })
    after(async () => {
        await server?.stop("SIGKILL")
        // SIGKILL to the primary leaves its workers: they are ours to end
        for (const pid of ready?.workers ?? []) {
            try {
                process.kill(pid, "SIGKILL")
            } catch {}
        }
        await services?.stop()
        rmSync(dataDir, { recursive: true, force: true })
    })

    const ca = () => Buffer.from(A.caCertPem + B.caCertPem)
    const open = () => TlsClient.open({ devicePort: server.devicePort, ca: ca() }, server.credentials.deviceKey)
    /**
     * A connection the primary hands to a worker at the moment it is killed dies with that worker (Node's
     * cluster does not hand it to another): the client gives up on it after a while and connects again,
     * as a device does (its connect timeout).
     */
    const openWithin = (ms: number) =>
        new Promise<TlsClient | undefined>((resolve) => {
            let late = false
            const timer = setTimeout(() => ((late = true), resolve(undefined)), ms)
            open().then(
                (c) => (late ? c.close() : (clearTimeout(timer), resolve(c))),
                () => (clearTimeout(timer), resolve(undefined)),
            )
        })
    const processOf = async (c: TlsClient) => ((await c.request({ method: "get", resource: "/session" })).body as { process: string }).process

    test("connections are spread over both workers, and a write acknowledged by one is pushed by the other", async (t) => {
        assert.equal(ready.workers.length, 2)
        const clients: TlsClient[] = []
        t.after(() => clients.forEach((c) => c.close()))
        const byProcess = new Map<string, TlsClient>()
        for (let i = 0; i < 8 && byProcess.size < 2; i++) {
            const c = await open()
            clients.push(c)
            byProcess.set(await processOf(c), c)
        }
        assert.equal(byProcess.size, 2, "the port is served by two processes")
        const [subscriber, writer] = [...byProcess.values()]
        const feed = server.credentials.feedId
        assert.equal((await subscriber.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/w`, token: "s" })).status, 200)
        assert.equal((await writer.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "w", current_value: "across" }] } })).status, 200)
        assert.equal((await subscriber.push("s")).body.current_value, "across")
    })

    test("a worker that dies is replaced; the port keeps being served", async () => {
        const [victim] = ready.workers
        process.kill(victim, "SIGKILL")
        // the replacement announces its sessions like any process: wait until a connection lands on a new pid
        await until("a connection served by the replacement worker", async () => {
            const c = await openWithin(OPEN_GIVE_UP_MS)
            if (!c) return false
            const p = await processOf(c)
            c.close()
            return !p.includes(`:${victim}:`) && !p.includes(`:${ready.workers[1]}:`)
        }, 30_000)
        assert.equal((await http({ appPort: server.appPort }, "GET", "/healthz")).status, 200)
    })

    test("SIGHUP to the primary: every worker serves the renewed certificate to new handshakes; open connections go on (was: the primary ended)", async () => {
        const before = await open()
        try {
            files.install(B)
            process.kill(server.pid, "SIGHUP")
            // connections land on the workers in turn: the latest handshake seen from each worker, until both are B
            const latest = new Map<string, string>()
            await until(() => `both workers serving the renewed certificate (primary alive: ${server.alive()}; seen ${JSON.stringify([...latest])})`, async () => {
                const c = await openWithin(OPEN_GIVE_UP_MS)
                if (!c) return false
                latest.set(await processOf(c), c.socket.getPeerCertificate().fingerprint256)
                c.close()
                return latest.size >= 2 && [...latest.values()].every((f) => f === B.fingerprint)
            }, 30_000)
            assert.equal(before.socket.getPeerCertificate().fingerprint256, A.fingerprint)
            assert.equal((await before.request({ method: "get", resource: "/session" })).status, 200)
            assert.ok(server.alive())
        } finally {
            before.close()
        }
    })

    test("SIGTERM to the primary drains every worker and exits 0", async () => {
        const c = await open()
        const notice = c.notice(20_000)
        assert.equal(await server.stop("SIGTERM"), 0)
        const n = await notice
        assert.deepEqual([n.status, n.body.code], [503, "E_SHUTTING_DOWN"])
        assert.ok(n.body.retry_after_ms > 0)
        c.close()
    })
})
