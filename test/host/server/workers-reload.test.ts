// `feedline serve --workers N` and SIGHUP (the TLS certificate reload, devs/server/workers.ts): a worker still
// starting when the primary is told to reload, at the first start or a replacement for one that died, does not
// get the signal then (it would end it: a worker takes SIGHUP only once its server is up) but once it is ready,
// so it serves what was reloaded; nothing dies. Runs the real primary with stand-in workers
// (workers-reload-fixture.ts): no PostgreSQL or Redis. The real workers reloading: scale/workers.test.ts.
import assert from "node:assert/strict"
import { writeFileSync } from "node:fs"
import { test } from "node:test"
import { fileURLToPath } from "node:url"
import { until } from "../harness/until.ts"
import { startPrimaryFixture } from "./primary-fixture.ts"

const FIXTURE = fileURLToPath(new URL("./workers-reload-fixture.ts", import.meta.url))
/** a bound for a hung test (a start under tsx on a loaded machine), not a timing assertion */
const WAIT_MS = 30_000

test("SIGHUP while a worker is starting: it gets the reload once it is ready, the ready one at once; no worker dies", { timeout: 120_000 }, async (t) => {
    const fixture = startPrimaryFixture(t, FIXTURE)
    const { process: primary, exited, release } = fixture
    /** the pid of the worker of this cluster id, once it started */
    const started = (id: number) => Number(new RegExp(`^worker (\\d+) starting, cluster id ${id}$`, "m").exec(fixture.err())?.[1]) || undefined
    const reloads = (pid: number) => fixture.err().split("\n").filter((l) => l === `worker ${pid} reloaded`).length
    const sighup = async (n: number) => {
        primary.kill("SIGHUP")
        // the primary says so, then signals the ready workers and marks the others, in one go
        await until(() => `the primary's SIGHUP line #${n} (stderr: ${fixture.err()})`, () => fixture.err().split("\n").filter((l) => l.startsWith("primary: SIGHUP: reloading the TLS certificate in 2 worker(s)")).length === n, WAIT_MS)
    }

    // 1. the first start: worker 1 is up, worker 2 is held in its start
    const [first, second] = await until(() => `both workers starting (stderr: ${fixture.err()})`, (): [number, number] | undefined => (started(1) && started(2) ? [started(1)!, started(2)!] : undefined), WAIT_MS)
    await sighup(1)
    await until(() => `the ready worker's reload (stderr: ${fixture.err()})`, () => reloads(first) === 1, WAIT_MS)
    assert.equal(reloads(second), 0, "not signalled while it could not take it")
    writeFileSync(`${release}-2`, "")
    const { pids } = JSON.parse(await until(() => `both workers ready (stderr: ${fixture.err()})`, () => fixture.out().includes("\n") && fixture.out().split("\n")[0], WAIT_MS)) as { pids: number[] }
    assert.deepEqual(pids.sort(), [first, second].sort())
    await until(() => `the held worker's reload once ready (stderr: ${fixture.err()})`, () => reloads(second) === 1, WAIT_MS)

    // 2. a replacement: worker 1 dies, its replacement (worker 3) is held in its start
    process.kill(first, "SIGKILL")
    const third = await until(() => `the replacement starting (stderr: ${fixture.err()})`, () => started(3), WAIT_MS)
    await sighup(2)
    await until(() => `the ready worker's second reload (stderr: ${fixture.err()})`, () => reloads(second) === 2, WAIT_MS)
    assert.equal(reloads(third), 0)
    writeFileSync(`${release}-3`, "")
    await until(() => `the replacement's reload once ready (stderr: ${fixture.err()})`, () => reloads(third) === 1, WAIT_MS)

    assert.deepEqual(fixture.err().match(/^primary: .*exited.*$/gm), [`primary: worker ${first} exited with SIGKILL; starting another in 1000 ms`], "only the worker the test killed died")
    primary.kill("SIGTERM")
    assert.equal(await exited, 0)
    assert.deepEqual([reloads(second), reloads(third)], [2, 1], "each reload taken once")
})
