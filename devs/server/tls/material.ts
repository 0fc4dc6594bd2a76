// The certificate and key both TLS ports serve [P§1]: the operator's PEM files (--tls-cert, --tls-key),
// or the development CA's certificate for localhost, made once in the data folder (devca.ts). Read at
// start, and again from the same paths at each reload (reload.ts: SIGHUP), so that certbot's renewed
// files (new targets of the symlinks in live/) are what the next handshakes get.
import { readFileSync } from "node:fs"
import { ConfigError } from "../errors.ts"
import type { Logger } from "../log.ts"
import { CertificateProblem, checkCertificate, type CertificateInfo } from "./certificate.ts"
import { ensureDevCertificate } from "./devca.ts"

/** Where the served certificate and key are read from. */
export interface TlsSource {
    certPath: string
    keyPath: string
    /** the operator's files (--tls-cert, --tls-key); false: the data folder's development certificate */
    own: boolean
}

export interface TlsMaterial {
    cert: Buffer
    key: Buffer
    /** what clients should trust: the dev CA, or with your own certificate, the certificate itself */
    caCertPath: string
    source: TlsSource
    /** the leaf certificate, checked: its chain parses, the key is its key (not whether it is valid now) */
    certificate: CertificateInfo
}

function readPem(path: string, what: string): Buffer {
    try {
        return readFileSync(path)
    } catch (e) {
        const err = e as NodeJS.ErrnoException
        throw new CertificateProblem("E_TLS_UNREADABLE", `cannot read ${what} ${path} (${err.code ?? err.message}); give the path of a PEM file this user may read`)
    }
}

/** Reads the files of `source` and checks them (certificate.ts); throws a CertificateProblem. */
export function readTlsMaterial(source: TlsSource, caCertPath: string): TlsMaterial {
    const cert = readPem(source.certPath, source.own ? "--tls-cert" : "the development certificate")
    const key = readPem(source.keyPath, source.own ? "--tls-key" : "the development certificate's key")
    return { cert, key, caCertPath, source, certificate: checkCertificate(cert, key) }
}

export async function loadTlsMaterial(o: { dataDir: string; tlsCertPath?: string; tlsKeyPath?: string }, log: Logger): Promise<TlsMaterial> {
    if (o.tlsCertPath || o.tlsKeyPath) {
        if (!o.tlsCertPath || !o.tlsKeyPath) throw new ConfigError("give both a TLS certificate and its key (--tls-cert and --tls-key)")
        try {
            return readTlsMaterial({ certPath: o.tlsCertPath, keyPath: o.tlsKeyPath, own: true }, o.tlsCertPath)
        } catch (e) {
            if (!(e instanceof CertificateProblem)) throw e
            if (e.code === "E_TLS_UNREADABLE") throw new ConfigError(e.message)
            throw new ConfigError(
                `--tls-cert ${o.tlsCertPath} and --tls-key ${o.tlsKeyPath} are not a usable certificate and key (${e.code}: ${e.message}); give the PEM certificate chain (fullchain.pem) and its private key (privkey.pem)`,
            )
        }
    }
    const dev = await ensureDevCertificate(o.dataDir)
    if (dev.created) log.info({ caCertPath: dev.caCertPath }, "made a development CA; trust it with NODE_EXTRA_CA_CERTS=" + dev.caCertPath)
    try {
        return readTlsMaterial({ certPath: dev.certPath, keyPath: dev.keyPath, own: false }, dev.caCertPath)
    } catch (e) {
        if (e instanceof CertificateProblem) throw new ConfigError(`${e.message} (${e.code}; delete ${o.dataDir}/tls/ to have it made again)`)
        throw e
    }
}
