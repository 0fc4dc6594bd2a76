// The command-line client against a real server (TLS device port and WebSocket, loopback): sub receives
// a push, put then get round-trips, history prints tables/CSV/JSON, keys and sessions work over the
// network, and a wrong key, an unreachable server and an untrusted certificate give clear errors and
// distinct non-zero exit statuses. Most runs are in-process (fast); two go through the real bin.
import { test, before, after } from "node:test"
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import fs from "node:fs"
import net from "node:net"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { startServer, type RunningServer } from "../../../devs/server/index.ts"
import { runClientCommand } from "../../../devs/client/commands/index.ts"
import { FeedlineConnection } from "../../../devs/client/connection.ts"
import { compiledCli } from "../../../devs/server/compiled.ts"

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")
let server: RunningServer
let dataDir: string
let tls: string
let ws: string
/** a keep-alive contract a loaded machine cannot miss by accident: these tests are about the client's behaviour, not timing */
const RELAXED = { heartbeatMs: 1000, faultyMs: 5000, timeoutMs: 15_000 }

interface Run {
    code: number
    out: string
    err: string
}

/** Runs `feedline <name> ...args` in this process with its own streams and environment. */
async function feedline(name: string, args: string[], env: Record<string, string | undefined> = {}, signal?: AbortSignal, onErr?: (t: string) => void): Promise<Run> {
    let out = ""
    let err = ""
    const io = {
        out: (t: string) => void (out += t),
        err: (t: string) => {
            err += t
            onErr?.(t)
        },
        env: { FEEDLINE_SERVER: tls, FEEDLINE_KEY: server.credentials.masterKey, FEEDLINE_CA: server.caCertPath, ...env },
        signal,
    }
    const code = await runClientCommand(name, args, io)
    return { code, out, err }
}

before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "feedline-cli-"))
    server = await startServer({ dataDir, devicePort: 0, appPort: 0, logLevel: "silent", ...RELAXED })
    tls = `tls://localhost:${server.devicePort}`
    ws = `ws://127.0.0.1:${server.appPort}/ws`
})

