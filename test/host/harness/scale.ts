// Several servers on one store and one bus, for the tests of what crosses processes: one throw-away
// PostgreSQL and one Redis per test file (started in its `before`, stopped in its `after`), a new
// database per group of servers. SCALE_SKIP says why these tests cannot run here (npm test counts the skip;
// with CI=true they run, and fail saying what is missing).
import { randomBytes } from "node:crypto"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createScratchDatabase, skipUnlessInstalled, startPostgres, startRedis, type RunningService } from "../../../devs/tools/services.ts"
import { startTestServer, type TestServer } from "./server-harness.ts"
import type { ServerOptions } from "../../../devs/server/index.ts"
import type { DashboardOptions } from "../../../devs/dashboard/mount.ts"

export const SCALE_SKIP = skipUnlessInstalled("postgresql", "redis")

export interface ScaleServices {
    postgres: RunningService
    redis: RunningService
    /** a new, empty database on the file's PostgreSQL */
    database(): Promise<string>
    stop(): Promise<void>
}

export async function startScaleServices(o: { durable?: boolean } = {}): Promise<ScaleServices> {
    const [postgres, redis] = await Promise.all([startPostgres({ durable: o.durable ?? false }), startRedis()])
    return {
        postgres,
        redis,
        database: () => createScratchDatabase(postgres.url, `t_${randomBytes(6).toString("hex")}`),
        stop: async () => {
            await Promise.allSettled([postgres.stop(), redis.stop()])
        },
    }
}

/**
 * `n` servers in this process on one new database and the file's Redis, sharing one data folder (as
 * `--workers` does): the first makes the credentials, the others find them. Each has its own hub, bus
 * connection and session list, as separate processes would.
 */
export async function startServerGroup(services: ScaleServices, n: number, opts: Partial<ServerOptions> & DashboardOptions = {}): Promise<TestServer[]> {
    const databaseUrl = await services.database()
    const dataDir = mkdtempSync(join(tmpdir(), "feedline-group-"))
    const servers: TestServer[] = []
    for (let i = 0; i < n; i++) servers.push(await startTestServer({ databaseUrl, redisUrl: services.redis.url, dataDir, ...opts }))
    return servers
}

/** Stops every server of a group (the last one deletes the shared data folder). */
export async function stopServerGroup(servers: TestServer[]): Promise<void> {
    for (const s of servers.slice(0, -1)) await s.close()
    await servers.at(-1)?.stop()
}
