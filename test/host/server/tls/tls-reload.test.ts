// Renewing the TLS certificate without a restart (devs/server/tls/reload.ts): reloadTls() (SIGHUP in
// `feedline serve`, tls-reload-cli.test.ts) swaps a renewed certificate into both TLS ports; open
// connections on either port keep going, new handshakes get the new certificate. Files that fail a check
// (a key that is not the certificate's, an expired or not-yet-valid certificate, a chain cut short, a
// missing file) keep the previous certificate, logged as E_TLS_RELOAD with the check's code.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, test } from "node:test"
import { checkCertificate, CertificateProblem, expiresSoon, validityProblem } from "../../../../devs/server/tls/certificate.ts"
import { CertificateFiles, DAY_MS, testCertificate as certificate } from "../../harness/certificates.ts"
import { startTestServer, TlsClient, tlsFingerprint, WsClient, type TestServer } from "../../harness/server-harness.ts"

const dir = mkdtempSync(join(tmpdir(), "feedline-tls-reload-"))
const files = new CertificateFiles(dir)
const install = (c: { chainPem: string; keyPem: string }) => files.install(c)

const A = await certificate()
const B = await certificate()
/** clients trust both CAs: which certificate a handshake got is told by its fingerprint */
const ca = Buffer.from(A.caCertPem + B.caCertPem)
const logged: Record<string, any>[] = []
let s: TestServer

before(async () => {
    install(A)
    s = await startTestServer({ tlsCertPath: files.certPath, tlsKeyPath: files.keyPath, appTls: true, logLevel: "info", logDestination: { write: (line: string) => void logged.push(JSON.parse(line)) } as unknown as NodeJS.WritableStream })
})
after(async () => {
    await s?.stop()
    rmSync(dir, { recursive: true, force: true })
})

const expiry = () => s.metrics.tlsCertificateExpiry.get()

test("a renewed certificate: new handshakes on both ports get it, open device and WSS connections keep working, the log and /metrics say which", async () => {
    assert.equal(await tlsFingerprint(s.devicePort, ca), A.fingerprint)
    assert.equal(await tlsFingerprint(s.appPort, ca), A.fingerprint)
    assert.equal(expiry(), A.notAfterS)
    const device = await TlsClient.open({ devicePort: s.devicePort, ca }, s.credentials.deviceKey)
    const app = await WsClient.open(s, { ca, heartbeat: true })
    try {
        await app.welcome()
        assert.equal((await app.request({ method: "get", resource: "/session", headers: { "X-ApiKey": s.credentials.deviceKey } })).status, 200)
        const feed = s.credentials.feedId
        assert.equal((await app.request({ method: "subscribe", resource: `/feeds/${feed}/datastreams/renewal`, token: "sub" })).status, 200)

        install(B)
        const r = s.reloadTls()
        assert.ok(r.ok, JSON.stringify(r))
        assert.equal(r.certificate.fingerprint256, B.fingerprint)
        assert.equal(await tlsFingerprint(s.devicePort, ca), B.fingerprint)
        assert.equal(await tlsFingerprint(s.appPort, ca), B.fingerprint)
        // the connections made with A: still served, both ways (a write on the device port, its push on the WSS one)
        assert.equal(device.socket.getPeerCertificate().fingerprint256, A.fingerprint)
        assert.equal((await device.request({ method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: "renewal", current_value: "after" }] } })).status, 200)
        assert.equal((await app.push("sub")).body.current_value, "after")
        assert.ok(!device.q.closed && !app.q.closed)

        const line = logged.find((l) => l.fingerprint256 === B.fingerprint && /reloaded/.test(l.msg))
        assert.ok(line, JSON.stringify(logged.slice(-3)))
        assert.equal(line.level, 30)
        assert.match(line.subject, /CN=localhost/)
        assert.match(line.subjectAltName, /DNS:localhost/)
        assert.equal(Date.parse(line.notAfter) / 1000, B.notAfterS)
        assert.equal(expiry(), B.notAfterS)
        assert.equal(s.metrics.tlsReloads.get({ outcome: "ok" }), 1)
    } finally {
        device.close()
        app.close()
    }
})

test("a bad replacement keeps the certificate being served: E_TLS_RELOAD with the check's code, and an open connection is untouched", async () => {
    install(B)
    assert.ok(s.reloadTls().ok)
    const device = await TlsClient.open({ devicePort: s.devicePort, ca }, s.credentials.deviceKey)
    const C = await certificate()
    const expired = await certificate({ fromMs: Date.now() - 30 * DAY_MS, validMs: 10 * DAY_MS })
    const early = await certificate({ fromMs: Date.now() + 10 * DAY_MS })
    const cases: [string, () => void, string][] = [
        ["a key that is not the certificate's", () => install({ chainPem: C.chainPem, keyPem: A.keyPem }), "E_TLS_KEY_MISMATCH"],
        ["an expired certificate", () => install(expired), "E_TLS_EXPIRED"],
        ["a certificate valid only from next week", () => install(early), "E_TLS_NOT_YET_VALID"],
        ["a chain cut short (a write caught halfway)", () => install({ chainPem: C.chainPem.slice(0, C.chainPem.length - 200), keyPem: C.keyPem }), "E_TLS_BAD_CHAIN"],
        ["a key file that is not a key", () => install({ chainPem: C.chainPem, keyPem: "not a key\n" }), "E_TLS_BAD_KEY"],
        ["a missing key file", () => files.removeKey(), "E_TLS_UNREADABLE"],
    ]
    try {
        for (const [what, replace, code] of cases) {
            replace()
            const before = logged.length
            const r = s.reloadTls()
            assert.ok(!r.ok, what)
            assert.equal(r.code, code, what)
            assert.equal(r.serving.fingerprint256, B.fingerprint, what)
            const line = logged.slice(before).find((l) => l.code === "E_TLS_RELOAD")
            assert.ok(line, `${what}: ${JSON.stringify(logged.slice(before))}`)
            assert.deepEqual([line.level, line.cause, line.serving.fingerprint256], [50, code, B.fingerprint], what)
            assert.match(line.msg, /not reloaded: .+Still serving the previous one/, what)
            assert.equal(await tlsFingerprint(s.devicePort, ca), B.fingerprint, what)
            assert.equal(await tlsFingerprint(s.appPort, ca), B.fingerprint, what)
            assert.equal(s.metrics.tlsReloads.get({ outcome: code }), 1, what)
        }
        assert.equal(expiry(), B.notAfterS)
        assert.equal((await device.request({ method: "get", resource: "/session" })).status, 200)
    } finally {
        device.close()
        install(B)
    }
})

