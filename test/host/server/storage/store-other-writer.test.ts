// The SQLite store remembers which feeds exist and reads data_version (commits by other connections,
// such as the `feedline keys` CLI in another process) once per event-loop turn instead of per request.
// What another connection deletes or revokes must still count from the next turn on; what this store
// itself changes counts at once. Two stores on one file stand for the server and the CLI.
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test } from "node:test"
import { KeyRing } from "../../../../devs/server/auth/keys.ts"
import { asApiError } from "../../../../devs/server/errors.ts"
import { SqliteStore } from "../../../../devs/server/storage/sqlite.ts"

const T0 = Date.UTC(2026, 10, 22, 5)
const dirs: string[] = []
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

const nextTurn = () => new Promise((r) => setImmediate(r))

function twoStores(): [SqliteStore, SqliteStore] {
    const dir = mkdtempSync(join(tmpdir(), "feedline-other-writer-"))
    dirs.push(dir)
    const path = join(dir, "db")
    return [new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 }), new SqliteStore({ path, synchronous: "NORMAL", now: () => T0 })]
}

test("a feed deleted by another connection: gone for feedExists from the next turn, and a write to it is a 404, not a failed commit", async () => {
    const [server, cli] = twoStores()
    try {
        const a = (await server.createFeed({})).id
        const b = (await server.createFeed({})).id
        assert.equal(await server.feedExists(a), true) // now remembered
        assert.ok(await cli.deleteFeed(a))
        await nextTurn()
        assert.equal(await server.feedExists(a), false)
        // the write path reads data_version in its own transaction: no turn boundary needed
        assert.equal(await server.feedExists(b), true)
        await cli.deleteFeed(b)
        const err = asApiError(await server.writePoints(b, [{ stream: "s", atMs: T0, value: "1" }]).catch((e) => e))
        assert.equal(err.code, "E_NOT_FOUND")
        // this store's own deletes count at once
        const c = (await server.createFeed({})).id
        assert.equal(await server.feedExists(c), true)
        await server.deleteFeed(c)
        assert.equal(await server.feedExists(c), false)
        assert.equal(await server.feedExists(999), false)
    } finally {
        await server.close()
        await cli.close()
    }
})

test("a key revoked by another connection is refused from the next turn; one revoked through the ring at once, remembered grant or not", async () => {
    const [server, cli] = twoStores()
    try {
        const ring = new KeyRing(server, () => T0)
        const other = new KeyRing(cli, () => T0)
        const { record, secret } = await ring.create({ permissions: ["read"] })
        const grant = await ring.authenticate(secret)
        assert.ok(grant)
        // the remembered grant is reused while the keys are unchanged, and only for its own key
        assert.equal(await ring.authenticate(secret, grant), grant)
        const second = await ring.create({ permissions: ["read"] })
        assert.equal(await ring.authenticate(second.secret, grant).then((g) => g?.keyId), second.record.id)
        await nextTurn()
        assert.ok(await ring.authenticate(secret, grant))
        await other.revoke(record.id)
        await nextTurn()
        assert.equal(await ring.authenticate(secret, grant), undefined)
        assert.equal(await ring.authenticate(secret), undefined)
        const g2 = await ring.authenticate(second.secret)
        assert.ok(g2)
        await ring.revoke(second.record.id)
        assert.equal(await ring.authenticate(second.secret, g2), undefined)
    } finally {
        await server.close()
        await cli.close()
    }
})
