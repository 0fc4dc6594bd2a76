// /keys and /keys/:key: the master key creates, lists and revokes keys [P§7].
import { describeKey } from "../auth/keys.ts"
import { notFound, unprocessable } from "../errors.ts"
import { requireMaster, type Ctx, type Routes } from "../context.ts"
import { PERMISSIONS, type Permission } from "../auth/grant.ts"
import { objectBody, plainText } from "./body.ts"
import { pageOf } from "./pages.ts"

/** One page of GET /keys, oldest first; `page` for the next (a tenant may hold a key per device: thousands). */
export const KEYS_PER_PAGE = 500

async function list(ctx: Ctx) {
    requireMaster(ctx)
    const { totalResults, page, items } = pageOf(await ctx.deps.keys.list(), ctx.params, KEYS_PER_PAGE)
    return { status: 200, body: { totalResults, page, keys: items.map(describeKey) } }
}

/** POST {"label":"field 7","permissions":["read","update"],"feeds":[7]} (feeds "*" or left out: all) */
async function create(ctx: Ctx) {
    requireMaster(ctx)
    const body = objectBody(ctx.req.body, '{"label":"field 7","permissions":["read","update"],"feeds":[7]}')
    const master = body.master === true
    const permissions = body.permissions ?? (master ? PERMISSIONS : undefined)
    if (!Array.isArray(permissions) || permissions.length === 0 || !permissions.every((p) => PERMISSIONS.includes(p))) {
        throw unprocessable("E_BAD_VALUE", `permissions must be a non-empty list of ${PERMISSIONS.join(", ")}`)
    }
    let feeds: number[] | undefined
    if (body.feeds !== undefined && body.feeds !== "*") {
        if (!Array.isArray(body.feeds) || !body.feeds.every((f: unknown) => Number.isSafeInteger(f) && (f as number) > 0)) {
            throw unprocessable("E_BAD_VALUE", 'feeds must be a list of feed ids such as [7], or "*" for all')
        }
        feeds = body.feeds
    }
    if (body.label !== undefined && (typeof body.label !== "string" || body.label.length > 255)) {
        throw unprocessable("E_BAD_VALUE", "label must be a string of at most 255 characters")
    }
    if (body.label !== undefined) plainText(body.label, "label")
    if (body.key !== undefined && typeof body.key !== "string") throw unprocessable("E_BAD_VALUE", "key must be a string")
    const { record, secret } = await ctx.deps.keys.create({ label: body.label, permissions: permissions as Permission[], feeds, master, secret: body.key })
    return { status: 201, body: { ...describeKey(record), key: secret } }
}

async function read(ctx: Ctx) {
    requireMaster(ctx)
    const k = (await ctx.deps.keys.list()).find((k) => k.id === ctx.path.key)
    if (!k) throw notFound(`there is no key with id ${ctx.path.key}`)
    return { status: 200, body: describeKey(k) }
}

async function revoke(ctx: Ctx) {
    requireMaster(ctx)
    if (!(await ctx.deps.keys.revoke(ctx.path.key))) throw notFound(`there is no unrevoked key with id ${ctx.path.key}`)
    return { status: 200 }
}

export const keysRoutes: Routes = { get: list, post: create }
export const keyRoutes: Routes = { get: read, delete: revoke }
