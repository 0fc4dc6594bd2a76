#!/usr/bin/env bash
# Debian packages used by tests and benchmarks: chromium (dashboard browser test, driven by
# playwright-core; a browser is never downloaded), mosquitto (the MQTT peer in `npm run bench`), and
# postgresql, redis-server and haproxy (several feedline processes on one database and bus, behind a
# load balancer: the store contract suite, test/host/server/scale/, test/e2e/). Tests run
# their own throw-away instances of these on free ports; the system services the packages start are
# stopped and disabled here.
# Needs root and apt-get. Outside CI, a package that cannot be installed is reported and the tests
# that need it skip (and are counted as skipped on `npm test`'s last line). With CI=true a missing
# package is an error (exit 1): a CI run must not go green by skipping what it was meant to test.
set -u
# where the tests look for them (test/host/dashboard/browser.test.ts, devs/bench/targets/mosquitto.ts,
# devs/tools/services.ts); the overrides let test/host/tools/system-deps.test.ts see this script fail
# without uninstalling anything
chromium_bin=${FEEDLINE_CHROMIUM_BIN:-/usr/bin/chromium}
mosquitto_bins=${FEEDLINE_BENCH_MOSQUITTO_BIN:-/usr/sbin/mosquitto /usr/bin/mosquitto /usr/local/sbin/mosquitto}
postgres_bins=${FEEDLINE_POSTGRES_BIN_DIR:-/usr/lib/postgresql/*/bin}
redis_bin=${FEEDLINE_REDIS_BIN:-/usr/bin/redis-server}
haproxy_bin=${FEEDLINE_HAPROXY_BIN:-/usr/sbin/haproxy}
present() {
  case "$1" in
    chromium) [ -x "$chromium_bin" ] ;;
    mosquitto) for b in $mosquitto_bins; do [ -x "$b" ] && return 0; done; return 1 ;;
    # shellcheck disable=SC2086 # the glob picks any installed major version
    postgresql) for d in $postgres_bins; do [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && return 0; done; return 1 ;;
    redis-server) [ -x "$redis_bin" ] ;;
    haproxy) [ -x "$haproxy_bin" ] ;;
  esac
}
missing() {
  local m=()
  for p in chromium mosquitto postgresql redis-server haproxy; do present "$p" || m+=("$p"); done
  echo "${m[*]:-}"
}
# the packages start system-wide services (mosquitto on 1883, PostgreSQL on 5432, Redis on 6379):
# nothing of ours uses them, the tests and the benchmark run their own on free ports
stop_system_services() {
  for s in mosquitto postgresql redis-server haproxy; do
    systemctl stop "$s" >/dev/null 2>&1 || true
    systemctl disable "$s" >/dev/null 2>&1 || true
    # a container without systemd: the packages started them through their init scripts
    service "$s" stop >/dev/null 2>&1 || true
  done
}
fail_or_skip() {
  if [ "${CI:-}" = "true" ]; then
    echo "system deps: ERROR: $1 (CI=true: the tests that need them must run, so this fails)" >&2
    exit 1
  fi
  echo "system deps: $1; the tests that need them will skip"
  exit 0
}

need=$(missing)
[ -z "$need" ] && { echo "system deps: chromium, mosquitto, postgresql, redis-server and haproxy present"; exit 0; }
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  fail_or_skip "cannot install $need (need root and apt-get)"
fi
echo "system deps: installing $need"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086 # $need is a list of package names
apt-get update -qq && apt-get install -y -qq --no-install-recommends $need >/dev/null \
  || echo "system deps: apt-get failed for $need" >&2
stop_system_services
still=$(missing)
[ -n "$still" ] && fail_or_skip "$still not installed"
echo "system deps: installed $need"
exit 0
