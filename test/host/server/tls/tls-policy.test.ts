// The TLS policy of both TLS ports (issue 11 item 6; devs/server/tls/policy.ts): TLS 1.2 only with
// ECDHE and AEAD (AES-GCM, ChaCha20-Poly1305), as Mozilla's "intermediate" profile; CBC, ARIA, CCM,
// DHE and static RSA refused (CBC, ARIA and CCM were accepted). A client restricted to what ESP32's
// mbedTLS offers by default (ECDHE-ECDSA/RSA with AES-GCM, TLS 1.2) still connects, with the dev
// CA's ECDSA certificate and with an RSA one given as --tls-cert.
import assert from "node:assert/strict"
import { webcrypto } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import tls from "node:tls"
import { after, before, test } from "node:test"
import "reflect-metadata"
import * as x509 from "@peculiar/x509"
import { startTestServer, type TestServer } from "../../harness/server-harness.ts"

/** What a client gets from a port: the suite it negotiated, or the error code of the refusal. */
function handshake(port: number, ca: Buffer | string, opts: tls.ConnectionOptions): Promise<string> {
    return new Promise((resolve) => {
        const s = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost", ...opts }, () => {
            resolve(`ok ${s.getProtocol()} ${s.getCipher().standardName ?? s.getCipher().name}`)
            s.destroy()
        })
        s.on("error", (e: NodeJS.ErrnoException) => resolve(`refused ${e.code}`))
    })
}

const TLS12 = { minVersion: "TLSv1.2", maxVersion: "TLSv1.2" } as const

/** ESP-IDF mbedTLS's default TLS 1.2 suites that an ECDHE/AEAD server can pick: ECDHE-ECDSA/RSA with AES-GCM. */
const ESP32_GCM = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"
/** Roughly mbedTLS's whole default preference list (TLS 1.2): CBC and CCM ahead of GCM in places; the server must pick an AEAD one. */
const MBEDTLS_DEFAULT_ORDER =
    "ECDHE-ECDSA-AES256-CCM:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-CCM:ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:AES256-GCM-SHA384:AES128-SHA"

/** A self-signed RSA 2048 certificate for localhost / 127.0.0.1 (cert and CA at once). */
async function rsaCertificate(dir: string): Promise<{ certPath: string; keyPath: string; pem: string }> {
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])
    const alg = { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }
    const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
        name: "CN=localhost",
        keys,
        signingAlgorithm: alg,
        notBefore: new Date(Date.now() - 3600_000),
        notAfter: new Date(Date.now() + 86_400_000),
        extensions: [
            new x509.BasicConstraintsExtension(true, undefined, true),
            new x509.SubjectAlternativeNameExtension([
                { type: "dns", value: "localhost" },
                { type: "ip", value: "127.0.0.1" },
            ]),
        ],
    })
    const pem = cert.toString("pem") + "\n"
    const key = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)).toString("base64")
    const certPath = join(dir, "rsa.pem")
    const keyPath = join(dir, "rsa-key.pem")
    writeFileSync(certPath, pem)
    writeFileSync(keyPath, `-----BEGIN PRIVATE KEY-----\n${key.replace(/.{64}/g, "$&\n")}\n-----END PRIVATE KEY-----\n`, { mode: 0o600 })
    return { certPath, keyPath, pem }
}

let ecdsa: TestServer
let rsa: TestServer
let rsaPem: string
let certDir: string

before(async () => {
    certDir = mkdtempSync(join(tmpdir(), "feedline-rsa-"))
    const r = await rsaCertificate(certDir)
    rsaPem = r.pem
    ecdsa = await startTestServer({ appTls: true })
    rsa = await startTestServer({ appTls: true, tlsCertPath: r.certPath, tlsKeyPath: r.keyPath })
})
after(async () => {
    await Promise.all([ecdsa.stop(), rsa.stop()])
    rmSync(certDir, { recursive: true, force: true })
})

/** Both TLS ports of a server: the device port and the HTTPS app port. */
const ports = (s: TestServer) => [
    ["device port", s.devicePort],
    ["app port", s.appPort],
] as const

test("TLS policy: a client with ESP32's default AES-GCM suites connects over TLS 1.2 to both ports (ECDSA and RSA certificates)", async () => {
    for (const [server, ca, kind] of [
        [ecdsa, ecdsa.ca, "ECDHE-ECDSA"],
        [rsa, rsaPem, "ECDHE-RSA"],
    ] as const) {
        for (const [name, port] of ports(server)) {
            assert.match(await handshake(port, ca, { ...TLS12, ciphers: ESP32_GCM }), new RegExp(`^ok TLSv1\\.2 TLS_${kind.replace("-", "_")}_WITH_AES_(128|256)_GCM_SHA(256|384)$`), `${kind} ${name}`)
            // mbedTLS's whole default list, CBC and CCM first: the server takes an AEAD suite from it
            assert.match(await handshake(port, ca, { ...TLS12, ciphers: MBEDTLS_DEFAULT_ORDER }), new RegExp(`^ok TLSv1\\.2 TLS_${kind.replace("-", "_")}_WITH_AES_(128|256)_GCM_SHA(256|384)$`), `${kind} ${name}`)
            assert.match(await handshake(port, ca, { ...TLS12, ciphers: `${kind}-CHACHA20-POLY1305` }), /^ok TLSv1\.2 .*CHACHA20_POLY1305/, `${kind} ${name}`)
            assert.match(await handshake(port, ca, { minVersion: "TLSv1.3" }), /^ok TLSv1\.3 TLS_/, `${kind} ${name}`)
        }
    }
})

test("TLS policy: CBC, ARIA, CCM, DHE and static RSA suites on TLS 1.2 are refused on both ports; so is TLS 1.1", async () => {
    const refusedEcdsa = ["ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-ARIA128-GCM-SHA256", "ECDHE-ECDSA-AES128-CCM", "ECDHE-ECDSA-AES256-CCM"]
    const refusedRsa = ["ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-ARIA128-GCM-SHA256", "DHE-RSA-AES128-GCM-SHA256", "AES128-GCM-SHA256", "AES256-SHA"]
    for (const [server, ca, suites] of [
        [ecdsa, ecdsa.ca, refusedEcdsa],
        [rsa, rsaPem, refusedRsa],
    ] as const) {
        for (const [name, port] of ports(server)) {
            for (const ciphers of suites) assert.match(await handshake(port, ca, { ...TLS12, ciphers }), /^refused /, `${ciphers} on the ${name}`)
            assert.match(await handshake(port, ca, { minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" }), /^refused /, `TLS 1.1 on the ${name}`)
        }
    }
})
