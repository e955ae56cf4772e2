#!/usr/bin/env bash
# scripts/bench.sh - parley against the Node.js socket.io peer
# (bench/peers/node-socketio), driven by the C load generator (bench/loadgen).
#
#   scripts/bench.sh           the full run: builds everything, runs every
#                              scenario against parley and the peer in
#                              alternation, three times each, prints a markdown
#                              table of medians with the ratio parley/peer, and
#                              writes raw results, the table and PNG plots to
#                              bench/results/. About 13 minutes, bounded.
#   scripts/bench.sh --smoke   every scenario with tiny sizes against parley
#                              only, in well under 60 s; ends with the line
#                              "N passed, N failed, N skipped"; exit 0 or 1.
#
# Every server listens on 127.0.0.1 only; every load generator run has its
# own time bound (--timeout) and stops by itself. Parley runs with its abuse
# limits opened up (scripts/bench-lib.sh: PARLEY_BENCH_FLAGS) so that both
# servers do the same work. REPS=N overrides the number of repetitions.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

mode=full
case "${1:-}" in
"") ;;
--smoke) mode=smoke ;;
*)
    echo "usage: scripts/bench.sh [--smoke]" >&2
    exit 2
    ;;
esac

# name|loadgen scenario|loadgen options|time bound (s)
FULL=(
    "idle|idle|--steps 1000,2500,5000,10000 --settle 1000 --hold 2|120"
    "join-storm|join-storm|--conns 1000|120"
    "fanout-heavy|fanout|--receivers 1000 --senders 10 --window 8 --messages 100|150"
    "fanout-light|fanout|--receivers 100 --senders 1 --window 1 --messages 1000|90"
    "private|private|--pairs 50 --messages 200|90"
    "private-polling|private|--pairs 20 --messages 100 --transport polling|90"
    "cluster|cluster|--receivers 200 --senders 4 --window 4 --messages 100|120"
)
SMOKE=(
    "idle|idle|--steps 20,60 --procs 2 --settle 100 --hold 0.2|20"
    "join-storm|join-storm|--conns 20|20"
    "fanout|fanout|--receivers 10 --senders 2 --window 2 --messages 5|20"
    "private|private|--pairs 5 --messages 5|20"
    "private-polling|private|--pairs 3 --messages 5 --transport polling|20"
    "cluster|cluster|--receivers 10 --senders 2 --window 2 --messages 5|20"
)

# Figures of the table: name|result key|label|which is better
figures() {
    case $1 in
    idle) printf '%s\n' \
        "conn_per_s|connections per second|higher" \
        "srv_cpu_us_per_conn|server CPU-us per connection|lower" \
        "rss_per_conn_b|server RSS per idle connection (bytes)|lower" \
        "lg_cpu_pct|load generator CPU (%)|-" ;;
    join-storm) printf '%s\n' \
        "storm_s|time until all 1,000 saw the final state (s)|lower" \
        "srv_cpu_us_per_user|server CPU-us per joining user|lower" \
        "lg_cpu_pct|load generator CPU (%)|-" ;;
    fanout-heavy | fanout-light | cluster) printf '%s\n' \
        "deliveries_per_s|deliveries per second|higher" \
        "srv_cpu_us_per_delivery|server CPU-us per delivery|lower" \
        "p50_ms|latency p50 (ms)|lower" \
        "p99_ms|latency p99 (ms)|lower" \
        "p999_ms|latency p99.9 (ms)|lower" \
        "max_ms|latency max (ms)|lower" \
        "lg_cpu_pct|load generator CPU (%)|-" ;;
    private | private-polling) printf '%s\n' \
        "rt_per_s|round trips per second|higher" \
        "srv_cpu_us_per_rt|server CPU-us per round trip|lower" \
        "p50_ms|latency p50 (ms)|lower" \
        "p99_ms|latency p99 (ms)|lower" \
        "p999_ms|latency p99.9 (ms)|lower" \
        "max_ms|latency max (ms)|lower" \
        "lg_cpu_pct|load generator CPU (%)|-" ;;
    esac
}

