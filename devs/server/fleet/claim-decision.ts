// What a claim gets [fleet]: the one decision, pure, in the order a person would check. The store makes
// what it decides in one transaction, and re-checks what another claim could change meanwhile (the
// product revoked, the claim limit, the device's key).
import { ApiError } from "../errors.ts"
import type { DeviceRecord, ProductRecord } from "../storage/store.ts"

export type ClaimDecision =
    | { kind: "refuse"; error: ApiError }
    /** a device for this hardware id: a feed, a key and the device record */
    | { kind: "new" }
    /** the existing device gets a new key (its old one is revoked), on the same feed */
    | { kind: "reissue"; because: "rearmed" | "proven" | "unused" }

export interface ClaimFacts {
    product: ProductRecord
    hardwareId: string
    /** the activation code is the product's for this hardware id */
    codeValid: boolean
    /** the product's device for this hardware id, if it has one */
    existing?: DeviceRecord
    /** a key was sent with the claim: "valid" when it is the existing device's current key */
    proof: "none" | "valid" | "invalid"
    /** the existing device's current key has been used (by a request other than the claim) */
    keyUsed: boolean
}

export function decideClaim(f: ClaimFacts): ClaimDecision {
    const refuse = (status: number, code: string, reason: string): ClaimDecision => ({ kind: "refuse", error: new ApiError(status, code, reason) })
    const { product: p, hardwareId: hw, existing: d } = f
    if (!f.codeValid) {
        return refuse(401, "E_BAD_CLAIM_CODE", `this is not product ${p.id}'s activation code for hardware id ${hw}; print the board's code with \`feedline products codes\``)
    }
    if (p.revokedMs !== undefined) return refuse(403, "E_PRODUCT_REVOKED", `product ${p.id} was revoked and takes no new claims; its devices keep working`)
    if (p.allowList && !p.allowList.includes(hw)) return refuse(403, "E_HARDWARE_NOT_LISTED", `hardware id ${hw} is not on product ${p.id}'s allow-list`)
    if (!d) return { kind: "new" }
    if (d.revokedMs !== undefined) {
        return refuse(403, "E_DEVICE_REVOKED", `device ${d.id} (hardware id ${hw}) was revoked; \`feedline devices rearm ${d.id}\` lets it claim again`)
    }
    if (d.rearmedMs !== undefined) return { kind: "reissue", because: "rearmed" }
    if (f.proof === "valid") return { kind: "reissue", because: "proven" }
    const clone = `hardware id ${hw} claimed device ${d.id} already and its key is in use: a cloned or reset board gets no key`
    if (f.proof === "invalid") return refuse(409, "E_ALREADY_CLAIMED", `${clone}; the key sent is not that device's key`)
    // the answer to the first claim was lost (a reboot, a dropped connection): nothing depends on that key yet
    if (!f.keyUsed) return { kind: "reissue", because: "unused" }
    return refuse(409, "E_ALREADY_CLAIMED", `${clone}; if this is that board, \`feedline devices rearm ${d.id}\` lets it claim again`)
}
