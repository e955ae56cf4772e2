#!/usr/bin/env bash
# Integration tests on a live Redis Cluster: tests/redis/NAME.c, NAME being
# rc_test (the Redis Cluster client, the default), store_test (the Redis
# store, src/store/store_redis.c) or bus_test (the Redis bus,
# src/bus/bus_redis.c) against a real 6-node cluster.
#
#   tests/redis/run.sh [NAME]                  against build/libparley.a
#   BUILD=build-asan tests/redis/run.sh [NAME] against the ASan+UBSan library
#                                       (make SANITIZE=1 build-asan/libparley.a)
#
# Builds NAME with the Makefile's flags, starts a cluster in a temporary
# directory with scripts/redis-cluster.sh on a random base port in
# 20000-28999 (below the ephemeral port range minus 10000 when that is
# lower: bus ports there collide with outgoing connections) whose 6 ports
# and bus ports are free (another base if it fails), runs the tests, and always stops the cluster (trap), also on
# Ctrl-C. Fails on a failed test, a crash, or a sanitizer report. Ends with
# "N passed, N failed". RC_TEST_LOG=debug (STORE_TEST_LOG for store_test,
# BUS_TEST_LOG for bus_test) shows the debug log. The program gets the
# cluster's base port and folder as <NAME in capitals>_BASE and _DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD=${BUILD:-build}
name=${1:-rc_test}
case "$name" in
    rc_test | store_test | bus_test) ;;
    *) echo "usage: tests/redis/run.sh [rc_test|store_test|bus_test]" >&2; exit 2 ;;
esac
prefix=$(echo "$name" | tr '[:lower:]' '[:upper:]')
PKGS=(libuv jansson hiredis libutf8proc sqlite3 libcrypto)
if [ ! -f "$BUILD/libparley.a" ]; then
    echo "run.sh: $BUILD/libparley.a is missing (make $BUILD/libparley.a)" >&2
    exit 2
fi
command -v redis-server >/dev/null || { echo "run.sh: redis-server missing (scripts/deps.sh test)" >&2; exit 2; }

tmp=$(mktemp -d)
cleanup() {
    scripts/redis-cluster.sh down "$tmp/cluster" || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

san=()
if [[ $BUILD == *asan* ]]; then
    san=("-fsanitize=address,undefined" -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
fi
werror=()
if [ "${CI:-}" = true ] || [ "${WERROR:-}" = 1 ]; then
    werror=(-Werror)
fi
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter \
    "${werror[@]}" "${san[@]}" $(pkg-config --cflags "${PKGS[@]}") -Isrc \
    "tests/redis/$name.c" "$BUILD/libparley.a" $(pkg-config --libs "${PKGS[@]}") -lhttp_parser -lm \
    -o "$tmp/$name"

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Bus ports (+10000) inside the kernel's ephemeral range collide with the
# local ports of outgoing connections: keep them below it when it allows.
hi=29000
eph_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
if [ $((eph_low - 10006)) -lt $hi ] && [ $((eph_low - 10006)) -gt 20500 ]; then
    hi=$((eph_low - 10006))
fi
base=""
for attempt in 1 2 3 4 5; do
    try=$((20000 + RANDOM % (hi - 20000)))
    free=1
    for i in 0 1 2 3 4 5; do
        if ! port_free $((try + i)) || ! port_free $((try + i + 10000)); then
            free=0
            break
        fi
    done
    [ "$free" = 1 ] || continue
    echo "== starting a Redis Cluster on 127.0.0.1:$try-$((try + 5))"
    if scripts/redis-cluster.sh up "$tmp/cluster" "$try"; then
        base=$try
        break
    fi
    echo "run.sh: the cluster on $try did not start (attempt $attempt)" >&2
done
if [ -z "$base" ]; then
    echo "0 passed, 1 failed"
    exit 1
fi

rc=0
start=$(date +%s)
env "${prefix}_BASE=$base" "${prefix}_DIR=$tmp/cluster" timeout --kill-after=5 240 "$tmp/$name" \
    >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
echo "== $(($(date +%s) - start)) s"

summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/out" | tail -1 || true)
passed=0
failed=1
if [ -n "$summary" ]; then
    passed=${summary%% passed*}
    failed=${summary#*, }
    failed=${failed%% failed}
fi
if grep -Eq 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$tmp/out"; then
    echo "run.sh: sanitizer report above" >&2
    failed=$((failed + 1))
fi
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "run.sh: $name exited $rc" >&2
    failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
