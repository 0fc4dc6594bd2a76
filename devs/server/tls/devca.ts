// Development TLS: a local CA and a server certificate for localhost / 127.0.0.1 / ::1, made once in the
// data folder and reused. Trust the CA with NODE_EXTRA_CA_CERTS=<dataDir>/tls/ca.pem (the DeviceScript
// simulator is Node, sends no SNI and checks the SANs). Real ESP32 devices trust only public CAs.
import { webcrypto, X509Certificate } from "node:crypto"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

/** @peculiar/x509, loaded only to make certificates (~10 MiB of RSS a server reusing its certificate does not carry) */
async function x509Generator(): Promise<typeof import("@peculiar/x509")> {
    await import("reflect-metadata") // @peculiar/x509 needs a Reflect polyfill
    const x509 = await import("@peculiar/x509")
    x509.cryptoProvider.set(webcrypto as any) // Node's WebCrypto; the DOM type is not in this project's lib
    return x509
}

export interface DevCertificate {
    caCertPath: string
    certPath: string
    keyPath: string
    /** true when made now, false when reused */
    created: boolean
}

/** Validity of the dev certificates; a server certificate closer than RENEW_BEFORE_MS to expiry is remade. */
const CA_VALID_MS = 10 * 365 * 86_400_000
const SERVER_VALID_MS = 825 * 86_400_000 // the longest validity browsers and macOS accept
const RENEW_BEFORE_MS = 30 * 86_400_000

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const

function pem(label: string, der: ArrayBuffer): string {
    const b64 = Buffer.from(der).toString("base64").replace(/(.{64})/g, "$1\n").trimEnd()
    return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`
}

function serial(): string {
    return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString("hex").replace(/^[89a-f]/, "1")
}

function stillGood(certPath: string, nowMs: number): boolean {
    try {
        const notAfterMs = new Date(new X509Certificate(readFileSync(certPath)).validTo).getTime()
        return notAfterMs - nowMs > RENEW_BEFORE_MS
    } catch {
        return false
    }
}

/** A CA and a server certificate it signed, for localhost, 127.0.0.1 and ::1, all in PEM. */
export interface CertificateSet {
    caCertPem: string
    caKeyPem: string
    /** the server certificate alone (clients that trust the CA need only it) */
    certPem: string
    keyPem: string
}

/**
 * Makes a CA and a server certificate for localhost / 127.0.0.1 / ::1 (ECDSA P-256): the development CA of
 * a data folder, and the benchmark's throwaway one (devs/bench/tls-fixture.ts), so both are made one way.
 */
export async function makeCertificates(o: { caName: string; nowMs: number; caValidMs: number; serverValidMs: number }): Promise<CertificateSet> {
    const x509 = await x509Generator()
    const notBefore = new Date(o.nowMs - 3600_000) // tolerate a little clock skew
    const caKeys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: serial(),
        name: o.caName,
        notBefore,
        notAfter: new Date(o.nowMs + o.caValidMs),
        keys: caKeys,
        signingAlgorithm: ALG,
        extensions: [
            new x509.BasicConstraintsExtension(true, 0, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
            await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
        ],
    })
    const serverKeys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair
    const server = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: "CN=localhost, O=feedline development",
        issuer: ca.subject,
        notBefore,
        notAfter: new Date(o.nowMs + o.serverValidMs),
        signingKey: caKeys.privateKey,
        publicKey: serverKeys.publicKey,
        signingAlgorithm: ALG,
        extensions: [
            new x509.BasicConstraintsExtension(false, undefined, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
            new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
            new x509.SubjectAlternativeNameExtension([
                { type: "dns", value: "localhost" },
                { type: "ip", value: "127.0.0.1" },
                { type: "ip", value: "::1" },
            ]),
            await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
        ],
    })
    const key = async (k: webcrypto.CryptoKey) => pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", k))
    return { caCertPem: ca.toString("pem") + "\n", caKeyPem: await key(caKeys.privateKey), certPem: server.toString("pem") + "\n", keyPem: await key(serverKeys.privateKey) }
}

/** Makes (or reuses) the dev CA and server certificate under `<dataDir>/tls/`. */
export async function ensureDevCertificate(dataDir: string, nowMs = Date.now()): Promise<DevCertificate> {
    const dir = join(dataDir, "tls")
    const paths = {
        caCertPath: join(dir, "ca.pem"),
        caKeyPath: join(dir, "ca-key.pem"),
        certPath: join(dir, "server.pem"),
        keyPath: join(dir, "server-key.pem"),
    }
    if ([paths.caCertPath, paths.caKeyPath, paths.keyPath].every((p) => existsSync(p)) && stillGood(paths.certPath, nowMs) && stillGood(paths.caCertPath, nowMs)) {
        return { caCertPath: paths.caCertPath, certPath: paths.certPath, keyPath: paths.keyPath, created: false }
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const made = await makeCertificates({ caName: "CN=feedline development CA, O=feedline", nowMs, caValidMs: CA_VALID_MS, serverValidMs: SERVER_VALID_MS })
    writeFileSync(paths.caKeyPath, made.caKeyPem, { mode: 0o600 })
    writeFileSync(paths.keyPath, made.keyPem, { mode: 0o600 })
    // certificates are public, but every file of the data folder is owner-only (storage/private-folder.ts)
    writeFileSync(paths.caCertPath, made.caCertPem, { mode: 0o600 })
    writeFileSync(paths.certPath, made.certPem, { mode: 0o600 })
    return { caCertPath: paths.caCertPath, certPath: paths.certPath, keyPath: paths.keyPath, created: true }
}
