#!/usr/bin/env bash
# Builds the web client into web/dist, which `parley --static web/dist`
# serves (`make web`, also run by `make run`; both install the npm packages
# first with scripts/deps.sh build, and this script stops when they are
# missing or older than the lock file). Rebuilds only when a source file is
# newer than the last build.
#   scripts/build-web.sh          build if needed
#   scripts/build-web.sh --force  always build
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cmd build-web npm npm build
need_npm build-web web build
cd web

force=0
[ "${1:-}" = "--force" ] && force=1

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
