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
}

export const noCounts = (): Counts => ({ passed: 0, failed: 0, skipped: 0 })

/** The last `# <label> N` of node:test's TAP summary (0 if absent). */
function tapSummary(out: string, label: string): number {
    const all = [...out.matchAll(new RegExp(`^# ${label} (\\d+)$`, "gm"))]
    return all.length ? Number(all[all.length - 1][1]) : 0
}

/**
 * Suites (describe) reported `not ok` because one of their own hooks failed. node:test counts none
 * of them in its summary: an `after` that finds an out-of-memory VM would pass unseen.
 */
export function failedSuiteHooks(tap: string): string[] {
    const found: string[] = []
    // a `not ok` line and its YAML block at the same indentation (`  ---` ... `  ...`)
    const block = /^( *)not ok \d+ - (.*)\n\1  ---\n([\s\S]*?)\n\1  \.\.\.$/gm
    for (const m of tap.matchAll(block)) {
        const yaml = m[3]
        if (/^ *type: 'suite'$/m.test(yaml) && /^ *failureType: 'hookFailed'$/m.test(yaml)) {
            const error = /^ *error: (.*)$/m.exec(yaml)?.[1] ?? ""
            found.push(`${m[2]}: ${error}`)
        }
    }
    return found
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
    const plain = out.replace(/\x1b\[[0-9;]*m/g, "")
    const m = [...plain.matchAll(/tests: (\d+), pass: (\d+), error: (\d+)/g)].pop()
    if (!m) return noCounts() // no summary: the VM never finished its tests; summarize() counts the step as broken
    const [total, pass, error] = [Number(m[1]), Number(m[2]), Number(m[3])]
    return { passed: pass, failed: error, skipped: Math.max(0, total - pass - error) }
}

/** A step that failed (or ran no test) without a counted failure to show for it. */
function uncountedBreak(r: StepResult): boolean {
    return r.failed === 0 && (r.code !== 0 || (r.expectsTests && r.passed === 0))
}

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
    }
    lines.push(`${passed} passed, ${failed} failed, ${skipped} skipped`)
    return { lines, exitCode: failed > 0 ? 1 : 0 }
}
