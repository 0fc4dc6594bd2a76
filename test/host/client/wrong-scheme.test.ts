// A client pointed at the app port with the wrong scheme is told which one to use: `--server http://…` (or
// ws://) on a port that speaks TLS (the server answers the upgrade `400 E_USE_HTTPS`), and `https://` (or
// wss://) on one that speaks plain HTTP (a loopback server, as under npm start). Both used to read as an
// unreachable server with the wrong advice ("is the path /ws right?", "is this the TLS device port?").
import { test, before, after } from "node:test"
import assert from "node:assert/strict"
import { runClientCommand } from "../../../devs/client/commands/index.ts"
import { startTestServer, type TestServer } from "../harness/server-harness.ts"

let tlsApp: TestServer
let plainApp: TestServer

before(async () => {
    ;[tlsApp, plainApp] = await Promise.all([startTestServer({ appTls: true }), startTestServer()])
})
after(async () => {
    await Promise.all([tlsApp?.stop(), plainApp?.stop()])
})

async function get(server: TestServer, address: string): Promise<{ code: number; err: string }> {
    let err = ""
    const io = {
        out: () => {},
        err: (t: string) => void (err += t),
        env: { FEEDLINE_SERVER: address, FEEDLINE_KEY: server.credentials.masterKey, FEEDLINE_CA: server.caCertPath },
    }
    const code = await runClientCommand("get", ["/feeds/1"], io)
    return { code, err }
}

test("http:// or ws:// on an app port that speaks TLS: a usage error naming https:// and wss://", async () => {
    const port = tlsApp.appPort
    for (const address of [`http://127.0.0.1:${port}`, `ws://127.0.0.1:${port}/ws`]) {
        const r = await get(tlsApp, address)
        assert.equal(r.code, 2, r.err)
        assert.match(r.err, new RegExp(`^error E_USAGE: .*speaks TLS; use --server https://127\\.0\\.0\\.1:${port} \\(or wss://127\\.0\\.0\\.1:${port}/ws\\)`), r.err)
    }
    const ok = await get(tlsApp, `https://localhost:${port}`)
    assert.equal(ok.code, 0, ok.err)
})

test("https:// on an app port that speaks plain HTTP: the TLS error says to use http:// or ws://", async () => {
    const r = await get(plainApp, `https://127.0.0.1:${plainApp.appPort}`)
    assert.equal(r.code, 3, r.err)
    assert.match(r.err, /^error E_TLS: .*plain HTTP.*use http:\/\/ or ws:\/\//, r.err)
})

test("a wrong WebSocket path still says so", async () => {
    const r = await get(plainApp, `ws://127.0.0.1:${plainApp.appPort}/nope`)
    assert.equal(r.code, 3, r.err)
    assert.match(r.err, /^error E_UNREACHABLE: .*HTTP 404.*is the path \/ws right\?/, r.err)
})