after(async () => {
    await server?.close()
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

test("put then get round-trips, over TLS and over WebSocket", async () => {
    const put = await feedline("put", ["/feeds/1", "temp=21.5", "hum=40"])
    assert.deepEqual(put, { code: 0, out: "", err: "" })
    const got = await feedline("get", ["/feeds/1", "--json"])
    assert.equal(got.code, 0, got.err)
    const feed = JSON.parse(got.out)
    assert.deepEqual(
        feed.datastreams.map((d: any) => [d.id, d.current_value]),
        [
            ["hum", "40"],
            ["temp", "21.5"],
        ]
    )
    const overWs = await feedline("put", ["/feeds/1/datastreams/relay", "1", "-s", ws])
    assert.equal(overWs.code, 0, overWs.err)
    const relay = await feedline("get", ["/feeds/1/datastreams/relay", "-s", ws, "--json"])
    assert.equal(JSON.parse(relay.out).current_value, "1")
})

test("the client library holds several subscriptions to one resource and ends them by token or by resource [P§8]", async () => {
    const c = await FeedlineConnection.connect({ server: tls, apiKey: server.credentials.masterKey, ca: fs.readFileSync(server.caCertPath) })
    const writer = await FeedlineConnection.connect({ server: tls, apiKey: server.credentials.masterKey, ca: fs.readFileSync(server.caCertPath) })
    try {
        const got: Record<string, string[]> = { a: [], b: [] }
        const a = await c.subscribe("/feeds/1/datastreams/twice", {}, (p) => got.a.push(p.body?.current_value))
        const b = await c.subscribe("/feeds/1/datastreams/twice", {}, (p) => got.b.push(p.body?.current_value))
        assert.notEqual(a.token, b.token)
        const pushed = (n: number) => new Promise<void>((resolve) => {
            const check = () => (got.a.length + got.b.length >= n ? resolve() : setTimeout(check, 5))
            check()
        })
        await writer.call("put", "/feeds/1/datastreams/twice", { body: { current_value: "1" } })
        await pushed(2)
        assert.deepEqual(got, { a: ["1"], b: ["1"] })
        assert.equal(await c.unsubscribe({ token: a.token }), 1)
        await writer.call("put", "/feeds/1/datastreams/twice", { body: { current_value: "2" } })
        await pushed(3)
        assert.deepEqual(got, { a: ["1"], b: ["1", "2"] })
        assert.equal(await c.unsubscribe({ resource: "/feeds/1/datastreams/twice" }), 1)
        assert.equal(await c.unsubscribe(), 0)
    } finally {
        c.close()
        writer.close()
    }
})

test("sub prints a push as it arrives and stops after --count", async () => {
    let subscribed!: () => void
    const ready = new Promise<void>((r) => (subscribed = r))
    const running = feedline("sub", ["/feeds/1/datastreams/temp", "--count", "1"], {}, undefined, (t) => t.includes("subscribed to") && subscribed())
    await ready
    const r = await fetch(`http://127.0.0.1:${server.appPort}/v2/feeds/1/datastreams/temp`, {
        method: "PUT",
        headers: { "X-ApiKey": server.credentials.deviceKey, "content-type": "application/json" },
        body: JSON.stringify({ current_value: "22.75" }),
    })
    assert.equal(r.status, 200)
    const sub = await running
    assert.equal(sub.code, 0, sub.err)
    assert.match(sub.out, /^\d{4}-\d\d-\d\dT[\d:.]+Z {2}\/feeds\/1\/datastreams\/temp {2}22\.75\n$/)
})

test("sub exits with the key's error (status 4) when its key is revoked while it waits: the server's final 403 push ends it", async () => {
    const { record, secret } = await server.keys.create({ permissions: ["read"], feeds: [1] })
    let subscribed!: () => void
    const ready = new Promise<void>((r) => (subscribed = r))
    const running = feedline("sub", ["/feeds/1"], { FEEDLINE_KEY: secret }, undefined, (t) => t.includes("subscribed to") && subscribed())
    await ready
    await server.keys.revoke(record.id)
    const sub = await running
    assert.equal(sub.code, 4, sub.err)
    assert.match(sub.err, /403 E_FORBIDDEN.*revoked/)
    assert.equal(sub.out, "")
})

test("sub --since replays what was written before it started, as JSON lines", async () => {
    const first = await feedline("get", ["/feeds/1/datastreams/temp", "--json"])
    const since = JSON.parse(first.out).at
    await feedline("put", ["/feeds/1/datastreams/temp", "23.5"])
    const sub = await feedline("sub", ["/feeds/1/datastreams/temp", "--since", since, "--count", "1", "--json", "--quiet"])
    assert.equal(sub.code, 0, sub.err)
    assert.equal(JSON.parse(sub.out).body.current_value, "23.5")
    assert.equal(sub.err, "")
})

test("history prints a table, CSV or JSON", async () => {
    const table = await feedline("history", ["temp", "--feed", "1", "--duration", "1hours"])
    assert.equal(table.code, 0, table.err)
    const lines = table.out.trim().split("\n")
    assert.match(lines[0], /^at\s+value$/)
    assert.match(lines[1], /^\d{4}-[\d-]+T[\d:.]+Z {2}21\.5$/)
    // --interval: at most one point (the first) per interval; these writes all fall within one hour
    const hourly = await feedline("history", ["temp", "--feed", "1", "--duration", "1hours", "--interval", "3600", "--json"])
    assert.equal(JSON.parse(hourly.out).length <= 2, true, hourly.out)
    const csv = await feedline("history", ["/feeds/1/datastreams/temp", "--duration", "1hours", "--csv"])
    assert.match(csv.out, /^at,value\n.*Z,21\.5\n/)
    const json = await feedline("history", ["1/temp", "--duration", "1hours", "--json"])
    assert.ok(JSON.parse(json.out).some((p: any) => p.value === "23.5"))
})

test("keys create, list and revoke over the network; sessions lists connections", async () => {
    const created = await feedline("keys", ["create", "--label", "cli test", "--permissions", "read", "--feeds", "1", "--json"])
    assert.equal(created.code, 0, created.err)
    const key = JSON.parse(created.out)
    assert.equal(typeof key.key, "string")
    const readOnly = await feedline("get", ["/feeds/1"], { FEEDLINE_KEY: key.key })
    assert.equal(readOnly.code, 0, readOnly.err)
    const denied = await feedline("put", ["/feeds/1", "temp=1"], { FEEDLINE_KEY: key.key })
    assert.equal(denied.code, 4)
    assert.match(denied.err, /^error E_FORBIDDEN: /)
    const list = await feedline("keys", ["list"])
    assert.match(list.out, new RegExp(`${key.id}\\s+cli test\\s+read\\s+1`))
    assert.equal((await feedline("keys", ["revoke", key.id])).out, `revoked ${key.id}\n`)
    assert.equal((await feedline("get", ["/feeds/1"], { FEEDLINE_KEY: key.key })).code, 4)
    const sessions = await feedline("sessions", ["--json"])
    assert.equal(sessions.code, 0, sessions.err)
    assert.ok(JSON.parse(sessions.out).some((s: any) => s.transport === "tls"))
})

test("sessions lists a connected device (table, --json); a key on another feed does not see it", async () => {
    const device = await FeedlineConnection.connect({ server: tls, apiKey: server.credentials.deviceKey, ca: fs.readFileSync(server.caCertPath) })
    try {
        await device.call("get", "/session") // authenticates the connection
        const id = device.welcome.session
        const table = await feedline("sessions", [])
        assert.equal(table.code, 0, table.err)
        const lines = table.out.trim().split("\n")
        assert.match(lines[0], /^id\s+transport\s+remote_address\s+key_id\s+key_label\s+feeds\s+since\s+requests\s+pushes\s+subscriptions$/)
        assert.match(lines.find((l) => l.startsWith(id)) ?? "", /^\w+\s+tls\s+127\.0\.0\.1\s+[0-9a-f]{8}\s+device, feed 1\s+1\s+\d{4}-/)
        const json = await feedline("sessions", ["--json"])
        const mine = JSON.parse(json.out).find((s: any) => s.id === id)
        assert.deepEqual([mine.transport, mine.feeds, mine.key_label], ["tls", [1], "device, feed 1"])

        const other = await feedline("keys", ["create", "--permissions", "read", "--feeds", "99", "--json"])
        const scoped = await feedline("sessions", ["--json"], { FEEDLINE_KEY: JSON.parse(other.out).key })
        assert.equal(scoped.code, 0, scoped.err)
        const seen = JSON.parse(scoped.out)
        assert.ok(!seen.some((s: any) => s.id === id), "feed 1's device is not listed for a feed-99 key")
        assert.ok(seen.every((s: any) => s.feeds.length === 1 && s.feeds[0] === 99))
    } finally {
        device.close()
    }
})

test("a wrong key, an unreachable server, an untrusted certificate and a bad command line: clear errors, distinct exit statuses", async () => {
    const wrong = await feedline("get", ["/feeds/1"], { FEEDLINE_KEY: "not-a-key-at-all" })
    assert.equal(wrong.code, 4)
    assert.match(wrong.err, /^error E_AUTH: the server refused the key \(401 E_UNAUTHORIZED/)

    const s = net.createServer()
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r))
    const port = (s.address() as net.AddressInfo).port
    await new Promise((r) => s.close(r))
    const down = await feedline("get", ["/feeds/1", "-s", `tls://127.0.0.1:${port}`])
    assert.equal(down.code, 3)
    assert.match(down.err, /^error E_UNREACHABLE: cannot reach a server at tls:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/)

    const untrusted = await feedline("get", ["/feeds/1"], { FEEDLINE_CA: undefined })
    assert.equal(untrusted.code, 3)
    assert.match(untrusted.err, /^error E_UNTRUSTED_CERT: .*--ca FILE/)

    const noKey = await feedline("get", ["/feeds/1"], { FEEDLINE_KEY: undefined })
    assert.equal(noKey.code, 2)
    assert.match(noKey.err, /E_USAGE: no API key/)
    const badResource = await feedline("get", ["/feeds/../x"])
    assert.equal(badResource.code, 2)
    const badFlag = await feedline("history", ["temp", "--bogus"])
    assert.equal(badFlag.code, 2)
    assert.match(badFlag.err, /usage: feedline history/)
})

/** The real bin in a child process: exit statuses and stderr as a shell sees them. */
function bin(args: string[], env: Record<string, string>): Promise<Run> {
    return new Promise((resolve) => {
        execFile(process.execPath, [compiledCli(), ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 20_000 }, (e, out, err) =>
            resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err })
        )
    })
}

