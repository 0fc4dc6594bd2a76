// A throwaway CA and a server certificate for 127.0.0.1/localhost, so every benchmark target
// (feedline, Mosquitto, Aedes) terminates TLS with the same key type and the same chain:
// differences in the figures then come from the servers, not from their certificates.
import { webcrypto } from "node:crypto"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import "reflect-metadata" // @peculiar/x509 resolves its parsers through tsyringe, which needs it
import * as x509 from "@peculiar/x509"

export interface TlsFixture {
    caPath: string
    certPath: string
    keyPath: string
}

const EC_KEY = { name: "ECDSA", namedCurve: "P-256" } as const
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const
const VALID_MS = 2 * 24 * 3600 * 1000 // a benchmark run lasts minutes; two days covers clock skew

function pem(label: string, der: ArrayBuffer): string {
    const b64 = Buffer.from(der).toString("base64")
    return `-----BEGIN ${label}-----\n${b64.replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END ${label}-----\n`
}

/** Writes ca.pem, cert.pem (leaf then CA) and key.pem into `dir` (created if needed). */
export async function makeTlsFixture(dir: string): Promise<TlsFixture> {
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])
    mkdirSync(dir, { recursive: true })
    const notBefore = new Date(Date.now() - 3600 * 1000)
    const notAfter = new Date(Date.now() + VALID_MS)

    const caKeys = (await webcrypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
        name: "CN=feedline bench CA",
        keys: caKeys,
        signingAlgorithm: SIGNING,
        notBefore,
        notAfter,
        extensions: [
            new x509.BasicConstraintsExtension(true, 0, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        ],
    })

    const leafKeys = (await webcrypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair
    const leaf = await x509.X509CertificateGenerator.create({
        subject: "CN=localhost",
        issuer: ca.subject,
        publicKey: leafKeys.publicKey,
        signingKey: caKeys.privateKey,
        signingAlgorithm: SIGNING,
        notBefore,
        notAfter,
        extensions: [
            new x509.BasicConstraintsExtension(false, undefined, true),
            new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
            new x509.SubjectAlternativeNameExtension([
                { type: "dns", value: "localhost" },
                { type: "ip", value: "127.0.0.1" },
            ]),
        ],
    })

    const fixture: TlsFixture = { caPath: join(dir, "ca.pem"), certPath: join(dir, "cert.pem"), keyPath: join(dir, "key.pem") }
    writeFileSync(fixture.caPath, ca.toString("pem") + "\n")
    writeFileSync(fixture.certPath, leaf.toString("pem") + "\n" + ca.toString("pem") + "\n")
    writeFileSync(fixture.keyPath, pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", leafKeys.privateKey)), { mode: 0o600 })
    return fixture
}
