// How API keys are stored: never the key, only a hash, and which hash depends on where the key came from.
//
// * Generated keys (`newSecret`: 24 random bytes, 32 characters, 192 bits) are stored as their SHA-256.
//   Guessing 192 random bits is out of reach however fast the hash is, and a fast hash keeps a new
//   connection's or an HTTP request's key check at microseconds.
// * Imported keys (`keys create --secret`, `"key"` in POST /keys) are whatever a person or another system
//   chose, from 12 characters up: they may be guessable, and a leaked database (a backup, a readable data
//   folder) must not let an attacker try billions of guesses per second against them. They are stored as
//   scrypt(SHA-256(key), salt) with node:crypto's scrypt: each guess costs about 50 ms of CPU time and
//   16 MiB of memory. The salt is per store, not per key: a presented key must be found without knowing
//   which key it is, and a per-key salt would cost one scrypt per stored key per attempt. A per-store
//   salt still defeats precomputed tables and keeps the cost per guess. (Scrypt over the SHA-256 rather
//   than the key itself lets keys stored before this scheme, whose SHA-256 is all we have, be upgraded.)
//
// We did not use a server-side pepper: it would sit in the same data folder as the database (whoever
// reads one reads the other), it would tie a store to one server's secret, and it would not slow down a
// guess at all once known.
import { createHash, scrypt, type ScryptOptions } from "node:crypto"

/**
 * scrypt work factor: N = 2^14, r = 8 (128 · N · r = 16 MiB per hash), p = 1: 52 ms, up to 105 ms at load
 * 5.6, on the 2-core development machine. That is below OWASP's figures for human passwords (N = 2^17, or
 * N = 2^14 with p = 5): imported keys are at least 12 characters, and a server with imported keys spends
 * one hash on every unknown key presented to it (failed keys are limited per address, 10 a minute), so
 * the cost per guess is kept where a small server can afford it under a key-guessing flood.
 */
export const SCRYPT_PARAMS: ScryptOptions = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }
export const KEY_HASH_BYTES = 32

export function sha256Of(secret: string): Buffer {
    return createHash("sha256").update(secret, "utf8").digest()
}

/** scrypt of a key's SHA-256 under the store's salt; in the thread pool, so the event loop goes on. */
export function scryptOf(sha256: Buffer, salt: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => scrypt(sha256, salt, KEY_HASH_BYTES, SCRYPT_PARAMS, (err, key) => (err ? reject(err) : resolve(key))))
}
