// A process whose log goes to the descriptor test/host/server/log-destination.test.ts gave it as stdout (one
// that fails every write, or a file): it logs through LogDestination (devs/server/log.ts) on a clock of its
// own, then reports what it saw as one JSON line on stderr and ends by running out of work (pino's flush at
// exit included).
import { fstatSync } from "node:fs"
import { createLogger, LogDestination } from "../../../devs/server/log.ts"
import { until } from "../harness/until.ts"

const RETRY_AFTER_MS = 10_000

let nowMs = 0
const out = new LogDestination(1, { retryAfterMs: RETRY_AFTER_MS, nowMs: () => nowMs })
const log = createLogger("info", out)
const seen: Record<string, unknown> = {}
log.info({ i: 0 }, "line")
// SonicBoom writes asynchronously: the outcome is a failure, or the line in the file (which has a size)
await until("the first write's outcome", () => out.failures > 0 || fstatSync(1).size > 0, 20_000)
seen.firstFailures = out.failures
seen.firstCode = out.lastErrorCode
for (let i = 1; i <= 100; i++) log.info({ i }, "line")
await new Promise((r) => setTimeout(r, 100))
seen.droppedWithinPeriod = out.droppedLines
seen.failuresWithinPeriod = out.failures
nowMs = RETRY_AFTER_MS
log.info({ i: 101 }, "line")
seen.failuresAfterPeriod = out.failures
seen.droppedAfterPeriod = out.droppedLines
seen.writingAfterPeriod = out.writing
process.stderr.write(JSON.stringify(seen) + "\n")
