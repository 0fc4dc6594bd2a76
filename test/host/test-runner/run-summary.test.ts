// How `npm test` counts (test/run-summary.ts): against canned outputs of each step, against what
// node:test really prints for failing hooks (a fixture run in a temporary folder), and as a property:
// a run that failed never ends with "0 failed".
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { describe, test } from "node:test"
import { fileURLToPath } from "node:url"
import fc from "fast-check"
import { devsTestCounts, errorLines, failedSuiteHooks, failedTests, fileSeconds, nodeTestCounts, summarize, type StepResult } from "../../run-summary.ts"

const step = (name: string, r: Partial<StepResult>): StepResult => ({ name, code: 0, passed: 0, failed: 0, skipped: 0, expectsTests: true, ...r })
const lastLine = (results: StepResult[]) => summarize(results).lines.at(-1)

const RUN_HOST = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "run-host.ts")

/** Runs fixture files as the host lane runs its files (test/run-host.ts), in the order given; its TAP output and exit code. */
function runHostLane(...sources: string[]): { tap: string; status: number | null; files: string[] } {
    const dir = mkdtempSync(join(tmpdir(), "feedline-run-summary-"))
    try {
        const files = sources.map((source, i) => {
            const file = join(dir, i === 0 ? "fixture.test.mjs" : `fixture-${i}.test.mjs`) // the later ones sort first
            writeFileSync(file, source)
            return file
        })
        const env = { ...process.env }
        delete env.NODE_TEST_CONTEXT // set for files run by node --test; a nested run must report as a top-level one
        const r = spawnSync(process.execPath, ["--import", "tsx", RUN_HOST, ...files], { env, encoding: "utf8", timeout: 30_000 })
        return { tap: r.stdout, status: r.status, files }
    } finally {
        rmSync(dir, { recursive: true, force: true })
    }
}

/** One fixture file through the host lane. */
const runNodeTest = (source: string) => runHostLane(source)

