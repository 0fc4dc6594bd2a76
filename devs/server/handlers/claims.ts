// POST /products/:product/claims [fleet]: a board with no key claims its feed and key. It needs no API key:
// its credential is its activation code (fleet/claim-codes.ts). Body:
//   {"hardware_id":"12abdd2289421234","code":"<86 characters>","firmware":"0.1.0","key":"<its previous key>"?}
// Answers 201 (a new device) or 200 (a new key for the device that hardware id claimed before) with
//   {"device":"d…","feed":7,"key":"…","resource":"/feeds/7","policies":{"temp":"i=10s d=0.2"}}
// Every refusal is a 4xx with its code and creates nothing (claim-decision.ts says which and why). On the
// device port and WebSocket the connection then goes on with the new key, as if it had sent it.
import { isActivationCode, HARDWARE_ID } from "../fleet/claim-codes.ts"
import { decideClaim } from "../fleet/claim-decision.ts"
import { generatedKey } from "../auth/keys.ts"
import { randomBytes } from "node:crypto"
import type { OpenCtx, OpenRoutes, Result } from "../context.ts"
import { ApiError, asApiError, unprocessable } from "../errors.ts"
import { CLAIM_REFUSED_RETRY_MS } from "../limits.ts"
import { limitKeyOf } from "../limit-key.ts"
import { MAX_VALUE_CHARS } from "../../../src/protocol.ts"
import type { Take } from "../ratelimit.ts"
import type { DeviceRecord } from "../storage/store.ts"
import { objectBody, plainText } from "./body.ts"
import { claimPolicies } from "./products.ts"

const EXAMPLE = '{"hardware_id":"12abdd2289421234","code":"<the board\'s activation code>","firmware":"0.1.0"}'
/** Longer than any code or key; a longer string is not worth hashing or checking. */
const MAX_CREDENTIAL_CHARS = 256

function textOf(v: unknown, name: string, max: number, required: boolean): string | undefined {
    if (v === undefined && !required) return undefined
    if (typeof v !== "string" || v.length === 0 || v.length > max) throw unprocessable("E_BAD_VALUE", `${name} must be a string of 1 to ${max} characters`)
    return v
}

/**
 * Every refusal says when to claim again (retry_after_ms), so a board only has to follow it
 * (src/net/claim.ts): one the operator has to undo (a re-arm, a new code, the allow-list, the limit) not
 * sooner than CLAIM_REFUSED_RETRY_MS; another claim that won meanwhile (E_CLAIM_CONFLICT) at once; rate
 * limits with their own wait. A 5xx keeps what it has (the board's backoff when none).
 */
async function claim(ctx: OpenCtx): Promise<Result> {
    try {
        return await claimOnce(ctx)
    } catch (e) {
        // what is not a refusal goes on as it is, to the router's one answer (a bug's cause logged there: it was an E_INTERNAL without it)
        const err = asApiError(e)
        if (err.retryAfterMs !== undefined || err.status >= 500) throw e
        throw new ApiError(err.status, err.code, err.message, err.code === "E_CLAIM_CONFLICT" ? 0 : CLAIM_REFUSED_RETRY_MS)
    }
}

