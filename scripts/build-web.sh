#!/usr/bin/env bash
# Builds the web client into web/dist, which `parley --static web/dist`
# serves (`make web`, also run by `make run`). Installs the npm packages
# from the committed lock file when they are missing or older than it, and
# rebuilds only when a source file is newer than the last build.
#   scripts/build-web.sh          build if needed
#   scripts/build-web.sh --force  always build
set -euo pipefail
cd "$(dirname "$0")/../web"

force=0
[ "${1:-}" = "--force" ] && force=1

if ! command -v npm >/dev/null; then
    echo "build-web: npm not found (scripts/deps.sh build installs it)" >&2
    exit 1
fi

if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "build-web: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi

stamp=dist/index.html
if [ "$force" = 0 ] && [ -f "$stamp" ]; then
    newer=$(find src public index.html package.json package-lock.json vite.config.ts tsconfig*.json \
                 -newer "$stamp" -print -quit 2>/dev/null || true)
    if [ -z "$newer" ]; then
        echo "build-web: web/dist is up to date"
        exit 0
    fi
fi

echo "build-web: npm run build"
npm run build --silent
