#!/usr/bin/env bash
# Runs Parley's tests against what `make` built; `make test` calls it after
# building. Parts, in order:
#   unit         every cmocka binary in $BUILD/tests/
#   integration  node --test tests/integration/ (the real binaries on free ports)
#   redis        the Redis Cluster client, store and bus against 6 real
#                redis-server processes (tests/redis/run.sh: one cluster
#                for the three programs, started and stopped by it)
#   cluster      NGINX in front of two backends and a Redis cluster
#                (tests/cluster/, via scripts/cluster-up.sh; plain build only)
#   web          the web client's Vitest tests (npm test in web/; they do not
#                use the C build, so `all` skips them in a sanitizer build)
#   e2e          node --test tests/e2e/, when it has tests and web/dist exists
#                (`all` skips them in a sanitizer build: the sanitizer pass
#                covers unit, integration and redis)
#
#   scripts/test.sh              all parts
#   scripts/test.sh unit         one part (also: integration, redis, cluster,
#                                web, e2e; a part named runs whatever the build)
#
# BUILD picks the build folder (default build; build-asan when SANITIZE=1);
# the integration helper gets it as PARLEY_BUILD_DIR. Prints a summary with
# each part's wall time and ends with "N passed, N failed" over all parts;
# exits 1 if anything failed or a part could not run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${BUILD:-}" ]; then
    if [ "${SANITIZE:-}" = 1 ]; then BUILD=build-asan; else BUILD=build; fi
fi
export PARLEY_BUILD_DIR="$BUILD"

what=${1:-all}
case "$what" in
    all | unit | integration | redis | cluster | web | e2e) ;;
    *) echo "usage: scripts/test.sh [unit|integration|redis|cluster|web|e2e]" >&2; exit 2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

total_pass=0
total_fail=0
summary=()   # one line per part
part_start=$SECONDS

# A sanitizer build (build-asan): `all` leaves out the parts that do not
# run its binaries or are not needed under sanitizers (web, e2e; cluster
# runs with BUILD=build only).
sanitized=0
if [ "${SANITIZE:-}" = 1 ] || [[ $BUILD == *asan* ]]; then sanitized=1; fi

# note PART PASS FAIL [DETAIL]: the part's counts and its wall time (since
# its run_* function set part_start).
note() {
    total_pass=$((total_pass + $2))
    total_fail=$((total_fail + $3))
    summary+=("$(printf '%-12s %5d passed %5d failed %5d s%s' "$1" "$2" "$3" \
        $((SECONDS - part_start)) "${4:+  ($4)}")")
}

# skipped PART WHY: a part `all` leaves out, said in the output and summary.
skipped() {
    echo "== $1 tests: skipped ($2)"
    summary+=("$(printf '%-12s skipped (%s)' "$1" "$2")")
}

# Lines a sanitizer prints when it finds something (see tests/integration/lib/server.mjs).
sanitizer_re='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:'

run_unit() {
    part_start=$SECONDS
    echo "== unit tests ($BUILD/tests)"
    local pass=0 fail=0 bins=() bin
    for bin in "$BUILD"/tests/test_*; do
        [ -f "$bin" ] && [ -x "$bin" ] && bins+=("$bin")
    done
    if [ ${#bins[@]} -eq 0 ]; then
        echo "no unit test binaries in $BUILD/tests (build them with make)"
        note unit 0 1 "no binaries"
        return
    fi
    for bin in "${bins[@]}"; do
        local out="$tmp/$(basename "$bin").out" rc=0 p f
        "$bin" >"$out" 2>&1 || rc=$?
        # cmocka: "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:"
        # (summed: a binary may run several groups).
        p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
        f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s), listed below:.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
        local why=""
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            f=1; why="exit $rc"      # crashed or aborted outside a counted test
        fi
        if grep -Eq "$sanitizer_re" "$out"; then
            [ "$f" -eq 0 ] && f=1
            why="${why:+$why, }sanitizer report"
        fi
        if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
            p=1                      # ran and exited 0 without a cmocka summary
        fi
        pass=$((pass + p)); fail=$((fail + f))
        if [ "$f" -gt 0 ]; then
            printf '  FAIL %-28s %3d passed %3d failed%s\n' "$(basename "$bin")" "$p" "$f" "${why:+ ($why)}"
            sed 's/^/    | /' "$out"
        else
            printf '  ok   %-28s %3d passed\n' "$(basename "$bin")" "$p"
        fi
    done
    note unit "$pass" "$fail" "${#bins[@]} binaries"
}

# run_node PART DIR: node's test runner on DIR, spec output for people, TAP
# to a file for the counts ("# pass N", "# fail N", "# cancelled N").
run_node() {
    local part=$1 dir=$2 tap="$tmp/$1.tap" rc=0
    part_start=$SECONDS
    echo "== $part tests ($dir, PARLEY_BUILD_DIR=$BUILD)"
    if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules" ]; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
    # The bound only stops a hung run from holding CI; a healthy run takes seconds.
    timeout --kill-after=10 900 node --test \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$tap" \
        "$dir/" || rc=$?
    local p f c
    p=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n 1)
    f=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n 1)
    c=$(sed -n 's/^# cancelled \([0-9][0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n 1)
    p=${p:-0}; f=$(( ${f:-0} + ${c:-0} ))
    local why=""
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1; why="node exited $rc without a failed test"
    fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        f=1; why="no test ran"
    fi
    note "$part" "$p" "$f" "$why"
}

