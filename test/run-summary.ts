// How `npm test` (test/run-all.ts) counts: what each step's output says, and the summary line.
// Pure (text in, counts and lines out), so the counting itself is tested against canned and real
// outputs in test/host/test-runner/run-summary.test.ts.
//
// The rule: a run that fails never says "0 failed". A failed test, a cancelled one, a failing hook
// (node:test does not count a failing `before`/`after` of a `describe`: Node 20 reports "pass 1,
// fail 0" and exits 1) and a step that broke without a counted failure (a `tsc` error, a crashed
// lane, a lane that ran no test) each add to the failed count. Skipped and todo tests are counted
// as skipped and shown on the last line.

export interface Counts {
    passed: number
    failed: number
    skipped: number
}

export interface StepResult extends Counts {
    name: string
    /** exit code of the step's process (1 when it was killed by a signal) */
    code: number
    /** a step that must count at least one passed test (every lane but the type-check) */
    expectsTests: boolean
    /** what failed, one line each, shown under the step's FAILED line (empty when unknown) */
    failures?: string[]
}

const withoutColours = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "")

export const noCounts = (): Counts => ({ passed: 0, failed: 0, skipped: 0 })

/** The last `# <label> N` of node:test's TAP summary (0 if absent). */
function tapSummary(out: string, label: string): number {
    const all = [...out.matchAll(new RegExp(`^# ${label} (\\d+)$`, "gm"))]
    return all.length ? Number(all[all.length - 1][1]) : 0
}

interface NotOk {
    name: string
    yaml: string
}

/** Every `not ok` line of a TAP output with its YAML block (at the same indentation: `  ---` ... `  ...`). */
function notOks(tap: string): NotOk[] {
    const block = /^( *)not ok \d+ - (.*)\n\1  ---\n([\s\S]*?)\n\1  \.\.\.$/gm
    return [...tap.matchAll(block)].map((m) => ({ name: m[2], yaml: m[3] }))
}

const yamlField = (yaml: string, field: string) => new RegExp(`^ *${field}: (.*)$`, "m").exec(yaml)?.[1] ?? ""

/** The first line of a YAML `error:` value, quoted (`'…'`) or a block (`|-` and indented lines). */
function firstErrorLine(yaml: string): string {
    const m = /^( *)error: (.*)$/m.exec(yaml)
    if (!m) return ""
    if (!m[2].startsWith("|")) return m[2].replace(/^'(.*)'$/, "$1")
    const after = yaml.slice(m.index + m[0].length).split("\n").map((l) => l.trim())
    return after.find((l) => l !== "") ?? ""
}

/**
 * Suites (describe) reported `not ok` because one of their own hooks failed. node:test counts none
 * of them in its summary: an `after` that finds an out-of-memory VM would pass unseen.
 */
export function failedSuiteHooks(tap: string): string[] {
    return notOks(tap)
        .filter(({ yaml }) => /^ *type: 'suite'$/m.test(yaml) && yamlField(yaml, "failureType") === "'hookFailed'")
        .map(({ name, yaml }) => `${name}: ${yamlField(yaml, "error")}`)
}

/**
 * What failed, one line each (name, where, the error's first line), for the end of the run: CI often
 * shows only the last lines of a long output. A suite that failed only because a test in it did is
 * left out (the test is listed).
 */
export function failedTests(tap: string): string[] {
    return notOks(tap)
        .filter(({ yaml }) => yamlField(yaml, "failureType") !== "'subtestsFailed'")
        .map(({ name, yaml }) => {
            const where = yamlField(yaml, "location").replace(/^'|'$/g, "").replace(`${process.cwd()}/`, "")
            return `${name}${where ? ` (${where})` : ""}: ${firstErrorLine(yaml)}`
        })
}

