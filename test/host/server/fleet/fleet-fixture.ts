// What the fleet tests share: a product made through the API, each board's activation code, a claim on
// any of the three doors, and a count of everything a claim could create (so a refusal can be shown to
// create nothing).
import assert from "node:assert/strict"
import { activationCode, parseProductSecret } from "../../../../devs/server/fleet/claim-codes.ts"
import { http, httpFrom, TlsClient, WsClient, type TestServer } from "../../harness/server-harness.ts"

export type Door = "tls" | "http" | "ws"
export const DOORS: Door[] = ["tls", "http", "ws"]

export interface Product {
    id: string
    secret: string
    /** the board's activation code */
    code(hardwareId: string): string
}

export async function makeProduct(s: TestServer, body: Record<string, unknown> = {}): Promise<Product> {
    const r = await http(s, "POST", "/v2/products", { key: s.credentials.masterKey, body: { title: "field stations", ...body } })
    assert.equal(r.status, 201, JSON.stringify(r.body))
    const parsed = parseProductSecret(r.body.secret)!
    assert.equal(parsed.productId, r.body.id)
    return { id: r.body.id, secret: r.body.secret, code: (hw) => activationCode(parsed.signingKey, parsed.productId, hw) }
}

export interface Answer {
    status: number
    body: any
}

/** One claim on `door`; for TLS and WebSocket the client stays open (returned) so a test can go on on it. */
export async function claimOn(s: TestServer, door: Door, productId: string, body: Record<string, unknown>): Promise<Answer & { client?: TlsClient | WsClient }> {
    const resource = `/products/${productId}/claims`
    if (door === "http") {
        const r = await http(s, "POST", `/v2${resource}`, { body })
        return { status: r.status, body: r.body }
    }
    const client = door === "tls" ? await TlsClient.connect(s) : await WsClient.open(s, { heartbeat: true })
    await client.welcome()
    const r = await client.request({ method: "post", resource, body })
    return { status: r.status, body: r.body, client }
}

/** Claims over HTTP (the door does not matter to the test) and closes nothing. */
export async function claim(s: TestServer, p: Product, hardwareId: string, extra: Record<string, unknown> = {}): Promise<Answer> {
    return claimOn(s, "http", p.id, { hardware_id: hardwareId, code: p.code(hardwareId), firmware: "0.1.0", ...extra })
}

/** One claim over HTTP from loopback address `from` (127.0.0.x: each its own address to the server's limits). */
export async function claimFrom(s: TestServer, from: string, productId: string, body: Record<string, unknown>): Promise<Answer> {
    const r = await httpFrom(s, from, "POST", `/v2/products/${productId}/claims`, { body })
    return { status: r.status, body: r.body }
}

/** Everything a claim could make. */
export async function inventory(s: TestServer): Promise<{ feeds: number; keys: number; activeKeys: number; devices: number }> {
    const keys = await s.store.listKeys()
    return {
        feeds: (await s.store.listFeeds()).length,
        keys: keys.length,
        activeKeys: keys.filter((k) => k.revokedMs === undefined).length,
        devices: (await s.store.listDevices()).length,
    }
}

/** A write with `key`: the status (200 when the key works on that feed). */
export async function writeWith(s: TestServer, key: string, feed: number, value = "1"): Promise<number> {
    return (await http(s, "PUT", `/v2/feeds/${feed}`, { key, body: { datastreams: [{ id: "temp", current_value: value }] } })).status
}
