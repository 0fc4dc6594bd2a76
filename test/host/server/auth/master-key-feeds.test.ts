// [P§7] A master key reaches every feed; asked for with a feed list beside it (the API's "feeds":[7], the CLI's
// --feeds 7) it is refused 422 E_BAD_VALUE, not made a master key of every feed while the request read as a limit.
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { after, test } from "node:test"
import { promisify } from "node:util"
import { compiledCli } from "../../../../devs/server/compiled.ts"
import { http, startTestServer } from "../../harness/server-harness.ts"

const s = await startTestServer()
after(() => s.stop())
const master = s.credentials.masterKey

test("POST /keys: master with a feed list is 422 E_BAD_VALUE and makes no key; master with feeds * or none is made", async () => {
    const before = (await http(s, "GET", "/v2/keys", { key: master })).body.totalResults as number
    const refused = await http(s, "POST", "/v2/keys", { key: master, body: { label: "limited?", master: true, feeds: [s.credentials.feedId] } })
    assert.deepEqual([refused.status, refused.body.code], [422, "E_BAD_VALUE"], JSON.stringify(refused.body))
    assert.match(refused.body.errors, /master key reaches every feed/)
    assert.equal((await http(s, "GET", "/v2/keys", { key: master })).body.totalResults, before)
    for (const feeds of ["*", undefined]) {
        const made = await http(s, "POST", "/v2/keys", { key: master, body: { label: "all", master: true, feeds } })
        assert.equal(made.status, 201, JSON.stringify(made.body))
    }
})

test("feedline keys create --master --feeds N (the local store) says why and exits 2, no key made", async () => {
    const run = promisify(execFile)(process.execPath, [compiledCli(), "keys", "create", "--master", "--feeds", String(s.credentials.feedId), "--data-dir", s.dataDir])
    const failed = await run.then(() => assert.fail("keys create --master --feeds succeeded"), (e: { code: number; stderr: string }) => e)
    assert.equal(failed.code, 2, failed.stderr)
    assert.match(failed.stderr, /master key reaches every feed/)
})