async function claimOnce(ctx: OpenCtx): Promise<Result> {
    const { store, keys, fleet, authFailures, now, log, metrics } = ctx.deps
    const address = limitKeyOf(ctx.caller.remoteAddress)
    const body = objectBody(ctx.req.body, EXAMPLE)
    const hardwareId = textOf(body.hardware_id, "hardware_id", 64, true)!
    if (!HARDWARE_ID.test(hardwareId)) throw unprocessable("E_BAD_VALUE", "hardware_id must be 1 to 64 characters of A-Za-z0-9_.:-")
    const code = textOf(body.code, "code", MAX_CREDENTIAL_CHARS, true)!
    const firmware = plainText(textOf(body.firmware, "firmware", MAX_VALUE_CHARS, false) ?? "", "firmware")
    const previousKey = textOf(body.key, "key", MAX_CREDENTIAL_CHARS, false)
    const productId = ctx.path.product

    const limited = (taken: Take, why: string) => new ApiError(429, "E_CLAIM_RATE_LIMITED", `too many claims ${why}; claim again after retry_after_ms`, taken.retryAfterMs)
    const fromAddress = await fleet.takeAddressClaim(address)
    if (!fromAddress.ok) throw limited(fromAddress, "from this address")
    // codes are credentials: guessing them falls under the same gate as guessing keys
    const gate = authFailures.peek(address)
    if (!gate.ok) throw new ApiError(429, "E_AUTH_RATE_LIMITED", "too many failed keys or codes from this address; wait before trying again", gate.retryAfterMs)
    const failed = () => authFailures.take(address)

    const product = await store.getProduct(productId)
    if (!product) {
        failed()
        throw new ApiError(404, "E_NO_SUCH_PRODUCT", `there is no product ${productId}; the board's PRODUCT_ID setting must be an id from \`feedline products list\``)
    }
    const codeValid = isActivationCode(product.verifyKey, product.id, hardwareId, code)
    if (!codeValid) failed()
    const existing = codeValid ? await store.findDevice(product.id, hardwareId) : undefined
    let proof: "none" | "valid" | "invalid" = "none"
    if (existing && previousKey !== undefined) {
        proof = (await keys.authenticate(previousKey))?.keyId === existing.keyId ? "valid" : "invalid"
        if (proof === "invalid") failed()
    }
    const decision = decideClaim({ product, hardwareId, codeValid, existing, proof, keyUsed: existing ? fleet.keyUsed(existing) : false })
    if (decision.kind === "refuse") {
        metrics.claims.add({ outcome: decision.error.code })
        throw decision.error
    }
    // the product's budget bounds what is made for it, so only what would be made spends it (fleet.ts)
    const forProduct = await fleet.takeProductClaim(product.id)
    if (!forProduct.ok) throw limited(forProduct, `for product ${product.id}`)

    const atMs = now()
    const label = `device ${hardwareId}, product ${product.id}`
    const made = generatedKey({ label, permissions: ["read", "update"] }, atMs, 6)
    const feedTitle = `${product.title}: ${hardwareId}`
    const datastreams = product.datastreams.map((d) => d.id)
    let device: DeviceRecord
    try {
        device =
            decision.kind === "new"
                ? await store.claimNewDevice({ deviceId: "d" + randomBytes(6).toString("hex"), product: product.id, hardwareId, firmware, atMs, feedTitle, datastreams, key: made.record })
                : await store.reissueDeviceKey({ deviceId: existing!.id, expectKeyId: existing!.keyId, firmware, atMs, feedTitle, datastreams, key: made.record })
    } catch (e) {
        metrics.claims.add({ outcome: "refused-by-store" })
        throw e
    }
    fleet.claimed(device)
    await keys.refresh() // the new key works from the next request, the old one (reissued) no longer
    const grant = await keys.authenticate(made.secret)
    const conn = ctx.caller.connection
    if (grant && conn) {
        conn.authenticated(made.secret, grant)
        // [P§5] the connection goes on with this key, also one that had another (which a rotation just revoked:
        // it went on with that one, and its next request was refused 401)
        conn.rememberedKey = made.secret
    }
    const outcome = decision.kind === "new" ? "new" : `reissued-${decision.because}`
    metrics.claims.add({ outcome })
    // never the key or the code
    log.info({ product: product.id, device: device.id, hardwareId, feed: device.feed, key: device.keyId, outcome, remote: ctx.caller.remoteAddress }, "device claimed")
    return {
        status: decision.kind === "new" ? 201 : 200,
        body: { device: device.id, feed: device.feed, key: made.secret, resource: `/feeds/${device.feed}`, policies: claimPolicies(product) },
    }
}

export const claimsRoutes: OpenRoutes = { post: claim }
