// Renewing the served certificate without a restart (SIGHUP: devs/cli.ts; every worker of --workers:
// workers.ts). reload() reads the files again from the same paths (material.ts), checks them
// (certificate.ts) and swaps them into every TLS server of the process, the device port and the HTTPS
// app port, with setSecureContext: connections already open keep going on the certificate they were made
// with, the next handshakes get the new one. Files that fail a check, or a certificate not valid now, are
// not swapped in: the previous certificate stays and the log says why (code E_TLS_RELOAD, the check's code
// as `cause`), as nginx and HAProxy keep their old configuration when a reload's is bad.
import type tls from "node:tls"
import type { Logger } from "../log.ts"
import type { Metrics } from "../metrics.ts"
import { CertificateProblem, expiresSoon, validityProblem, type CertificateInfo, type CertificateProblemCode } from "./certificate.ts"
import { readTlsMaterial, type TlsMaterial } from "./material.ts"
import { tlsServerOptions } from "./policy.ts"

export type TlsReload = { ok: true; certificate: CertificateInfo } | { ok: false; code: CertificateProblemCode; message: string; serving: CertificateInfo }

export class TlsCertificates {
    private material: TlsMaterial

    constructor(
        material: TlsMaterial,
        /** the servers that present it: the device port's, and the app port's when it speaks HTTPS */
        private readonly servers: tls.Server[],
        private readonly o: { log: Logger; metrics: Metrics; now: () => number },
    ) {
        this.material = material
        this.loaded("serving TLS certificate")
        // at start a certificate not valid now is still served (there is no other); the error says so
        const invalid = validityProblem(material.certificate, o.now())
        if (invalid) o.log.error({ code: invalid.code, ...this.where() }, `${invalid.message}; devices will refuse it`)
    }

    /** The certificate being served now. */
    get certificate(): CertificateInfo {
        return this.material.certificate
    }

    /** Reads the certificate and key again and serves them from the next handshake on, if they pass the checks. */
    reload(): TlsReload {
        let next: TlsMaterial
        try {
            next = readTlsMaterial(this.material.source, this.material.caCertPath)
            const invalid = validityProblem(next.certificate, this.o.now())
            if (invalid) throw invalid
        } catch (e) {
            if (!(e instanceof CertificateProblem)) throw e
            this.o.metrics.tlsReloads.add({ outcome: e.code })
            const serving = this.material.certificate
            this.o.log.error(
                { code: "E_TLS_RELOAD", cause: e.code, ...this.where(), serving: { fingerprint256: serving.fingerprint256, notAfter: serving.notAfter } },
                `TLS certificate not reloaded: ${e.message}. Still serving the previous one (until ${serving.notAfter}); fix the files and reload again`,
            )
            return { ok: false, code: e.code, message: e.message, serving }
        }
        const options = tlsServerOptions(next.cert, next.key)
        for (const server of this.servers) server.setSecureContext(options)
        this.material = next
        this.o.metrics.tlsReloads.add({ outcome: "ok" })
        this.loaded("TLS certificate reloaded; new handshakes on both TLS ports get it, open connections keep theirs")
        return { ok: true, certificate: next.certificate }
    }

    private where() {
        return { certPath: this.material.source.certPath, keyPath: this.material.source.keyPath }
    }

    private loaded(message: string): void {
        const c = this.material.certificate
        this.o.metrics.tlsCertificateExpiry.set({}, c.notAfterMs / 1000)
        this.o.log.info({ ...this.where(), subject: c.subject, subjectAltName: c.subjectAltName, notAfter: c.notAfter, fingerprint256: c.fingerprint256, chainLength: c.chainLength }, message)
        const daysLeft = expiresSoon(c, this.o.now())
        if (daysLeft !== undefined && daysLeft >= 0) {
            this.o.log.warn({ code: "E_TLS_EXPIRES_SOON", notAfter: c.notAfter, daysLeft, ...this.where() }, `the TLS certificate expires in ${daysLeft} day(s), at ${c.notAfter}: is its renewal (certbot renew and its deploy hook) working?`)
        }
    }
}