test("a certificate near its end is served, with a warning that says renewals are failing", async () => {
    const soon = await certificate({ validMs: 5 * DAY_MS })
    install(soon)
    const before = logged.length
    assert.ok(s.reloadTls().ok)
    const warning = logged.slice(before).find((l) => l.code === "E_TLS_EXPIRES_SOON")
    assert.ok(warning, JSON.stringify(logged.slice(before)))
    assert.deepEqual([warning.level, warning.daysLeft], [40, 4])
    assert.equal(await tlsFingerprint(s.devicePort, soon.caCertPem), soon.fingerprint)
    install(B)
    const quiet = logged.length
    assert.ok(s.reloadTls().ok)
    assert.ok(!logged.slice(quiet).some((l) => l.code === "E_TLS_EXPIRES_SOON"))
})

test("the checks alone, on the clock they are given (certificate.ts)", async () => {
    const c = await certificate({ fromMs: Date.UTC(2026, 0, 1), validMs: 90 * DAY_MS })
    const info = checkCertificate(c.chainPem, c.keyPem)
    assert.deepEqual([info.chainLength, info.fingerprint256, info.notBefore], [2, c.fingerprint, "2025-12-31T23:00:00.000Z"])
    assert.equal(validityProblem(info, Date.UTC(2026, 1, 1)), undefined)
    assert.equal(validityProblem(info, Date.UTC(2026, 3, 2))?.code, "E_TLS_EXPIRED")
    assert.equal(validityProblem(info, Date.UTC(2025, 11, 31, 22))?.code, "E_TLS_NOT_YET_VALID")
    assert.equal(expiresSoon(info, Date.UTC(2026, 1, 1)), undefined)
    assert.equal(expiresSoon(info, Date.UTC(2026, 2, 25)), 7)
    const problem = (cert: string, key: string) => {
        try {
            checkCertificate(cert, key)
        } catch (e) {
            assert.ok(e instanceof CertificateProblem)
            return e.code
        }
    }
    assert.equal(problem("", c.keyPem), "E_TLS_BAD_CHAIN")
    assert.equal(problem(c.chainPem.replace(/(BEGIN CERTIFICATE-----\n)MI/g, "$1XX"), c.keyPem), "E_TLS_BAD_CHAIN")
    assert.equal(problem(c.chainPem, c.caKeyPem), "E_TLS_KEY_MISMATCH") // the CA's key beside the leaf
})

test("the development certificate (no --tls-cert): a reload reads the same files again and keeps serving them", async () => {
    const dev = await startTestServer({ appTls: true })
    try {
        const before = await tlsFingerprint(dev.devicePort, dev.ca)
        const r = dev.reloadTls()
        assert.ok(r.ok, JSON.stringify(r))
        assert.equal(r.certificate.fingerprint256, before)
        assert.equal(await tlsFingerprint(dev.devicePort, dev.ca), before)
        assert.equal(await tlsFingerprint(dev.appPort, dev.ca), before)
    } finally {
        await dev.stop()
    }
})

test("at start an expired certificate is still served (there is no other), with the error logged; a key that is not its refuses the start", async () => {
    const startDir = mkdtempSync(join(tmpdir(), "feedline-tls-start-"))
    const startFiles = new CertificateFiles(startDir)
    const lines: Record<string, any>[] = []
    try {
        const expired = await certificate({ fromMs: Date.now() - 30 * DAY_MS, validMs: 10 * DAY_MS })
        startFiles.install(expired)
        const t = await startTestServer({ tlsCertPath: startFiles.certPath, tlsKeyPath: startFiles.keyPath, logLevel: "info", logDestination: { write: (line: string) => void lines.push(JSON.parse(line)) } as unknown as NodeJS.WritableStream })
        try {
            assert.ok(lines.some((l) => l.code === "E_TLS_EXPIRED" && l.level === 50), JSON.stringify(lines))
            assert.equal(t.metrics.tlsCertificateExpiry.get(), expired.notAfterS)
        } finally {
            await t.stop()
        }
        startFiles.install({ chainPem: A.chainPem, keyPem: B.keyPem })
        await assert.rejects(startTestServer({ dataDir: join(startDir, "data"), tlsCertPath: startFiles.certPath, tlsKeyPath: startFiles.keyPath }), /E_TLS_KEY_MISMATCH/)
    } finally {
        rmSync(startDir, { recursive: true, force: true })
    }
})
