// Through real HAProxy (Debian's), feedline still knows who is connecting: HAProxy with the documented
// configuration (devs/tools/haproxy-config.ts, `send-proxy-v2` + `check-send-proxy`) in front of one
// `feedline serve --trusted-proxies 127.0.0.1`. HAProxy connects to feedline from 127.0.0.1; the clients
// connect to HAProxy from 127.0.0.2 (a device, TLS on the device port) and 127.0.0.3 (HTTP on the app
// port), so an address feedline shows other than 127.0.0.1 can only have come from HAProxy's headers.
// HAProxy's health checks (v2 LOCAL headers) keep the process up all along.
// Skipped, counted, where HAProxy is not installed (with CI=true: runs, and fails).
import assert from "node:assert/strict"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import http from "node:http"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import tls from "node:tls"
import { after, before, describe, test } from "node:test"
import { freePort } from "../../devs/tools/child-processes.ts"
import { haproxyConfig } from "../../devs/tools/haproxy-config.ts"
import { skipUnlessInstalled, startHaproxy, type RunningHaproxy } from "../../devs/tools/services.ts"
import { SERVER_POLL_MS, until } from "../host/harness/until.ts"
import { startServerProcess, type ServerProcess } from "./server-process.ts"

const SKIP = skipUnlessInstalled("haproxy")
/** bounds on waiting on a loaded machine; not measurements */
const WAIT_MS = 30_000
const CHECK_INTERVAL_MS = 300
const DEVICE_FROM = "127.0.0.2"
const ASKER_FROM = "127.0.0.3"

describe("through HAProxy with send-proxy-v2, feedline sees the clients' addresses", { skip: SKIP, timeout: 120_000 }, () => {
    let dataDir: string
    let server: ServerProcess
    let haproxy: RunningHaproxy
    let devicePort = 0
    let appPort = 0

    /** GET through HAProxy's app port, from `ASKER_FROM` */
    const get = (path: string, key: string) =>
        new Promise<{ status: number; body: any }>((resolve, reject) => {
            const req = http.request({ host: "127.0.0.1", port: appPort, path, localAddress: ASKER_FROM, agent: false, headers: { "X-ApiKey": key } }, (res) => {
                let text = ""
                res.on("data", (d) => (text += d))
                res.on("end", () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }))
            })
            req.on("error", reject)
            req.end()
        })

    before(async () => {
        dataDir = mkdtempSync(join(tmpdir(), "feedline-haproxy-pp-"))
        // debug: feedline logs each health check's LOCAL header it accepted
        server = await startServerProcess({ dataDir, args: ["--trusted-proxies", "127.0.0.1", "--log-level", "debug"] })
        ;[devicePort, appPort] = [await freePort(), await freePort()]
        const config = haproxyConfig({
            bindDevices: `127.0.0.1:${devicePort}`,
            bindApp: `127.0.0.1:${appPort}`,
            appTls: false, // the process listens on loopback: a plain HTTP app port
            proxyProtocol: true,
            checkIntervalMs: CHECK_INTERVAL_MS,
            maxConnections: 100,
            backends: [{ name: "a", host: "127.0.0.1", devicePort: server.devicePort, appPort: server.appPort }],
        })
        assert.match(config, /send-proxy-v2 check-send-proxy/)
        haproxy = await startHaproxy(config, [devicePort, appPort])
    })

    after(async () => {
        await haproxy?.stop()
        await server?.stop("SIGTERM")
        if (dataDir) rmSync(dataDir, { recursive: true, force: true })
    })

    test("health checks send v2 LOCAL headers, which feedline serves: the process stays up", async () => {
        // several checks' worth of LOCAL headers accepted, and HAProxy never marked the process down
        await until("feedline to have served HAProxy's LOCAL health checks", () => (server.output().match(/"header":"v2 LOCAL"/g) ?? []).length >= 3, WAIT_MS, SERVER_POLL_MS)
        assert.doesNotMatch(haproxy.output(), /is DOWN/)
        assert.doesNotMatch(server.output(), /E_PROXY_HEADER_/)
    })

    test("a device's TLS connection and an HTTP request show their own source addresses, not HAProxy's", async () => {
        const { credentials, caCertPath } = server
        const ca = readFileSync(caCertPath)
        const device = await new Promise<tls.TLSSocket>((resolve, reject) => {
            const raw = net.connect({ host: "127.0.0.1", port: devicePort, localAddress: DEVICE_FROM })
            const s = tls.connect({ socket: raw, ca, servername: "localhost" }, () => resolve(s))
            s.once("error", reject)
        })
        try {
            let text = ""
            device.setEncoding("utf8")
            device.on("data", (d) => (text += d))
            device.write(JSON.stringify({ method: "get", resource: "/session", headers: { "X-ApiKey": credentials.deviceKey }, token: "me" }) + "\n")
            const mine = await until("the device's /session answer", () => text.split("\n").map((l) => (l.startsWith("{") ? JSON.parse(l) : {})).find((l) => l.token === "me"), WAIT_MS, SERVER_POLL_MS)
            assert.equal(mine.body.remote_address, DEVICE_FROM)
            const sessions = await get("/v2/sessions", credentials.masterKey)
            assert.equal(sessions.status, 200, JSON.stringify(sessions.body))
            const addresses = sessions.body.sessions.map((e: { remote_address: string }) => e.remote_address)
            assert.ok(addresses.includes(DEVICE_FROM), `the device's address in /v2/sessions: ${JSON.stringify(addresses)}`)
            assert.ok(!addresses.includes("127.0.0.1"), `HAProxy's address is nobody's: ${JSON.stringify(addresses)}`)
            const asker = await get("/v2/session", credentials.masterKey)
            assert.equal(asker.body.remote_address, ASKER_FROM)
        } finally {
            device.destroy()
        }
    })

    test("the process itself, reached directly from a trusted address without a header, refuses with E_PROXY_HEADER_MISSING", async () => {
        const direct = net.connect({ host: "127.0.0.1", port: server.appPort })
        direct.on("error", () => {})
        direct.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await new Promise((resolve) => direct.once("close", resolve))
        await until("E_PROXY_HEADER_MISSING logged", () => /E_PROXY_HEADER_MISSING/.test(server.output()), WAIT_MS, SERVER_POLL_MS)
    })
})
