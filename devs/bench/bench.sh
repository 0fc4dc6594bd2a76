#!/bin/sh
# `npm run bench`: 10k TLS connections need more open files than the usual default of 1024.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node --import tsx "$(dirname "$0")/run.ts" "$@"
