#!/usr/bin/env bash
# A throwaway Redis Cluster for tests: 6 redis-server processes on loopback
# (3 masters, 3 replicas), every file in one directory.
#
#   scripts/redis-cluster.sh up DIR BASEPORT
#       Starts nodes on ports BASEPORT..BASEPORT+5 (cluster bus: +10000),
#       creates the cluster (redis-cli --cluster create, 1 replica each) and
#       waits until every node reports cluster_state:ok with all 16384 slots
#       served and every replica is in sync with its master. Node N keeps
#       DIR/redis-N.conf, DIR/redis-N.pid, DIR/redis-N.log and DIR/N/ (AOF,
#       nodes.conf). cluster-node-timeout is 2000 ms so failovers are quick,
#       and repl-diskless-sync-delay is 0 so a replica's first sync starts at
#       once (Redis' default waits 5 s for more replicas).
#       If the 6 nodes of DIR already run, it only waits for the cluster to
#       be ok; otherwise it stops what is left and starts afresh.
#   scripts/redis-cluster.sh reuse DIR BASEPORT
#       Readies a cluster that `up` made for another test program: restarts
#       each node of DIR that is not running (a test killed it) with its own
#       config and data, so that it rejoins (a former master as the replica
#       of the one promoted in its place), waits until the cluster is ok as
#       `up` does, then empties it (FLUSHALL on each master, and WAIT until
#       its replica has it). On failure it prints the end of the node logs
#       and leaves the nodes to `down`.
#   scripts/redis-cluster.sh down DIR
#       Stops exactly the processes named by DIR/redis-*.pid (checking that
#       each still is a redis-server on that port: pids are reused), waits
#       for them to exit (SIGKILL after 10 s) and removes the pid files.
#
# All three are idempotent. Exit status 0 on success; on failure `up` stops
# what it started and prints the end of the node logs. Needs redis-server and
# redis-cli 7.0+ (SSUBSCRIBE/SPUBLISH); Debian 12 has 7.0.x.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODES=6
WAIT_SECS=${REDIS_CLUSTER_WAIT:-30}

die() {
    echo "redis-cluster: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 up DIR BASEPORT | reuse DIR BASEPORT | down DIR" >&2
    exit 2
}

# ours PID PORT: PID is alive and is the redis-server of PORT.
ours() {
    pid_is "$1" "redis-server.*:$2\b"
}

cli() {
    local port=$1
    shift
    timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null
}

