// Deferred and periodic calls on fibers of their own, instead of the core's timer library: a program that
// calls setTimeout or setInterval carries the library's timer queue and its worker fiber, 840 B of the code
// window on the S3 (docs/FIRMWARE.md "Program size"); these two functions are what the firmware uses of it.
import * as ds from "@devicescript/core"

/** Calls `fn` after `ms` (0: once the caller's run is over), as a setTimeout callback would be: `runAfter.start(fn, ms)`. */
export async function runAfter(fn: () => void, ms: number) {
    await ds.sleep(ms)
    fn()
}

/** Calls `fn` every `periodMs`, each call `periodMs` after the last one returned, for ever: `runEvery.start(fn, periodMs)`. */
export async function runEvery(fn: () => void, periodMs: number) {
    for (;;) {
        await ds.sleep(periodMs)
        fn()
    }
}
