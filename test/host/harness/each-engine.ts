// A test run once per store engine, each time against a server of its own: SQLite in a temporary folder, and
// PostgreSQL on a throw-away instance (skipped, with the reason, where it is not installed).
import { test } from "node:test"
import { createScratchDatabase, skipUnlessInstalled, startPostgres } from "../../../devs/tools/services.ts"
import { startTestServer, type TestServer } from "./server-harness.ts"

/** `options`: the server's, as startTestServer takes them (the engine's database is this helper's). */
export function testOnEachEngine(name: string, timeoutMs: number, body: (s: TestServer) => Promise<void>, options: Parameters<typeof startTestServer>[0] = {}): void {
    for (const engine of ["sqlite", "postgres"] as const) {
        test(`${engine}: ${name}`, { skip: engine === "postgres" ? skipUnlessInstalled("postgresql") : undefined, timeout: timeoutMs }, async () => {
            const postgres = engine === "postgres" ? await startPostgres({ durable: false }) : undefined
            try {
                const s = await startTestServer({ ...options, databaseUrl: postgres && (await createScratchDatabase(postgres.url, "each_engine")) })
                try {
                    await body(s)
                } finally {
                    await s.stop()
                }
            } finally {
                await postgres?.stop()
            }
        })
    }
}
