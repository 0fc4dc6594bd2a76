// A start that cannot work says why, as a setting to change, and lets go of what it opened: a second
// server on a data folder another serves from (was: it ran beside the first on one SQLite database, its
// subscribers deaf to the first's writes), a data folder that is a file, a certificate that cannot be read
// or does not match its key, a database that is not one, a port in use or out of range, an unknown log
// level, a ready file that cannot be written (each was a stack trace, exit 1); and `npm start` meeting a
// port in use or a data folder another server serves (a stack trace once the server said why as a
// ConfigError), with no warning about the folder it made itself.
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { test } from "node:test"
import { promisify } from "node:util"
import { compiledCli, compiledEntry } from "../../../devs/server/compiled.ts"
import { ConfigError } from "../../../devs/server/errors.ts"
import { startServer, type ServerOptions } from "../../../devs/server/index.ts"
import { tempDir } from "../harness/temp-dirs.ts"

const run = promisify(execFile)
const newDir = () => tempDir("feedline-refusal-")

const start = (o: Partial<ServerOptions> & { dataDir: string }) => startServer({ devicePort: 0, appPort: 0, logLevel: "silent", ...o })
/** The start is refused with a ConfigError matching `pattern`; one that starts anyway is closed, so the test ends. */
async function refused(starting: ReturnType<typeof start>, pattern: RegExp): Promise<void> {
    const r = await starting.catch((e: unknown) => e)
    if (!(r instanceof Error)) {
        await (r as Awaited<typeof starting>).close()
        assert.fail(`started, expected a refusal matching ${pattern}`)
    }
    assert.ok(r instanceof ConfigError, r.stack)
    assert.match(r.message, pattern)
}

test("one server per SQLite data folder: a second is refused, the first keeps serving; a failed start lets go of the folder", async () => {
    const dataDir = newDir()
    const first = await start({ dataDir })
    try {
        await refused(start({ dataDir }), /another feedline server is serving the database .*feedline\.db.*--data-dir of its own/)
        const res = await fetch(`http://127.0.0.1:${first.appPort}/v2/feeds/1`, { headers: { "X-ApiKey": first.credentials.masterKey } })
        assert.equal(res.status, 200)
        // a start that fails after opening the store (its port is the first's) closes it again
        const other = newDir()
        await refused(start({ dataDir: other, devicePort: first.devicePort }), /--device-port \d+ on --host 127\.0\.0\.1: the port is in use/)
        await (await start({ dataDir: other })).close()
    } finally {
        await first.close()
    }
    // once the first has stopped, the folder is free
    await (await start({ dataDir })).close()
})

