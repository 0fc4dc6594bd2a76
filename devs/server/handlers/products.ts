// /products and /products/:product [fleet]: a master key makes a product (its secret is in the answer,
// this once), lists them and revokes one. A revoked product takes no new claims; its devices keep working.
import { HARDWARE_ID, newProductId, newProductKeys } from "../fleet/claim-codes.ts"
import { encode, isDatastreamId, MAX_VALUE_CHARS } from "../../../src/protocol.ts"
import { requireMaster, type Ctx, type Routes } from "../context.ts"
import { notFound, unprocessable } from "../errors.ts"
import { MAX_ALLOW_LIST, MAX_CLAIM_POLICY_BYTES, MAX_LABEL_CHARS } from "../limits.ts"
import type { ProductDatastream, ProductRecord } from "../storage/store.ts"
import { isoOf } from "../time.ts"
import { objectBody, plainText } from "./body.ts"
import { pageOf } from "./pages.ts"

/** The datastreams one product declares: more would not fit a board's settings (a policy each) anyway. */
export const MAX_PRODUCT_DATASTREAMS = 64
/** One page of GET /products, oldest first; `page` for the next. A product may list 500 hardware ids (tens of KB): 100 a page. */
export const PRODUCTS_PER_PAGE = 100

const EXAMPLE = '{"title":"field stations","datastreams":[{"id":"temp","policy":"i=10s d=0.2"}],"allow_list":["12abdd2289421234"],"claim_limit":100}'

/** A product as GET /products shows it: never its secret (which the server does not have). */
export function productJson(p: ProductRecord, devices?: number): Record<string, unknown> {
    return {
        id: p.id,
        title: p.title,
        datastreams: p.datastreams,
        allow_list: p.allowList,
        claim_limit: p.claimLimit,
        devices,
        created: isoOf(p.createdMs),
        revoked: p.revokedMs === undefined ? undefined : isoOf(p.revokedMs),
    }
}

/** The sampling policies a claim's answer hands the board (it keeps them as CFG_<id> settings), by datastream. */
export function claimPolicies(p: Pick<ProductRecord, "datastreams">): Record<string, string> {
    // own properties: `__proto__` is a valid datastream id, and assigned on a plain object it would hit the setter
    return Object.fromEntries(p.datastreams.flatMap((d) => (d.policy === undefined ? [] : [[d.id, d.policy]])))
}

function datastreamsOf(v: unknown): ProductDatastream[] {
    if (v === undefined) return []
    if (!Array.isArray(v) || v.length > MAX_PRODUCT_DATASTREAMS) {
        throw unprocessable("E_BAD_VALUE", `datastreams must be a list of at most ${MAX_PRODUCT_DATASTREAMS} such as [{"id":"temp","policy":"i=10s d=0.2"}]`)
    }
    const seen = new Set<string>()
    return v.map((d, i) => {
        const id = typeof d === "string" ? d : d?.id
        if (!isDatastreamId(id) || seen.has(id)) throw unprocessable("E_BAD_ID", `datastreams[${i}].id must be a new datastream id of 1 to 64 characters of A-Za-z0-9_.-`)
        seen.add(id)
        const policy = typeof d === "object" ? d.policy : undefined
        if (policy !== undefined && (typeof policy !== "string" || policy.length === 0 || policy.length > MAX_VALUE_CHARS)) {
            throw unprocessable("E_BAD_VALUE", `datastreams[${i}].policy must be a sampling policy of at most ${MAX_VALUE_CHARS} characters, e.g. "i=10s d=0.2 s=10m"`)
        }
        // handed to each board that claims (its CFG_<id> setting)
        if (policy !== undefined) plainText(policy, `datastreams[${i}].policy`)
        return policy === undefined ? { id } : { id, policy }
    })
}

