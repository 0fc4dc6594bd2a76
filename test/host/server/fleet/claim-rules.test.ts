// [fleet] The pure parts of claiming: activation codes (Ed25519 over product and hardware id) and the one
// decision of what a claim gets, case by case and in the order the checks are made.
import assert from "node:assert/strict"
import { test } from "node:test"
import { activationCode, isActivationCode, newProductId, newProductKeys, parseProductSecret } from "../../../../devs/server/fleet/claim-codes.ts"
import { decideClaim, type ClaimFacts } from "../../../../devs/server/fleet/claim-decision.ts"
import type { DeviceRecord, ProductRecord } from "../../../../devs/server/storage/store.ts"

test("a code is good for one hardware id of one product, and only the secret makes it", () => {
    const id = newProductId()
    assert.match(id, /^p[0-9a-f]{8}$/)
    const { secret, verifyKey } = newProductKeys(id)
    const parsed = parseProductSecret(secret)!
    assert.equal(parsed.productId, id)
    assert.ok(parsed.verifyKey.equals(verifyKey), "the secret holds the public half the server stores")
    const code = activationCode(parsed.signingKey, id, "12abdd2289421234")
    assert.equal(code.length, 86)
    assert.equal(isActivationCode(verifyKey, id, "12abdd2289421234", code), true)
    assert.equal(isActivationCode(verifyKey, id, "12abdd2289421235", code), false, "another board")
    const other = newProductKeys(id)
    assert.equal(isActivationCode(other.verifyKey, id, "12abdd2289421234", code), false, "another product key")
    assert.equal(isActivationCode(verifyKey, "p00000000", "12abdd2289421234", code), false, "another product id")
    for (const bad of ["", "x", code.slice(1), code + "A", code.replace(/.$/, "!"), "A".repeat(86)]) assert.equal(isActivationCode(verifyKey, id, "12abdd2289421234", bad), false, bad)
    for (const bad of ["", id, `${id}.short`, `P12345678.${secret.split(".")[1]}`, secret + "x"]) assert.equal(parseProductSecret(bad), undefined, bad)
    assert.ok(parseProductSecret(`  ${secret}\n`), "a secret read from a file keeps its newline")
})

const product: ProductRecord = { id: "p1", title: "t", verifyKey: Buffer.alloc(32), datastreams: [], createdMs: 0 }
const device: DeviceRecord = { id: "d1", product: "p1", hardwareId: "hw", name: "", feed: 7, keyId: "k", firmware: "", claimedMs: 0 }
const facts = (f: Partial<ClaimFacts>): ClaimFacts => ({ product, hardwareId: "hw", codeValid: true, proof: "none", keyUsed: false, ...f })
const outcome = (f: Partial<ClaimFacts>) => {
    const d = decideClaim(facts(f))
    return d.kind === "refuse" ? `${d.error.status} ${d.error.code}` : d.kind === "reissue" ? `reissue ${d.because}` : "new"
}

test("what a claim gets: the checks in order, and why a claimed board gets a key or a 409", () => {
    const revoked = { ...product, revokedMs: 1 }
    const listed = { ...product, allowList: ["other"] }
    const cases: [string, Partial<ClaimFacts>, string][] = [
        ["a new board", {}, "new"],
        ["a wrong code comes first, whatever else is wrong", { codeValid: false, product: { ...revoked, allowList: [] }, existing: device, keyUsed: true }, "401 E_BAD_CLAIM_CODE"],
        ["a revoked product, before the allow-list", { product: { ...revoked, allowList: [] } }, "403 E_PRODUCT_REVOKED"],
        ["a revoked product, also for a re-armed device", { product: revoked, existing: { ...device, rearmedMs: 1 } }, "403 E_PRODUCT_REVOKED"],
        ["outside the allow-list", { product: listed }, "403 E_HARDWARE_NOT_LISTED"],
        ["claimed, key never used: the first answer was lost", { existing: device }, "reissue unused"],
        ["claimed, key in use: a clone", { existing: device, keyUsed: true }, "409 E_ALREADY_CLAIMED"],
        ["claimed, key in use, re-armed", { existing: { ...device, rearmedMs: 1 }, keyUsed: true }, "reissue rearmed"],
        ["claimed, key in use, proven", { existing: device, keyUsed: true, proof: "valid" }, "reissue proven"],
        ["claimed, a wrong key sent, even if unused", { existing: device, proof: "invalid" }, "409 E_ALREADY_CLAIMED"],
        ["a revoked device, even with its key", { existing: { ...device, revokedMs: 1 }, proof: "valid" }, "403 E_DEVICE_REVOKED"],
    ]
    for (const [what, f, expected] of cases) assert.equal(outcome(f), expected, what)
})
