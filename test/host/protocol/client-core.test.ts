// The client core (request table, subscription cursor), Node side: the client library, the dashboard page
// and the load generator use it. The DeviceScript twin runs the same tables in test/firmware/client-core.test.ts.
import assert from "node:assert/strict"
import { test } from "node:test"
import { RequestTable } from "../../../src/requests.ts"
import { SubscriptionCursor } from "../../../src/subscription-cursor.ts"
import { CURSOR_VECTOR_PARTS, cursorVectors, runCursorVector, runRequestTableChecks } from "../../vectors/client-core.ts"

test("request table: the shared checks", () => {
    assert.equal(runRequestTableChecks((prefix) => new RequestTable(prefix)), "")
})

test("subscription cursor: the shared table", () => {
    for (const v of cursorVectors()) assert.equal(runCursorVector(v, (sinceAt, limit, oneStream, bySeq) => new SubscriptionCursor(sinceAt, limit, oneStream, bySeq)), "", v.name)
})

test("subscription cursor: the table's parts (the firmware test runs one at a time) are the whole table", () => {
    const parts = Array.from({ length: CURSOR_VECTOR_PARTS }, (_, i) => cursorVectors(i).map((v) => v.name))
    assert.ok(parts.every((p) => p.length > 0), "no part is empty")
    assert.deepEqual(parts.flat(), cursorVectors().map((v) => v.name))
})
