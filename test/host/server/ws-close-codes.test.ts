// [P§3, P§6] A WebSocket the server closes after a notice is closed with the RFC 6455 code that says why, the
// notice's code as the reason: 1009 for a message too large, 1001 when the server shuts down, 1013 (try again
// later) for a slow consumer or too many connections, 1008 for a timeout. Was 1000 (Normal Closure) for all, which
// a browser client that reconnects on anything but 1000 took as "do not come back".
import assert from "node:assert/strict"
import { test } from "node:test"
import WebSocket from "ws"
import { closeCodeOf } from "../../../devs/server/listeners/ws.ts"
import { MAX_OBJECT_BYTES } from "../../../devs/server/limits.ts"
import { serverForThisFile, startTestServer, WAIT_MS } from "../harness/server-harness.ts"

const s = await serverForThisFile()

/** Opens a WebSocket to `port`; `closed` resolves with the close code and reason it gets. */
async function open(port: number) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
    const closed = new Promise<[number, string]>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not closed within ${WAIT_MS} ms`)), WAIT_MS)
        ws.on("close", (code, reason) => (clearTimeout(timer), resolve([code, reason.toString()])))
    })
    ws.on("error", () => {})
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)))
    return { ws, closed }
}

test("a message too large: 1009 E_TOO_LARGE", async () => {
    const { ws, closed } = await open(s.appPort)
    ws.send(JSON.stringify({ method: "get", resource: "/session", pad: "p".repeat(MAX_OBJECT_BYTES) }))
    assert.deepEqual(await closed, [1009, "E_TOO_LARGE"])
})

test("the server shutting down: 1001 E_SHUTTING_DOWN", async () => {
    const own = await startTestServer()
    let stopped = false
    try {
        const { closed } = await open(own.appPort)
        const stopping = own.stop().then(() => (stopped = true))
        assert.deepEqual(await closed, [1001, "E_SHUTTING_DOWN"])
        await stopping
    } finally {
        if (!stopped) await own.stop()
    }
})

test("each notice's close code", () => {
    assert.equal(closeCodeOf(undefined), 1000)
    assert.equal(closeCodeOf({ status: 503, code: "E_SLOW_CONSUMER" }), 1013)
    assert.equal(closeCodeOf({ status: 429, code: "E_TOO_MANY_CONNECTIONS" }), 1013)
    assert.equal(closeCodeOf({ status: 408, code: "E_IDLE_TIMEOUT" }), 1008)
    assert.equal(closeCodeOf({ status: 408, code: "E_AUTH_TIMEOUT" }), 1008)
})
