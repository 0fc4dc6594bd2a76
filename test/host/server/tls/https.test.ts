// The app port over TLS (issue 11 item 5): HTTPS and WSS with the device port's certificate, by
// default on any address other hosts can reach; plain HTTP only on loopback or behind an explicit
// --insecure-http. Plain HTTP sent to the HTTPS port gets a readable 400. The deployment check of docs/FIRMWARE.md
// (`curl https://…/v2/feeds/1`), the CLI client (https:// address, --ca) and WSS work against it.
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import https from "node:https"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import tls from "node:tls"
import { test } from "node:test"
import { fileURLToPath } from "node:url"
import { WebSocket } from "ws"
import { decodeServerLine, encodeRequest } from "../../../../src/protocol.ts"
import { appSchemeOf } from "../../../../devs/server/listeners/app-port.ts"
import { ConfigError } from "../../../../devs/server/errors.ts"
import { startServer } from "../../../../devs/server/index.ts"
import { serverForThisFile, startTestServer, tlsFingerprint } from "../../harness/server-harness.ts"
import { compiledCli } from "../../../../devs/server/compiled.ts"

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url))

const s = await serverForThisFile({ appTls: true })
const key = s.credentials.masterKey

function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
        https
            .get({ host: "localhost", port: s.appPort, path, ca: s.ca, headers }, (res) => {
                let text = ""
                res.on("data", (c) => (text += c))
                res.on("end", () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }))
            })
            .on("error", reject)
    })
}

test("app port scheme: HTTPS by default unless the host is loopback; plain HTTP elsewhere only with --insecure-http", async () => {
    const cases: [string, Parameters<typeof appSchemeOf>[1], string][] = [
        ["0.0.0.0", {}, "https"],
        ["::", {}, "https"],
        ["192.168.1.20", {}, "https"],
        ["feeds.example.com", {}, "https"],
        ["127.0.0.1", {}, "http"],
        ["::1", {}, "http"],
        ["localhost", {}, "http"],
        ["127.0.0.1", { appTls: true }, "https"],
        ["0.0.0.0", { insecureHttp: true }, "http"],
        ["0.0.0.0", { appTls: false }, "error"],
        ["0.0.0.0", { appTls: true, insecureHttp: true }, "error"],
    ]
    for (const [host, opts, want] of cases) {
        const got = appSchemeOf(host, opts)
        assert.equal(got.scheme ?? "error", want, `${host} ${JSON.stringify(opts)}: ${got.error}`)
        if (got.error) assert.match(got.error, /--insecure-http/)
    }
    // refused at start, before anything listens
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-https-"))
    try {
        await assert.rejects(startServer({ dataDir, host: "0.0.0.0", appTls: false, devicePort: 0, appPort: 0, logLevel: "silent" }), (e: Error) => e instanceof ConfigError && /in clear/.test(e.message))
    } finally {
        rmSync(dataDir, { recursive: true, force: true })
    }
})

test("HTTPS: the deployment check of docs/FIRMWARE.md (GET /v2/feeds/1 with the key) answers over TLS with the device port's certificate", async () => {
    assert.equal(s.appScheme, "https")
    const r = await get(`/v2/feeds/${s.credentials.feedId}`, { "X-ApiKey": key })
    assert.equal(r.status, 200)
    assert.equal(r.body.id, s.credentials.feedId)
    assert.equal((await get("/healthz")).body.status, "ok")
    // one certificate for both ports
    assert.equal(await tlsFingerprint(s.appPort, s.ca), await tlsFingerprint(s.devicePort, s.ca))
})

test("HTTPS: plain HTTP sent to the HTTPS port gets a readable 400 E_USE_HTTPS, and is not served", async () => {
    const answer = await new Promise<string>((resolve, reject) => {
        const sock = net.connect(s.appPort, "127.0.0.1", () => sock.write(`GET /v2/feeds/1 HTTP/1.1\r\nHost: localhost\r\nX-ApiKey: ${key}\r\n\r\n`))
        let text = ""
        sock.on("data", (d) => (text += d))
        sock.on("end", () => resolve(text))
        sock.on("error", reject)
    })
    assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/)
    const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))
    assert.equal(body.code, "E_USE_HTTPS")
    assert.match(body.errors, /https:\/\/.*in clear/)
})

// [P§1] one TLS policy on both ports. Found by the audit of 2026-12-07: the device port refused renegotiation, the
// app port took Node's default, three full handshakes a connection (then an error, and the close).
test("HTTPS: a client that renegotiates (TLS 1.2) is closed at its first attempt, as on the device port; others are served", async () => {
    const r = tls.connect({ host: "127.0.0.1", port: s.appPort, ca: s.ca, servername: "localhost", maxVersion: "TLSv1.2" })
    await new Promise((done, fail) => (r.once("secureConnect", done), r.once("error", fail)))
    r.on("error", () => {})
    let closed = false
    r.once("close", () => (closed = true))
    let renegotiated = 0
    try {
        for (let i = 0; i < 10 && !closed; ++i) {
            await new Promise<void>((done) => {
                const onClose = () => done()
                r.once("close", onClose)
                r.renegotiate({}, (err) => {
                    r.off("close", onClose)
                    if (!err) renegotiated++
                    done()
                })
            })
        }
        assert.equal(closed, true, "still open")
        assert.equal(renegotiated, 0)
        assert.equal((await get(`/v2/feeds/${s.credentials.feedId}`, { "X-ApiKey": key })).status, 200)
    } finally {
        r.destroy()
    }
})

test("WSS: the WebSocket door on the HTTPS port speaks the protocol", async () => {
    const ws = new WebSocket(`wss://localhost:${s.appPort}/ws`, { ca: s.ca })
    const lines: string[] = []
    const next = () =>
        new Promise<string>((resolve) => {
            if (lines.length) return resolve(lines.shift()!)
            ws.once("message", () => resolve(lines.shift()!))
        })
    ws.on("message", (d) => lines.push(d.toString()))
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)))
    try {
        assert.equal(decodeServerLine(await next()).kind, "welcome")
        ws.send(encodeRequest({ method: "get", resource: "/session", headers: { "X-ApiKey": key }, token: "s" }))
        const r = decodeServerLine(await next()).response!
        assert.deepEqual([r.token, r.status, r.body.transport], ["s", 200, "ws"])
    } finally {
        ws.terminate()
    }
})

test("the CLI client reads over https:// with --ca", async () => {
    const caPath = s.caCertPath
    const args = [compiledCli(), "get", `/feeds/${s.credentials.feedId}`, `--server=https://localhost:${s.appPort}`, `--ca=${caPath}`, `--key=${key}`, "--json"]
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, args, { cwd: ROOT, timeout: 30_000 }, (e, stdout, stderr) => resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr })),
    )
    assert.equal(code, 0, stderr)
    assert.equal(JSON.parse(stdout).id, s.credentials.feedId)
})

test("loopback without appTls stays plain HTTP (npm start, tests, a TLS-terminating proxy on the host)", async () => {
    const plain = await startTestServer()
    try {
        assert.equal(plain.appScheme, "http")
        const r = await fetch(`http://127.0.0.1:${plain.appPort}/healthz`)
        assert.equal(r.status, 200)
    } finally {
        await plain.stop()
    }
})
