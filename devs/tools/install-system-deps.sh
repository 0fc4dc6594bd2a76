#!/usr/bin/env bash
# Debian packages used by tests and benchmarks: chromium (dashboard browser test, driven by
# playwright-core; a browser is never downloaded) and mosquitto (the MQTT peer in `npm run bench`).
# Needs root; without it, or without apt, the tests that need them skip with a message.
set -u
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
[ ${#need[@]} -eq 0 ] && { echo "system deps: chromium and mosquitto present"; exit 0; }
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system deps: cannot install ${need[*]} (need root and apt-get); tests that need them will skip"
  exit 0
fi
echo "system deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
  || echo "system deps: apt-get failed; tests that need ${need[*]} will skip"
# mosquitto's package starts a system broker on 1883; the benchmark runs its own on a free port
systemctl stop mosquitto >/dev/null 2>&1 || true
exit 0
