#!/usr/bin/env bash
# Integration tests on a live Redis Cluster: the programs tests/redis/NAME.c
# (rc_test: the Redis Cluster client; store_test: the Redis store,
# src/store/store_redis.c; bus_test: the Redis bus, src/bus/bus_redis.c;
# and any other NAME.c there) against a real 6-node cluster.
#
#   tests/redis/run.sh                    every tests/redis/NAME.c, by name
#   tests/redis/run.sh NAME...            those, in the order given
#   BUILD=build-asan tests/redis/run.sh   against the ASan+UBSan library
#
# Each program is built by the Makefile's rule $(BUILD)/tests/redis/%
# (make BUILD=$BUILD $BUILD/tests/redis/NAME, with SANITIZE=1 for a build
# folder named *asan*), so it has the flags of the rest of the build; a new
# test program is a new tests/redis/NAME.c, nothing else. The build runs
# while one cluster starts in a temporary directory with
# scripts/redis-cluster.sh on a base port whose 6 ports and bus ports are
# free (scripts/lib.sh: free_port_block; another base if it fails), and the
# programs run on it one after the other. Each program may end by killing a
# master; before the next one, `redis-cluster.sh reuse` restarts the killed
# node (it rejoins as a replica), waits until the cluster is healthy (3
# masters, 3 replicas in sync, every slot served) and empties it, so every
# program starts on a healthy, empty cluster. Should that fail, the cluster
# is replaced by a fresh one. The cluster is always stopped (trap), also on
# Ctrl-C.
#
# A program passes when it exits 0 within its time bound (240 s): a failed
# test, a crash or a sanitizer report (the sanitizer build stops at the
# first one) makes it exit non-zero. Prints each program's output, and
# ends with the total "N passed, N failed" of the lines "N passed, N
# failed" the programs printed (harness.h), for the summary of
# scripts/test.sh; exits 1 if a program failed. RC_TEST_LOG=debug
# (STORE_TEST_LOG for store_test, BUS_TEST_LOG for bus_test) shows the
# debug log. A program gets the cluster's base port and folder as <NAME in
# capitals>_BASE and _DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

BUILD=${BUILD:-build}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in tests/redis/*.c; do
        f=${f##*/}
        names+=("${f%.c}")
    done
fi
for name in "${names[@]}"; do
    if [ ! -f "tests/redis/$name.c" ]; then
        echo "run.sh: no tests/redis/$name.c; usage: tests/redis/run.sh [NAME...]" >&2
        exit 2
    fi
done
need_cmd run.sh redis-server redis-server test
need_cmd run.sh redis-cli redis-server test

tmp=$(mktemp -d)
cluster=""   # the running cluster's directory
cleanup() {
    [ -n "$cluster" ] && { scripts/redis-cluster.sh down "$cluster" || true; }
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The programs build in the background while the cluster starts.
san=()
[[ $BUILD == *asan* ]] && san=(SANITIZE=1)
bins=()
for name in "${names[@]}"; do bins+=("$BUILD/tests/redis/$name"); done
make -s "${san[@]}" BUILD="$BUILD" "${bins[@]}" >"$tmp/make.log" 2>&1 &
make_pid=$!
build_wait() {
    local rc=0
    wait "$make_pid" || rc=$?
    cat "$tmp/make.log"
    return "$rc"
}

# fresh_cluster: stops the current cluster, if any, and starts one on a free
# base port (5 tries) in a new directory; sets base and cluster, or returns 1.
fresh_cluster() {
    local attempt try dir
    if [ -n "$cluster" ]; then
        scripts/redis-cluster.sh down "$cluster" || true
        cluster=""
    fi
    for attempt in 1 2 3 4 5; do
        try=$(free_port_block 6) || continue
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

# run_one NAME: runs $BUILD/tests/redis/NAME on the cluster; counts it in
# failed_programs when it exits non-zero, and adds the counts of its
# "N passed, N failed" line to total_passed and total_failed.
run_one() {
    local name=$1 prefix rc=0 start line
    prefix=$(echo "$name" | tr '[:lower:]' '[:upper:]')
    echo "== $name"
    start=$(date +%s)
    env "${prefix}_BASE=$base" "${prefix}_DIR=$cluster" timeout --kill-after=5 240 "$BUILD/tests/redis/$name" \
        >"$tmp/out" 2>&1 || rc=$?
    cat "$tmp/out"
    echo "== $name: $(($(date +%s) - start)) s, exit $rc"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/out" | tail -n 1 || true)
    if [ -n "$line" ]; then
        total_passed=$((total_passed + ${line%% passed*}))
        line=${line#*, }
        total_failed=$((total_failed + ${line%% failed}))
    fi
    [ "$rc" -eq 0 ] || failed_programs+=("$name")
}

total_passed=0
total_failed=0
failed_programs=()
base=""
first=1
for name in "${names[@]}"; do
    if [ "$first" = 1 ]; then
        fresh_cluster || base=""
        if ! build_wait; then
            echo "run.sh: a test program did not build" >&2
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
        failed_programs+=("$name")
        break
    fi
    run_one "$name"
done
echo "$total_passed passed, $total_failed failed"
if [ ${#failed_programs[@]} -gt 0 ]; then
    echo "run.sh: failed: ${failed_programs[*]}" >&2
    exit 1
fi
