# tests/lib.sh - shared helpers for integration tests (bash).  Source it:
#
#   . "$(dirname "$0")/../lib.sh"
#
# Every test prints TAP-style result lines, which tests/run counts:
#   ok - NAME
#   not ok - NAME: WHY
#   ok - NAME # SKIP WHY        (a missing feature: visible, never a pass)
# A script that exits non-zero without printing "not ok" counts as one failure.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ZCIO=${ZCIO:-$ROOT/build/zcio}
T_FAILED=0
T_TMP=$(mktemp -d /tmp/zcio-test.XXXXXX)
T_CLEANUP=()

t_cleanup() {
	local c
	for c in "${T_CLEANUP[@]+"${T_CLEANUP[@]}"}"; do eval "$c" >/dev/null 2>&1 || true; done
	rm -rf "$T_TMP"
}
trap t_cleanup EXIT

# Run a command when the script exits (kill a server, remove a netns...).
at_exit() { T_CLEANUP+=("$1"); }

pass() { echo "ok - $1"; }
fail() { echo "not ok - $1: $2"; T_FAILED=1; }
skip() { echo "ok - $1 # SKIP $2"; }

# check NAME CMD...: pass if CMD succeeds.
check() {
	local name=$1; shift
	if "$@"; then pass "$name"; else fail "$name" "failed: $*"; fi
}

# sum FILE: sha256 of a file (or - for stdin), hex only.
sum() { sha256sum "$1" | cut -d' ' -f1; }

# same_bytes NAME EXPECTED_FILE ACTUAL_FILE: checksums must match.
same_bytes() {
	local a b
	a=$(sum "$2"); b=$(sum "$3")
	if [ "$a" = "$b" ]; then pass "$1"; else fail "$1" "checksum $b, want $a"; fi
}

# have CMD: is a program installed?
have() { command -v "$1" >/dev/null 2>&1; }

# need CMD NAME: skip test NAME (and return 1) when CMD is missing.
need() { have "$1" || { skip "$2" "$1 not installed"; return 1; }; }

# make_file PATH SIZE: a file of SIZE bytes of pseudo-random data
# (SIZE like 1M, 100K, 12345).  Repeatable: same size, same bytes.
make_file() {
	head -c "$2" < <(openssl enc -aes-128-ctr -nosalt -pass pass:zcio -in /dev/zero 2>/dev/null ||
		cat /dev/urandom) > "$1"
}

# open_fds PID: number of open fds of a process.
open_fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# free_port: a TCP port no socket uses (best effort).  It comes from below
# the ephemeral range (ip_local_port_range): a port picked inside it can be
# taken by any client's connect() before the server binds it, and the tests
# here make thousands of connections.
free_port() {
	local p lo=32768 hi
	read -r lo hi < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	[ "$lo" -gt 12000 ] || lo=61000
	for _ in $(seq 50); do
		p=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000)))
		ss -Htan "( sport = :$p )" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
	echo 0
}

# Finish: exit status tells tests/run whether the script itself worked.
done_testing() { exit "$T_FAILED"; }
