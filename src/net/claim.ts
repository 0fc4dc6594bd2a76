// The claim step [fleet] (docs/FLEET.md "Boards"): a board flashed with a product id and its activation
// code, and no key, claims its own feed and key once. One connection: the welcome, one request
// (post /products/<id>/claims), the answer; then the connection is left and the link starts as on any
// board, with the feed and key the answer gave. claimIfNeeded() (run by startLink() before the link starts,
// in a program that called enableClaims()) keeps them in settings (FEED_ID, then API_KEY), so after a reboot
// the board uses them directly.
//
// What a board does with each answer:
//   200/201 with a feed and a key             claimed
//   429, 5xx, 408, 409 E_CLAIM_CONFLICT, a notice, a lost connection
//                                             again after the server's retry_after_ms, else a backoff delay
//   any other 4xx (a wrong code, a revoked product, not on the allow-list, past the limit, claimed already)
//                                             logged with the server's reason, asked again REFUSED_RETRY_MS
//                                             later: each of them is undone by the operator (a re-arm, a new
//                                             code flashed, the allow-list or the limit raised), not by retrying
// The Claimer is the state machine alone (transport, clock and randomness injected, like the link's:
// test/firmware/claim.test.ts); claimIfNeeded() drives it over the device's one socket.
import * as ds from "@devicescript/core"
import { POLICY_SETTING_PREFIX } from "../app/config-board"
import { backoffDelayMs, ReconnectConfig, spreadByDevice } from "../backoff"
import { saveSetting } from "../flash"
import { decodeServerLine, encodeRequest, isNotice, Response } from "../protocol"
import { FIRMWARE_VERSION, LinkConfig, readTextSetting } from "./config"
import { LineFramer } from "./framer"
import { TICK_MS, Transport } from "./link"
import { NativeSocket, SocketSink } from "./socket"
import { runBeforeLink } from "./index"

/** Who the board is and what it claims with. */
export interface ClaimIdentity {
    /** the product's id ("p" and 8 hex digits): setting PRODUCT_ID */
    productId: string
    /** this board's activation code (`feedline products codes`): setting CLAIM_CODE */
    code: string
    /** deviceIdentifier("self"), or setting HW_ID where that is not the board's own (every simulated board is 12abdd2289421234) */
    hardwareId: string
    firmware: string
}

/** What a claim gave the board. */
export interface Claimed {
    device: string
    feedId: number
    apiKey: string
    /** sampling policy text by datastream id, as the product declares them */
    policies: any
}

export type ClaimPhase = "waiting" | "connecting" | "greeting" | "claiming" | "claimed"

export interface ClaimDeps {
    transport: Transport
    now(): number
    /** uniform in [0, 1) */
    random(): number
    log(msg: string): void
}

/** The claim request's token: one request per connection, nothing else shares it. */
const CLAIM_TOKEN = "claim"
/** From the socket's open to the claim's answer (the server answers in milliseconds once it welcomed). */
export const CLAIM_ANSWER_MS = 15000
/** readSetting/writeSetting throw on longer keys (platform notes §4): a policy of a longer datastream id is not kept */
const MAX_SETTING_KEY_CHARS = 13
/** After a refusal only the operator can undo, the board asks again this long after. */
export const REFUSED_RETRY_MS = 5 * 60000

export class Claimer implements SocketSink {
    phase: ClaimPhase = "waiting"
    /** set once claimed */
    result: Claimed = undefined
    /** why the last attempt ended ("" before the first) */
    lastError = ""
    attempts = 0
    private phaseSinceMs: number
    private nextAttemptMs: number
    private attempt = 0
    private framer: LineFramer

    constructor(private id: ClaimIdentity, private cfg: { connectTimeoutMs: number; backoff: ReconnectConfig }, private deps: ClaimDeps) {
        const now = deps.now()
        this.phaseSinceMs = now
        this.nextAttemptMs = now
        const self = this
        this.framer = new LineFramer(line => self.onLine(line))
    }

    tick() {
        const now = this.deps.now()
        const p = this.phase
        if (p === "waiting") {
            if (now >= this.nextAttemptMs) this.connect(now)
        } else if (p === "connecting") {
            if (now - this.phaseSinceMs >= this.cfg.connectTimeoutMs) this.retry("E_CONNECT_TIMEOUT", 0)
        } else if (p === "greeting" || p === "claiming") {
            if (now - this.phaseSinceMs >= CLAIM_ANSWER_MS) this.retry(p === "greeting" ? "E_NO_WELCOME" : "E_NO_CLAIM_ANSWER", 0)
        }
    }

    onOpen() {
        if (this.phase !== "connecting") return
        this.framer.reset()
        this.to("greeting")
    }

    onData(chunk: Buffer) {
        if (this.phase === "greeting" || this.phase === "claiming") this.framer.push(chunk)
    }

    onClosed(reason: string) {
        if (this.phase === "connecting" || this.phase === "greeting" || this.phase === "claiming") this.retry(reason || "E_CLOSED", 0)
    }

    private to(phase: ClaimPhase) {
        this.phase = phase
        this.phaseSinceMs = this.deps.now()
    }

    private connect(now: number) {
        this.attempts++
        const err = this.deps.transport.open()
        if (err === "") this.to("connecting")
        else this.retry(err, 0)
    }

