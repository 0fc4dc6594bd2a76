// The certificate and key both TLS ports serve [P§1]: the operator's PEM files (--tls-cert, --tls-key),
// or the development CA's certificate for localhost, made once in the data folder (devca.ts).
import { readFileSync } from "node:fs"
import tls from "node:tls"
import { ConfigError } from "../errors.ts"
import type { Logger } from "../log.ts"
import { ensureDevCertificate } from "./devca.ts"

export interface TlsMaterial {
    cert: Buffer
    key: Buffer
    /** what clients should trust: the dev CA, or with your own certificate, the certificate itself */
    caCertPath: string
}

function readPem(path: string, flag: string): Buffer {
    try {
        return readFileSync(path)
    } catch (e) {
        const err = e as NodeJS.ErrnoException
        throw new ConfigError(`cannot read ${flag} ${path} (${err.code ?? err.message}); give the path of a PEM file this user may read`)
    }
}

export async function loadTlsMaterial(o: { dataDir: string; tlsCertPath?: string; tlsKeyPath?: string }, log: Logger): Promise<TlsMaterial> {
    if (o.tlsCertPath || o.tlsKeyPath) {
        if (!o.tlsCertPath || !o.tlsKeyPath) throw new ConfigError("give both a TLS certificate and its key (--tls-cert and --tls-key)")
        const material = { cert: readPem(o.tlsCertPath, "--tls-cert"), key: readPem(o.tlsKeyPath, "--tls-key"), caCertPath: o.tlsCertPath }
        try {
            tls.createSecureContext({ cert: material.cert, key: material.key })
        } catch (e) {
            throw new ConfigError(
                `--tls-cert ${o.tlsCertPath} and --tls-key ${o.tlsKeyPath} are not a usable certificate and key (${(e as Error).message}); give the PEM certificate chain (fullchain.pem) and its private key (privkey.pem)`,
            )
        }
        return material
    }
    const dev = await ensureDevCertificate(o.dataDir)
    if (dev.created) log.info({ caCertPath: dev.caCertPath }, "made a development CA; trust it with NODE_EXTRA_CA_CERTS=" + dev.caCertPath)
    return { cert: readFileSync(dev.certPath), key: readFileSync(dev.keyPath), caCertPath: dev.caCertPath }
}
