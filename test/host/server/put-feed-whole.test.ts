// [P§6] PUT /feeds/F with a title (or a datastream named without a value) and values: all or nothing. The title
// was committed before the values, so a write whose values the store then refused (a full disk; PostgreSQL
// refusing the data) kept the new title under an answer that said nothing was written. Now the values are
// committed first and the title with the empty datastreams in one commit after them; a failure of that second
// commit alone says what was stored (503 E_PARTLY_WRITTEN) and what to send again. On HTTP and the device port
// (one handler serves every door). Found by the adversarial audit of 2026-12-07.
import assert from "node:assert/strict"
import { test } from "node:test"
import pg from "pg"
import { createScratchDatabase, skipUnlessInstalled, startPostgres } from "../../../devs/tools/services.ts"
import { failChangesOf as failChangesOfStore } from "../harness/sqlite-faults.ts"
import { http, serverForThisFile, startTestServer, TlsClient, type TestServer } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey

const failChangesOf = (table: string, event: "INSERT" | "UPDATE") => failChangesOfStore(s.dataDir, table, event)

const body = { title: "renamed", datastreams: [{ id: "temp", current_value: "21.5" }, { id: "empty" }] }

/** The PUT over HTTP or over the device port, as { status, body }. */
async function put(server: TestServer, door: "http" | "tls", feed: number): Promise<{ status: number; body: any }> {
    if (door === "http") return http(server, "PUT", `/v2/feeds/${feed}`, { key: server.credentials.masterKey, body })
    const c = await TlsClient.open(server, server.credentials.masterKey)
    try {
        const r = await c.request({ method: "put", resource: `/feeds/${feed}`, body })
        return { status: r.status ?? 200, body: r.body }
    } finally {
        c.close()
    }
}

async function feedState(server: TestServer, feed: number) {
    const f = (await http(server, "GET", `/v2/feeds/${feed}`, { key: server.credentials.masterKey })).body
    return { title: f.title, streams: ((f.datastreams ?? []) as { id: string; current_value?: string }[]).map((d) => [d.id, d.current_value ?? null]) }
}

for (const door of ["http", "tls"] as const) {
    test(`SQLite, ${door}: values whose commit fails leave the title and the empty datastream unchanged; 503 E_STORE_FAILED`, async () => {
        const feed = (await http(s, "POST", "/v2/feeds", { key: master, body: { title: "old" } })).body.id
        const restore = failChangesOf("ingest_journal", "INSERT") // the writer's commit of the points fails
        let r
        try {
            r = await put(s, door, feed)
        } finally {
            restore()
        }
        assert.deepEqual([r.status, r.body.code], [503, "E_STORE_FAILED"], JSON.stringify(r.body))
        assert.deepEqual(await feedState(s, feed), { title: "old", streams: [] }, "nothing of the refused PUT")
        const again = await put(s, door, feed)
        assert.equal(again.status, 200, JSON.stringify(again.body))
        assert.deepEqual(await feedState(s, feed), { title: "renamed", streams: [["empty", null], ["temp", "21.5"]] })
    })
}

test("SQLite: values committed, then the title's commit fails: 503 E_PARTLY_WRITTEN says the datapoints were stored and to send the title alone", async () => {
    const feed = (await http(s, "POST", "/v2/feeds", { key: master, body: { title: "old" } })).body.id
    const restore = failChangesOf("feeds", "UPDATE")
    let r
    try {
        r = await put(s, "http", feed)
    } finally {
        restore()
    }
    assert.deepEqual([r.status, r.body.code], [503, "E_PARTLY_WRITTEN"], JSON.stringify(r.body))
    assert.ok(r.body.retry_after_ms > 0, JSON.stringify(r.body))
    assert.match(r.body.errors, /the 1 datapoints were stored/, JSON.stringify(r.body))
    assert.match(r.body.errors, /not the title and the datastreams named without a value \(empty\)/, JSON.stringify(r.body))
    assert.match(r.body.errors, /not the datapoints again/, JSON.stringify(r.body))
    assert.doesNotMatch(r.body.errors, /nothing was (written|changed)/, JSON.stringify(r.body))
    const state = await feedState(s, feed)
    assert.deepEqual(state, { title: "old", streams: [["temp", "21.5"]] }, "the values, not the title nor the empty datastream")
    // what it says to send, sent, completes the PUT
    const again = await http(s, "PUT", `/v2/feeds/${feed}`, { key: master, body: { title: "renamed", datastreams: [{ id: "empty" }] } })
    assert.equal(again.status, 200, JSON.stringify(again.body))
    assert.deepEqual(await feedState(s, feed), { title: "renamed", streams: [["empty", null], ["temp", "21.5"]] })
})

test("PostgreSQL: values the database refuses leave the title and the empty datastream unchanged; 422 E_BAD_VALUE", { skip: skipUnlessInstalled("postgresql") }, async () => {
    const postgres = await startPostgres({ durable: false })
    try {
        const url = await createScratchDatabase(postgres.url, "put_feed_whole")
        const server = await startTestServer({ databaseUrl: url })
        try {
            const admin = new pg.Client({ connectionString: url })
            await admin.connect()
            await admin.query("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'value refused' USING ERRCODE = 'check_violation'; END $$ LANGUAGE plpgsql")
            await admin.query("CREATE TRIGGER refuse BEFORE INSERT ON datapoints FOR EACH ROW WHEN (NEW.value = '21.5') EXECUTE FUNCTION refuse()")
            await admin.end()
            for (const door of ["http", "tls"] as const) {
                const feed = (await http(server, "POST", "/v2/feeds", { key: server.credentials.masterKey, body: { title: "old" } })).body.id
                const r = await put(server, door, feed)
                assert.deepEqual([r.status, r.body.code], [422, "E_BAD_VALUE"], `${door}: ${JSON.stringify(r.body)}`)
                assert.deepEqual(await feedState(server, feed), { title: "old", streams: [] }, `${door}: nothing of the refused PUT`)
            }
        } finally {
            await server.stop()
        }
    } finally {
        await postgres.stop()
    }
})
