# shellcheck shell=bash
# scripts/lib.sh - what the project's shell scripts share. Sourced, not run:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"     (any script under scripts/)
#
#   need_cmd NAME CMD PKG MODE   CMD on PATH, or exit 1 naming it, its Debian
#                                package and the command that installs it
#   need_npm NAME DIR MODE       DIR's npm packages installed from its lock file
#   npm_fresh DIR                (test) DIR/node_modules matches package-lock.json
#   pid_is PID PATTERN           (test) PID runs and its command line matches
#   free_port_block N            a base port P with P..P+N-1 and P+10000..
#                                P+10000+N-1 unused on this machine
#
# Installing is scripts/deps.sh's job alone (`make deps`, `make deps-test`,
# `scripts/deps.sh bench`); the other scripts only check with need_cmd and
# need_npm and stop with a message that says what to run.

# deps_hint MODE: the command that installs what mode MODE of deps.sh installs.
deps_hint() {
    case $1 in
    build) echo "make deps (runs scripts/deps.sh build; needs root)" ;;
    test) echo "make deps-test (runs scripts/deps.sh test; needs root)" ;;
    *) echo "scripts/deps.sh $1 (needs root)" ;;
    esac
}

# need_cmd NAME CMD PKG MODE: exits 1 with "NAME: CMD is missing (Debian
# package PKG). Install it with: ..." when CMD is not on PATH. NAME is the caller's
# name for messages, MODE the deps.sh mode that installs PKG.
need_cmd() {
    command -v "$2" >/dev/null 2>&1 && return 0
    echo "$1: $2 is missing (Debian package $3). Install it with: $(deps_hint "$4")" >&2
    exit 1
}

# npm_fresh DIR: DIR/node_modules was installed by npm ci from DIR's current
# package-lock.json (npm writes node_modules/.package-lock.json when it
# installs; a lock file newer than it has changed since).
npm_fresh() {
    [ -f "$1/node_modules/.package-lock.json" ] &&
        ! [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]
}

# need_npm NAME DIR MODE: exits 1 when DIR's npm packages are missing or
# older than its lock file.
need_npm() {
    [ -f "$2/package-lock.json" ] || return 0
    npm_fresh "$2" && return 0
    echo "$1: the npm packages of $2 are missing or older than its package-lock.json." \
        "Install them with: $(deps_hint "$3")" >&2
    exit 1
}

# pid_is PID PATTERN: PID is a running process whose command line (its
# arguments joined by spaces) matches PATTERN (a grep basic regular
# expression). Pids are reused, so a pid file alone proves nothing: whoever stops
# or counts a process by its pid file asks this first.
pid_is() {
    [[ $1 =~ ^[0-9]+$ ]] || return 1
    kill -0 "$1" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}

# ports_in_use: every local TCP port some socket of this machine holds
# (listening, connected or in TIME_WAIT), as 4 hex digits (as /proc/net
# writes them), one per line.
ports_in_use() {
    local f
    for f in /proc/net/tcp /proc/net/tcp6; do
        [ -r "$f" ] || continue
        awk 'NR > 1 { n = split($2, a, ":"); print a[n] }' "$f"
    done
}

# free_port_block N: prints a base port P in 20000..29000 such that no
# socket holds P..P+N-1 nor their Redis cluster bus ports P+10000..
# P+10000+N-1 (pass N=1 for a single server's port and its bus port).
# The bus ports are kept below the kernel's ephemeral range when it allows,
# where outgoing connections take their local ports. Returns 1 after 200
# tries. Free when checked: the caller binds them right away and retries
# with another block if one was taken meanwhile.
free_port_block() {
    local n=$1 hi=29000 eph_low used try i ok a b
    eph_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    if [ $((eph_low - 10000 - n)) -lt $hi ] && [ $((eph_low - 10000 - n)) -gt 20500 ]; then
        hi=$((eph_low - 10000 - n))
    fi
    used=" $(ports_in_use | sort -u | tr '\n' ' ') "
    for ((try = 0; try < 200; try++)); do
        local base=$((20000 + RANDOM % (hi - 20000)))
        ok=1
        for ((i = 0; i < n; i++)); do
            printf -v a '%04X' $((base + i))
            printf -v b '%04X' $((base + 10000 + i))
            if [[ $used == *" $a "* || $used == *" $b "* ]]; then
                ok=0
                break
            fi
        done
        if [ "$ok" = 1 ]; then
            echo "$base"
            return 0
        fi
    done
    return 1
}

# wait_port_file FILE PID [SECONDS]: waits until the server PID has written
# its port to FILE (parley --port-file) and prints it; returns 1 if PID
# exits first or nothing comes within SECONDS (15).
wait_port_file() {
    local file=$1 pid=$2 t port
    for ((t = 0; t < ${3:-15} * 10; t++)); do
        if [ -s "$file" ]; then
            read -r port <"$file" || true
            if [[ $port =~ ^[0-9]+$ ]]; then
                echo "$port"
                return 0
            fi
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
