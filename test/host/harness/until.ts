// Waiting in tests without asserting on timing: poll a condition until it holds or a generous limit passes.
import assert from "node:assert/strict"
import { performance } from "node:perf_hooks"

export const UNTIL_LIMIT_MS = 5000
const POLL_MS = 5

/** Polls until `cond` holds; fails naming `what` after `limitMs` (a bound for a hung test, not a timing assertion). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, limitMs = UNTIL_LIMIT_MS): Promise<void> {
    const start = performance.now()
    while (!(await cond())) {
        if (performance.now() - start > limitMs) assert.fail(`timed out after ${limitMs} ms waiting for ${what}`)
        await new Promise((r) => setTimeout(r, POLL_MS))
    }
}
