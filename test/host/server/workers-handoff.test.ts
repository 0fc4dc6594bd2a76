// `feedline serve --workers N` (devs/server/workers.ts, devs/server/cluster-handoffs.ts): a connection the
// primary hands to a worker that goes away before taking it (a crash, SIGKILL) is closed at once, so its
// client connects again, instead of staying open to no one until the client's own timeout; the primary
// logs it. Runs the real primary with stand-in workers (workers-handoff-fixture.ts): no PostgreSQL or Redis.
import assert from "node:assert/strict"
import { writeFileSync } from "node:fs"
import net from "node:net"
import { test } from "node:test"
import { fileURLToPath } from "node:url"
import { until } from "../harness/until.ts"
import { startPrimaryFixture } from "./primary-fixture.ts"

const FIXTURE = fileURLToPath(new URL("./workers-handoff-fixture.ts", import.meta.url))
/** a bound for a hung test, not a timing assertion: without the fix the connection never ends */
const HANG_LIMIT_MS = 30_000
/** more connections than workers: the stuck worker is handed exactly one (it never answers, so it is not handed another) */
const CONNECTIONS = 6

interface Outcome {
    answer: string
    ended: boolean
}

function connect(port: number): Outcome {
    const o: Outcome = { answer: "", ended: false }
    const socket = net.connect(port, "127.0.0.1")
    socket.setEncoding("utf8")
    socket.on("data", (d: string) => (o.answer += d))
    socket.on("close", () => (o.ended = true))
    socket.on("error", () => {}) // a reset is an end too
    return o
}

test("a connection handed to a worker that goes away before taking it is closed, not left hanging, and the primary says so", { timeout: 120_000 }, async (t) => {
    const fixture = startPrimaryFixture(t, FIXTURE)
    const { process: primary, exited, release } = fixture

    const { port, pids } = JSON.parse(await until(() => `the workers to listen (stderr: ${fixture.err()})`, () => fixture.out().includes("\n") && fixture.out().split("\n")[0], HANG_LIMIT_MS)) as { port: number; pids: number[] }
    const [stuck, live] = pids
    const outcomes = Array.from({ length: CONNECTIONS }, () => connect(port))
    // every connection but the stuck worker's is answered: the primary has handed that one out by then
    await until("the live worker to answer all but one", () => outcomes.filter((o) => o.answer).length === CONNECTIONS - 1, HANG_LIMIT_MS)
    writeFileSync(release, "")
    await until(() => `every connection to end (${outcomes.filter((o) => !o.ended).length} still open; stderr: ${fixture.err()})`, () => outcomes.every((o) => o.ended), HANG_LIMIT_MS, 20)

    assert.deepEqual(outcomes.map((o) => o.answer).sort(), [...Array(CONNECTIONS - 1).fill(`${live}\n`), ""].sort(), "one connection closed unanswered, the rest answered by the live worker")
    // the primary logs after it closed them: its line may reach our pipe after the client saw the close
    const said = new RegExp(`primary: worker ${stuck} went away before taking 1 connection\\(s\\) handed to it; closed them`)
    await until(() => `the primary to say so (stderr: ${fixture.err()})`, () => said.test(fixture.err()), HANG_LIMIT_MS)
    primary.kill("SIGTERM")
    assert.equal(await exited, 0)
})