function allowListOf(v: unknown): string[] | undefined {
    if (v === undefined || v === null) return undefined
    if (!Array.isArray(v) || v.length === 0 || v.length > MAX_ALLOW_LIST || !v.every((h) => typeof h === "string" && HARDWARE_ID.test(h))) {
        throw unprocessable("E_BAD_VALUE", `allow_list must be a list of 1 to ${MAX_ALLOW_LIST} hardware ids (1 to 64 characters of A-Za-z0-9_.:-), or left out to allow any board with a code`)
    }
    return [...new Set(v as string[])]
}

function claimLimitOf(v: unknown): number | undefined {
    if (v === undefined || v === null) return undefined
    if (!Number.isSafeInteger(v) || (v as number) < 1) throw unprocessable("E_BAD_VALUE", "claim_limit must be a positive whole number of devices, or left out for none")
    return v as number
}

async function list(ctx: Ctx) {
    requireMaster(ctx, "manage products")
    const { totalResults, page, items } = pageOf(await ctx.deps.store.listProducts(), ctx.params, PRODUCTS_PER_PAGE)
    const active = new Map<string, number>()
    for (const d of await ctx.deps.store.listDevices()) if (d.revokedMs === undefined) active.set(d.product, (active.get(d.product) ?? 0) + 1)
    return { status: 200, body: { totalResults, page, products: items.map((p) => productJson(p, active.get(p.id) ?? 0)) } }
}

/** POST {"title","datastreams"?,"allow_list"?,"claim_limit"?}: the answer carries the product secret, shown this once. */
async function create(ctx: Ctx) {
    requireMaster(ctx, "manage products")
    const body = objectBody(ctx.req.body, EXAMPLE)
    if (typeof body.title !== "string" || body.title.trim() === "" || body.title.length > MAX_LABEL_CHARS) {
        throw unprocessable("E_BAD_VALUE", `title must be a name of 1 to ${MAX_LABEL_CHARS} characters`)
    }
    plainText(body.title, "title")
    const datastreams = datastreamsOf(body.datastreams)
    // as the answer goes out (ASCII, every other character a 6-byte \uXXXX escape [P§3]), not in characters:
    // 14 policies of 32 "é" passed as 600 characters and made a ~3 KB answer, which a board drops
    const policyBytes = encode(claimPolicies({ datastreams })).length
    if (policyBytes > MAX_CLAIM_POLICY_BYTES) {
        throw unprocessable("E_BAD_VALUE", `the datastreams' policies take ${policyBytes} bytes in a claim's answer, more than the ${MAX_CLAIM_POLICY_BYTES} a board can read; give fewer datastreams a policy`)
    }
    const id = newProductId()
    const { secret, verifyKey } = newProductKeys(id)
    const product: ProductRecord = {
        id,
        title: body.title,
        verifyKey,
        datastreams,
        allowList: allowListOf(body.allow_list),
        claimLimit: claimLimitOf(body.claim_limit),
        createdMs: ctx.deps.now(),
    }
    await ctx.deps.store.insertProduct(product)
    ctx.deps.log.info({ product: id, title: product.title }, "product created") // never the secret
    return { status: 201, body: { ...productJson(product, 0), secret, resource: `/products/${id}` } }
}

async function read(ctx: Ctx) {
    requireMaster(ctx, "manage products")
    const p = await ctx.deps.store.getProduct(ctx.path.product)
    if (!p) throw notFound(`there is no product ${ctx.path.product}`)
    const devices = (await ctx.deps.store.listDevices(p.id)).filter((d) => d.revokedMs === undefined).length
    return { status: 200, body: productJson(p, devices) }
}

/** DELETE: revoked, not removed: it takes no new claims, its devices and their keys keep working. */
async function revoke(ctx: Ctx) {
    requireMaster(ctx, "manage products")
    if (!(await ctx.deps.store.revokeProduct(ctx.path.product, ctx.deps.now()))) throw notFound(`there is no unrevoked product ${ctx.path.product}`)
    ctx.deps.log.info({ product: ctx.path.product }, "product revoked")
    return { status: 200, body: { id: ctx.path.product, revoked: true } }
}

export const productsRoutes: Routes = { get: list, post: create }
export const productRoutes: Routes = { get: read, delete: revoke }
