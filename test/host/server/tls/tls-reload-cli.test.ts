// `feedline serve` and SIGHUP, end to end in a child process: the signal reloads --tls-cert / --tls-key
// (devs/server/tls/reload.ts) and the server goes on. Before, SIGHUP ended the server (Node's default for
// it): an operator's `systemctl reload` or certbot deploy hook dropped every device connection.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { startChildServer } from "../abuse/child-server.ts"
import { CertificateFiles, testCertificate } from "../../harness/certificates.ts"
import { TlsClient, tlsFingerprint } from "../../harness/server-harness.ts"
import { SERVER_POLL_MS, until } from "../../harness/until.ts"

/** a loaded machine can take seconds to handle a signal and answer a scrape; a bound, not a measurement */
const RELOAD_WAIT_MS = 30_000

test("feedline serve: SIGHUP serves the renewed certificate to new handshakes, keeps an open connection, and keeps it over a bad replacement", async () => {
    const dir = mkdtempSync(join(tmpdir(), "feedline-tls-reload-cli-"))
    const files = new CertificateFiles(dir)
    const [A, B] = [await testCertificate(), await testCertificate()]
    const ca = Buffer.from(A.caCertPem + B.caCertPem)
    files.install(A)
    const server = await startChildServer(files.args)
    const reloads = async (outcome: string) => (await server.metrics())[`feedline_tls_reloads_total{outcome="${outcome}"}`] ?? 0
    const device = await TlsClient.open({ devicePort: server.devicePort, ca }, server.credentials.deviceKey)
    try {
        assert.equal(await tlsFingerprint(server.devicePort, ca), A.fingerprint)
        files.install(B)
        process.kill(server.pid, "SIGHUP")
        await until(() => `the reload on /metrics (server alive: ${server.alive()}; ${server.stderr()})`, async () => (await reloads("ok")) === 1, RELOAD_WAIT_MS, SERVER_POLL_MS)
        assert.equal(await tlsFingerprint(server.devicePort, ca), B.fingerprint)
        assert.equal((await server.metrics())["feedline_tls_certificate_expiration_timestamp_seconds"], B.notAfterS)
        assert.equal((await device.request({ method: "get", resource: "/session" })).status, 200, "the connection made before the reload")

        // the key of another certificate: refused, B still served
        files.install({ chainPem: A.chainPem, keyPem: B.keyPem })
        process.kill(server.pid, "SIGHUP")
        await until("the refused reload on /metrics", async () => (await reloads("E_TLS_KEY_MISMATCH")) === 1, RELOAD_WAIT_MS, SERVER_POLL_MS)
        assert.equal(await tlsFingerprint(server.devicePort, ca), B.fingerprint)
        assert.equal((await device.request({ method: "get", resource: "/session" })).status, 200)
        assert.ok(server.alive())
    } finally {
        device.close()
        assert.equal(await server.stop(), 0)
        rmSync(dir, { recursive: true, force: true })
    }
})
