// What a certificate and key pair must be before a TLS port serves it (at start, and before a reload swaps
// it in): a PEM chain whose every block parses, the leaf first, its private key; and the leaf valid now.
// Pure: the PEM bytes and the time come in, a description or a problem with a stable code goes out.
import { createPrivateKey, X509Certificate } from "node:crypto"
import tls from "node:tls"
import { tlsServerOptions } from "./policy.ts"

export type CertificateProblemCode =
    | "E_TLS_UNREADABLE" // a file could not be read
    | "E_TLS_BAD_CHAIN" // the certificate file holds no certificate, or a block that does not parse
    | "E_TLS_BAD_KEY" // the key file holds no private key Node can use (encrypted, not PEM)
    | "E_TLS_KEY_MISMATCH" // the key is not the leaf certificate's
    | "E_TLS_EXPIRED" // the leaf's notAfter has passed
    | "E_TLS_NOT_YET_VALID" // the leaf's notBefore is still ahead (a certificate issued for later, or this host's clock)
    | "E_TLS_UNUSABLE" // the pair passed the checks above but the TLS policy cannot use it (OpenSSL's reason given)

export class CertificateProblem extends Error {
    constructor(
        readonly code: CertificateProblemCode,
        message: string,
    ) {
        super(message)
    }
}

/** The leaf certificate, as an operator recognises it in a log line. */
export interface CertificateInfo {
    subject: string
    /** e.g. "DNS:feeds.example.com, IP Address:127.0.0.1"; "" when it has none */
    subjectAltName: string
    notBefore: string
    notBeforeMs: number
    notAfter: string
    notAfterMs: number
    /** SHA-256 of the DER, colon-separated hex (what `openssl x509 -fingerprint -sha256` and browsers show) */
    fingerprint256: string
    /** certificates in the file, leaf included */
    chainLength: number
}

/**
 * Let's Encrypt certificates last 90 days and certbot renews them with 30 left: one loaded with fewer than
 * this many days left means renewals are failing, with time still to fix them.
 */
export const EXPIRY_WARNING_MS = 14 * 86_400_000

const PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

/**
 * Checks that a certificate chain and its key (PEM) can be served, whatever the time; throws a
 * CertificateProblem saying what is wrong. Whether the leaf is valid now is validityProblem's.
 */
export function checkCertificate(certPem: Buffer | string, keyPem: Buffer | string): CertificateInfo {
    const text = String(certPem)
    const blocks = text.match(PEM_CERTIFICATE) ?? []
    if (blocks.length === 0) throw new CertificateProblem("E_TLS_BAD_CHAIN", "the certificate file holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    // a file cut short (copied while it was being written) ends in a block OpenSSL would quietly leave out
    const begun = text.split(PEM_BEGIN).length - 1
    if (begun !== blocks.length) throw new CertificateProblem("E_TLS_BAD_CHAIN", `the certificate file begins ${begun} certificates and ends ${blocks.length}: it was cut short, or is not PEM`)
    const chain = blocks.map((block, i) => {
        try {
            return new X509Certificate(block)
        } catch (e) {
            throw new CertificateProblem("E_TLS_BAD_CHAIN", `certificate ${i + 1} of ${blocks.length} in the certificate file does not parse (${(e as Error).message}); was the file cut short?`)
        }
    })
    const leaf = chain[0]
    let key
    try {
        key = createPrivateKey(keyPem)
    } catch (e) {
        throw new CertificateProblem("E_TLS_BAD_KEY", `the key file holds no usable private key (${(e as Error).message}); give the unencrypted PEM key (privkey.pem)`)
    }
    if (!leaf.checkPrivateKey(key)) {
        throw new CertificateProblem("E_TLS_KEY_MISMATCH", `the key is not the certificate's (${subjectOf(leaf)}): give the key that was issued with it (certbot: privkey.pem beside fullchain.pem)`)
    }
    try {
        tls.createSecureContext(tlsServerOptions(certPem, keyPem))
    } catch (e) {
        throw new CertificateProblem("E_TLS_UNUSABLE", `the certificate and key cannot be served (${(e as Error).message})`)
    }
    return describe(leaf, chain.length)
}

/** Why the leaf is not valid at `nowMs` (expired, or not yet valid), or undefined when it is. */
export function validityProblem(info: CertificateInfo, nowMs: number): CertificateProblem | undefined {
    if (nowMs > info.notAfterMs) return new CertificateProblem("E_TLS_EXPIRED", `the certificate expired at ${info.notAfter}; renew it (certbot renew) and give the new files`)
    if (nowMs < info.notBeforeMs) return new CertificateProblem("E_TLS_NOT_YET_VALID", `the certificate is valid only from ${info.notBefore}; check this host's clock, or give a certificate valid now`)
    return undefined
}

/** "CN=localhost, O=…" (Node gives one attribute a line) */
function subjectOf(leaf: X509Certificate): string {
    return leaf.subject.replace(/\n/g, ", ")
}

function describe(leaf: X509Certificate, chainLength: number): CertificateInfo {
    return {
        subject: subjectOf(leaf),
        subjectAltName: leaf.subjectAltName ?? "",
        notBefore: new Date(leaf.validFrom).toISOString(),
        notBeforeMs: Date.parse(leaf.validFrom),
        notAfter: new Date(leaf.validTo).toISOString(),
        notAfterMs: Date.parse(leaf.validTo),
        fingerprint256: leaf.fingerprint256,
        chainLength,
    }
}

/** Whole days left before `info` expires when that is fewer than EXPIRY_WARNING_MS, else undefined. */
export function expiresSoon(info: CertificateInfo, nowMs: number): number | undefined {
    const leftMs = info.notAfterMs - nowMs
    return leftMs < EXPIRY_WARNING_MS ? Math.floor(leftMs / 86_400_000) : undefined
}