down() {
    local dir=$1 f pid port pids=() ports=()
    [ -d "$dir" ] || return 0
    for f in "$dir"/redis-*.pid; do
        [ -e "$f" ] || continue
        port=${f##*/redis-}
        port=${port%.pid}
        pid=$(cat "$f" 2>/dev/null || true)
        if ours "$pid" "$port"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            ports+=("$port")
        fi
        rm -f "$f"
    done
    local i t
    for i in "${!pids[@]}"; do
        for ((t = 0; t < 100; t++)); do
            ours "${pids[$i]}" "${ports[$i]}" || break
            sleep 0.1
        done
        if ours "${pids[$i]}" "${ports[$i]}"; then
            kill -KILL "${pids[$i]}" 2>/dev/null || true
            for ((t = 0; t < 50; t++)); do
                ours "${pids[$i]}" "${ports[$i]}" || break
                sleep 0.1
            done
        fi
    done
}

# all_running DIR BASE: the 6 nodes of DIR are alive.
all_running() {
    local dir=$1 base=$2 i port pid
    for ((i = 0; i < NODES; i++)); do
        port=$((base + i))
        pid=$(cat "$dir/redis-$port.pid" 2>/dev/null || true)
        ours "$pid" "$port" || return 1
    done
}

# cluster_ok BASE: every node sees a healthy, fully covered cluster of 6,
# 3 masters serve slots and 3 replicas are linked to theirs.
cluster_ok() {
    local base=$1 i port info repl masters=0 replicas=0
    for ((i = 0; i < NODES; i++)); do
        port=$((base + i))
        info=$(cli "$port" cluster info) || return 1
        grep -q '^cluster_state:ok' <<<"$info" || return 1
        grep -q '^cluster_slots_ok:16384' <<<"$info" || return 1
        grep -q "^cluster_known_nodes:$NODES" <<<"$info" || return 1
        repl=$(cli "$port" info replication) || return 1
        if grep -q '^role:master' <<<"$repl"; then
            masters=$((masters + 1))
        elif grep -q '^master_link_status:up' <<<"$repl"; then
            replicas=$((replicas + 1))
        fi
    done
    [ "$masters" -eq 3 ] && [ "$replicas" -eq 3 ]
}

wait_ok() {
    local base=$1 t
    for ((t = 0; t < WAIT_SECS * 10; t++)); do
        cluster_ok "$base" && return 0
        sleep 0.1
    done
    return 1
}

# tails DIR: the end of each node log (and of create.log) on stderr.
tails() {
    local dir=$1 f
    for f in "$dir"/redis-*.log "$dir"/create.log; do
        [ -f "$f" ] || continue
        echo "--- $f" >&2
        tail -5 "$f" >&2
    done
}

# launch DIR PORT: redis-server with DIR/redis-PORT.conf (it daemonizes).
launch() {
    rm -f "$1/redis-$2.pid"
    redis-server "$1/redis-$2.conf" >/dev/null 2>&1
}

# came_up DIR PORT: waits until the node has written its pid file (it does
# once its ports are bound) and answers PING (10 s at most).
came_up() {
    local dir=$1 port=$2 t
    for ((t = 0; t < 100; t++)); do
        if [ -s "$dir/redis-$port.pid" ] && [ "$(cli "$port" ping)" = PONG ]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

fail_up() {
    local dir=$1 msg=$2
    echo "redis-cluster: $msg" >&2
    tails "$dir"
    down "$dir"
    exit 1
}

up() {
    local dir=$1 base=$2 i port
    if ! [[ $base =~ ^[0-9]+$ ]] || [ "$base" -lt 1024 ] || [ "$base" -gt 55530 ]; then
        die "BASEPORT must be a number in 1024..55530 (bus ports are +10000)"
    fi
    need_cmd redis-cluster redis-server redis-server test
    need_cmd redis-cluster redis-cli redis-server test
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)

    if all_running "$dir" "$base"; then
        wait_ok "$base" || fail_up "$dir" "running, but the cluster is not ok"
        return 0
    fi
    down "$dir"

    for ((i = 0; i < NODES; i++)); do
        port=$((base + i))
        rm -rf "${dir:?}/$port"
        mkdir -p "$dir/$port"
        rm -f "$dir/redis-$port.log"
        cat >"$dir/redis-$port.conf" <<EOF
port $port
bind 127.0.0.1
daemonize yes
pidfile $dir/redis-$port.pid
logfile $dir/redis-$port.log
dir $dir/$port
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 2000
appendonly yes
save ""
repl-diskless-sync-delay 0
EOF
        launch "$dir" "$port" || fail_up "$dir" "redis-server $port did not start"
    done

    local addrs=()
    for ((i = 0; i < NODES; i++)); do
        port=$((base + i))
        came_up "$dir" "$port" || fail_up "$dir" "node $port did not come up (port busy?)"
        addrs+=("127.0.0.1:$port")
    done

    timeout 60 redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
        >"$dir/create.log" 2>&1 || fail_up "$dir" "redis-cli --cluster create failed"
    wait_ok "$base" || fail_up "$dir" "cluster not ok after ${WAIT_SECS}s"
}

reuse() {
    local dir=$1 base=$2 i port pid repl out
    [[ $base =~ ^[0-9]+$ ]] || die "BASEPORT must be a number"
    [ -d "$dir" ] || die "$dir: no such cluster (make it with up)"
    dir=$(cd "$dir" && pwd)
    for ((i = 0; i < NODES; i++)); do
        port=$((base + i))
        if [ ! -f "$dir/redis-$port.conf" ] || [ ! -f "$dir/$port/nodes.conf" ]; then
            die "$dir: node $port was never part of a cluster (make it with up)"
        fi
        pid=$(cat "$dir/redis-$port.pid" 2>/dev/null || true)
        ours "$pid" "$port" && continue
        echo "redis-cluster: restarting node $port"
        if ! launch "$dir" "$port" || ! came_up "$dir" "$port"; then
            echo "redis-cluster: node $port did not come back" >&2
            tails "$dir"
            return 1
        fi
    done
    if ! wait_ok "$base"; then
        echo "redis-cluster: not ok ${WAIT_SECS}s after the restarts" >&2
        tails "$dir"
        return 1
    fi
    for ((i = 0; i < NODES; i++)); do
        port=$((base + i))
        repl=$(cli "$port" info replication) || return 1
        grep -q '^role:master' <<<"$repl" || continue
        # One connection: WAIT counts the replicas that have the FLUSHALL.
        out=$(printf 'FLUSHALL\nWAIT 1 5000\n' | cli "$port") || out=
        if [ "$out" != "$(printf 'OK\n1')" ]; then
            echo "redis-cluster: FLUSHALL on $port: ${out:-no answer}" >&2
            return 1
        fi
    done
}

case "${1:-}" in
up)
    [ $# -eq 3 ] || usage
    up "$2" "$3"
    ;;
reuse)
    [ $# -eq 3 ] || usage
    reuse "$2" "$3"
    ;;
down)
    [ $# -eq 2 ] || usage
    down "$2"
    ;;
*)
    usage
    ;;
esac
