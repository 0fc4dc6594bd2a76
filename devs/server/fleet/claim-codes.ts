// Activation codes: how a board proves it may claim a feed from a product (docs/FLEET.md "What a leaked
// board can do").
//
// A product is an Ed25519 key pair. Its secret (the private half, shown once when the product is made) stays
// with the operator's flashing script; the server keeps only the public half. A board's activation code is
// the signature of (product id, hardware id) under that secret, printed by `feedline products codes` and
// flashed into that board alone. So:
//   * a code is good for one hardware id of one product: a leaked board lets someone claim as that board
//     only (which a claimed board refuses with 409 unless the operator re-arms it), never as another;
//   * a copy of the server's database (or the server itself) cannot make codes, only check them; an HMAC
//     code (the other common choice) would need the server to hold what makes codes;
//   * checking one costs 0.2-0.5 ms (node:crypto, measured on the shared 2-core machine at load 10), and
//     claims are rate-limited per address and per product (limits.ts).
// The price: a code is 86 characters (a 64-byte signature, base64url) instead of a short HMAC; boards keep
// it as a text setting (~236 B fit one).
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from "node:crypto"

/** [fleet] A hardware id: what the DeviceScript runtime calls the board (deviceIdentifier("self"), 16 hex digits), or an id the operator chose. */
export const HARDWARE_ID = /^[A-Za-z0-9_.:-]{1,64}$/
/** A product id: "p" and 8 hex digits. It starts with a letter, so a board's setting never reads back as a number. */
export const PRODUCT_ID = /^p[0-9a-f]{8}$/
/** base64url of a 64-byte Ed25519 signature */
export const CODE_CHARS = 86
/** A product secret is `<product id>.<base64url of the 32-byte Ed25519 seed>`. */
const SECRET = /^(p[0-9a-f]{8})\.([A-Za-z0-9_-]{43})$/
/** PKCS#8 DER of an Ed25519 private key is this prefix and the 32-byte seed (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex")
/** SPKI DER of an Ed25519 public key is this prefix and the 32 raw bytes (RFC 8410). */
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex")

export function newProductId(): string {
    return "p" + randomBytes(4).toString("hex")
}

/** What is signed: the product and the board, with a label so the signature means nothing elsewhere. */
function claimMessage(productId: string, hardwareId: string): Buffer {
    return Buffer.from(`feedline claim v1\n${productId}\n${hardwareId}`, "utf8")
}

/** A new product's key pair: the secret to show once, and the public half (32 bytes) to store. */
export function newProductKeys(productId: string): { secret: string; verifyKey: Buffer } {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519")
    const seed = privateKey.export({ format: "der", type: "pkcs8" }).subarray(PKCS8_ED25519_PREFIX.length)
    return { secret: `${productId}.${seed.toString("base64url")}`, verifyKey: rawPublicKey(publicKey) }
}

function rawPublicKey(k: KeyObject): Buffer {
    return k.export({ format: "der", type: "spki" }).subarray(SPKI_ED25519_PREFIX.length)
}

/** The product id and signing key of a product secret; undefined when it is not one. */
export function parseProductSecret(secret: string): { productId: string; signingKey: KeyObject; verifyKey: Buffer } | undefined {
    const m = SECRET.exec(secret.trim())
    if (!m) return undefined
    const seed = Buffer.from(m[2], "base64url")
    if (seed.length !== 32) return undefined
    const signingKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" })
    return { productId: m[1], signingKey, verifyKey: rawPublicKey(createPublicKey(signingKey)) }
}

/** The activation code of one board (what `feedline products codes` prints). */
export function activationCode(signingKey: KeyObject, productId: string, hardwareId: string): string {
    return sign(null, claimMessage(productId, hardwareId), signingKey).toString("base64url")
}

/** Is `code` the product's activation code for this hardware id? Never throws. */
export function isActivationCode(verifyKey: Buffer, productId: string, hardwareId: string, code: string): boolean {
    if (typeof code !== "string" || code.length !== CODE_CHARS || !/^[A-Za-z0-9_-]+$/.test(code)) return false
    const signature = Buffer.from(code, "base64url")
    if (signature.length !== 64) return false
    try {
        const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, verifyKey]), format: "der", type: "spki" })
        return verify(null, claimMessage(productId, hardwareId), key, signature)
    } catch {
        return false
    }
}
