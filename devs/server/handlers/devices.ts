// /devices, /devices/:device, /devices/:device/rearm [fleet]: the fleet view for a master key. Each device
// with its hardware id, feed, claim time, last seen, link state (connected now, and what its own `_state`
// says), firmware version and reboots (its `_firmware` and `_boots` datastreams, else what it said when it
// claimed); the operator renames (the feed's title follows), re-arms (its next claim gets a new key) or
// revokes one (its key with it: its connections lose it at once).
import { requireMaster, type Ctx, type Routes } from "../context.ts"
import { notFound, unprocessable } from "../errors.ts"
import { MAX_LABEL_CHARS } from "../limits.ts"
import type { DeviceRecord } from "../storage/store.ts"
import { isoOf } from "../time.ts"
import { objectBody, plainText } from "./body.ts"
import { pageOf } from "./pages.ts"

/** One page of GET /devices (each device costs a read of its feed's datastreams); `page` for the next. */
export const DEVICES_PER_PAGE = 500

/** Datastreams the firmware reports about itself that the fleet view shows. */
const FIRMWARE_STREAM = "_firmware"
const BOOTS_STREAM = "_boots"
const STATE_STREAM = "_state"

export type DeviceLink = "up" | "degraded" | "offline"

function stateOf(d: DeviceRecord): "active" | "rearmed" | "revoked" {
    return d.revokedMs !== undefined ? "revoked" : d.rearmedMs !== undefined ? "rearmed" : "active"
}

/** Key ids with a connection open now (any door, on any process of the store: the session directory). */
async function connectedKeys(ctx: Ctx): Promise<Set<string>> {
    const keys = new Set<string>()
    for (const e of await ctx.deps.sessions.list()) if (e.grant && !e.grant.bearer) keys.add(e.grant.keyId)
    return keys
}

async function deviceJson(ctx: Ctx, d: DeviceRecord, connected: Set<string>): Promise<Record<string, unknown>> {
    const streams = new Map((await ctx.deps.store.listDatastreams(d.feed)).map((s) => [s.id, s.currentValue]))
    const boots = Number(streams.get(BOOTS_STREAM))
    const online = d.revokedMs === undefined && connected.has(d.keyId)
    const link: DeviceLink = !online ? "offline" : streams.get(STATE_STREAM) === "degraded" ? "degraded" : "up"
    const lastSeen = online ? ctx.deps.now() : ctx.deps.fleet.lastSeenMs(d)
    return {
        id: d.id,
        product: d.product,
        hardware_id: d.hardwareId,
        name: d.name,
        feed: d.feed,
        claimed: isoOf(d.claimedMs),
        last_seen: lastSeen === undefined ? null : isoOf(lastSeen),
        link,
        firmware: streams.get(FIRMWARE_STREAM) ?? (d.firmware || null),
        reboots: Number.isSafeInteger(boots) && boots > 0 ? boots - 1 : null,
        state: stateOf(d),
        key_id: d.keyId,
    }
}

async function deviceOf(ctx: Ctx): Promise<DeviceRecord> {
    const d = await ctx.deps.store.getDevice(ctx.path.device)
    if (!d) throw notFound(`there is no device ${ctx.path.device}; ids are in GET /devices`)
    return d
}

/** GET ?product=p…&page=N */
async function list(ctx: Ctx) {
    requireMaster(ctx, "see the fleet")
    const product = ctx.params.product === undefined ? undefined : String(ctx.params.product)
    if (product !== undefined && !(await ctx.deps.store.getProduct(product))) throw notFound(`there is no product ${product}`)
    const { totalResults, page, items } = pageOf(await ctx.deps.store.listDevices(product), ctx.params, DEVICES_PER_PAGE)
    const connected = await connectedKeys(ctx)
    const devices = []
    for (const d of items) devices.push(await deviceJson(ctx, d, connected))
    return { status: 200, body: { totalResults, page, devices } }
}

async function read(ctx: Ctx) {
    requireMaster(ctx, "see the fleet")
    return { status: 200, body: await deviceJson(ctx, await deviceOf(ctx), await connectedKeys(ctx)) }
}

/** PUT {"name":"north field 3"}: the device's name, and its feed's title */
async function rename(ctx: Ctx) {
    requireMaster(ctx, "manage the fleet")
    const body = objectBody(ctx.req.body, '{"name":"north field 3"}')
    if (typeof body.name !== "string" || body.name.length > MAX_LABEL_CHARS) throw unprocessable("E_BAD_VALUE", `name must be a string of at most ${MAX_LABEL_CHARS} characters`)
    plainText(body.name, "name")
    if (!(await ctx.deps.store.renameDevice(ctx.path.device, body.name, ctx.deps.now()))) throw notFound(`there is no device ${ctx.path.device}`)
    return { status: 200, body: await deviceJson(ctx, await deviceOf(ctx), await connectedKeys(ctx)) }
}

/** POST /devices/:device/rearm: its next claim gets a new key (a reset board, a replaced one); lifts a revocation */
async function rearm(ctx: Ctx) {
    requireMaster(ctx, "manage the fleet")
    if (!(await ctx.deps.store.rearmDevice(ctx.path.device, ctx.deps.now()))) throw notFound(`there is no device ${ctx.path.device}`)
    ctx.deps.log.info({ device: ctx.path.device }, "device re-armed: its next claim gets a new key")
    return { status: 200, body: await deviceJson(ctx, await deviceOf(ctx), await connectedKeys(ctx)) }
}

/** DELETE: the device and its key are revoked (its subscriptions end); its claims are refused until re-armed */
async function revoke(ctx: Ctx) {
    requireMaster(ctx, "manage the fleet")
    const d = await ctx.deps.store.revokeDevice(ctx.path.device, ctx.deps.now())
    if (!d) throw notFound(`there is no unrevoked device ${ctx.path.device}`)
    await ctx.deps.keys.refresh() // its key counts as revoked from the next request; its subscriptions end
    ctx.deps.log.info({ device: d.id, key: d.keyId }, "device revoked")
    return { status: 200, body: { id: d.id, revoked: true, revoked_key: d.keyId } }
}

export const devicesRoutes: Routes = { get: list }
export const deviceRoutes: Routes = { get: read, put: rename, delete: revoke }
export const deviceRearmRoutes: Routes = { post: rearm }