# The Redis Cluster client, the Redis store and the Redis bus on a real
# local cluster, one after the other on the same one (run.sh starts it,
# readies it between them and stops it): its last line is the total,
# "N passed, N failed".
run_redis() {
    part_start=$SECONDS
    echo "== redis cluster tests (tests/redis/run.sh, BUILD=$BUILD)"
    local out="$tmp/redis.out" rc=0 line p f
    BUILD="$BUILD" tests/redis/run.sh rc_test store_test bus_test 2>&1 | tee "$out" || rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1 || true)
    p=0; f=0
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*, }; f=${f%% failed}
    fi
    local why=""
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; why="run.sh exited $rc"; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; why="no test ran"; fi
    note redis "$p" "$f" "$why"
}

# The web client's component tests (Vitest): "Tests  N passed | M failed (T)".
run_web() {
    part_start=$SECONDS
    echo "== web tests (web/, vitest)"
    local out="$tmp/web.out" rc=0
    (cd web && NO_COLOR=1 FORCE_COLOR=0 npx vitest run) 2>&1 | tee "$out" || rc=$?
    local line p f
    line=$(grep -E '^ *Tests +' "$out" | tail -n 1)
    p=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) passed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p')
    p=${p:-0}; f=${f:-0}
    local why=""
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; why="vitest exited $rc"; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; why="no test ran"; fi
    note web "$p" "$f" "$why"
}

has_node_tests() {
    [ -d "$1" ] && [ -n "$(find "$1" -path '*/node_modules' -prune -o -type f \
        \( -name '*.test.mjs' -o -name '*.test.js' -o -name '*.test.cjs' -o -name 'test-*.mjs' -o -name 'test-*.js' \) -print -quit)" ]
}

if [ "$what" = all ] || [ "$what" = unit ]; then
    run_unit
fi
if [ "$what" = all ] || [ "$what" = integration ]; then
    run_node integration tests/integration
fi
if [ "$what" = all ] || [ "$what" = redis ]; then
    run_redis
fi
if [ "$what" = cluster ] || { [ "$what" = all ] && [ "$BUILD" = build ]; }; then
    run_node cluster tests/cluster
elif [ "$what" = all ]; then
    skipped cluster "BUILD=$BUILD: the cluster tests run build/parley; the plain pass runs them"
fi
if [ "$what" = web ] || { [ "$what" = all ] && [ "$sanitized" = 0 ]; }; then
    run_web
elif [ "$what" = all ]; then
    skipped web "BUILD=$BUILD: the web client's tests do not use the C build; the plain pass runs them"
fi
if [ "$what" = all ] && [ "$sanitized" = 1 ]; then
    skipped e2e "BUILD=$BUILD: browser tests are not run under sanitizers; the plain pass runs them"
elif [ "$what" = all ] || [ "$what" = e2e ]; then
    if ! has_node_tests tests/e2e; then
        echo "== e2e tests: none in tests/e2e, skipped"
    elif [ ! -d web/dist ]; then
        echo "== e2e tests: web/dist does not exist (make web), skipped"
        [ "$what" = e2e ] && note e2e 0 1 "web/dist missing"
    else
        run_node e2e tests/e2e
    fi
fi

echo
echo "== summary ($BUILD)"
for line in "${summary[@]}"; do echo "  $line"; done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
