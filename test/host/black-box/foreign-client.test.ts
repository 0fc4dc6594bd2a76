// A client in another language, written from docs/PROTOCOL.md alone (./foreign_client.py: Python's standard
// library, the WebSocket by hand), run against a real server on loopback over TLS, plain TCP and the WebSocket.
// What it stumbled on is checked here in Node too, so a machine without Python still holds the server to it.
import assert from "node:assert/strict"
import { execFile, execFileSync } from "node:child_process"
import net from "node:net"
import { fileURLToPath } from "node:url"
import { test } from "node:test"
import { serverForThisFile } from "../harness/server-harness.ts"
import { Door } from "./client.ts"

function python(): string | undefined {
    for (const candidate of ["python3", "/usr/bin/python3"]) {
        try {
            execFileSync(candidate, ["-c", "import ssl, socket"], { stdio: "ignore" })
            return candidate
        } catch {}
    }
    return undefined
}

const interpreter = python()
const s = await serverForThisFile({ insecureTcpPort: 0 })

// with CI=true it runs and fails instead (docs/TESTING.md "How skips show")
const skip = interpreter || process.env.CI === "true" ? false : "needs python3 (with its ssl module) on the PATH or at /usr/bin/python3"

test("a Python client written from PROTOCOL.md: every check passes on every door", { skip }, async () => {
    assert.ok(interpreter, "python3 (with its ssl module) is missing")
    const config = { host: "127.0.0.1", tls: s.devicePort, tcp: s.insecureTcpPort, app: s.appPort, ca: s.caCertPath, key: s.credentials.masterKey }
    const script = fileURLToPath(new URL("./foreign_client.py", import.meta.url))
    const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
        // bounded: each of the client's waits has a 5 s deadline (10 s for the idle timeout's notice)
        execFile(interpreter!, [script, JSON.stringify(config)], { timeout: 120_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, out: stdout + stderr }))
    })
    const lines = out.split("\n").filter((l) => l.startsWith("ok ") || l.startsWith("FAIL "))
    assert.deepEqual(lines.filter((l) => l.startsWith("FAIL")), [], out)
    assert.equal(lines.length, 8, out)
    assert.equal(code, 0, out)
})

test("§3: a WebSocket message holding several requests, as a device port's stream, is refused as such, none done (was: \"not valid JSON\")", async () => {
    const ws = await Door.ws(s)
    await ws.next((o) => "welcome" in o)
    const put = (token: string) => JSON.stringify({ method: "put", resource: "/feeds/1/datastreams/several", headers: { "X-ApiKey": s.credentials.masterKey }, body: { current_value: token }, token })
    ws.write(`${put("a")}\n${put("b")}\n`)
    const refused = await ws.next()
    assert.deepEqual([refused.token, refused.status, refused.body.code], ["", 400, "E_BAD_JSON"])
    assert.match(refused.body.errors, /holds one request, this one holds 2 JSON objects/)
    const read = await ws.ask({ method: "get", resource: "/feeds/1/datastreams/several", headers: { "X-ApiKey": s.credentials.masterKey }, token: "r" })
    assert.equal(read.status, 404, "neither write was done")
    // a message that is no JSON keeps its reason
    ws.write('{"method":')
    assert.match((await ws.next()).body.errors, /not valid JSON/)
    ws.close()
})

test("§5: a resource with a REST path's /v2 is 404 naming the resource to send", async () => {
    for (const [door, d] of await Door.both(s)) {
        const a = await d.ask({ method: "get", resource: "/v2/feeds/1", headers: { "X-ApiKey": s.credentials.masterKey }, token: "v2" })
        assert.deepEqual([a.status, a.body.code], [404, "E_NOT_FOUND"], door)
        assert.match(a.body.errors, /no \/v2 in front.*send "\/feeds\/1"/, door)
        d.close()
    }
})

test("§1: the protocol in clear sent to the TLS device port gets the notice 400 E_USE_TLS in clear, then the close (was: closed without a word)", async () => {
    const socket = net.connect(s.devicePort, "127.0.0.1")
    let text = ""
    socket.setEncoding("latin1")
    socket.on("data", (d: string) => (text += d))
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()))
    socket.on("error", () => {})
    socket.write(JSON.stringify({ method: "get", resource: "/feeds/1", headers: { "X-ApiKey": "abcdef123456" }, token: "clear" }) + "\n")
    await closed
    const notice = JSON.parse(text.split("\n")[0])
    assert.deepEqual([notice.notice, notice.status, notice.body.code, "token" in notice], [true, 400, "E_USE_TLS", false], text)
    assert.match(notice.body.errors, /connect with TLS/)
    // and the port still speaks TLS
    const tls = await Door.tls(s)
    assert.ok("welcome" in (await tls.next()))
    tls.close()
})
