#!/usr/bin/env bash
# Runs each libFuzzer target for a set time on a scratch copy of its seed
# corpus (tests/fuzz/corpus/NAME/, NAME being the target without "fuzz_"),
# with its dictionary (tests/fuzz/NAME.dict) when there is one. New corpus
# entries stay in the scratch copy; a crash leaves its input in build-fuzz/
# and fails the run.   usage: [FUZZ_JOBS=N] scripts/fuzz.sh SECONDS BIN...
#
# FUZZ_JOBS (default 1) targets run at a time, each a single process for
# the whole SECONDS (`make fuzz` sets one per core). Each target's output
# is in build-fuzz/NAME.log; a line says when each starts, and one when it
# ends (its executed units, or FAILED and the end of its log).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=$1
shift
jobs=${FUZZ_JOBS:-1}
if ! [[ $jobs =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: FUZZ_JOBS must be a positive number (got '$jobs')" >&2
    exit 2
fi

tmp=$(mktemp -d)
declare -A names=() # pid of a running target -> its NAME
# shellcheck disable=SC2317  # (run by the trap)
cleanup() {
    local pid
    for pid in "${!names[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# fuzz_one BIN NAME: runs one target (in the background); its exit status
# is libFuzzer's.
fuzz_one() {
    local bin=$1 name=$2 work="$tmp/$2" dict=()
    mkdir -p "$work"
    [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
    [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
    "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="build-fuzz/$name-" \
        "${dict[@]}" "$work" >"build-fuzz/$name.log" 2>&1
}

status=0
# reap: waits for one running target and reports it.
reap() {
    local pid="" rc=0 name
    wait -n -p pid || rc=$?
    name=${names[$pid]}
    unset "names[$pid]"
    rm -rf "${tmp:?}/$name"
    if [ "$rc" -ne 0 ]; then
        echo "FAILED: fuzz $name (exit $rc), see build-fuzz/$name.log"
        tail -30 "build-fuzz/$name.log"
        status=1
    else
        echo "ok   fuzz $name: $(grep -E 'stat::number_of_executed_units' "build-fuzz/$name.log" || echo 'no stats')"
    fi
}

for bin in "$@"; do
    while [ ${#names[@]} -ge "$jobs" ]; do reap; done
    name=$(basename "$bin")
    name=${name#fuzz_}
    echo "== fuzz $name (${secs}s)"
    fuzz_one "$bin" "$name" &
    names[$!]=$name
done
while [ ${#names[@]} -gt 0 ]; do reap; done
exit $status
