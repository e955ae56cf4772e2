#!/usr/bin/env bash
# Stops the local cluster of scripts/cluster-up.sh (make cluster-down):
# exactly the processes named by the pid files in CLUSTER_DIR [.cluster],
# NGINX first, then the backends, then the Redis nodes. A pid counts only if
# that process still is what the file says (pids are reused): an NGINX
# master on CLUSTER_DIR/nginx.conf, a parley on that port, a redis-server
# on that port. Each gets SIGTERM (the backends close their clients
# cleanly), SIGKILL after 10 s; the pid files are removed. Logs and data
# stay in CLUSTER_DIR (rm -rf it for a fresh start). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

CLUSTER_DIR=${CLUSTER_DIR:-.cluster}
[ -d "$CLUSTER_DIR" ] || exit 0
dir=$(cd "$CLUSTER_DIR" && pwd)

# stop NAME PATTERN: stop the process of CLUSTER_DIR/NAME.pid if it matches.
stop() {
    local name=$1 pattern=$2 pid t
    pid=$(cat "$dir/$name.pid" 2>/dev/null || true)
    if pid_is "$pid" "$pattern"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((t = 0; t < 100; t++)); do
            pid_is "$pid" "$pattern" || break
            sleep 0.1
        done
        if pid_is "$pid" "$pattern"; then
            echo "cluster-down: $name (pid $pid) ignored SIGTERM for 10 s, killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            for ((t = 0; t < 50; t++)); do
                pid_is "$pid" "$pattern" || break
                sleep 0.1
            done
        fi
    fi
    rm -f "$dir/$name.pid"
}

# NGINX removes its own pid file when it exits; its workers exit with it.
stop nginx "nginx: master process.*$dir/nginx.conf"
for f in "$dir"/backend*.pid; do
    [ -e "$f" ] || continue
    name=${f##*/}
    name=${name%.pid}
    stop "$name" "parley .*--data $dir/$name-data "
done
scripts/redis-cluster.sh down "$dir"
