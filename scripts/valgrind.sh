#!/usr/bin/env bash
# Runs integration tests with every server they start (build/parley,
# build/conformance-server) under valgrind memcheck: any memory error, and any
# definite or indirect leak at the clean shutdown that ends each test server,
# makes valgrind exit 99, which fails that test through stop() in
# tests/integration/lib/server.mjs (it fails any non-zero exit).
#
#   scripts/valgrind.sh                  every integration test file
#   scripts/valgrind.sh chat core        tests/integration/<name>.test.mjs only
#   SKIP_BUILD=1 scripts/valgrind.sh     use $BUILD (default build) as it is
#                                        instead of running make first
#   PARLEY_SLOW=N, VALGRIND_OPTS=...     override the factor (10) or options
#   RETRIES=N                            see below (default 0: no retry)
#
# How: lib/server.mjs starts binaries through $PARLEY_WRAP when it is set and
# multiplies its own waits by $PARLEY_SLOW, and the tests multiply their bound
# T by the same factor. The normal build/ binaries are used (-O2 -g; valgrind
# needs no special build). Prints the valgrind reports that failed a test, and
# ends with "N passed, N failed"; exits 1 if anything failed.
#
# Each test file runs on its own. RETRIES (default 0) re-runs a file that
# failed without any valgrind report (no "==PID==" line, no exit 99); a
# failure with a valgrind report is never retried, and every retry is listed
# in the summary. The tests wait for events, not for time, so they hold at
# valgrind's 10-30x CPU cost; a retry is only a diagnostic aid.
#
# No subset is needed: the whole suite takes 100 s under valgrind on 2 idle
# cores, 3-4.5 minutes on busy ones (the tests wait on I/O more than the
# server computes). config.test.mjs runs the binary directly for its
# --help/--version/error cases (spawnSync, outside the wrapper); its servers
# go through the wrapper like the others'.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

BUILD=${BUILD:-build}
SLOW=${PARLEY_SLOW:-10}
RETRIES=${RETRIES:-0}
VALGRIND_OPTS=${VALGRIND_OPTS:-"--error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --track-fds=no --num-callers=30 -q"}

need_cmd valgrind.sh valgrind valgrind test
need_cmd valgrind.sh node nodejs build
need_npm valgrind.sh tests/integration test

files=()
for s in "$@"; do
    f="tests/integration/$s.test.mjs"
    [ -f "$f" ] || { echo "no such suite: $f" >&2; exit 2; }
    files+=("$f")
done
[ ${#files[@]} -eq 0 ] && files=(tests/integration/*.test.mjs)

if [ "${SKIP_BUILD:-}" != 1 ]; then
    make -s BUILD="$BUILD" all "$BUILD/conformance-server"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Files run with an include pattern (node --test-name-pattern: a test runs
# when its name or a suite's around it matches), should one ever have to
# leave something out under valgrind. None does today.
declare -A ONLY=()

# What valgrind leaves in a failed test's message: its "==PID==" report
# lines, and stop()'s "exited with code 99".
valgrind_re='==[0-9]+==|exited with code 99'

# run_file FILE TAP [PATTERN]: node's test runner on one file under the
# wrapper; sets p and f (failed + cancelled, at least 1 if node failed
# without a count).
run_file() {
    local rc=0 c pattern=()
    [ -n "${3:-}" ] && pattern=(--test-name-pattern="$3")
    PARLEY_BUILD_DIR="$BUILD" PARLEY_SLOW="$SLOW" PARLEY_WRAP="valgrind $VALGRIND_OPTS" \
        timeout --kill-after=10 900 node --test "${pattern[@]}" \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$2" \
        "$1" || rc=$?
    p=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$2" 2>/dev/null | tail -n 1)
    f=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$2" 2>/dev/null | tail -n 1)
    c=$(sed -n 's/^# cancelled \([0-9][0-9]*\)$/\1/p' "$2" 2>/dev/null | tail -n 1)
    p=${p:-0}; f=$(( ${f:-0} + ${c:-0} ))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; fi
}

echo "== integration tests under valgrind ($(valgrind --version), PARLEY_SLOW=$SLOW, retries=$RETRIES)"
start=$(date +%s)
total_p=0 total_f=0
notes=()
for file in "${files[@]}"; do
    name=$(basename "$file" .test.mjs)
    only=${ONLY[$name]:-}
    [ -n "$only" ] && notes+=("$name: only tests matching /$only/ (see scripts/valgrind.sh)")
    attempt=0
    while :; do
        tap="$tmp/$name.$attempt.tap"
        if [ "$attempt" -eq 0 ]; then echo "-- $file"; else echo "-- $file (retry $attempt)"; fi
        run_file "$file" "$tap" "$only"
        [ "$f" -eq 0 ] && break
        if grep -Eq "$valgrind_re" "$tap"; then
            notes+=("$name: valgrind reported an error or a leak (never retried)")
            break
        fi
        if [ "$attempt" -ge "$RETRIES" ]; then
            notes+=("$name: failed without a valgrind report, $((attempt + 1)) times")
            break
        fi
        attempt=$((attempt + 1))
        notes+=("$name: $f failed without a valgrind report (a timing race?); retried")
    done
    total_p=$((total_p + p))
    total_f=$((total_f + f))
done
secs=$(( $(date +%s) - start ))

if cat "$tmp"/*.tap 2>/dev/null | grep -Eq '==[0-9]+=='; then
    echo
    echo "== valgrind reports"
    cat "$tmp"/*.tap | grep -E '==[0-9]+==' | sed 's/^ *//' | head -300
fi
echo
echo "== valgrind: ${secs}s, ${#files[@]} files"
for n in "${notes[@]}"; do echo "  $n"; done
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
