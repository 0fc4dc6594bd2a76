// Several processes sharing one data folder (issue 14: `--workers`, or servers on one host): the first to
// start makes the master key, feed 1, the device key, credentials.json and the development CA; the others
// find them, also when they all start at the same moment. A server on the same database with a data
// folder of its own finds the master key in the database and makes nothing. The folder lock that orders
// them (devs/server/storage/folder-lock.ts): its decisions, waiting for a holder, taking over a lock a
// dead process left. The servers part is skipped, counted, where PostgreSQL or Redis is not installed.
import assert from "node:assert/strict"
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync } from "node:fs"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import { LOCK_NAME, lockStep, withFolderLock } from "../../../../devs/server/storage/folder-lock.ts"
import { SCALE_SKIP, startScaleServices, type ScaleServices } from "../../harness/scale.ts"
import { startTestServer, TlsClient, type TestServer } from "../../harness/server-harness.ts"
import { tempDir } from "../../harness/temp-dirs.ts"

const newDir = () => tempDir("feedline-provision-")

test("the folder lock's decisions: retry when released, wait while held, take over a stale lock, give up after two minutes", () => {
    assert.equal(lockStep(undefined, 0), "retry-now")
    assert.equal(lockStep(1_000, 0), "wait")
    assert.equal(lockStep(29_000, 100_000), "wait")
    assert.equal(lockStep(31_000, 0), "take-over")
    assert.equal(lockStep(1_000, 121_000), "give-up")
})

test("callers of the folder lock run one after the other, and the lock is gone afterwards", async () => {
    const dir = newDir()
    const log: string[] = []
    const step = (who: string) =>
        withFolderLock(dir, async () => {
            log.push(`${who} in`)
            await new Promise((r) => setTimeout(r, 30))
            log.push(`${who} out`)
        })
    await Promise.all([step("a"), step("b"), step("c")])
    for (let i = 0; i < log.length; i += 2) assert.equal(log[i].replace(" in", " out"), log[i + 1], log.join())
    assert.equal(existsSync(join(dir, LOCK_NAME)), false)
})

test("a lock held by another process is waited for; one left by a process that died is taken over", async () => {
    const dir = newDir()
    const lock = join(dir, LOCK_NAME)
    // held: the caller waits until the holder removes it
    mkdirSync(lock)
    let ran = false
    const waiting = withFolderLock(dir, async () => {
        ran = true
    })
    await new Promise((r) => setTimeout(r, 200))
    assert.equal(ran, false, "waits while the lock is held")
    rmSync(lock, { recursive: true })
    await waiting
    assert.equal(ran, true)
    // left behind 40 s ago: taken over at once
    mkdirSync(lock)
    const old = (Date.now() - 40_000) / 1000
    utimesSync(lock, old, old)
    assert.equal(await withFolderLock(dir, async () => "took over"), "took over")
})

describe("servers starting at once on one data folder and one database", { skip: SCALE_SKIP }, () => {
    let services: ScaleServices
    const servers: TestServer[] = []
    before(async () => {
        services = await startScaleServices()
    })
    after(async () => {
        for (const s of servers) await s.close()
        await services?.stop()
    })

    test("three at the same moment: one of them provisions, all use the same keys and development CA", async () => {
        const databaseUrl = await services.database()
        const dataDir = newDir()
        const started = await Promise.all([0, 1, 2].map(() => startTestServer({ databaseUrl, redisUrl: services.redis.url, dataDir })))
        servers.push(...started)
        assert.equal(started.filter((s) => s.credentialsCreated).length, 1, "exactly one made the credentials")
        const file = JSON.parse(readFileSync(join(dataDir, "credentials.json"), "utf8"))
        for (const s of started) {
            assert.equal(s.credentials.masterKey, file.masterKey)
            assert.equal(s.credentials.deviceKey, file.deviceKey)
            assert.equal(s.ca.toString(), started[0].ca.toString(), "one development CA")
        }
        assert.deepEqual((await started[0].keys.list()).map((k) => k.label).sort(), ["device, feed 1", "master"])
        // the device key works on each of them (each trusts the one CA)
        for (const s of started) {
            const c = await TlsClient.open(s, file.deviceKey)
            assert.equal((await c.request({ method: "get", resource: `/feeds/${file.feedId}` })).status, 200)
            c.close()
        }

        // another host's data folder on the same database: the master key exists, nothing is made
        const elsewhere = await startTestServer({ databaseUrl, redisUrl: services.redis.url, dataDir: newDir() })
        servers.push(elsewhere)
        assert.equal(elsewhere.credentialsCreated, false)
        assert.equal(existsSync(join(elsewhere.dataDir, "credentials.json")), false)
        assert.equal((await elsewhere.keys.list()).length, 2, "no second master key")
        const c = await TlsClient.open(elsewhere, file.deviceKey)
        assert.equal((await c.request({ method: "get", resource: `/feeds/${file.feedId}` })).status, 200)
        c.close()
    })
})
