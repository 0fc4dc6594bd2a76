// [P§5, P§8] A client that counts its tokens (`"token":5`, as Xively's "incrementing counter" suggests) names
// the subscription it made with 5 as 5 when it unsubscribes: was 422 E_BAD_PARAM, though the subscribe took
// the number and echoed it as "5". A number names the token it prints as.
import assert from "node:assert/strict"
import { test } from "node:test"
import { encodeRequest } from "../../../src/protocol.ts"
import { serverForThisFile, WsClient } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const feed = s.credentials.feedId

test("unsubscribe with params.token a number removes the subscription made with that number", async (t) => {
    const ws = await WsClient.open(s)
    t.after(() => ws.close())
    await ws.welcome()
    // raw: the harness's request() writes tokens as strings
    ws.sendRaw(`{"method":"subscribe","resource":"/feeds/${feed}","headers":{"X-ApiKey":"${s.credentials.masterKey}"},"token":5}`)
    assert.equal((await ws.response("5")).response!.status, 200)
    ws.sendRaw(`{"method":"subscribe","resource":"/feeds/${feed}","token":6}`)
    assert.equal((await ws.response("6")).response!.status, 200)
    ws.sendRaw(encodeRequest({ method: "unsubscribe", params: { token: 5 }, token: "u1" }))
    const one = (await ws.response("u1")).response!
    assert.deepEqual([one.status, one.body], [200, { removed: 1 }])
    ws.sendRaw(encodeRequest({ method: "unsubscribe", resource: `/feeds/${feed}`, params: { token: 6 }, token: "u2" }))
    assert.deepEqual((await ws.response("u2")).response!.body, { removed: 1 })
    // gone: naming it again is the 404 of a subscription the connection does not hold
    ws.sendRaw(encodeRequest({ method: "unsubscribe", params: { token: 5 }, token: "u3" }))
    const again = (await ws.response("u3")).response!
    assert.deepEqual([again.status, again.body.code], [404, "E_NOT_FOUND"])
})
