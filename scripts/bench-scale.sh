#!/usr/bin/env bash
# scripts/bench-scale.sh - the idle-memory curve: one server process holding
# 1k, 5k, 10k and 19k idle connections (each through the Socket.IO CONNECT,
# answering pings), its RSS read at each step after a pause, a least-squares
# line through the points (R^2 shows how linear it is) and the projection to
# 1,000,000 connections.
#
#   scripts/bench-scale.sh            parley, then the Node socket.io peer
#   scripts/bench-scale.sh --no-peer  parley only
#
# One process may hold 20,000 fds here, so the load generator is split over
# PROCS (default 4) processes; the server holds all connections itself.
# After the last step the connections are held for 26 s, one heartbeat
# interval (25 s), to measure what idling costs the server's CPU.
# Writes bench/results/scale-*.txt, scale.md and scale-memory*.png. Bounded
# (each load generator run stops itself after 300 s); about 2 minutes.
# STEPS=a,b,c overrides the checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

servers=(parley peer)
case "${1:-}" in
"") ;;
--no-peer) servers=(parley) ;;
*)
    echo "usage: scripts/bench-scale.sh [--no-peer]" >&2
    exit 2
    ;;
esac
STEPS=${STEPS:-1000,5000,10000,19000}
PROCS=${PROCS:-4}
last=${STEPS##*,}

trap bench_stop EXIT
trap 'exit 130' INT TERM
bench_raise_nofile
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((last + 100)) ]; then
    echo "bench-scale: the fd limit ($hard) is too low for $last connections in one server" >&2
    exit 1
fi
need_cmd bench-scale gnuplot gnuplot-nox bench
if [ "${servers[*]}" = parley ]; then bench_build; else bench_build peer; fi
mkdir -p "$RESULTS/logs"

declare -A RES
for server in "${servers[@]}"; do
    bench_log "scale: $server, steps $STEPS, $PROCS load generator processes"
    bench_start "$server"
    rc=0
    "$LOADGEN" idle --url "ws://127.0.0.1:$SRV_PORT" --pid "$SRV_PID" --label "$server" --steps "$STEPS" \
        --procs "$PROCS" --settle 2000 --hold 26 --timeout 300 --series "$RESULTS/scale-$server.txt" \
        >"$RESULTS/logs/scale-$server.log" 2>&1 || rc=$?
    bench_stop
    RES[$server]=$(grep '^result ' "$RESULTS/logs/scale-$server.log" | tail -n 1 || true)
    [ $rc -eq 0 ] || bench_log "scale: $server run failed (see $RESULTS/logs/scale-$server.log)"
done

# fit SERIES: "a b r2" = intercept (KiB), slope (KiB per connection), R^2,
# over the checkpoints with connections (the empty server is left out: the
# first connections also pay for tables and arenas that then last)
fit() {
    awk 'BEGIN { n = 0 } !/^#/ && $1 > 0 { x[n] = $1; y[n] = $2; n++ }
        END {
            for (i = 0; i < n; i++) { sx += x[i]; sy += y[i]; sxx += x[i] * x[i]; sxy += x[i] * y[i]; syy += y[i] * y[i] }
            d = n * sxx - sx * sx; b = (n * sxy - sx * sy) / d; a = (sy - b * sx) / n
            e = n * syy - sy * sy; r2 = e > 0 ? (n * sxy - sx * sy) ^ 2 / (d * e) : 1
            printf "%.3f %.6f %.6f\n", a, b, r2
        }' "$1"
}

OUT="$RESULTS/scale.md"
{
    for server in "${servers[@]}"; do
        f="$RESULTS/scale-$server.txt"
        [ -s "$f" ] || { echo "$server: no data"; continue; }
        read -r a b r2 < <(fit "$f")
        line=${RES[$server]}
        echo "### $server"
        echo
        echo "| connections | server RSS (MiB) | bytes per connection since 0 | bytes per connection since the previous step | kernel slab, both ends (KiB per connection) |"
        echo "| ---: | ---: | ---: | ---: | ---: |"
        awk '!/^#/ {
                if (NR_DATA == 0) { x0 = $1; y0 = $2; t0 = $4; px = $1; py = $2 }
                else printf "| %d | %.1f | %.0f | %.0f | %.2f |\n", $1, $2 / 1024, ($2 - y0) * 1024 / ($1 - x0), ($2 - py) * 1024 / ($1 - px), ($4 - t0) / ($1 - x0)
                if (NR_DATA == 0) printf "| 0 | %.1f | | | |\n", $2 / 1024
                px = $1; py = $2; NR_DATA++
            }' "$f"
        echo
        awk -v a="$a" -v b="$b" -v r2="$r2" -v srv="$server" 'BEGIN {
            printf "Least squares over the checkpoints with connections: RSS = %.1f MiB + %.0f bytes x connections (R^2 = %.5f).\n", a / 1024, b * 1024, r2
            printf "Projected RSS of one %s process at 1,000,000 connections: %.2f GiB.\n", srv, (a + b * 1e6) / 1048576
        }'
        echo
        echo "Connect rate over the run: $(bench_field "$line" conn_per_s) connections/s at $(bench_field "$line" srv_cpu_us_per_conn) server CPU-us each;" \
            "server CPU while holding $(bench_field "$line" conns) idle for 26 s (one ping each): $(bench_field "$line" idle_cpu_pct)%;" \
            "load generator CPU while connecting: $(bench_field "$line" lg_cpu_pct)% (${PROCS} processes)."
        echo
    done
} >"$OUT"

if command -v gnuplot >/dev/null && [ -s "$RESULTS/scale-parley.txt" ]; then
    read -r a b r2 < <(fit "$RESULTS/scale-parley.txt")
    gnuplot -e "mode='scale'; out='$RESULTS/scale-memory.png'; ttl='parley: idle connections in one process, RSS (R^2 = $r2)'; parley_files='$RESULTS/scale-parley.txt'; peer_files=''; a=$a; b=$b" \
        bench/plot.gnuplot || bench_log "gnuplot failed"
    if [ -s "$RESULTS/scale-peer.txt" ] && [ "${servers[*]}" != parley ]; then
        gnuplot -e "mode='scale'; out='$RESULTS/scale-memory-vs-peer.png'; ttl='Idle connections in one server process: RSS, parley and the Node socket.io peer'; parley_files='$RESULTS/scale-parley.txt'; peer_files='$RESULTS/scale-peer.txt'; a=$a; b=$b" \
            bench/plot.gnuplot || bench_log "gnuplot failed"
    fi
fi

cat "$OUT"
echo "written: $OUT, $RESULTS/scale-*.txt, $RESULTS/scale-memory*.png"
for server in "${servers[@]}"; do
    [[ "${RES[$server]}" == *" ok=1"* ]] || exit 1
done