test("a connection bound of 0 (it would refuse every connection it counts) is refused at start, saying what to pass", async () => {
    const dataDir = newDir()
    await refused(start({ dataDir, maxConnections: 100, maxConnectionsPerKey: 0 }), /^--max-connections-per-key 0 would refuse every connection it counts; pass at least 1 \(.*pass --max-connections's value, 100\)$/)
    await refused(start({ dataDir, maxConnections: 0 }), /^--max-connections 0 would refuse every connection it counts; pass at least 1 \(default 4096\)$/)
    await refused(start({ dataDir, maxConnectionsPerAddress: 0 }), /^--max-connections-per-address 0 .*\(default 1024\)$/)
    await refused(start({ dataDir, maxHttpConnections: 0 }), /^--max-http-connections 0 .*\(default 1024\)$/)
    await refused(start({ dataDir, maxHttpConnectionsPerAddress: 0 }), /^--max-http-connections-per-address 0 .*\(default 256\)$/)
    // 1 is a bound like any other
    await (await start({ dataDir, maxConnectionsPerKey: 1 })).close()
})

test("the CLI: settings a start cannot work with exit 2 with what to change, never a stack trace", async () => {
    const holderDir = newDir()
    const holder = await start({ dataDir: holderDir })
    try {
        const base = newDir()
        const fileAsFolder = join(base, "a-file")
        writeFileSync(fileAsFolder, "not a folder\n")
        const notADatabase = join(base, "not-a-database")
        mkdirSync(notADatabase)
        writeFileSync(join(notADatabase, "feedline.db"), "this is not SQLite\n")
        const tls = join(holderDir, "tls")
        const serve = (...args: string[]) => ["serve", "--host", "127.0.0.1", "--device-port", "0", "--app-port", "0", "--data-dir", join(base, `d${args.length}${Math.random()}`), ...args]
        const cases: [string[], RegExp][] = [
            [["serve", "--host", "127.0.0.1", "--device-port", "0", "--app-port", "0", "--data-dir", holderDir], /another feedline server is serving the database/],
            [serve("--device-port", "70000"), /--device-port must be a port from 0 \(any free one\) to 65535/],
            [serve("--data-dir", fileAsFolder), /the data folder .*a-file cannot be used .*give --data-dir a folder/],
            [["keys", "list", "--data-dir", fileAsFolder], /the data folder .*a-file cannot be used/],
            [serve("--data-dir", notADatabase), /cannot open the database .*feedline\.db \(SQLITE_NOTADB/],
            [serve("--tls-cert", join(base, "missing.pem"), "--tls-key", join(base, "missing-key.pem")), /cannot read --tls-cert .*missing\.pem \(ENOENT\)/],
            [serve("--tls-cert", join(tls, "server.pem"), "--tls-key", join(tls, "ca-key.pem")), /are not a usable certificate and key \(E_TLS_KEY_MISMATCH: the key is not the certificate.s/],
            [serve("--device-port", String(holder.devicePort)), /the port is in use by another program/],
            [serve("--log-level", "loud"), /--log-level: no level "loud"/],
            [serve("--cors-origins", "https://app.example.com/"), /--cors-origins: "https:\/\/app\.example\.com\/" is not an origin; write it as browsers send it: "https:\/\/app\.example\.com"/],
            [serve("--ready-file", join(base, "no-such-folder", "ready.json")), /cannot write --ready-file .*ready\.json \(ENOENT\)/],
            // 0 refused every key but the master keys; no limit of the server reads 0 as "none"
            [serve("--max-connections-per-key", "0"), /--max-connections-per-key 0 would refuse every connection it counts; pass at least 1 \(to hold keys to no bound of their own, pass --max-connections's value, 4096\)/],
        ]
        await Promise.all(
            cases.map(async ([args, message]) => {
                const r = await run(process.execPath, [compiledCli(), ...args], { timeout: 30_000 }).then(
                    () => ({ code: 0, stderr: "" }),
                    (e) => e as { code: number; stderr: string },
                )
                const what = args.join(" ")
                assert.equal(r.code, 2, `${what}: ${r.stderr}`)
                assert.match(r.stderr, message, what)
                assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: a stack trace`)
            }),
        )
    } finally {
        await holder.close()
    }
})

test("npm start: a port in use, or a data folder another server serves: one line saying what to change, exit 1", async () => {
    const holderDir = newDir()
    const holder = await start({ dataDir: holderDir })
    try {
        const npmStart = (env: Record<string, string>) =>
            run(process.execPath, [compiledEntry("devs/start.ts")], { timeout: 30_000, env: { ...process.env, FEEDLINE_APP_PORT: "0", NO_COLOR: "1", ...env } }).then(
                () => ({ code: 0, stdout: "", stderr: "" }),
                (e) => e as { code: number; stdout: string; stderr: string },
            )
        const fresh = join(newDir(), "data")
        const [portInUse, folderInUse] = await Promise.all([
            npmStart({ FEEDLINE_DATA_DIR: fresh, FEEDLINE_DEVICE_PORT: String(holder.devicePort) }),
            npmStart({ FEEDLINE_DATA_DIR: holderDir, FEEDLINE_DEVICE_PORT: "0" }),
        ])
        for (const [r, message] of [
            [portInUse, new RegExp(`port ${holder.devicePort} is already in use .*FEEDLINE_DEVICE_PORT=`)],
            [folderInUse, /another feedline server is serving the database .*FEEDLINE_DATA_DIR/],
        ] as const) {
            const out = r.stdout + r.stderr
            assert.equal(r.code, 1, out)
            assert.match(out, message)
            assert.doesNotMatch(out, /\n\s+at /, "a stack trace")
        }
        assert.doesNotMatch(portInUse.stdout + portInUse.stderr, /narrowed it/, "npm start made its data folder wider than the server wants it")
    } finally {
        await holder.close()
    }
})
