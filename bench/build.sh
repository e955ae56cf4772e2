#!/usr/bin/env bash
# bench/build.sh - builds the load generator into build/bench/loadgen.
# Plain libc + epoll, no dependency; called by scripts/bench.sh and
# scripts/bench-scale.sh (CC and BUILD may be overridden from the environment).
set -euo pipefail
cd "$(dirname "$0")/.."
CC=${CC:-cc}
OUT=${BUILD:-build}/bench
mkdir -p "$OUT"
src=(bench/loadgen/*.c)
# rebuild only when a source or the header is newer than the binary
if [ -x "$OUT/loadgen" ] && [ -z "$(find bench/loadgen -newer "$OUT/loadgen" -name '*.[ch]' -print -quit)" ]; then
    exit 0
fi
$CC -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
    ${WERROR:+-Werror} "${src[@]}" -o "$OUT/loadgen"
echo "built $OUT/loadgen"