cleanup() {
    bench_stop
    bench_cluster_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_raise_nofile
mkdir -p "$RESULTS/logs" "$RESULTS/cdf" "$RESULTS/series"

# run_one NAME SERVER REP SCENARIO OPTIONS BOUND: one load generator run
# against a fresh server; appends "NAME SERVER REP <result line>" to $RAW.
# Returns the load generator's status (0 ok, 1 failed; skipped is 0).
run_one() {
    local name=$1 server=$2 rep=$3 scen=$4 opts=$5 bound=$6
    local log="$RESULTS/logs/$name-$server-$rep.log" rc=0
    local extra=(--label "$server" --timeout "$bound" --cdf "$RESULTS/cdf/$name-$server-$rep.txt")
    [ "$scen" = idle ] && extra+=(--series "$RESULTS/series/$name-$server-$rep.txt")
    # shellcheck disable=SC2206
    local o=($opts)
    BG=-
    [ "$mode" = full ] && BG=$(bench_quiet)

    if [ "$scen" = cluster ]; then
        if [ "$server" = parley ] && ! bench_parley_has_redis; then
            "$LOADGEN" cluster --label parley --skip "parley has no --redis (cluster mode) yet" >"$log" 2>&1 || rc=$?
        else
            if [ -z "$CLUSTER_NODES" ]; then
                bench_cluster_start || { echo "no local Redis Cluster: cluster runs fail" >"$log"; return 1; }
            fi
            bench_cluster_flush # both backends share the cluster: forget the previous run
            if [ "$server" = parley ]; then
                bench_start parley --redis "$CLUSTER_NODES" && local p1=$SRV_PID u1=$SRV_PORT &&
                    bench_start parley --redis "$CLUSTER_NODES" || { bench_stop; return 1; }
            else
                bench_start peer --redis "$CLUSTER_NODES" && local p1=$SRV_PID u1=$SRV_PORT &&
                    bench_start peer --redis "$CLUSTER_NODES" || { bench_stop; return 1; }
            fi
            "$LOADGEN" cluster --url "ws://127.0.0.1:$u1" --pid "$p1" --url "ws://127.0.0.1:$SRV_PORT" --pid "$SRV_PID" \
                "${o[@]}" "${extra[@]}" >"$log" 2>&1 || rc=$?
            bench_stop
        fi
    else
        bench_start "$server" || return 1
        "$LOADGEN" "$scen" --url "ws://127.0.0.1:$SRV_PORT" --pid "$SRV_PID" "${o[@]}" "${extra[@]}" >"$log" 2>&1 || rc=$?
        bench_stop
    fi
    local line
    line=$(grep '^result ' "$log" | tail -n 1 || true)
    [ -n "$line" ] || line="result scenario=$scen server=$server ok=0 error=\"no result line (exit $rc)\""
    echo "$name $server $rep $line bg_busy_pct=$BG" >>"$RAW"
    return $rc
}

# ---- smoke ---------------------------------------------------------------------

if [ "$mode" = smoke ]; then
    bench_build
    RAW=$(mktemp)
    pass=0 fail=0 skip=0
    for s in "${SMOKE[@]}"; do
        IFS='|' read -r name scen opts bound <<<"$s"
        rc=0
        run_one "smoke-$name" parley 1 "$scen" "$opts" "$bound" || rc=$?
        line=$(tail -n 1 "$RAW")
        if [ $rc -eq 0 ] && [[ "$line" == *" skipped=1"* ]]; then
            skip=$((skip + 1))
            printf '  skip %-16s %s\n' "$name" "$(sed -n 's/.* reason="\([^"]*\)".*/\1/p' <<<"$line")"
        elif [ $rc -eq 0 ] && [[ "$line" == *" ok=1"* ]]; then
            pass=$((pass + 1))
            printf '  ok   %-16s %s\n' "$name" "${line#*result }"
        else
            fail=$((fail + 1))
            printf '  FAIL %-16s %s\n' "$name" "${line#*result }"
            sed 's/^/    | /' "$RESULTS/logs/smoke-$name-parley-1.log" | tail -n 20
        fi
    done
    rm -f "$RAW"
    echo "$pass passed, $fail failed, $skip skipped"
    [ $fail -eq 0 ]
    exit
fi

# ---- full run ------------------------------------------------------------------

need_cmd bench gnuplot gnuplot-nox bench
bench_build peer
REPS=${REPS:-3}
RAW="$RESULTS/raw.txt"
rm -f "$RAW" "$RESULTS"/cdf/*.txt "$RESULTS"/series/*.txt "$RESULTS"/logs/*.log
t_start=$(date +%s)

for s in "${FULL[@]}"; do
    IFS='|' read -r name scen opts bound <<<"$s"
    for rep in $(seq "$REPS"); do
        for server in parley peer; do
            bench_log "$name run $rep/$REPS against $server"
            run_one "$name" "$server" "$rep" "$scen" "$opts" "$bound" || bench_log "  $name $server $rep: FAILED (see $RESULTS/logs/$name-$server-$rep.log)"
            tail -n 1 "$RAW" | sed 's/^[^ ]* [^ ]* [^ ]* result /  /' >&2
        done
    done
done
bench_cluster_stop
t_total=$(($(date +%s) - t_start))

# ---- table -----------------------------------------------------------------------

# median NAME SERVER KEY: median over the runs that have KEY (ok or not), "-" if none
median() {
    awk -v n="$1" -v s="$2" -v k="$3" '
        $1 == n && $2 == s {
            for (i = 4; i <= NF; i++) if (index($i, k "=") == 1) { v[c++] = substr($i, length(k) + 2) + 0 }
        }
        END {
            if (c == 0) { print "-"; exit }
            for (i = 0; i < c; i++) for (j = i + 1; j < c; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            m = (c % 2) ? v[int(c / 2)] : (v[c / 2 - 1] + v[c / 2]) / 2
            print m
        }' "$RAW"
}
# oks NAME SERVER: "k/n ok" and the median share of the machine others kept
# busy just before the runs (bg, from bench_quiet), or "skipped"
oks() { awk -v n="$1" -v s="$2" '$1 == n && $2 == s { c++; if ($0 ~ / ok=1/) o++; if ($0 ~ / skipped=1/) k++
        for (i = 4; i <= NF; i++) if (index($i, "bg_busy_pct=") == 1) b[nb++] = substr($i, 13) + 0 }
    END {
        if (k) { print "skipped"; exit }
        for (i = 0; i < nb; i++) for (j = i + 1; j < nb; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t }
        printf "%d/%d ok, bg %s%%\n", o, c, nb ? b[int(nb / 2)] : "-" }' "$RAW"; }
fmt() { awk -v v="$1" 'BEGIN { if (v == "-") print "-"; else if (v >= 100) printf "%.0f\n", v; else if (v >= 10) printf "%.1f\n", v; else printf "%.3g\n", v }'; }

TABLE="$RESULTS/table.md"
{
    echo "| scenario | figure | parley | peer | parley/peer | better |"
    echo "| --- | --- | ---: | ---: | ---: | --- |"
    for s in "${FULL[@]}"; do
        IFS='|' read -r name scen opts bound <<<"$s"
        op=$(oks "$name" parley)
        oq=$(oks "$name" peer)
        while IFS='|' read -r key label better; do
            mp=$(median "$name" parley "$key")
            mq=$(median "$name" peer "$key")
            [ "$op" = skipped ] && mp="-"
            r=$(awk -v a="$mp" -v b="$mq" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }')
            echo "| $name | $label | $(fmt "$mp") | $(fmt "$mq") | $r | $better |"
        done < <(figures "$name")
        echo "| $name | runs | $op | $oq | | |"
    done
} >"$TABLE"

# ---- plots -----------------------------------------------------------------------

files() { ls "$RESULTS/$1"/"$2"-"$3"-*.txt 2>/dev/null | tr '\n' ' ' || true; }
plot() { # plot MODE OUT TITLE PARLEY_FILES PEER_FILES
    gnuplot -e "mode='$1'; out='$2'; ttl='$3'; parley_files='$4'; peer_files='$5'" bench/plot.gnuplot 2>>"$RESULTS/logs/gnuplot.log" ||
        bench_log "gnuplot failed for $2 (see $RESULTS/logs/gnuplot.log)"
}
plot memory "$RESULTS/memory-vs-connections.png" "Server RSS against idle connections (3 runs each)" \
    "$(files series idle parley)" "$(files series idle peer)"
for name in fanout-heavy fanout-light private private-polling cluster; do
    pf=$(files cdf "$name" parley)
    qf=$(files cdf "$name" peer)
    [ -n "$pf$qf" ] || continue
    plot cdf "$RESULTS/latency-cdf-$name.png" "End-to-end latency CDF: $name (3 runs each)" "$pf" "$qf"
done

echo
echo "## parley vs node socket.io peer (medians of $REPS runs, $(date -u +%Y-%m-%d), ${t_total}s)"
echo
cat "$TABLE"
echo
echo "raw results: $RAW; plots: $RESULTS/*.png; logs: $RESULTS/logs/"
failed=$(grep -c ' ok=0' "$RAW" || true)
[ "$failed" -eq 0 ] || bench_log "$failed run(s) did not complete (ok=0): see the 'runs' rows"
