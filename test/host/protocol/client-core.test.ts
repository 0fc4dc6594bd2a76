// The client core (request table, subscription cursor), Node side: the client library, the dashboard page
// and the load generator use it. The DeviceScript twin runs the same tables in test/firmware/client-core.test.ts.
import assert from "node:assert/strict"
import { test } from "node:test"
import { RequestTable } from "../../../src/requests.ts"
import { SubscriptionCursor } from "../../../src/subscription-cursor.ts"
import { cursorVectors, runCursorVector, runRequestTableChecks } from "../../vectors/client-core.ts"

test("request table: the shared checks", () => {
    assert.equal(runRequestTableChecks((prefix) => new RequestTable(prefix)), "")
})

test("subscription cursor: the shared table", () => {
    for (const v of cursorVectors()) assert.equal(runCursorVector(v, (sinceAt, limit, oneStream, bySeq) => new SubscriptionCursor(sinceAt, limit, oneStream, bySeq)), "", v.name)
})
