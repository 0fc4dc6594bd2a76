// The HAProxy configuration for several processes (devs/tools/haproxy-config.ts): the example in
// docs/OPERATIONS.md is exactly what the function writes (so the page and the failover test,
// test/e2e/failover.test.ts, run one configuration), HAProxy accepts it (`haproxy -c`), and plain
// HTTP app ports (loopback) are checked without TLS. The HAProxy check is skipped, counted, where
// HAProxy is not installed (with CI=true it runs, and fails).
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { fileURLToPath } from "node:url"
import { haproxyConfig, type HaproxyOptions } from "../../../devs/tools/haproxy-config.ts"
import { haproxyBin, skipUnlessInstalled } from "../../../devs/tools/services.ts"

const OPERATIONS = fileURLToPath(new URL("../../../docs/OPERATIONS.md", import.meta.url))
/** the two machines of the documented example */
const DOCUMENTED: HaproxyOptions = {
    bindDevices: ":7443",
    bindApp: ":7080",
    appTls: true,
    proxyProtocol: true,
    backends: [
        { name: "a", host: "10.0.0.11", devicePort: 7443, appPort: 7080 },
        { name: "b", host: "10.0.0.12", devicePort: 7443, appPort: 7080 },
    ],
}

test("docs/OPERATIONS.md shows exactly the configuration haproxyConfig() writes", () => {
    const page = readFileSync(OPERATIONS, "utf8")
    const m = /<!-- haproxy-example:[^\n]*-->\n```\n([\s\S]*?)```/.exec(page)
    assert.ok(m, "the example block is in docs/OPERATIONS.md")
    assert.equal(m[1], haproxyConfig(DOCUMENTED))
})

test("health checks speak TLS to TLS app ports only; every process is a server of both backends", () => {
    const tlsChecked = haproxyConfig(DOCUMENTED)
    assert.equal(tlsChecked.match(/check port 7080 check-ssl verify none/g)?.length, 4)
    const plain = haproxyConfig({ ...DOCUMENTED, appTls: false, proxyProtocol: false, checkIntervalMs: 300, maxConnections: 1000 })
    assert.doesNotMatch(plain, /check-ssl/)
    assert.match(plain, /maxconn 1000\n/)
    assert.match(plain, /inter 300ms fall 2 rise 2/)
    assert.match(plain, /server b 10\.0\.0\.12:7443 check port 7080\n/)
    assert.match(plain, /server b 10\.0\.0\.12:7080 check port 7080\n/)
})

test("with the PROXY protocol every server line sends a v2 header, and its health checks one too (LOCAL); without it none", () => {
    const lines = haproxyConfig(DOCUMENTED).split("\n").filter((l) => l.trim().startsWith("server "))
    assert.equal(lines.length, 4)
    for (const line of lines) assert.match(line, / send-proxy-v2 check-send-proxy$/)
    assert.doesNotMatch(haproxyConfig({ ...DOCUMENTED, proxyProtocol: false }), /send-proxy/)
})

test("a process marked down loses its device connections at once, not the app port's: a request HAProxy is still connecting there is tried on another", () => {
    // on-marked-down shutdown-sessions also ends a session still connecting to the process being marked down, which
    // HAProxy would otherwise retry on another (retries, redispatch): e2e/failover.test.ts lost a PUT to it
    const [devices, app] = haproxyConfig(DOCUMENTED).split("\nbackend ").slice(1)
    assert.match(devices, /^feedline_devices\n[\s\S]*default-server [^\n]* on-marked-down shutdown-sessions\n/)
    assert.match(app, /^feedline_app\n/)
    assert.doesNotMatch(app, /shutdown-sessions/)
    assert.match(haproxyConfig(DOCUMENTED), /\n    retries 2\n    option redispatch 1\n/)
})

test("HAProxy accepts the configuration (haproxy -c)", { skip: skipUnlessInstalled("haproxy") }, () => {
    const dir = mkdtempSync(join(tmpdir(), "feedline-haproxy-check-"))
    try {
        for (const options of [DOCUMENTED, { ...DOCUMENTED, appTls: false, maxConnections: 1000 }, { ...DOCUMENTED, proxyProtocol: false }]) {
            const file = join(dir, "haproxy.cfg")
            writeFileSync(file, haproxyConfig(options))
            const out = execFileSync(haproxyBin()!, ["-c", "-f", file], { encoding: "utf8", stdio: "pipe" })
            assert.match(out, /Configuration file is valid/)
        }
    } finally {
        rmSync(dir, { recursive: true, force: true })
    }
})
