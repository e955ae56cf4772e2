#!/usr/bin/env bash
# Runs Parley's tests against what `make` built; `make test` calls it after
# building. Parts, in order:
#   unit         every cmocka binary in $BUILD/tests/
#   integration  node --test tests/integration/ (the real binaries on free ports)
#   redis        the programs of tests/redis/ (the Redis Cluster client, store
#                and bus) against 6 real redis-server processes
#                (tests/redis/run.sh builds them with make and runs them on
#                one cluster it starts and stops)
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
# the integration helper gets it as PARLEY_BUILD_DIR. A part passes when
# its runner exits 0 (cmocka binaries, node --test, tests/redis/run.sh,
# vitest; a sanitizer report makes them exit non-zero). The summary lists
# each part's status, the counts its runner printed (cmocka's "[  PASSED  ]"
# lines, node's "ℹ pass"/"ℹ fail", run.sh's "N passed, N failed", vitest's
# "Tests" line; "-" when it printed none) and its wall time, and ends with
# the counts over all parts; exits 1 if a part failed or could not run.
# What the parts need is installed by `make deps-test`; a part whose
# packages are missing stops with a message that says so.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

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
failed_parts=()
summary=()   # one line per part
part_start=$SECONDS

# A sanitizer build (build-asan): `all` leaves out the parts that do not
# run its binaries or are not needed under sanitizers (web, e2e; cluster
# runs with BUILD=build only).
sanitized=0
if [ "${SANITIZE:-}" = 1 ] || [[ $BUILD == *asan* ]]; then sanitized=1; fi

# note PART RC PASSED FAILED [DETAIL]: the part's result (its runner's exit
# status RC), the counts its runner printed ("" when none) and its wall time
# (since its run_* function set part_start).
note() {
    local status=ok f=${4:-}
    [ -n "$3" ] && [ -z "$f" ] && f=0   # cmocka prints no FAILED line when none failed
    if [ "$2" -ne 0 ]; then
        status="FAILED"
        failed_parts+=("$1")
    fi
    total_pass=$((total_pass + ${3:-0}))
    total_fail=$((total_fail + ${f:-0}))
    summary+=("$(printf '%-12s %-7s %5s passed %5s failed %5d s%s' "$1" "$status" "${3:--}" "${f:--}" \
        $((SECONDS - part_start)) "${5:+  ($5)}")")
}

# skipped PART WHY: a part `all` leaves out, said in the output and summary.
skipped() {
    echo "== $1 tests: skipped ($2)"
    summary+=("$(printf '%-12s skipped (%s)' "$1" "$2")")
}

# sum FILE SED-EXPRESSION: the sum of the numbers the expression extracts
# from FILE's lines, "" when it extracts none.
sum() {
    sed -n "$2" "$1" | awk '{ s += $1; n++ } END { if (n) print s }'
}

run_unit() {
    part_start=$SECONDS
    echo "== unit tests ($BUILD/tests)"
    local bins=() bin rc=0 out="$tmp/unit.out"
    for bin in "$BUILD"/tests/test_*; do
        [ -f "$bin" ] && [ -x "$bin" ] && bins+=("$bin")
    done
    if [ ${#bins[@]} -eq 0 ]; then
        echo "no unit test binaries in $BUILD/tests (build them with make)"
        note unit 1 "" "" "no binaries"
        return
    fi
    : >"$out"
    for bin in "${bins[@]}"; do
        local one="$tmp/${bin##*/}.out" brc=0
        "$bin" >"$one" 2>&1 || brc=$?
        cat "$one" >>"$out"
        if [ "$brc" -eq 0 ]; then
            printf '  ok   %s\n' "$(basename "$bin")"
        else
            rc=1
            printf '  FAIL %s (exit %d)\n' "$(basename "$bin")" "$brc"
            sed 's/^/    | /' "$one"
        fi
    done
    # cmocka: "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:"
    note unit "$rc" "$(sum "$out" 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p')" \
        "$(sum "$out" 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p')" "${#bins[@]} binaries"
}

# run_node PART DIR [NPM_DIR]: node's test runner on DIR (spec reporter),
# with the npm packages of NPM_DIR (default DIR).
run_node() {
    local part=$1 dir=$2 out="$tmp/$1.out" rc=0
    part_start=$SECONDS
    echo "== $part tests ($dir, PARLEY_BUILD_DIR=$BUILD)"
    need_npm test.sh "${3:-$dir}" test
    # The bound only stops a hung run from holding CI; a healthy run takes seconds.
    timeout --kill-after=10 900 node --test --test-reporter=spec "$dir/" 2>&1 | tee "$out" ||
        rc=$?
    # node's spec reporter ends with "ℹ pass N", "ℹ fail N", "ℹ cancelled N".
    local f c
    f=$(sum "$out" 's/^ℹ fail \([0-9]*\)$/\1/p')
    c=$(sum "$out" 's/^ℹ cancelled \([0-9]*\)$/\1/p')
    [ -n "$c" ] && f=$(( ${f:-0} + c ))
    note "$part" "$rc" "$(sum "$out" 's/^ℹ pass \([0-9]*\)$/\1/p')" "$f"
}

# The programs of tests/redis/ on a real local Redis Cluster (run.sh
# starts it, readies it between them and stops it); its last line is the
# total "N passed, N failed".
run_redis() {
    part_start=$SECONDS
    echo "== redis cluster tests (tests/redis/run.sh, BUILD=$BUILD)"
    local out="$tmp/redis.out" rc=0 line
    BUILD="$BUILD" tests/redis/run.sh 2>&1 | tee "$out" || rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1 || true)
    note redis "$rc" "$(sed -n 's/ passed.*//p' <<<"$line")" "$(sed -n 's/.*, \([0-9]*\) failed/\1/p' <<<"$line")"
}

# The web client's component tests (Vitest): "Tests  N passed | M failed (T)".
run_web() {
    part_start=$SECONDS
    echo "== web tests (web/, vitest)"
    local out="$tmp/web.out" rc=0 line
    need_npm test.sh web build
    (cd web && NO_COLOR=1 FORCE_COLOR=0 npx vitest run) 2>&1 | tee "$out" || rc=$?
    line=$(grep -E '^ *Tests +' "$out" | tail -n 1 || true)
    note web "$rc" "$(sed -n 's/.* \([0-9][0-9]*\) passed.*/\1/p' <<<"$line")" \
        "$(sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p' <<<"$line")"
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
    run_node cluster tests/cluster tests/integration
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
        [ "$what" = e2e ] && note e2e 1 "" "" "web/dist missing"
    else
        run_node e2e tests/e2e
    fi
fi

echo
echo "== summary ($BUILD)"
for line in "${summary[@]}"; do echo "  $line"; done
echo "$total_pass passed, $total_fail failed"
if [ ${#failed_parts[@]} -gt 0 ]; then
    echo "FAILED: ${failed_parts[*]}"
    exit 1
fi
