// Link configuration from device settings (flash). Keys are at most 13 characters (the settings API
// throws above that). Defaults sit in .env.defaults; secrets (API_KEY) in .env.local. See docs/FIRMWARE.md
// "Firmware configuration (settings)".
import { DEFAULT_BACKOFF, ReconnectConfig } from "../backoff"
import { readBack, readSettingValue } from "../flash"
import { MAX_OUTBOX_BYTES } from "../foundation/outbox-budget"

export interface LinkConfig {
    /** server name; on a device it must match the server certificate (SNI + hostname check) */
    host: string
    /** device TLS port [P§1] */
    port: number
    /** false only for a development server started with --insecure-tcp-port */
    tls: boolean
    feedId: number
    apiKey: string
    /** no successful exchange for this long → ds.reboot() (stretched by earlier reboots) */
    rebootMin: number
    /** reboots the link has already done for lack of a server (kept in settings) */
    reboots: number
    /** [fleet] program starts since the board was flashed, this one included (setting BOOTS): the `_boots` datastream */
    boots: number
    /** heap budget of the outbox, estimated as ~60 bytes per queued sample (16000: ~240 samples; at most MAX_OUTBOX_BYTES) */
    outboxBytes: number
    /** period of the link's own diagnostics datastreams (_rtt_ms, …) */
    diagMs: number
    /** give up on a TCP/TLS connect after this long (a device handshake can take seconds) */
    connectTimeoutMs: number
    backoff: ReconnectConfig
}

/** The firmware's version, sent with a claim (the fleet view shows it). Kept equal to package.json's. */
export const FIRMWARE_VERSION = "0.1.0"

/** Settings key of the reboot counter, written by the link itself. */
export const REBOOTS_KEY = "REBOOTS"
/** Settings key of the boot counter, written by the link at every start. */
export const BOOTS_KEY = "BOOTS"

export const DEFAULT_CONFIG: LinkConfig = {
    host: "localhost",
    port: 7443,
    tls: true,
    feedId: 1,
    apiKey: "",
    rebootMin: 15,
    reboots: 0,
    boots: 1,
    outboxBytes: MAX_OUTBOX_BYTES,
    diagMs: 60000,
    connectTimeoutMs: 15000,
    backoff: DEFAULT_BACKOFF,
}

/** Reads every link setting; a missing or mistyped one falls back to DEFAULT_CONFIG (and says so). */
export async function readLinkConfig(): Promise<LinkConfig> {
    const d = DEFAULT_CONFIG
    const cfg: LinkConfig = {
        host: await readTextSetting("SRV_HOST", d.host),
        port: await num("SRV_PORT", d.port),
        tls: (await readSettingValue("SRV_TLS")) !== false,
        feedId: await num("FEED_ID", d.feedId),
        apiKey: await readTextSetting("API_KEY", d.apiKey),
        rebootMin: await num("REBOOT_MIN", d.rebootMin),
        reboots: await num(REBOOTS_KEY, d.reboots),
        boots: (await num(BOOTS_KEY, 0)) + 1,
        outboxBytes: outboxBudget(await num("OUTBOX_BYTES", d.outboxBytes)),
        diagMs: (await num("DIAG_S", d.diagMs / 1000)) * 1000,
        connectTimeoutMs: (await num("CONNECT_S", d.connectTimeoutMs / 1000)) * 1000,
        backoff: {
            baseMs: await num("BACKOFF_MS", d.backoff.baseMs),
            capMs: (await num("BACKOFF_MAX_S", d.backoff.capMs / 1000)) * 1000,
            stableMs: d.backoff.stableMs,
        },
    }
    // no API_KEY is a fleet board's normal start (it claims one): src/net/claim.ts warns when it has no code either
    return cfg
}

/** More than MAX_OUTBOX_BYTES would eat the heap margin the firmware was measured with: clamped, said once. */
export function outboxBudget(bytes: number): number {
    if (bytes <= MAX_OUTBOX_BYTES) return bytes
    console.warn(`link: E_SETTING OUTBOX_BYTES=${bytes} is above the heap budget; using ${MAX_OUTBOX_BYTES}`)
    return MAX_OUTBOX_BYTES
}

async function num(key: string, dflt: number): Promise<number> {
    let v = await readSettingValue(key)
    if (v === undefined) v = dflt
    if (typeof v === "number" && v >= 0) return v
    console.warn(`link: setting ${key}=${v} is not a non-negative number; using ${dflt}`)
    return dflt
}

/**
 * A text setting, read as the JSON the settings service holds. Deploying `.env` files stores an all-digit
 * value (API_KEY=123456789012) as a JSON number, which readSetting() would hand back as a number; up to
 * EXACT_DIGITS digits the stored text is exact and is kept as it is. A longer one was rounded by the deploy
 * (a double holds 15-17 digits) and cannot be recovered: refused with E_SETTING and the fix.
 */
export async function readTextSetting(key: string, dflt: string): Promise<string> {
    const json = await readBack(key)
    if (!json) return dflt // none, or the settings service did not answer
    if (json.charCodeAt(0) === 34) return JSON.parse(json)
    for (let i = 0; i < json.length; ++i) {
        const c = json.charCodeAt(i)
        if (c < 48 || c > 57 || i >= EXACT_DIGITS) {
            console.warn(`link: E_SETTING ${key}=${json} is not text, or was rounded as a number: write it in quotes in .env.local (${key}="...")`)
            return dflt
        }
    }
    return json
}

/** Every integer of this many digits is exact in a double, and Node prints it as such. */
const EXACT_DIGITS = 15
