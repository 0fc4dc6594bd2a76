// Certificates for the TLS reload tests, made here (no network) with the development CA's own code
// (devs/server/tls/devca.ts): each a localhost / 127.0.0.1 certificate signed by a CA of its own, and the
// files a renewal leaves (certbot's fullchain.pem and privkey.pem) in a folder of the test's.
import { X509Certificate } from "node:crypto"
import { rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { makeCertificates } from "../../../devs/server/tls/devca.ts"

export const DAY_MS = 86_400_000

export interface TestCertificate {
    caCertPem: string
    caKeyPem: string
    certPem: string
    keyPem: string
    /** the leaf, then the CA that signed it: as certbot's fullchain.pem */
    chainPem: string
    /** the leaf's SHA-256 fingerprint, as a client's getPeerCertificate().fingerprint256 gives it */
    fingerprint: string
    /** the leaf's notAfter, seconds since the epoch (the expiry gauge's unit) */
    notAfterS: number
}

/** Valid from `fromMs` (less the hour devca.ts allows for clock skew) for `validMs`. */
export async function testCertificate(o: { fromMs?: number; validMs?: number } = {}): Promise<TestCertificate> {
    const made = await makeCertificates({ caName: "CN=feedline test CA", nowMs: o.fromMs ?? Date.now(), caValidMs: 365 * DAY_MS, serverValidMs: o.validMs ?? 90 * DAY_MS })
    const leaf = new X509Certificate(made.certPem)
    return { ...made, chainPem: made.certPem + made.caCertPem, fingerprint: leaf.fingerprint256, notAfterS: Date.parse(leaf.validTo) / 1000 }
}

/** The --tls-cert and --tls-key files in `dir`, replaced in place as a renewal (or a mistake) would. */
export class CertificateFiles {
    readonly certPath: string
    readonly keyPath: string
    constructor(dir: string) {
        this.certPath = join(dir, "fullchain.pem")
        this.keyPath = join(dir, "privkey.pem")
    }

    install(c: { chainPem: string; keyPem: string }): void {
        writeFileSync(this.certPath, c.chainPem)
        writeFileSync(this.keyPath, c.keyPem, { mode: 0o600 })
    }

    removeKey(): void {
        rmSync(this.keyPath)
    }

    /** `feedline serve`'s flags for them */
    get args(): string[] {
        return ["--tls-cert", this.certPath, "--tls-key", this.keyPath]
    }
}
