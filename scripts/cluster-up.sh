#!/usr/bin/env bash
# The local cluster without Docker, the same topology as
# deploy/docker-compose.yml: a 6-node Redis Cluster (3 masters, 3 replicas,
# scripts/redis-cluster.sh), two parley backends and NGINX in front of them
# (deploy/nginx.conf), everything on loopback and every file in CLUSTER_DIR.
#
#   scripts/cluster-up.sh       (make cluster-up)
#
# Environment (the defaults in brackets):
#   CLUSTER_DIR      where pid files, logs, data and nginx.conf go [.cluster]
#   REDIS_BASE_PORT  first Redis port; the nodes use BASE..BASE+5 [7001]
#   BACKEND1_PORT, BACKEND2_PORT  the parley backends [3001, 3002]; 0: a
#                    port the kernel picks, kept when the backend restarts
#                    (each backend writes its port to CLUSTER_DIR/NAME.port)
#   NGINX_PORT       NGINX, the address clients use [8080]
#   CLUSTER_WAIT     seconds to wait for each piece to be healthy [30]
#   PARLEY_BIN       the parley binary [build/parley, built with make if missing]
#
# Each process's pid is in CLUSTER_DIR/NAME.pid: backend1, backend2,
# redis-PORT (6 of them) and nginx; each backend's port is in
# CLUSTER_DIR/backend1.port and backend2.port (parley --port-file). Idempotent: a piece that runs is left
# alone and a missing one is started, so running it again after stopping one
# piece (kill $(cat .cluster/backend1.pid)) brings that piece back. A Redis
# node is restarted from its own config and rejoins the cluster. Returns
# once Redis reports cluster_state:ok, each backend answers GET /healthz
# and NGINX answers /healthz through the proxy; on failure it prints the
# ends of the logs, stops everything (scripts/cluster-down.sh) and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. scripts/lib.sh

CLUSTER_DIR=${CLUSTER_DIR:-.cluster}
REDIS_BASE_PORT=${REDIS_BASE_PORT:-7001}
BACKEND1_PORT=${BACKEND1_PORT:-3001}
BACKEND2_PORT=${BACKEND2_PORT:-3002}
NGINX_PORT=${NGINX_PORT:-8080}
CLUSTER_WAIT=${CLUSTER_WAIT:-30}
PARLEY_BIN=${PARLEY_BIN:-build/parley}
NGINX=/usr/sbin/nginx

die() {
    echo "cluster-up: $*" >&2
    exit 1
}

for v in REDIS_BASE_PORT BACKEND1_PORT BACKEND2_PORT NGINX_PORT CLUSTER_WAIT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number (got '${!v}')"
done

mkdir -p "$CLUSTER_DIR"
dir=$(cd "$CLUSTER_DIR" && pwd)

fail() {
    local f
    echo "cluster-up: $*" >&2
    for f in "$dir"/backend1.log "$dir"/backend2.log "$dir"/nginx/error.log; do
        [ -s "$f" ] || continue
        echo "--- $f" >&2
        tail -5 "$f" >&2
    done
    CLUSTER_DIR=$dir scripts/cluster-down.sh >&2 || true
    exit 1
}

# What is needed: the binary, the web UI, redis, nginx, curl.
if [ ! -x "$PARLEY_BIN" ]; then
    echo "cluster-up: $PARLEY_BIN is missing, running make"
    make
fi
if [ ! -f web/dist/index.html ]; then
    echo "cluster-up: web/dist is missing, running make web"
    make web
fi
need_cmd cluster-up redis-server redis-server test
need_cmd cluster-up curl curl test
need_cmd cluster-up envsubst gettext-base test
need_cmd cluster-up "$NGINX" nginx-light test

# healthy URL: GET URL answers 200 within 2 s.
healthy() {
    curl -fsS -m 2 -o /dev/null "$1" 2>/dev/null
}

# wait_for WHAT CMD...: run CMD every 0.1 s until it succeeds, at most
# CLUSTER_WAIT seconds; exit status 3 from CMD means it never will.
wait_for() {
    local what=$1 t rc
    shift
    for ((t = 0; t < CLUSTER_WAIT * 10; t++)); do
        if "$@"; then return 0; else rc=$?; fi
        [ "$rc" = 3 ] && fail "$what exited"
        sleep 0.1
    done
    fail "$what not healthy after ${CLUSTER_WAIT}s"
}

# backend_ready PID PORT: the backend answers /healthz (3: it has exited).
backend_ready() {
    pid_is "$1" parley || return 3
    healthy "http://127.0.0.1:$2/healthz"
}

# --- Redis: restart single nodes that stopped (they rejoin from their
# nodes.conf), then let redis-cluster.sh create the cluster or check it.
for ((i = 0; i < 6; i++)); do
    port=$((REDIS_BASE_PORT + i))
    pid=$(cat "$dir/redis-$port.pid" 2>/dev/null || true)
    pid_is "$pid" "redis-server.*:$port\b" && continue
    if [ -f "$dir/redis-$port.conf" ] && [ -f "$dir/$port/nodes.conf" ]; then
        rm -f "$dir/redis-$port.pid"
        redis-server "$dir/redis-$port.conf" >/dev/null 2>&1 || true
        for ((t = 0; t < 50; t++)); do
            [ -s "$dir/redis-$port.pid" ] && break
            sleep 0.1
        done
    fi
done
REDIS_CLUSTER_WAIT=$CLUSTER_WAIT scripts/redis-cluster.sh up "$dir" "$REDIS_BASE_PORT" ||
    fail "the Redis cluster did not come up"