    private onLine(line: string) {
        const d = decodeServerLine(line)
        if (d.kind === "welcome" && this.phase === "greeting") {
            this.to("claiming")
            const body = { hardware_id: this.id.hardwareId, code: this.id.code, firmware: this.id.firmware }
            this.deps.log(`claim: hardware id ${this.id.hardwareId} claims from product ${this.id.productId}`)
            this.deps.transport.send(encodeRequest({ method: "post", resource: "/products/" + this.id.productId + "/claims", body: body, token: CLAIM_TOKEN }) + "\n")
        } else if (d.kind === "response" && (this.phase === "claiming" || isNotice(d.response))) this.onResponse(d.response)
    }

    private onResponse(r: Response) {
        const b = r.body
        const hint = b && typeof b["retry_after_ms"] === "number" ? b["retry_after_ms"] : 0
        if (isNotice(r)) return this.retry("E_NOTICE_" + r.status, hint)
        if (r.token !== CLAIM_TOKEN) return
        const st = r.status
        const code = b && typeof b["code"] === "string" ? b["code"] : ""
        if (st === 200 || st === 201) {
            if (!b || typeof b["feed"] !== "number" || typeof b["key"] !== "string" || b["key"] === "") return this.retry("E_BAD_CLAIM_ANSWER", 0)
            this.result = { device: "" + b["device"], feedId: b["feed"], apiKey: b["key"], policies: b["policies"] || {} }
            this.deps.transport.close()
            this.to("claimed")
            this.deps.log(`claim: claimed device ${this.result.device}, feed ${this.result.feedId} (${st === 201 ? "new" : "a new key"})`)
        } else if (st === 429 || st === 408 || st >= 500 || code === "E_CLAIM_CONFLICT") this.retry(`E_CLAIM ${st} ${code}`, hint)
        else {
            // the server's reason says what the operator can do (re-arm the device, print the board's code…)
            const why = b && typeof b["errors"] === "string" ? b["errors"] : ""
            this.deps.log(`claim: refused ${st} ${code}: ${why}`)
            this.retry(`E_CLAIM ${st} ${code}`, REFUSED_RETRY_MS)
        }
    }

    /** Leaves the connection; the next attempt after the backoff delay, or `atLeastMs` when longer. */
    private retry(reason: string, atLeastMs: number) {
        this.deps.transport.close()
        const delayMs = backoffDelayMs(this.cfg.backoff, this.attempt, this.deps.random(), atLeastMs)
        this.attempt++
        this.lastError = reason
        this.nextAttemptMs = this.deps.now() + delayMs
        this.to("waiting")
        this.deps.log(`claim: ${reason}; again in ${delayMs} ms`)
    }
}

/** The board's claim credentials from its settings (text settings: an all-digit HW_ID deployed as a number stays text); undefined when it has none. */
export async function readClaimIdentity(): Promise<ClaimIdentity | undefined> {
    const hw = (await readTextSetting("HW_ID", "")) || ds.deviceIdentifier("self")
    const productId = await readTextSetting("PRODUCT_ID", "")
    const code = await readTextSetting("CLAIM_CODE", "")
    if (!productId || !code) {
        console.log(`claim: no PRODUCT_ID and CLAIM_CODE; this board's hardware id is ${hw} (what \`feedline products codes\` needs)`)
        return undefined
    }
    return { productId: productId, code: code, hardwareId: hw, firmware: FIRMWARE_VERSION }
}

/**
 * Runs before the link starts, once enableClaims() was called: a board without API_KEY that has a claim
 * identity claims (blocking until it has a key; the link has nothing to do without one), keeps what it got
 * in settings and puts it into `cfg`. A board with a key, or with nothing to claim with, goes on as it is.
 */
export async function claimIfNeeded(cfg: LinkConfig, sock: NativeSocket) {
    if (cfg.apiKey) return
    const id = await readClaimIdentity()
    if (!id) return
    const port = cfg.tls ? -cfg.port : cfg.port // the runtime selects TLS by a negative port
    const claimer: Claimer = new Claimer(id, cfg, {
        transport: { open: () => sock.connect(cfg.host, port, claimer), send: (text: string) => sock.send(text), close: () => sock.abandon() },
        now: ds.millis,
        random: spreadByDevice(id.hardwareId, Math.random),
        log: (msg: string) => console.log(msg),
    })
    while (claimer.phase !== "claimed") {
        sock.poll()
        claimer.tick()
        await ds.sleep(TICK_MS)
    }
    const got = claimer.result
    // the key last: a board that reboots before it is kept claims again, and gets a new key for the same feed
    await saveSetting("FEED_ID", got.feedId)
    for (const stream of Object.keys(got.policies)) {
        const key = POLICY_SETTING_PREFIX + stream
        if (key.length <= MAX_SETTING_KEY_CHARS && typeof got.policies[stream] === "string") await saveSetting(key, got.policies[stream])
    }
    if (!(await saveSetting("API_KEY", got.apiKey))) console.warn("claim: E_FLASH_WRITE the key is not kept; after a reboot this board claims again (re-arm it if that is refused)")
    cfg.feedId = got.feedId
    cfg.apiKey = got.apiKey
}

/**
 * Puts the claim step into this program's startLink() (src/net/index.ts runBeforeLink). An entry calls it
 * before starting the device: `npm start`'s simulated boards do. It is not in the board images by default:
 * it takes about 2.8 KB of the 64 KiB code window, which feedline_s3 does not have under the 40% the build
 * keeps free (docs/FLEET.md "Boards").
 */
export function enableClaims() {
    runBeforeLink(claimIfNeeded)
}
