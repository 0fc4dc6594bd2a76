#!/bin/sh
# The production install of docs/OPERATIONS.md ("Production install"), done for real on the committed HEAD of
# a checkout (default: this one): a build copy runs `npm ci` (which compiles dist/) and packs the sources
# with dist/; a "box" folder unpacks that and runs `npm ci --omit=dev`, which must get through `prepare`
# and `postinstall` without TypeScript and the DeviceScript CLI; then the server is started through its bin
# from another folder, on paths with a space, and must answer GET /healthz and GET /v2/feeds/1 and stop
# with 0 on SIGTERM. Takes minutes (two `npm ci`, better-sqlite3 built from source where its prebuilt
# binary cannot be fetched), so it is not part of `npm test`: `sh devs/tools/check-production-install.sh`.
set -eu

repo=$(cd "${1:-.}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/feedline production.XXXXXX")
server=
cleanup() {
    [ -z "$server" ] || kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    printf 'check-production-install: FAILED: %s\n' "$*" >&2
    exit 1
}
step() { printf '== %s\n' "$*"; }

step "build: git clone + npm ci (compiles dist/), then the release archive: the committed sources and dist/"
git clone -q "$repo" "$work/build"
(cd "$work/build" && npm ci --no-audit --no-fund >"$work/build.log" 2>&1) || { tail -30 "$work/build.log"; fail "npm ci in the build copy"; }
(cd "$work/build" && git archive -o "$work/feedline.tar" HEAD && tar -rf "$work/feedline.tar" dist && gzip "$work/feedline.tar")

step "box: unpack, npm ci --omit=dev"
mkdir "$work/box"
tar -xzf "$work/feedline.tar.gz" -C "$work/box"
(cd "$work/box" && npm ci --omit=dev --no-audit --no-fund >"$work/box.log" 2>&1) || { tail -30 "$work/box.log"; fail "npm ci --omit=dev"; }
grep -q "not compiling: TypeScript" "$work/box.log" || fail "prepare did not say it skipped the compile: $(cat "$work/box.log")"
grep -q "not building the firmware's DeviceScript libraries" "$work/box.log" || fail "postinstall did not say it skipped the DeviceScript libraries"
for dev in typescript tsx @devicescript/cli; do
    [ ! -e "$work/box/node_modules/$dev" ] || fail "$dev (a devDependency) is installed on the box"
done

step "serve: through the bin, from another folder, on port 0"
mkdir "$work/elsewhere"
cd "$work/elsewhere"
"$work/box/devs/bin/feedline" serve --data-dir "$work/data" --host 127.0.0.1 --device-port 0 --app-port 0 --ready-file "$work/ready.json" >"$work/serve.log" 2>&1 &
server=$!
tries=0
until [ -s "$work/ready.json" ]; do
    kill -0 "$server" 2>/dev/null || { cat "$work/serve.log"; fail "the server exited before it listened"; }
    tries=$((tries + 1))
    [ "$tries" -lt 600 ] || fail "no ready file after 60 s"
    sleep 0.1
done
WORK=$work node --input-type=module -e '
import { readFileSync } from "node:fs"
const work = process.env.WORK
const { appPort } = JSON.parse(readFileSync(`${work}/ready.json`, "utf8"))
const { masterKey, feedId } = JSON.parse(readFileSync(`${work}/data/credentials.json`, "utf8"))
for (const [path, headers] of [["/healthz", {}], [`/v2/feeds/${feedId}`, { "x-apikey": masterKey }]]) {
    const r = await fetch(`http://127.0.0.1:${appPort}${path}`, { headers })
    console.log(`GET ${path}: ${r.status}`)
    if (r.status !== 200) process.exit(1)
}
' || { cat "$work/serve.log"; fail "the server did not answer"; }
kill -TERM "$server"
code=0
wait "$server" || code=$?
server=
[ "$code" -eq 0 ] || { cat "$work/serve.log"; fail "the server exited with $code on SIGTERM"; }
echo "check-production-install: OK (npm ci --omit=dev, then feedline serve from dist/ with dependencies only)"
