#!/usr/bin/env bash
# Installs what Parley needs on Debian 12, only what is missing.
#   scripts/deps.sh build   compilers, libraries, Node.js + the web UI's npm packages
#   scripts/deps.sh test    the above plus everything the test suites use
# Idempotent and quiet when nothing is missing. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-build}

build_pkgs=(build-essential pkg-config libuv1-dev libhttp-parser-dev libjansson-dev
            libhiredis-dev libsqlite3-dev libssl-dev uthash-dev libutf8proc-dev
            nodejs npm)
test_pkgs=(libcmocka-dev python3 python3-socketio python3-websocket python3-requests redis-server
           nginx-light chromium clang libclang-rt-14-dev curl procps)

pkgs=("${build_pkgs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}")

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

# npm packages, from committed lock files only.
npm_ci() {
    local dir=$1
    [ -f "$dir/package-lock.json" ] || return 0
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        echo "deps: npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}
npm_ci web
if [ "$what" = test ]; then
    npm_ci tests/integration
    npm_ci tests/e2e
fi
