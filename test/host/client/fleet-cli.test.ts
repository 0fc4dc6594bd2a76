// [fleet] `feedline products` and `feedline devices` against a real server, as the "Flash a fleet" steps
// use them: make a product, keep its secret in a file, print a batch's codes, a board claims with one,
// then list, rename, re-arm and revoke; revoke the product.
import assert from "node:assert/strict"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { after, test } from "node:test"
import { runClientCommand } from "../../../devs/client/commands/index.ts"
import { http, serverForThisFile } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "feedline-fleet-cli-"))
after(() => fs.rmSync(dir, { recursive: true, force: true }))

async function feedline(name: string, args: string[], env: Record<string, string> = {}) {
    let out = ""
    let err = ""
    const io = {
        out: (t: string) => void (out += t),
        err: (t: string) => void (err += t),
        env: { FEEDLINE_SERVER: `tls://localhost:${s.devicePort}`, FEEDLINE_KEY: s.credentials.masterKey, FEEDLINE_CA: s.caCertPath, ...env },
    }
    const code = await runClientCommand(name, args, io)
    return { code, out, err }
}

test("products create, codes, list, revoke; devices list, rename, rearm, revoke", async () => {
    const made = await feedline("products", ["create", "--title", "north field", "--datastream", "temp=i=10s d=0.2", "--datastream", "humidity", "--claim-limit", "10", "--json"])
    assert.equal(made.code, 0, made.err)
    const product = JSON.parse(made.out)
    assert.deepEqual(product.datastreams, [{ id: "temp", policy: "i=10s d=0.2" }, { id: "humidity" }])
    assert.equal(product.claim_limit, 10)
    const secretFile = path.join(dir, "product.secret")
    fs.writeFileSync(secretFile, product.secret + "\n", { mode: 0o600 })
    const idsFile = path.join(dir, "boards.txt")
    fs.writeFileSync(idsFile, "# bench 1\n12abdd2289421234\n\n12abdd2289421235\n")

    // codes: computed here from the secret, no server and no key needed
    const codes = await feedline("products", ["codes", "--secret-file", secretFile, "--hardware-ids-file", idsFile], { FEEDLINE_KEY: "", FEEDLINE_SERVER: "tls://127.0.0.1:1" })
    assert.equal(codes.code, 0, codes.err)
    const lines = codes.out.trim().split("\n").map((l) => l.split(" "))
    assert.deepEqual(lines.map((l) => l[0]), ["12abdd2289421234", "12abdd2289421235"])
    const fromEnv = await feedline("products", ["codes", "--hardware-ids", "12abdd2289421234", "--json"], { FEEDLINE_PRODUCT_SECRET: product.secret })
    assert.deepEqual(JSON.parse(fromEnv.out), [{ product: product.id, hardware_id: "12abdd2289421234", code: lines[0][1] }])
    const noSecret = await feedline("products", ["codes", "--hardware-ids", "x"])
    assert.equal(noSecret.code, 2)
    assert.match(noSecret.err, /product secret/)

    // a board claims with its printed code
    const claimed = await http(s, "POST", `/v2/products/${product.id}/claims`, { body: { hardware_id: lines[1][0], code: lines[1][1], firmware: "0.1.0" } })
    assert.equal(claimed.status, 201, JSON.stringify(claimed.body))
    const deviceId = claimed.body.device

    const listed = await feedline("products", ["list"])
    assert.match(listed.out, new RegExp(`${product.id}\\s+north field\\s+1\\s+10`))
    assert.ok(!listed.out.includes(product.secret.split(".")[1]))

    const devices = await feedline("devices", ["list", "--product", product.id, "--json"])
    assert.equal(devices.code, 0, devices.err)
    assert.deepEqual(JSON.parse(devices.out).map((d: any) => [d.id, d.hardware_id, d.firmware]), [[deviceId, "12abdd2289421235", "0.1.0"]])
    const table = await feedline("devices", ["list"])
    assert.match(table.out, /hardware_id.*last_seen.*link.*firmware.*reboots/)
    assert.match(table.out, new RegExp(`${deviceId}\\s+12abdd2289421235`))

    const renamed = await feedline("devices", ["rename", deviceId, "north", "field", "3"])
    assert.equal(renamed.code, 0, renamed.err)
    assert.equal((await s.store.getFeed(claimed.body.feed))!.title, "north field 3")
    assert.equal((await feedline("devices", ["rearm", deviceId])).code, 0)
    assert.equal((await s.store.getDevice(deviceId))!.rearmedMs !== undefined, true)
    const revoked = await feedline("devices", ["revoke", deviceId])
    assert.match(revoked.out, /revoked .* and its key/)
    const missing = await feedline("devices", ["revoke", deviceId])
    assert.equal(missing.code, 5)
    assert.match(missing.err, /E_NOT_FOUND|no unrevoked device/)

    // --secret-file: the secret in a new owner-only file, not on the terminal; an existing file is never replaced
    const keptFile = path.join(dir, "south.secret")
    const kept = await feedline("products", ["create", "--title", "south field", "--secret-file", keptFile, "--json"])
    assert.equal(kept.code, 0, kept.err)
    const south = JSON.parse(kept.out)
    assert.equal(south.secret, undefined)
    assert.equal(south.secret_file, keptFile)
    assert.equal(fs.statSync(keptFile).mode & 0o777, 0o600)
    const southCodes = await feedline("products", ["codes", "--secret-file", keptFile, "--hardware-ids", "b1", "--json"])
    assert.equal(JSON.parse(southCodes.out)[0].product, south.id)
    const productsBefore = (await s.store.listProducts()).length
    const again = await feedline("products", ["create", "--title", "south field", "--secret-file", keptFile])
    assert.equal(again.code, 2, again.err)
    assert.match(again.err, /exists already/)
    assert.equal((await s.store.listProducts()).length, productsBefore, "refused before anything was made")

    assert.equal((await feedline("products", ["revoke", product.id])).code, 0)
    const after = await http(s, "POST", `/v2/products/${product.id}/claims`, { body: { hardware_id: lines[0][0], code: lines[0][1] } })
    assert.equal(after.body.code, "E_PRODUCT_REVOKED")
})
