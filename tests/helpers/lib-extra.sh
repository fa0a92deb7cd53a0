# tests/helpers/lib-extra.sh - helpers the integration tests share, on top of
# tests/lib.sh.  Source it after lib.sh:
#
#   . "$(dirname "$0")/../lib.sh"
#   . "$ROOT/tests/helpers/lib-extra.sh"
#
# The helper programs (tests/helpers/*.c, built into build/helpers/) are:
#   zgen   deterministic data and sparse files
#   zcopy  zcio_copy() / zcio_send_file() driven from the shell
#   zsock  a socket (tcp, unix, dgram) as a command's stdin or stdout
#   znb    a command with nonblocking stdin/stdout, and its CPU time
#   zextents  the data extents of a file (SEEK_DATA/SEEK_HOLE)

HELPERS=${ZCIO_HELPERS:-$ROOT/build/helpers} # ZCIO_HELPERS: another build
ZGEN=$HELPERS/zgen
ZCOPY=$HELPERS/zcopy
ZSOCK=$HELPERS/zsock
ZNB=$HELPERS/znb

# Fail once and return 1 when the helper programs are not built (make
# helpers): every test below depends on them.
need_helpers() {
	local h
	for h in "$ZGEN" "$ZCOPY" "$ZSOCK" "$ZNB"; do
		if [ ! -x "$h" ]; then
			fail "helpers built" "$h missing (run make helpers)"
			return 1
		fi
	done
}

# Fail once and return 1 when the CLI is not built: the product is
# incomplete, which is not a missing kernel feature.
need_cli() {
	if [ ! -x "$ZCIO" ]; then
		fail "zcio built" "$ZCIO missing (run make cli)"
		return 1
	fi
}

# now_ms: monotonic-enough wall clock in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Forks are the cost of a shell test on a busy machine (several ms each),
# so --stats output is parsed with builtins only.
#
# load_stats ERRFILE: parse "zcio: CMD: stats: ..." / "zcopy: stats: ..."
# lines into STATS[PATH]=BYTES ("total", "splice", "copy", ...),
# STATS_FALLBACKS (the "fallback: ..." lines), STATS_LINES (all stats lines,
# ';'-joined, for messages) and STATS_OTHER (every other stderr line that
# is not zcopy's own report).
declare -A STATS=()
load_stats() {
	local line rest key val
	STATS=() STATS_FALLBACKS="" STATS_LINES="" STATS_OTHER=""
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in
		"zcio: "*": stats: "* | "zcopy: stats: "*)
			rest=${line#*stats: }
			STATS_LINES+="${STATS_LINES:+;}$rest"
			case $rest in
			"fallback: "*) STATS_FALLBACKS+="$rest"$'\n' ;;
			*": "*" bytes")
				key=${rest%%: *} val=${rest#*: }
				STATS[$key]=${val% bytes}
				;;
			esac
			;;
		"zcopy: "*) ;;
		*) STATS_OTHER+="$line"$'\n' ;;
		esac
	done < "$1"
}

# stat_bytes ERRFILE PATH: bytes --stats says PATH moved (0 if not listed).
stat_bytes() {
	load_stats "$1"
	echo "${STATS[$2]:-0}"
}

# expect_bytes NAME ERRFILE PATH N: --stats says PATH moved exactly N bytes.
expect_bytes() {
	load_stats "$2"
	if [ "${STATS[$3]:-0}" = "$4" ]; then
		pass "$1"
	else
		fail "$1" "$3 moved ${STATS[$3]:-0} bytes, want $4 [$STATS_LINES]"
	fi
}

# expect_fallback NAME ERRFILE PATTERN: a "fallback: ..." line of --stats
# matches the bash extended glob / regex PATTERN (a bash regex, unanchored,
# matched against the text after "fallback: ").
expect_fallback() {
	local l
	load_stats "$2"
	while IFS= read -r l; do
		if [[ ${l#fallback: } =~ $3 ]]; then
			pass "$1"
			return
		fi
	done <<< "$STATS_FALLBACKS"
	fail "$1" "no fallback matching '$3' [$STATS_LINES]"
}

# expect_no_fallback NAME ERRFILE
expect_no_fallback() {
	load_stats "$2"
	if [ -n "$STATS_FALLBACKS" ]; then
		fail "$1" "unexpected fallback [$STATS_LINES]"
	else
		pass "$1"
	fi
}

# expect_quiet NAME ERRFILE: stderr holds nothing but --stats (and zcopy's
# report) lines.
expect_quiet() {
	load_stats "$2"
	if [ -n "$STATS_OTHER" ]; then
		fail "$1" "unexpected stderr: ${STATS_OTHER:0:300}"
	else
		pass "$1"
	fi
}

# csum FILE: sha256 of FILE in one fork (lib.sh's sum takes three).
csum() {
	local h
	h=$(sha256sum < "$1")
	echo "${h%% *}"
}

# zcopy_result ERRFILE: the value zcopy printed as "zcopy: result: N".
zcopy_result() { sed -n 's/^zcopy: result: \(-\{0,1\}[0-9]*\).*/\1/p' "$1" | tail -n 1; }

# Fault injection with strace (coreutils' tests do the same).  strace 6.1
# injects only into traced syscalls, so "-e trace=none" would disable the
# injection: trace the one syscall and send the trace to /dev/null.
#
#   inject SYSCALL ERRNO WHEN CMD...   (WHEN: "", "3", "3+", "2..4"...)
inject() {
	local sc=$1 err=$2 when=$3
	shift 3
	strace -f -qq -o /dev/null -e trace="$sc" \
		-e inject="$sc:error=$err${when:+:when=$when}" "$@"
}

# have_inject: strace is installed and can fail a syscall here (ptrace may
# be forbidden in a container).  Cached.
T_INJECT_OK=
have_inject() {
	if [ -z "$T_INJECT_OK" ]; then
		T_INJECT_OK=no
		# strace must run the program, and the injection must bite.
		if have strace && inject openat ENOENT 60000 true 2>/dev/null &&
			! inject openat ENOENT "" true 2>/dev/null; then
			T_INJECT_OK=yes
		fi
	fi
	[ "$T_INJECT_OK" = yes ]
}

# need_inject NAME: skip NAME (and return 1) without working injection.
need_inject() {
	have_inject || { skip "$1" "strace fault injection unavailable"; return 1; }
}

# bg CMD...: run CMD in the background (its pid in $BG_PID), killed at exit
# if still running.
bg() {
	"$@" &
	BG_PID=$!
	at_exit "kill $BG_PID"
}

# wait_bg PID SECONDS: wait for a background process, killing it after
# SECONDS; returns its status (124 when it had to be killed).
wait_bg() {
	local pid=$1 t=$(($2 * 10))
	while kill -0 "$pid" 2>/dev/null && [ "$t" -gt 0 ]; do
		sleep 0.1
		t=$((t - 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	wait "$pid"
}

# size_of FILE: size in bytes.
size_of() { stat -c %s "$1"; }

# is_prefix SHORT LONG: SHORT's bytes are the first bytes of LONG.
is_prefix() { cmp -s -n "$(size_of "$1")" "$1" "$2"; }
