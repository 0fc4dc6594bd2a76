// The certificate and key both TLS ports serve [P§1]: the operator's PEM files (--tls-cert, --tls-key),
// or the development CA's certificate for localhost, made once in the data folder (devca.ts).
import { readFileSync } from "node:fs"
import { ConfigError } from "../errors.ts"
import type { Logger } from "../log.ts"
import { ensureDevCertificate } from "./devca.ts"

export interface TlsMaterial {
    cert: Buffer
    key: Buffer
    /** what clients should trust: the dev CA, or with your own certificate, the certificate itself */
    caCertPath: string
}

export async function loadTlsMaterial(o: { dataDir: string; tlsCertPath?: string; tlsKeyPath?: string }, log: Logger): Promise<TlsMaterial> {
    if (o.tlsCertPath || o.tlsKeyPath) {
        if (!o.tlsCertPath || !o.tlsKeyPath) throw new ConfigError("give both a TLS certificate and its key (--tls-cert and --tls-key)")
        return { cert: readFileSync(o.tlsCertPath), key: readFileSync(o.tlsKeyPath), caCertPath: o.tlsCertPath }
    }
    const dev = await ensureDevCertificate(o.dataDir)
    if (dev.created) log.info({ caCertPath: dev.caCertPath }, "made a development CA; trust it with NODE_EXTRA_CA_CERTS=" + dev.caCertPath)
    return { cert: readFileSync(dev.certPath), key: readFileSync(dev.keyPath), caCertPath: dev.caCertPath }
}
