// [P§7] How keys are stored (devs/server/auth/key-hash.ts): generated keys (192 random bits) as their
// SHA-256, imported keys (chosen by someone, from 12 characters) as scrypt(SHA-256(key), the store's salt),
// whichever way they are imported (API, CLI); both authenticate. Keys stored by an older version (SHA-256,
// imported or not, no one can tell) keep working and are re-hashed with scrypt by the server after it starts.
import assert from "node:assert/strict"
import { join } from "node:path"
import { test } from "node:test"
import Database from "better-sqlite3"
import { scryptOf, sha256Of } from "../../../../devs/server/auth/key-hash.ts"
import { KeyRing } from "../../../../devs/server/auth/keys.ts"
import type { ApiError } from "../../../../devs/server/errors.ts"
import { MIGRATIONS, SqliteStore } from "../../../../devs/server/storage/sqlite.ts"
import { feedlineCli, http, startTestServer, TlsClient } from "../../harness/server-harness.ts"
import { tempDir } from "../../harness/temp-dirs.ts"

interface Row {
    id: string
    hash: Buffer
    hash_kind: string
}
function rows(path: string): Map<string, Row> {
    const db = new Database(path, { readonly: true })
    try {
        return new Map((db.prepare("SELECT id, hash, hash_kind FROM api_keys").all() as Row[]).map((r) => [r.id, r]))
    } finally {
        db.close()
    }
}
function saltOf(path: string): Buffer {
    const db = new Database(path, { readonly: true })
    try {
        return db.prepare("SELECT value FROM settings WHERE name = 'key_hash_salt'").pluck().get() as Buffer
    } finally {
        db.close()
    }
}

test("a generated key is stored as its SHA-256, an imported one as scrypt under the store's salt; both work, nothing else does", async () => {
    const path = join(tempDir("feedline-key-hash-"), "feedline.db")
    const store = new SqliteStore({ path, synchronous: "NORMAL" })
    try {
        const ring = new KeyRing(store)
        const generated = await ring.create({ permissions: ["read"] })
        const imported = await ring.create({ permissions: ["read"], secret: "abcdef123456" })
        const stored = rows(path)
        const salt = saltOf(path)
        assert.equal(salt.length, 16)
        assert.deepEqual([stored.get(generated.record.id)!.hash_kind, stored.get(generated.record.id)!.hash], ["sha256", sha256Of(generated.secret)])
        const imp = stored.get(imported.record.id)!
        assert.equal(imp.hash_kind, "scrypt")
        assert.notDeepEqual(imp.hash, sha256Of("abcdef123456"), "no fast hash of a chosen key in the database")
        assert.deepEqual(imp.hash, await scryptOf(sha256Of("abcdef123456"), salt))

        assert.equal((await ring.authenticate(generated.secret))?.keyId, generated.record.id)
        assert.equal((await ring.authenticate("abcdef123456"))?.keyId, imported.record.id)
        assert.equal((await ring.authenticate("abcdef123456"))?.keyId, imported.record.id, "again (remembered)")
        assert.equal(await new KeyRing(store).authenticate("abcdef123456").then((g) => g?.keyId), imported.record.id, "a fresh ring")
        assert.equal(await ring.authenticate("abcdef123457"), undefined)
        assert.equal(await ring.authenticate(generated.secret.slice(1) + "x"), undefined)
        await assert.rejects(ring.create({ permissions: ["read"], secret: "abcdef123456" }), (e: ApiError) => e.code === "E_CONFLICT")
        await assert.rejects(ring.create({ permissions: ["read"], secret: generated.secret }), (e: ApiError) => e.code === "E_CONFLICT")
        await ring.revoke(imported.record.id)
        assert.equal(await ring.authenticate("abcdef123456"), undefined, "revoked, remembered or not")
    } finally {
        await store.close()
    }
})

test("keys imported through the API and through the CLI are stored with scrypt and work on the device port", async () => {
    const s = await startTestServer({ dataDir: tempDir("feedline-key-hash-") })
    try {
        const viaApi = await http(s, "POST", "/v2/keys", { key: s.credentials.masterKey, body: { permissions: ["read"], feeds: [1], key: "imported-by-api" } })
        assert.equal(viaApi.status, 201)
        const viaCli = JSON.parse(await feedlineCli(["keys", "create", "--secret", "imported-by-cli", "--feeds", "1", "--data-dir", s.dataDir]))
        const stored = rows(join(s.dataDir, "feedline.db"))
        assert.deepEqual([stored.get(viaApi.body.id)!.hash_kind, stored.get(viaCli.id)!.hash_kind], ["scrypt", "scrypt"])
        for (const key of ["imported-by-api", "imported-by-cli"]) {
            const c = await TlsClient.open(s)
            assert.equal((await c.request({ method: "get", resource: "/feeds/1", headers: { "X-ApiKey": key } })).status, 200, key)
            c.close()
        }
    } finally {
        await s.stop()
    }
})

test("migration: keys stored as SHA-256 by an older version keep working and are re-hashed with scrypt after the start", async () => {
    const dataDir = tempDir("feedline-key-hash-")
    const path = join(dataDir, "feedline.db")
    // the first schema, as shipped: plain SHA-256 for every key, imported or generated
    const db = new Database(path)
    db.exec(MIGRATIONS[0])
    db.pragma("user_version = 1")
    db.prepare("INSERT INTO feeds (id, title, created_ms, updated_ms) VALUES (1, '', 0, 0)").run()
    const insert = db.prepare("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, 0, NULL)")
    insert.run("m", sha256Of("old-master-key-0123456789abcdef"), "master", '["read","update","create","delete"]', null, 1)
    insert.run("d", sha256Of("short-import"), "device", '["read","update"]', "[1]", 0)
    db.close()

    const s = await startTestServer({ dataDir })
    try {
        // works at once, whether or not the re-hash has got to it
        const c = await TlsClient.open(s)
        assert.equal((await c.request({ method: "get", resource: "/feeds/1", headers: { "X-ApiKey": "short-import" } })).status, 200)
        c.close()
        const deadline = Date.now() + 10_000
        while ([...rows(path).values()].some((r) => r.hash_kind !== "scrypt")) {
            assert.ok(Date.now() < deadline, `not re-hashed: ${JSON.stringify([...rows(path).values()].map((r) => r.hash_kind))}`)
            await new Promise((r) => setTimeout(r, 20))
        }
        const salt = saltOf(path)
        assert.deepEqual(rows(path).get("d")!.hash, await scryptOf(sha256Of("short-import"), salt))
        for (const key of ["short-import", "old-master-key-0123456789abcdef"]) {
            const r = await http(s, "GET", "/v2/feeds/1", { key })
            assert.equal(r.status, 200, key)
        }
        assert.equal((await http(s, "GET", "/v2/feeds/1", { key: "short-imporT" })).status, 401)
    } finally {
        await s.stop()
    }
})
