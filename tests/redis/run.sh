#!/usr/bin/env bash
# Integration tests on a live Redis Cluster: the programs tests/redis/NAME.c,
# NAME being rc_test (the Redis Cluster client), store_test (the Redis
# store, src/store/store_redis.c) or bus_test (the Redis bus,
# src/bus/bus_redis.c), against a real 6-node cluster.
#
#   tests/redis/run.sh                    all three, in that order
#   tests/redis/run.sh NAME...            those, in the order given
#   BUILD=build-asan tests/redis/run.sh   against the ASan+UBSan library
#                                         (make SANITIZE=1 build-asan/libparley.a)
#
# Builds every NAME with the Makefile's flags (against $BUILD/libparley.a,
# default build) while it starts one cluster in a temporary directory with
# scripts/redis-cluster.sh on a random base port in 20000-28999 (below the
# ephemeral port range minus 10000 when that is lower: bus ports there
# collide with outgoing connections) whose 6 ports and bus ports are free
# (another base if it fails), and runs the programs on it one after the
# other. Each program ends by killing a master; before the next one,
# `redis-cluster.sh reuse` restarts the killed node (it rejoins as a
# replica), waits until the cluster is healthy (3 masters, 3 replicas in
# sync, every slot served) and empties it, so every program starts on a
# healthy, empty cluster. Should that fail, the cluster is replaced by a
# fresh one. The cluster is always stopped (trap), also on Ctrl-C.
#
# A program fails on a failed test, a crash, a sanitizer report or its
# time bound (240 s). Prints each program's output and its own
# "N passed, N failed", and ends with the total "N passed, N failed";
# exits 1 if anything failed. RC_TEST_LOG=debug (STORE_TEST_LOG for
# store_test, BUS_TEST_LOG for bus_test) shows the debug log. A program
# gets the cluster's base port and folder as <NAME in capitals>_BASE and
# _DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD=${BUILD:-build}
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(rc_test store_test bus_test)
for name in "${names[@]}"; do
    case "$name" in
        rc_test | store_test | bus_test) ;;
        *) echo "usage: tests/redis/run.sh [rc_test|store_test|bus_test]..." >&2; exit 2 ;;
    esac
done
PKGS=(libuv jansson hiredis libutf8proc sqlite3 libcrypto)
if [ ! -f "$BUILD/libparley.a" ]; then
    echo "run.sh: $BUILD/libparley.a is missing (make $BUILD/libparley.a)" >&2
    exit 2
fi
command -v redis-server >/dev/null || { echo "run.sh: redis-server missing (scripts/deps.sh test)" >&2; exit 2; }

tmp=$(mktemp -d)
cluster=""   # the running cluster's directory
cleanup() {
    [ -n "$cluster" ] && { scripts/redis-cluster.sh down "$cluster" || true; }
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
# The programs compile in the background, each on its own, while the
# cluster starts; build_wait collects them.
cc_pids=()
for name in $(printf '%s\n' "${names[@]}" | sort -u); do
    # shellcheck disable=SC2046
    cc -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter \
        "${werror[@]}" "${san[@]}" $(pkg-config --cflags "${PKGS[@]}") -Isrc \
        "tests/redis/$name.c" "$BUILD/libparley.a" $(pkg-config --libs "${PKGS[@]}") -lhttp_parser -lm \
        -o "$tmp/$name" &
    cc_pids+=($!)
done
build_wait() {
    local pid ok=1
    for pid in "${cc_pids[@]}"; do
        wait "$pid" || ok=0
    done
    cc_pids=()
    [ "$ok" = 1 ]
}

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

# fresh_cluster: stops the current cluster, if any, and starts one on a free
# base port (5 tries) in a new directory; sets base and cluster, or returns 1.
fresh_cluster() {
    local attempt try free i dir
    if [ -n "$cluster" ]; then
        scripts/redis-cluster.sh down "$cluster" || true
        cluster=""
    fi
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
        dir=$(mktemp -d "$tmp/cluster.XXXX")
        echo "== starting a Redis Cluster on 127.0.0.1:$try-$((try + 5))"
        cluster=$dir
        if scripts/redis-cluster.sh up "$dir" "$try"; then
            base=$try
            return 0
        fi
        cluster=""
        echo "run.sh: the cluster on $try did not start (attempt $attempt)" >&2
    done
    return 1
}

# run_one NAME: runs tests/redis/NAME on the cluster; adds its counts to
# total_passed and total_failed.
run_one() {
    local name=$1 prefix rc=0 start summary passed failed
    prefix=$(echo "$name" | tr '[:lower:]' '[:upper:]')
    echo "== $name"
    start=$(date +%s)
    env "${prefix}_BASE=$base" "${prefix}_DIR=$cluster" timeout --kill-after=5 240 "$tmp/$name" \
        >"$tmp/out" 2>&1 || rc=$?
    cat "$tmp/out"
    echo "== $name: $(($(date +%s) - start)) s"

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
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
}

total_passed=0
total_failed=0
base=""
first=1
for name in "${names[@]}"; do
    if [ "$first" = 1 ]; then
        fresh_cluster || base=""
        if ! build_wait; then
            echo "run.sh: a test program did not compile" >&2
            echo "0 passed, 1 failed"
            exit 1
        fi
    else
        echo "== readying the cluster for $name (restart killed nodes, wait until healthy, empty it)"
        t0=$(date +%s)
        if ! scripts/redis-cluster.sh reuse "$cluster" "$base"; then
            echo "run.sh: the cluster could not be reused; starting a fresh one" >&2
            fresh_cluster || base=""
        fi
        echo "== ready after $(($(date +%s) - t0)) s"
    fi
    first=0
    if [ -z "$base" ]; then
        echo "run.sh: no cluster for $name" >&2
        total_failed=$((total_failed + 1))
        break
    fi
    run_one "$name"
done
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
