#!/usr/bin/env bash
# Runs the official Engine.IO and Socket.IO protocol suites against Parley's
# conformance server. The suites are not part of this repository: $1 is a
# folder holding engine.io-protocol/test-suite and socket.io-protocol/test-suite
# (each with `npm ci` done). See docs/CONFORMANCE.md.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
dir=${1:-}
if [ -z "$dir" ] || [ ! -d "$dir/engine.io-protocol/test-suite" ] || [ ! -d "$dir/socket.io-protocol/test-suite" ]; then
    echo "usage: make conformance CONFORMANCE_DIR=/path/holding/engine.io-protocol+socket.io-protocol" >&2
    exit 2
fi
port=${PORT:-3000}
bin=${CONFORMANCE_BIN:-$repo/build/conformance-server}
need_cmd conformance.sh npx npm build
tmp=$(mktemp -d)
"$bin" --port "$port" --port-file "$tmp/port" 2>"$tmp/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
if ! wait_port_file "$tmp/port" "$pid" 10 >/dev/null; then
    echo "conformance.sh: $bin did not start on port $port:" >&2
    cat "$tmp/server.log" >&2
    exit 1
fi
status=0
for suite in engine.io-protocol socket.io-protocol; do
    echo "== $suite"
    (cd "$dir/$suite/test-suite" &&
        NODE_OPTIONS="--import $repo/tests/conformance/one-message-per-macrotask.mjs" \
            npx mocha --reporter dot test-suite.js) || status=1
done
exit $status
