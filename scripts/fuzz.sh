#!/usr/bin/env bash
# Runs each libFuzzer target for a set time on a scratch copy of its seed
# corpus (tests/fuzz/corpus/NAME/, NAME being the target without "fuzz_"),
# with its dictionary (tests/fuzz/NAME.dict) when there is one. New corpus
# entries stay in the scratch copy; a crash leaves its input in build-fuzz/
# and fails the run.   usage: scripts/fuzz.sh SECONDS BIN...
set -euo pipefail
cd "$(dirname "$0")/.."
secs=$1
shift
status=0
for bin in "$@"; do
    name=$(basename "$bin")
    name=${name#fuzz_}
    work=$(mktemp -d)
    [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
    dict=()
    [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
    echo "== fuzz $name (${secs}s)"
    if ! "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="build-fuzz/$name-" \
            "${dict[@]}" "$work" >"build-fuzz/$name.log" 2>&1; then
        echo "FAILED: see build-fuzz/$name.log"
        tail -30 "build-fuzz/$name.log"
        status=1
    else
        grep -E "stat::number_of_executed_units" "build-fuzz/$name.log" || true
    fi
    rm -rf "$work"
done
exit $status
