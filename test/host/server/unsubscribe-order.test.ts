// [P§5, §8] An unsubscribe is taken once the writes sent before it are answered, and sees them: a client
// that pipelines subscribe, write, unsubscribe gets the write's push before the unsubscribe's answer. Found
// with a foreign client: the write was acknowledged, the unsubscribe answered {"removed":1}, and the push
// never came (it was still queued for the fan-out's next turn when the subscription went).
import assert from "node:assert/strict"
import { test } from "node:test"
import { encodeRequest, type Request } from "../../../src/protocol.ts"
import { http, serverForThisFile, streamDoors } from "../harness/server-harness.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey
const feed = (await http(s, "POST", "/v2/feeds", { key: master, body: { title: "unsubscribe order" } })).body.id as number

for (const which of ["by token", "by resource", "all"] as const) {
    test(`unsubscribe (${which}) pipelined behind a write: the write's push comes first, on every stream door`, async () => {
        const { doors, close } = await streamDoors(s)
        try {
            for (const [door, c] of doors) {
                const ds = `${door}-${which.replace(" ", "-")}`
                const resource = `/feeds/${feed}/datastreams/${ds}`
                const unsubscribe: Request =
                    which === "by token"
                        ? { method: "unsubscribe", params: { token: "s1" }, token: "u" }
                        : which === "by resource"
                          ? { method: "unsubscribe", resource, token: "u" }
                          : { method: "unsubscribe", token: "u" }
                const requests: Request[] = [
                    { method: "subscribe", resource, headers: { "X-ApiKey": master }, token: "s1" },
                    { method: "put", resource, body: { current_value: "seen" }, token: "w" },
                    unsubscribe,
                ]
                for (const r of requests) c.sendRaw(encodeRequest(r))
                const answer = await c.response("u")
                assert.deepEqual([answer.response!.status, answer.response!.body], [200, { removed: 1 }], door)
                const lines = c.q.lines.map((l) => l.raw)
                const push = lines.findIndex((l) => l.includes('"token":"s1"') && l.includes('"current_value":"seen"'))
                assert.ok(push >= 0 && push < lines.indexOf(answer.raw), `${door}: the push before the unsubscribe's answer; got ${lines.join(" | ")}`)
            }
        } finally {
            close()
        }
    })
}