# --- The backends.
redis_nodes=
for ((i = 0; i < 6; i++)); do
    redis_nodes+="${redis_nodes:+,}127.0.0.1:$((REDIS_BASE_PORT + i))"
done
# The help is read whole before grep looks at it: with `--help | grep -q`,
# grep may exit at the match while parley still writes, parley then dies of
# SIGPIPE and pipefail turns the match into a failure (standalone backends).
parley_help=$("$PARLEY_BIN" --help)
if grep -q -- '^ *--redis ' <<<"$parley_help"; then
    redis_args=(--redis "$redis_nodes")
else
    redis_args=()
    echo "cluster-up: note: $PARLEY_BIN has no --redis yet, so the backends run standalone and do not share state"
fi

# start_backend NAME PORT: starts backend NAME unless it runs on PORT (0:
# on any port) already. It writes its port to CLUSTER_DIR/NAME.port. With
# PORT 0 the kernel picks one the first time, and a restart takes the same
# one again (NGINX's upstream names it).
start_backend() {
    local name=$1 port=$2 pid file="$dir/$1.port" old=
    pid=$(cat "$dir/$name.pid" 2>/dev/null || true)
    [ -s "$file" ] && old=$(cat "$file")
    if pid_is "$pid" "parley.* --port-file $file " && { [ "$port" = 0 ] || [ "$port" = "$old" ]; }; then
        return 0
    fi
    [ "$port" = 0 ] && [ -n "$old" ] && port=$old
    rm -f "$dir/$name.pid" "$file"
    mkdir -p "$dir/$name-data"
    # Trailing arguments keep "--port-file FILE " matchable by pid_is (scripts/lib.sh).
    setsid "$PARLEY_BIN" --port "$port" --port-file "$file" --host 127.0.0.1 \
        --data "$dir/$name-data" --static "$root/web/dist" \
        --trusted-proxy 127.0.0.1 "${redis_args[@]}" --log-level info \
        </dev/null >>"$dir/$name.log" 2>&1 &
    echo $! >"$dir/$name.pid"
}

# backend_listening PID FILE: the backend has written its port file (3: it
# has exited).
backend_listening() {
    pid_is "$1" parley || return 3
    [ -s "$2" ]
}

start_backend backend1 "$BACKEND1_PORT"
start_backend backend2 "$BACKEND2_PORT"
for name in backend1 backend2; do
    pid=$(cat "$dir/$name.pid")
    wait_for "$name (log $dir/$name.log)" backend_listening "$pid" "$dir/$name.port"
    port=$(cat "$dir/$name.port")
    printf -v "BACKEND${name#backend}_PORT" '%s' "$port"
    wait_for "$name (port $port, log $dir/$name.log)" backend_ready "$pid" "$port"
done

# --- NGINX: deploy/nginx.conf with its ${NAME}s filled in (only those:
# NGINX's own $variables stay).
mkdir -p "$dir/nginx"
# shellcheck disable=SC2016 # the literal names envsubst may replace
names='${PARLEY_LISTEN} ${PARLEY_UPSTREAM} ${NGINX_STATE} ${NGINX_PID} ${NGINX_ERROR_LOG} ${NGINX_ACCESS_LOG}'
upstream="server 127.0.0.1:$BACKEND1_PORT max_fails=1 fail_timeout=5s;"
upstream+=" server 127.0.0.1:$BACKEND2_PORT max_fails=1 fail_timeout=5s;"
PARLEY_LISTEN="127.0.0.1:$NGINX_PORT" PARLEY_UPSTREAM=$upstream \
    NGINX_STATE="$dir/nginx" NGINX_PID="$dir/nginx.pid" \
    NGINX_ERROR_LOG="$dir/nginx/error.log" NGINX_ACCESS_LOG="$dir/nginx/access.log" \
    envsubst "$names" <deploy/nginx.conf >"$dir/nginx.conf.new"
nginx_args=(-p "$dir/nginx/" -c "$dir/nginx.conf" -e "$dir/nginx/error.log")
pid=$(cat "$dir/nginx.pid" 2>/dev/null || true)
if pid_is "$pid" "nginx: master process.*$dir/nginx.conf"; then
    # Running: take a changed config (other ports) with a reload.
    if ! cmp -s "$dir/nginx.conf.new" "$dir/nginx.conf"; then
        mv -f "$dir/nginx.conf.new" "$dir/nginx.conf"
        "$NGINX" "${nginx_args[@]}" -t -q || fail "nginx rejects $dir/nginx.conf"
        kill -HUP "$pid"
    fi
else
    mv -f "$dir/nginx.conf.new" "$dir/nginx.conf"
    rm -f "$dir/nginx.pid"
    "$NGINX" "${nginx_args[@]}" -t -q </dev/null >/dev/null 2>"$dir/nginx/test.log" ||
        { cat "$dir/nginx/test.log" >&2; fail "nginx rejects $dir/nginx.conf"; }
    "$NGINX" "${nginx_args[@]}" </dev/null >>"$dir/nginx/error.log" 2>&1 ||
        fail "nginx did not start"
fi
rm -f "$dir/nginx.conf.new"
wait_for "nginx pid file" test -s "$dir/nginx.pid"
wait_for "nginx (port $NGINX_PORT)" healthy "http://127.0.0.1:$NGINX_PORT/healthz"

echo "cluster-up: http://127.0.0.1:$NGINX_PORT/ (NGINX) -> backends 127.0.0.1:$BACKEND1_PORT, 127.0.0.1:$BACKEND2_PORT; Redis Cluster 127.0.0.1:$REDIS_BASE_PORT-$((REDIS_BASE_PORT + 5)); pid files and logs in $dir"
