// The TLS settings of both TLS ports, the device port and the app port (HTTPS/WSS) [P§1]: one policy,
// Mozilla's "intermediate" profile (v5.7) without its DHE suites. TLS 1.2 and 1.3 only; on 1.2 only
// ECDHE key exchange with AEAD ciphers (AES-GCM, ChaCha20-Poly1305): no CBC, no ARIA, no CCM, no DHE,
// no static RSA. ESP32 devices still connect: ESP-IDF's mbedTLS offers ECDHE-ECDSA and ECDHE-RSA with
// AES-GCM by default (DeviceScript's ESP32 build keeps those defaults), and speaks TLS 1.2 only.
import type tls from "node:tls"

/** TLS 1.2: ECDHE (ECDSA or RSA certificates) with AEAD, in Mozilla's order; the client's preference decides. */
export const TLS12_CIPHERS = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
]
/** TLS 1.3: its three standard suites (all AEAD, all ephemeral), as Mozilla lists them. */
export const TLS13_CIPHERS = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
/** Key-exchange groups, Mozilla's: X25519, P-256 (what the dev certificate and ESP32 use), P-384. */
export const TLS_GROUPS = "X25519:P-256:P-384"

/** Server options for a certificate: the policy above. */
export function tlsServerOptions(cert: string | Buffer, key: string | Buffer): tls.TlsOptions {
    return {
        cert,
        key,
        minVersion: "TLSv1.2",
        ciphers: [...TLS13_CIPHERS, ...TLS12_CIPHERS].join(":"),
        ecdhCurve: TLS_GROUPS,
        // Mozilla intermediate: every suite allowed is strong, so the client (which knows whether it has AES hardware) chooses
        honorCipherOrder: false,
    }
}
