# shellcheck shell=bash disable=SC2034  # (variables are used by the scripts that source this)
# scripts/bench-lib.sh - what scripts/bench.sh and scripts/bench-scale.sh
# share: building the tools, starting and stopping one server under test
# (parley or the Node socket.io peer) on a free loopback port, a throwaway
# local Redis Cluster for the peer's cluster mode, and reading result lines.
# Sourced, not run. Every server binds 127.0.0.1 only and is killed by pid.
. scripts/lib.sh

BENCH_BUILD=${BUILD:-build}
PARLEY_BIN=${PARLEY_BIN:-$BENCH_BUILD/parley}
LOADGEN=$BENCH_BUILD/bench/loadgen
PEER_DIR=bench/peers/node-socketio
RESULTS=${BENCH_RESULTS:-bench/results}

# Parley's abuse limits, opened up so that both servers do the same work:
# no per-connection rate limit and no cap of connections per address (the
# peer has neither), and a large output queue (socket.io's is unbounded) so a
# burst never cuts a slow receiver off. Flags this parley does not know yet
# are left out (bench_parley_flags).
PARLEY_BENCH_FLAGS=(--rate-limit 0 --max-output 268435456 --log-level info)

bench_parley_flags() {
    local help
    help=$("$PARLEY_BIN" --help 2>&1 || true)
    PARLEY_BENCH_FLAGS=(--rate-limit 0 --max-output 268435456 --log-level info)
    if grep -q -- '--max-per-ip' <<<"$help"; then PARLEY_BENCH_FLAGS+=(--max-per-ip 0); fi
    if grep -q -- '--max-connections' <<<"$help"; then PARLEY_BENCH_FLAGS+=(--max-connections 0); fi
    PARLEY_HAS_REDIS=0
    if grep -q -- '--redis' <<<"$help"; then PARLEY_HAS_REDIS=1; fi
}

bench_log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# bench_build [peer]: parley and the load generator (make); with "peer",
# checks that the peer's npm packages are installed (scripts/deps.sh bench).
bench_build() {
    make -s BUILD="$BENCH_BUILD" all "$LOADGEN" >&2
    bench_parley_flags
    if [ "${1:-}" = peer ]; then
        need_cmd bench node nodejs build
        need_npm bench "$PEER_DIR" bench
    fi
}

# Soft fd limit up to the hard one: servers and load generators inherit it.
bench_raise_nofile() { ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; }

SRV_PID=
SRV_PORT=
SRV_DIR=
SRV_PIDS=()
SRV_DIRS=()

# bench_start KIND [ARGS...]: KIND is parley or peer. Sets SRV_PID, SRV_PORT,
# SRV_DIR (data folder and stderr log) of this server; may be called again
# for a second one (bench_stop stops all). Both servers pick a free port
# (--port 0) and write it to SRV_DIR/port (--port-file). Returns 1 if the
# server did not write it within 15 s.
bench_start() {
    local kind=$1
    shift
    SRV_DIR=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench.XXXXXX")
    case $kind in
    parley)
        "$PARLEY_BIN" --port 0 --port-file "$SRV_DIR/port" --host 127.0.0.1 --data "$SRV_DIR" \
            --static "$SRV_DIR/no-static" "${PARLEY_BENCH_FLAGS[@]}" "$@" 2>"$SRV_DIR/stderr" &
        ;;
    peer)
        node "$PEER_DIR/server.js" --port 0 --port-file "$SRV_DIR/port" --host 127.0.0.1 "$@" \
            2>"$SRV_DIR/stderr" &
        ;;
    *)
        echo "bench_start: unknown server $kind" >&2
        return 2
        ;;
    esac
    SRV_PID=$!
    SRV_PIDS+=("$SRV_PID")
    SRV_DIRS+=("$SRV_DIR")
    SRV_PORT=$(wait_port_file "$SRV_DIR/port" "$SRV_PID" 15) && return 0
    echo "bench_start: $kind did not start:" >&2
    sed 's/^/  | /' "$SRV_DIR/stderr" >&2
    bench_stop
    return 1
}

