// The claim step [fleet] (docs/FLEET.md "Boards"): a board flashed with a product id and its activation
// code, and no key, claims its own feed and key once. The claim rides on the link (src/net/link.ts claim()):
// after each welcome the link sends `post /products/<id>/claims` before anything else, and no batch leaves
// until the answer gave a key; then the link goes on with that feed and key on the same connection.
// startLink() runs claimIfNeeded() on every board without API_KEY, and keeps what it got in settings
// (FEED_ID, the product's policies, then API_KEY), so after a reboot the board uses them directly.
//
// What a board does with each answer:
//   200/201 with a feed and a key             claimed
//   429, 5xx, 408, 409 E_CLAIM_CONFLICT, an answer without a key
//                                             connects again after the server's retry_after_ms, else the
//                                             link's backoff delay (as after a lost connection, a notice or
//                                             a missing answer, which the link handles itself)
//   any other 4xx (a wrong code, a revoked product, not on the allow-list, past the limit, claimed already)
//                                             logged with the server's reason, asked again REFUSED_RETRY_MS
//                                             later: each of them is undone by the operator (a re-arm, a new
//                                             code flashed, the allow-list or the limit raised), not by retrying
// It lives in the link rather than on a connection of its own: the link's connect, welcome, deadlines and
// backoff serve it, which keeps it to about 1 KB of the 64 KiB code window every board image shares.
import * as ds from "@devicescript/core"
import { POLICY_SETTING_PREFIX } from "../foundation/config"
import { logLine } from "../foundation/ports"
import { saveSetting } from "../flash"
import { encodeShortRequest, Response } from "../protocol"
import { FIRMWARE_VERSION, readTextSetting } from "./config"
import { Link } from "./link"

/** Who the board is and what it claims with. */
export interface ClaimIdentity {
    /** the product's id ("p" and 8 hex digits): setting PRODUCT_ID */
    productId: string
    /** this board's activation code (`feedline products codes`): setting CLAIM_CODE */
    code: string
    /** deviceIdentifier("self"), or setting HW_ID where that is not the board's own (every simulated board is 12abdd2289421234) */
    hardwareId: string
}

/** readSetting/writeSetting throw on longer keys (platform notes §4): a policy of a longer datastream id is not kept */
const MAX_SETTING_KEY_CHARS = 13
/** After a refusal only the operator can undo, the board asks again this long after (at least). */
export const REFUSED_RETRY_MS = 5 * 60000

/**
 * Puts the claim into `link`: the request after every welcome, each answer handled as above. Returns the
 * claim's state; `got` is the answer's body (feed, key, device, policies) once claimed.
 */
export function claimThrough(link: Link, id: ClaimIdentity, log: (msg: string) => void): { got: any } {
    const state: { got: any } = { got: undefined }
    const body = { hardware_id: id.hardwareId, code: id.code, firmware: FIRMWARE_VERSION }
    log(`claim: hardware id ${id.hardwareId} claims from product ${id.productId}`)
    link.claim(
        // [P§5a] the short form, as the link writes everything: the image carries one envelope writer
        token => encodeShortRequest({ method: "post", resource: "/products/" + id.productId + "/claims", body: body, token: token }),
        (r: Response) => {
            const b = r.body || {}
            const st = r.status
            const code = b["code"] || ""
            if (st < 300 && typeof b["feed"] === "number" && b["key"]) {
                state.got = b
                link.useKey(b["feed"], "" + b["key"])
                return log(`claim: claimed device ${b["device"]}, feed ${b["feed"]} (${st === 201 ? "new" : "a new key"})`)
            }
            const soon = st < 300 || st === 429 || st === 408 || st >= 500 || code === "E_CLAIM_CONFLICT"
            // the server's reason says what the operator can do (re-arm the device, print the board's code…)
            if (!soon) log(`claim: refused ${st} ${code}: ${b["errors"]}`)
            const hint = typeof b["retry_after_ms"] === "number" ? b["retry_after_ms"] : 0
            link.reconnect(`E_CLAIM ${st} ${code}`, soon ? hint : Math.max(hint, REFUSED_RETRY_MS))
        }
    )
    return state
}

/** The board's claim credentials from its settings (text settings: an all-digit HW_ID deployed as a number stays text); undefined when it has none. */
export async function readClaimIdentity(): Promise<ClaimIdentity | undefined> {
    const hw = (await readTextSetting("HW_ID", "")) || ds.deviceIdentifier("self")
    const productId = await readTextSetting("PRODUCT_ID", "")
    const code = await readTextSetting("CLAIM_CODE", "")
    if (!productId || !code) {
        console.log(`claim: no PRODUCT_ID and CLAIM_CODE; this board's hardware id is ${hw} (what \`feedline products codes\` needs)`)
        console.warn("link: E_NO_API_KEY: no API_KEY and nothing to claim one with; the server will refuse this device (401). Put PRODUCT_ID and CLAIM_CODE (docs/FLEET.md), or the device key, in .env.local")
        return undefined
    }
    return { productId: productId, code: code, hardwareId: hw }
}

/**
 * Run by startLink() on a board without a key: one with a claim identity claims (blocking until it has a
 * key: the board's sensors and actuators have nothing to report to before) and keeps what it got in
 * settings; one with nothing to claim with goes on as it is.
 */
export async function claimIfNeeded(link: Link) {
    const id = await readClaimIdentity()
    if (!id) return
    const claim = claimThrough(link, id, logLine)
    while (!claim.got) await ds.sleep(100)
    const got = claim.got
    // the key last: a board that reboots before it is kept claims again, and gets a new key for the same feed
    await saveSetting("FEED_ID", got["feed"])
    const policies = got["policies"] || {}
    for (const stream of Object.keys(policies)) {
        const key = POLICY_SETTING_PREFIX + stream
        if (key.length <= MAX_SETTING_KEY_CHARS && typeof policies[stream] === "string") await saveSetting(key, policies[stream])
    }
    if (!(await saveSetting("API_KEY", "" + got["key"]))) console.warn("claim: E_FLASH_WRITE the key is not kept; after a reboot this board claims again (re-arm it if that is refused)")
}
