// [P§5, §7] Auth once per connection, pipelined: a client that sends its key with the first request and
// the requests after it without one, without waiting for the first answer (as PROTOCOL.md allows: requests
// are taken in the order they were sent), gets them all answered with that key, not 401 for the ones
// that came while the key was being checked. Found with a foreign client: a write pipelined right behind
// the keyed one was refused "this request needs a key" on every door, for generated and imported keys.
import assert from "node:assert/strict"
import { test } from "node:test"
import { encodeRequest, type Request } from "../../../../src/protocol.ts"
import { http, serverForThisFile, streamDoors } from "../../harness/server-harness.ts"

const s = await serverForThisFile()
const master = s.credentials.masterKey
const feed = (await http(s, "POST", "/v2/feeds", { key: master, body: { title: "pipelined" } })).body.id as number
const generated = (await http(s, "POST", "/v2/keys", { key: master, body: { label: "generated", permissions: ["read", "update"], feeds: [feed] } })).body.key as string
// an imported key is checked with scrypt (about 50 ms): the longest wait a first key has
const imported = (await http(s, "POST", "/v2/keys", { key: master, body: { label: "imported", permissions: ["read", "update"], feeds: [feed], key: "pipelined-imported-key" } })).body.key as string

for (const [kind, key] of [["generated", generated], ["imported", imported]] as const) {
    test(`${kind === "imported" ? "an" : "a"} ${kind} key on the first request covers the requests pipelined behind it, on every stream door`, async () => {
        const { doors, close } = await streamDoors(s)
        try {
            for (const [door, c] of doors) {
                const requests: Request[] = [
                    { method: "put", resource: `/feeds/${feed}`, headers: { "X-ApiKey": key }, body: { datastreams: [{ id: `${door}-${kind}`, current_value: "1" }] }, token: "w1" },
                    { method: "put", resource: `/feeds/${feed}`, body: { datastreams: [{ id: `${door}-${kind}`, current_value: "2" }] }, token: "w2" },
                    { method: "get", resource: `/feeds/${feed}/datastreams/${door}-${kind}`, token: "g3" },
                    { method: "subscribe", resource: `/feeds/${feed}/datastreams/${door}-${kind}`, token: "s4" },
                ]
                // all at once: none waits for an answer (a WebSocket sends one message each)
                for (const r of requests) c.sendRaw(encodeRequest(r))
                const answers = await Promise.all(requests.map((r) => c.response(r.token!).then((l) => l.response!)))
                assert.deepEqual(
                    answers.map((a) => [a.token, a.status]),
                    requests.map((r) => [r.token, 200]),
                    `${door}: ${JSON.stringify(answers.map((a) => a.body))}`,
                )
                assert.equal((answers[2].body as { current_value: string }).current_value, "2", `${door}: the read sees both writes, in order`)
            }
        } finally {
            close()
        }
    })
}

test("a request pipelined behind a first key that is refused is 401, as one without any key is", async () => {
    const { doors, close } = await streamDoors(s)
    try {
        for (const [door, c] of doors) {
            c.sendRaw(encodeRequest({ method: "get", resource: `/feeds/${feed}`, headers: { "X-ApiKey": "not-a-key-of-this-server" }, token: "bad" }))
            c.sendRaw(encodeRequest({ method: "get", resource: `/feeds/${feed}`, token: "after" }))
            const [bad, after] = await Promise.all([c.response("bad"), c.response("after")])
            assert.equal(bad.response!.status, 401, door)
            assert.equal(after.response!.status, 401, door)
            assert.equal((after.response!.body as { code: string }).code, "E_UNAUTHORIZED", door)
        }
    } finally {
        close()
    }
})