# bench_stop: stops every server started by bench_start (TERM, then KILL
# after 5 s), reports errors they logged, removes their folders.
bench_stop() {
    local pid dir i
    for pid in "${SRV_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SRV_PIDS[@]}"; do
        for i in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for dir in "${SRV_DIRS[@]}"; do
        if [ -f "$dir/stderr" ] && grep -Eq 'AddressSanitizer|runtime error:|level=error' "$dir/stderr"; then
            echo "bench_stop: the server logged errors:" >&2
            grep -E 'AddressSanitizer|runtime error:|level=error' "$dir/stderr" | head -n 5 | sed 's/^/  | /' >&2
        fi
        rm -rf "$dir"
    done
    SRV_PIDS=()
    SRV_DIRS=()
    SRV_PID=
    SRV_PORT=
    SRV_DIR=
}

CLUSTER_DIR=
CLUSTER_NODES=

# bench_cluster_start: the project's local Redis Cluster (scripts/redis-cluster.sh:
# 3 masters + 3 replicas on loopback) in a throwaway folder, on free ports.
# Sets CLUSTER_NODES="127.0.0.1:P,...".
bench_cluster_start() {
    need_cmd bench redis-server redis-server test
    need_cmd bench redis-cli redis-server test
    CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench-redis.XXXXXX")
    local nodes=() i base
    base=$(free_port_block 6) || { echo "bench_cluster_start: no free ports" >&2; bench_cluster_stop; return 1; }
    scripts/redis-cluster.sh up "$CLUSTER_DIR" "$base" >"$CLUSTER_DIR.log" 2>&1 || {
        cat "$CLUSTER_DIR.log" >&2
        bench_cluster_stop
        return 1
    }
    for i in 0 1 2 3 4 5; do nodes+=("127.0.0.1:$((base + i))"); done
    CLUSTER_NODES=$(IFS=,; echo "${nodes[*]}")
}

bench_cluster_stop() {
    if [ -n "$CLUSTER_DIR" ]; then
        scripts/redis-cluster.sh down "$CLUSTER_DIR" >/dev/null 2>&1 || true
        rm -rf "$CLUSTER_DIR" "$CLUSTER_DIR.log"
    fi
    CLUSTER_DIR=
    CLUSTER_NODES=
}

# Empties every master of the cluster between runs (replicas refuse, harmlessly).
bench_cluster_flush() {
    local n
    for n in ${CLUSTER_NODES//,/ }; do redis-cli -h 127.0.0.1 -p "${n#*:}" flushall >/dev/null 2>&1 || true; done
}

# bench_quiet: waits (up to 10 s) until the machine is mostly idle, so that a
# run does not start on top of someone else's build or test; prints the busy
# share of all cores (%) seen over the last 0.5 s sample.
bench_quiet() {
    local busy=100 i a b
    for i in $(seq 10); do
        read -r -a a < <(head -n 1 /proc/stat)
        sleep 0.5
        read -r -a b < <(head -n 1 /proc/stat)
        busy=$(awk -v a="${a[*]}" -v b="${b[*]}" 'BEGIN {
            split(a, x, " "); split(b, y, " "); t = 0
            for (i = 2; i <= 9; i++) t += y[i] - x[i]
            idle = (y[5] - x[5]) + (y[6] - x[6])
            printf "%.0f\n", (t > 0 ? 100 * (t - idle) / t : 0) }')
        [ "$busy" -lt 25 ] && break
        sleep 0.5
    done
    echo "$busy"
}

# bench_field LINE KEY: the value of KEY=... in a result line ("" if absent).
bench_field() {
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# Does this parley have a cluster mode yet? (read once by bench_parley_flags,
# not per run: a rebuild in progress must not turn a run into a skip)
bench_parley_has_redis() { [ "${PARLEY_HAS_REDIS:-0}" = 1 ]; }
