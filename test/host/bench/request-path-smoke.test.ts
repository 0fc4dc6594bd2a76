// `npm run bench:request-path` with tiny sizes, so that it cannot rot (issue 15: the figure each request
// path change is measured by). Asserts that figures were produced, never what they are.
import assert from "node:assert/strict"
import { test } from "node:test"
import { measureRequestPath } from "../../../devs/bench/request-path-measure.ts"

test("bench:request-path smoke run: CPU and allocation per update are measured", { timeout: 60_000 }, async () => {
    const lines: string[] = []
    const r = await measureRequestPath({ rounds: 2, updatesPerRound: 400, sampleAlloc: true, log: (l) => lines.push(l) })
    assert.equal(r.usPerUpdate.length, 2)
    for (const us of r.usPerUpdate) assert.ok(Number.isFinite(us) && us > 0, String(us))
    assert.ok(r.kbAllocatedPerUpdate !== undefined && r.kbAllocatedPerUpdate > 0, String(r.kbAllocatedPerUpdate))
    assert.ok(lines.some((l) => l.startsWith("range: ")), lines.join("\n"))
})

test("bench:request-path smoke run with the real store (FEEDLINE_REQUEST_PATH_STORE=1): the main thread's CPU per update is measured", { timeout: 60_000 }, async () => {
    const lines: string[] = []
    const r = await measureRequestPath({ rounds: 1, updatesPerRound: 400, sampleAlloc: false, realStore: true, log: (l) => lines.push(l) })
    assert.equal(r.usPerUpdate.length, 1)
    for (const us of r.usPerUpdate) assert.ok(Number.isFinite(us) && us >= 0, String(us))
    assert.ok(lines[0].includes("the real store"), lines.join("\n"))
})
