// Waiting in tests without asserting on timing: poll a check until it gives a value or a generous limit passes.
// The one polling helper for host and e2e tests.
import assert from "node:assert/strict"
import { performance } from "node:perf_hooks"

export const UNTIL_LIMIT_MS = 5000
/** Polling in-process state is cheap; checks that ask a server over HTTP pass SERVER_POLL_MS instead. */
export const UNTIL_POLL_MS = 5
/** For checks that make a request to a server each time (the e2e tests): keeps polling off a loaded machine. */
export const SERVER_POLL_MS = 100

/**
 * Polls `check` every `pollMs` until it returns something other than `undefined` or `false`, and returns that
 * (so a boolean check waits for `true`, and a lookup waits for its value). Fails naming `what` (a string, or a
 * function read at the time of failure) after `limitMs`: a bound for a hung test, not a timing assertion.
 */
export async function until<T>(
    what: string | (() => string),
    check: () => T | Promise<T>,
    limitMs = UNTIL_LIMIT_MS,
    pollMs = UNTIL_POLL_MS,
): Promise<Exclude<T, undefined | false>> {
    const start = performance.now()
    for (;;) {
        const v = await check()
        if (v !== undefined && v !== false) return v as Exclude<T, undefined | false>
        if (performance.now() - start > limitMs) assert.fail(`timed out after ${limitMs} ms waiting for ${typeof what === "string" ? what : what()}`)
        await new Promise((r) => setTimeout(r, pollMs))
    }
}
