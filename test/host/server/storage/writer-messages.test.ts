// The writes' message to the SQLite writer thread (writer-thread.ts packWrites / unpackWrites): the main thread
// fills one array again for every message, so each message must carry exactly its own writes, whatever the
// messages before it held.
import assert from "node:assert/strict"
import { test } from "node:test"
import type { WriteRequest } from "../../../../devs/server/storage/point-writer.ts"
import { packWrites, unpackWrites, type PackedWrites } from "../../../../devs/server/storage/writer-thread.ts"

const T0 = Date.UTC(2026, 11, 7, 14)

function writes(n: number, pointsEach: number, tag: string): WriteRequest[] {
    return Array.from({ length: n }, (_, w) => ({
        feed: w + 1,
        points: Array.from({ length: pointsEach }, (_, k) => ({ stream: `${tag}${k}`, atMs: T0 + k, value: `${tag}-${w}-${k}` })),
        ...(w % 2 ? { keysGeneration: w } : {}),
    }))
}

test("a packed array filled again carries exactly the new message's writes: a shorter one leaves nothing of the longer one before it", () => {
    const into: PackedWrites = []
    const long = writes(40, 3, "a")
    assert.deepEqual(unpackWrites(packWrites(long, into)), long)
    const short = writes(2, 1, "b")
    const again = packWrites(short, into)
    assert.equal(again, into, "the same array, filled again")
    assert.deepEqual(unpackWrites(again), short)
    assert.equal(again.length, 2 * (3 + 3))
    const longer = writes(60, 2, "c")
    assert.deepEqual(unpackWrites(packWrites(longer, into)), longer)
    assert.deepEqual(unpackWrites(packWrites([], into)), [])
})

test("packWrites without an array to fill makes a new one", () => {
    const w = writes(3, 2, "d")
    const a = packWrites(w)
    const b = packWrites(w)
    assert.notEqual(a, b)
    assert.deepEqual(unpackWrites(a), w)
})
