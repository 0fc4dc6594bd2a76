// devs/tools/install-system-deps.sh (run by CI before `npm ci`): a package it could not install must
// fail a CI run (CI=true: exit 1, naming the package), and only be reported outside CI (the tests that
// need it then skip, visibly). Seen without uninstalling anything: the packages' paths point nowhere
// and `apt-get` is a stub that fails.
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { chmodSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { test } from "node:test"
import { fileURLToPath } from "node:url"
import { tempDir } from "../harness/temp-dirs.ts"

const SCRIPT = fileURLToPath(new URL("../../../devs/tools/install-system-deps.sh", import.meta.url))
const stubs = tempDir("feedline-system-deps-")
for (const [name, body] of [["apt-get", "echo 'E: Unable to locate package' >&2; exit 100"], ["systemctl", "exit 0"], ["service", "exit 0"]]) {
    writeFileSync(join(stubs, name), `#!/bin/sh\n${body}\n`)
    chmodSync(join(stubs, name), 0o755)
}

function runScript(ci: string | undefined) {
    const env: NodeJS.ProcessEnv = {
        ...process.env,
        PATH: `${stubs}:${process.env.PATH}`,
        FEEDLINE_CHROMIUM_BIN: join(stubs, "no-chromium"),
        FEEDLINE_BENCH_MOSQUITTO_BIN: join(stubs, "no-mosquitto"),
        FEEDLINE_POSTGRES_BIN_DIR: join(stubs, "no-postgresql"),
        FEEDLINE_REDIS_BIN: join(stubs, "no-redis-server"),
        FEEDLINE_HAPROXY_BIN: join(stubs, "no-haproxy"),
    }
    if (ci === undefined) delete env.CI
    else env.CI = ci
    const r = spawnSync("bash", [SCRIPT], { env, encoding: "utf8", timeout: 30_000 })
    return { status: r.status, out: r.stdout + r.stderr }
}

test("with CI=true, a package that could not be installed fails the script, naming it", () => {
    const r = runScript("true")
    assert.equal(r.status, 1, r.out)
    assert.match(r.out, /ERROR: .*chromium mosquitto postgresql redis-server haproxy/)
})

test("outside CI, the same is reported and the tests that need the packages skip", () => {
    const r = runScript(undefined)
    assert.equal(r.status, 0, r.out)
    assert.match(r.out, /chromium mosquitto postgresql redis-server haproxy .*will skip/)
})

test("tests needing a service that is not installed skip with the reason, except with CI=true, where they run (and fail)", async () => {
    const { skipUnlessInstalled } = await import("../../../devs/tools/services.ts")
    const saved = { bin: process.env.FEEDLINE_REDIS_BIN, ci: process.env.CI }
    try {
        process.env.FEEDLINE_REDIS_BIN = join(stubs, "no-redis-server")
        delete process.env.CI
        assert.match(skipUnlessInstalled("redis") ?? "", /redis-server not installed; install with bash devs\/tools\/install-system-deps.sh/)
        process.env.CI = "true"
        assert.equal(skipUnlessInstalled("redis"), undefined)
    } finally {
        for (const [k, v] of [["FEEDLINE_REDIS_BIN", saved.bin], ["CI", saved.ci]] as const) {
            if (v === undefined) delete process.env[k]
            else process.env[k] = v
        }
    }
})
