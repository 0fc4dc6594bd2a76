// The outbox's heap budget, import-free so that the host tools (the firmware benchmark) read the number the
// firmware runs with instead of parsing its source.

/**
 * The largest outbox budget the heap allows, and the default (docs/FIRMWARE.md "Heap budget"): with the
 * outbox at this cap (~12.5 KB real), RX_MAX_BYTES received and waiting, a MAX_LINE_BYTES line and a replay
 * of REPLAY_LIMIT pushes, the whole firmware still held 10 KB more in the simulator (`npm run heap`); a
 * larger OUTBOX_BYTES is clamped.
 */
export const MAX_OUTBOX_BYTES = 16000
