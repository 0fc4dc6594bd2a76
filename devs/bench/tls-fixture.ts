// A throwaway CA and a server certificate for 127.0.0.1/localhost, so every benchmark target
// (feedline, Mosquitto, Aedes) terminates TLS with the same key type and the same chain:
// differences in the figures then come from the servers, not from their certificates. Made the way
// the server makes its development CA (devs/server/tls/devca.ts).
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { makeCertificates } from "../server/tls/devca.ts"

export interface TlsFixture {
    caPath: string
    certPath: string
    keyPath: string
}

const VALID_MS = 2 * 24 * 3600 * 1000 // a benchmark run lasts minutes; two days covers clock skew

/** Writes ca.pem, cert.pem (leaf then CA) and key.pem into `dir` (created if needed). */
export async function makeTlsFixture(dir: string): Promise<TlsFixture> {
    mkdirSync(dir, { recursive: true })
    const made = await makeCertificates({ caName: "CN=feedline bench CA", nowMs: Date.now(), caValidMs: VALID_MS, serverValidMs: VALID_MS })
    const fixture: TlsFixture = { caPath: join(dir, "ca.pem"), certPath: join(dir, "cert.pem"), keyPath: join(dir, "key.pem") }
    writeFileSync(fixture.caPath, made.caCertPem)
    writeFileSync(fixture.certPath, made.certPem + made.caCertPem)
    writeFileSync(fixture.keyPath, made.keyPem, { mode: 0o600 })
    return fixture
}