describe("node:test output (the host lane)", () => {
    test("the lane runs its files in the order given, not sorted, and ends with each file's wall time", () => {
        // the TAP output reports the files in the order they were queued (node --test sorts them: "second" would come first)
        const { tap, status, files } = runHostLane(
            `import { test } from "node:test"\ntest("first", () => {})`,
            `import { test } from "node:test"\ntest("second", () => {})`,
        )
        assert.equal(status, 0, tap)
        assert.ok(files[0] > files[1], "the fixtures' names sort the other way round")
        assert.ok(tap.indexOf("ok 1 - first") >= 0 && tap.indexOf("ok 1 - first") < tap.indexOf("- second"), tap)
        const seconds = fileSeconds(tap)
        assert.deepEqual(Object.keys(seconds).sort(), [...files].sort())
        assert.ok(Object.values(seconds).every((s) => s > 0), JSON.stringify(seconds))
        assert.deepEqual(nodeTestCounts(tap), { passed: 2, failed: 0, skipped: 0 })
    })

    test("a failing test makes the lane exit 1, a failing todo does not (as node --test decides)", () => {
        assert.equal(runHostLane(`import { test } from "node:test"\ntest("f", () => { throw new Error("x") })`).status, 1)
        assert.equal(runHostLane(`import { test } from "node:test"\ntest("t", { todo: true }, () => { throw new Error("x") })`).status, 0)
    })

    test("file times: the last comment counts; none, or one cut short, is no times", () => {
        assert.deepEqual(fileSeconds('# file seconds {"a.test.ts":1}\nok\n# file seconds {"b.test.ts":2.5}\n'), { "b.test.ts": 2.5 })
        assert.deepEqual(fileSeconds("# pass 3\n"), {})
        assert.deepEqual(fileSeconds('# file seconds {"a.te'), {})
    })

    test("a failing `after` inside a describe is counted, though node's own summary says fail 0", () => {
        const { tap, status } = runNodeTest(`
import { describe, it, after } from "node:test"
describe("vm suite", () => {
    after(() => { throw new Error("the VM ran out of memory") })
    it("works", () => {})
})
it("skipped", { skip: "no chromium" }, () => {})
`)
        assert.equal(status, 1)
        assert.match(tap, /^# fail 0$/m, "node itself does not count it (if this changes, the extra count below is still right)")
        assert.deepEqual(failedSuiteHooks(tap), ["vm suite: 'the VM ran out of memory'"])
        assert.deepEqual(nodeTestCounts(tap), { passed: 1, failed: 1, skipped: 1 })
    })

    test("a failing `before` of a describe counts the hook and the tests it cancelled", () => {
        const { tap, status } = runNodeTest(`
import { describe, it, before } from "node:test"
describe("setup", () => {
    before(() => { throw new Error("server did not start") })
    it("a", () => {})
    it("b", () => {})
})
`)
        assert.equal(status, 1)
        assert.deepEqual(nodeTestCounts(tap), { passed: 0, failed: 3, skipped: 0 })
    })

    test("a hook of a nested describe is counted once (the outer suite only reports that a subtest failed)", () => {
        const { tap } = runNodeTest(`
import { describe, it, after } from "node:test"
describe("outer", () => { describe("inner", () => { after(() => { throw new Error("x") }); it("w", () => {}) }) })
`)
        assert.deepEqual(nodeTestCounts(tap), { passed: 1, failed: 1, skipped: 0 })
    })

    test("failures, cancellations, skips and todos from the summary", () => {
        const tap = ["TAP version 13", "ok 1 - a", "1..1", "# tests 9", "# pass 4", "# fail 2", "# cancelled 1", "# skipped 1", "# todo 1", "# duration_ms 5"].join("\n")
        assert.deepEqual(nodeTestCounts(tap), { passed: 4, failed: 3, skipped: 2 })
    })

    test("what failed is named: the test (not its suite), where, and the error's first line; timeouts too", () => {
        const { tap } = runNodeTest(`
import { describe, it, test } from "node:test"
import assert from "node:assert/strict"
describe("reboot", () => { it("restores the led", () => { assert.equal(0, 1, "led restored 0") }); it("ok", () => {}) })
test("multi-line", () => { throw new Error("first\\nsecond") })
test("slow", { timeout: 20 }, () => new Promise((r) => setTimeout(r, 2000)))
`)
        const named = failedTests(tap).map((f) => f.replace(/\(\S*fixture\.test\.mjs:(\d+):\d+\)/, "(fixture:$1)"))
        assert.deepEqual(named, ["restores the led (fixture:4): led restored 0", "multi-line (fixture:5): first", "slow (fixture:6): test timed out after 20ms"])
    })

    test("no summary at all (the lane died): nothing counted here, the step is broken below", () => {
        assert.deepEqual(nodeTestCounts("TAP version 13\n# Subtest: x\n"), { passed: 0, failed: 0, skipped: 0 })
    })
})

describe("DeviceScript output (the firmware lanes)", () => {
    test("the last summary counts; skipped tests are total - pass - error; colour codes do not matter", () => {
        const out = "running 5 tests\n\x1b[32mtests: 5, pass: 3, error: 1\x1b[0m\n"
        assert.deepEqual(devsTestCounts(out), { passed: 3, failed: 1, skipped: 1 })
    })
    test("no summary (the VM panicked or ran out of memory before the end): no counts", () => {
        assert.deepEqual(devsTestCounts("running 40 tests\nPANIC 60123\n"), { passed: 0, failed: 0, skipped: 0 })
    })
})

describe("the last line", () => {
    test("a green run", () => {
        const r = summarize([step("typecheck", { expectsTests: false }), step("firmware", { passed: 40 }), step("host", { passed: 300, skipped: 6 })])
        assert.deepEqual(r, { lines: ["340 passed, 0 failed, 6 skipped"], exitCode: 0 })
    })

    test("a type error is one failure", () => {
        const r = summarize([step("typecheck", { code: 2, expectsTests: false }), step("firmware", { passed: 40 }), step("host", { passed: 300 })])
        assert.equal(r.exitCode, 1)
        assert.deepEqual(r.lines, ["FAILED: typecheck (exit 2, 0 passed, 0 failed)", "340 passed, 1 failed, 0 skipped"])
    })

    test("a lane that crashed after its tests passed is one failure", () => {
        const r = summarize([step("host", { code: 1, passed: 300 })])
        assert.equal(r.lines.at(-1), "300 passed, 1 failed, 0 skipped")
        assert.equal(r.exitCode, 1)
    })

    test("a lane that ran no test is one failure, even if it exited 0", () => {
        const r = summarize([step("firmware", { code: 0 })])
        assert.deepEqual(r.lines, ["FAILED: firmware (exit 0, 0 passed, 0 failed, no test ran)", "0 passed, 1 failed, 0 skipped"])
        assert.equal(r.exitCode, 1)
    })

    test("each broken step lists what failed under its FAILED line, at most 10, before the counts", () => {
        const failures = Array.from({ length: 12 }, (_, i) => `t${i} (test/host/x.test.ts:${i}): boom`)
        const { lines } = summarize([step("host", { code: 1, passed: 5, failed: 12, failures }), step("firmware", { passed: 3, failures: ["ignored: the step passed"] })])
        assert.deepEqual(lines, [
            "FAILED: host (exit 1, 5 passed, 12 failed)",
            ...failures.slice(0, 10).map((f) => `  - ${f}`),
            "  - … and 2 more (see the step's output above)",
            "8 passed, 12 failed, 0 skipped",
        ])
    })

    test("a step with no test names gives its error lines, or else its last lines", () => {
        assert.deepEqual(errorLines("src/a.ts(3,1): error TS2322: Type 'x'\nFound 1 error.\n"), ["src/a.ts(3,1): error TS2322: Type 'x'"])
        assert.deepEqual(errorLines("  led\n\x1b[31mAssertionError: expected 1\x1b[0m\n"), ["AssertionError: expected 1"])
        assert.deepEqual(errorLines("a\nb\nc\nd\ne\nf\n"), ["b", "c", "d", "e", "f"])
    })

    test("counted failures are not counted twice for the lane's exit code", () => {
        assert.equal(lastLine([step("host", { code: 1, passed: 10, failed: 2 })]), "10 passed, 2 failed, 0 skipped")
    })

    test("property: the exit code is 1 exactly when some step broke, and then the line never says 0 failed", () => {
        const arbStep = fc.record({
            name: fc.constantFrom("typecheck", "firmware", "host"),
            code: fc.constantFrom(0, 0, 0, 1, 2, 137),
            passed: fc.nat(5),
            failed: fc.constantFrom(0, 0, 0, 1, 3),
            skipped: fc.nat(2),
            expectsTests: fc.boolean(),
        })
        fc.assert(
            fc.property(fc.array(arbStep, { minLength: 1, maxLength: 4 }), (results) => {
                const brokeSomewhere = results.some((r) => r.code !== 0 || r.failed > 0 || (r.expectsTests && r.passed === 0))
                const { lines, exitCode } = summarize(results)
                const m = /^(\d+) passed, (\d+) failed, (\d+) skipped$/.exec(lines.at(-1)!)
                assert.ok(m, lines.at(-1))
                assert.equal(exitCode, brokeSomewhere ? 1 : 0)
                assert.equal(Number(m[2]) > 0, brokeSomewhere)
                assert.equal(Number(m[3]), results.reduce((n, r) => n + r.skipped, 0))
            })
        )
    })
})