test("the feedline bin: put then get, and a wrong key exits 4", async () => {
    const env = { FEEDLINE_SERVER: tls, FEEDLINE_CA: server.caCertPath, FEEDLINE_KEY: server.credentials.masterKey }
    const [put, wrong] = await Promise.all([bin(["put", "/feeds/1", "door=open"], env), bin(["get", "/feeds/1", "--key", "not-a-key-at-all"], env)])
    assert.equal(put.code, 0, put.err)
    assert.equal(wrong.code, 4)
    assert.match(wrong.err, /E_AUTH/)
    const get = await bin(["get", "/feeds/1/datastreams/door", "--json"], env)
    assert.equal(JSON.parse(get.out).current_value, "open")
})

test("sub reconnects by itself across a server restart and misses nothing written meanwhile", { timeout: 30_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "feedline-cli-restart-"))
    let s = await startServer({ dataDir: dir, devicePort: 0, appPort: 0, logLevel: "silent", ...RELAXED })
    const { devicePort, appPort, credentials, caCertPath } = s
    const write = (value: string) =>
        fetch(`http://127.0.0.1:${appPort}/v2/feeds/1/datastreams/t`, {
            method: "PUT",
            headers: { "X-ApiKey": credentials.deviceKey, "content-type": "application/json" },
            body: JSON.stringify({ current_value: value }),
        })
    try {
        let notes = ""
        let onNote = () => {}
        const running = feedline("sub", ["/feeds/1/datastreams/t", "--count", "3"], { FEEDLINE_SERVER: `tls://localhost:${devicePort}`, FEEDLINE_KEY: credentials.masterKey, FEEDLINE_CA: caCertPath }, undefined, (t) => {
            notes += t
            onNote()
        })
        const noted = (text: string) => new Promise<void>((r) => (onNote = () => notes.includes(text) && r())).then(() => {})
        await (notes.includes("subscribed") ? Promise.resolve() : noted("subscribed"))
        await write("1")
        await s.close()
        // written while the subscriber is away: replayed through `since` once it is back
        s = await startServer({ dataDir: dir, devicePort, appPort, logLevel: "silent", ...RELAXED })
        await write("2")
        await write("3")
        const sub = await running
        assert.equal(sub.code, 0, sub.err)
        assert.deepEqual(sub.out.trim().split("\n").map((l) => l.split("  ")[2]), ["1", "2", "3"])
        assert.match(sub.err, /connection lost: .*\n.*reconnecting in \d+ ms/)
    } finally {
        await s.close()
        fs.rmSync(dir, { recursive: true, force: true })
    }
})