/** Counts of a `node --test` run from its TAP output (the reporter node uses when stdout is not a terminal). */
export function nodeTestCounts(tap: string): Counts {
    return {
        passed: tapSummary(tap, "pass"),
        failed: tapSummary(tap, "fail") + tapSummary(tap, "cancelled") + failedSuiteHooks(tap).length,
        skipped: tapSummary(tap, "skipped") + tapSummary(tap, "todo"),
    }
}

/** Counts of a DeviceScript `devs run --test` run: its last "tests: T, pass: P, error: E" (T - P - E were skipped). */
export function devsTestCounts(out: string): Counts {
    const plain = withoutColours(out)
    const m = [...plain.matchAll(/tests: (\d+), pass: (\d+), error: (\d+)/g)].pop()
    if (!m) return noCounts() // no summary: the VM never finished its tests; summarize() counts the step as broken
    const [total, pass, error] = [Number(m[1]), Number(m[2]), Number(m[3])]
    return { passed: pass, failed: error, skipped: Math.max(0, total - pass - error) }
}

/** The TAP comment with which the host lane (test/run-host.ts) ends: each file's wall time, as JSON. */
export const FILE_SECONDS_COMMENT = "# file seconds "

/** Each host test file's wall time in seconds, from the host lane's last `# file seconds` comment ({} if it has none). */
export function fileSeconds(out: string): Record<string, number> {
    const line = out.split("\n").filter((l) => l.startsWith(FILE_SECONDS_COMMENT)).pop()
    try {
        return line ? JSON.parse(line.slice(FILE_SECONDS_COMMENT.length)) : {}
    } catch {
        return {} // cut short: the lane died while writing it; its failure is counted elsewhere
    }
}

/** A step that failed (or ran no test) without a counted failure to show for it. */
function uncountedBreak(r: StepResult): boolean {
    return r.failed === 0 && (r.code !== 0 || (r.expectsTests && r.passed === 0))
}

/** Enough to name what broke without pushing the counts off a CI log's visible tail. */
const MAX_FAILURES_LISTED = 10

/**
 * What a step that has no test names to give (the type-check, a DeviceScript run) printed about its
 * failure: its error lines (`error TS…`, an assertion, a panic), or else its last lines.
 */
export function errorLines(out: string): string[] {
    const errors = plainLines(out).filter((l) => /error TS\d+|AssertionError|Exception|PANIC|OutOfMemory|^Error\b/.test(l))
    return errors.length ? errors : lastLines(out)
}

/** The last non-empty lines of an output, without colour codes. */
export function lastLines(out: string, count = 5): string[] {
    return plainLines(out).slice(-count)
}

const plainLines = (out: string) =>
    withoutColours(out).split("\n").map((l) => l.trim()).filter((l) => l !== "")

/** The lines that end a run (FAILED: lines for each broken step, then the counts) and the exit code. */
export function summarize(results: StepResult[]): { lines: string[]; exitCode: number } {
    const lines: string[] = []
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const r of results) {
        passed += r.passed
        failed += r.failed
        skipped += r.skipped
        const broken = r.code !== 0 || r.failed > 0 || (r.expectsTests && r.passed === 0)
        if (!broken) continue
        // a step that broke with no failure of its own to count (a type error, a crash, no test run) counts as one
        if (uncountedBreak(r)) failed += 1
        lines.push(`FAILED: ${r.name} (exit ${r.code}, ${r.passed} passed, ${r.failed} failed${r.expectsTests && r.passed === 0 ? ", no test ran" : ""})`)
        for (const f of (r.failures ?? []).slice(0, MAX_FAILURES_LISTED)) lines.push(`  - ${f}`)
        if ((r.failures?.length ?? 0) > MAX_FAILURES_LISTED) lines.push(`  - … and ${r.failures!.length - MAX_FAILURES_LISTED} more (see the step's output above)`)
    }
    lines.push(`${passed} passed, ${failed} failed, ${skipped} skipped`)
    return { lines, exitCode: failed > 0 ? 1 : 0 }
}
