// The client core (request table, subscription cursor), DeviceScript side: the same tables as the Node
// test (test/host/protocol/client-core.test.ts), so the firmware link decides as the other clients do.
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { RequestTable } from "../../src/requests"
import { SubscriptionCursor } from "../../src/subscription-cursor"
import { CURSOR_VECTOR_PARTS, cursorVectors, runCursorVector, runRequestTableChecks } from "../vectors/client-core"

describe("client core", () => {
    test("request table: the shared checks", () => {
        expect(runRequestTableChecks(prefix => new RequestTable(prefix))).toBe("")
    })
    test("subscription cursor: the shared table", async () => {
        for (let part = 0; part < CURSOR_VECTOR_PARTS; ++part) {
            // one part at a time: the whole table does not fit in the heap beside this program
            const vectors = cursorVectors(part)
            for (let i = 0; i < vectors.length; ++i) {
                // a yield per vector: a test's steps count towards the next synchronous tests' InfiniteLoop budget (128K VM steps)
                await ds.sleep(0)
                const v = vectors[i]
                expect(runCursorVector(v, (sinceAt, limit, oneStream, bySeq) => new SubscriptionCursor(sinceAt, limit, oneStream, bySeq))).toBe("")
            }
        }
    })
})
