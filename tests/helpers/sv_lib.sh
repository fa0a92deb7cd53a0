# tests/helpers/sv_lib.sh - helpers for the `zcio serve` integration tests
# (tests/integration/serve_*.sh).  Source it after lib.sh and lib-extra.sh.
#
#   sv_start [OPTION]... DIR   start zcio serve on a free port; sets SV_PID,
#                              SV_PORT, SV_URL, SV_OUT (its stdout: the access
#                              log), SV_ERR (its stderr)
#   sv_stop NAME               SIGTERM; it must exit 0 within 15 s
#   sv_fds NAME                no socket, pipe or file fd leaked (checked
#                              against the server's count right after start)
#   sv_code URL [CURL ARG]...  the status code curl gets
#   sv_log_wait PATTERN        wait (up to 3 s) for an access-log line
#
# SV_BIN is the binary (default $ZCIO); SV_SAN=1 picks the sanitizer build
# (build/asan/zcio) when it exists.

SV_RAW=$HELPERS/sv_raw
SV_IDLE=$HELPERS/sv_idle
SV_BIN=${SV_BIN:-$ZCIO}
if [ "${SV_SAN:-}" = 1 ] && [ -x "$ROOT/build/asan/zcio" ]; then
	SV_BIN=$ROOT/build/asan/zcio
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
SV_N=0

# Fail once and return 1 when what every serve test needs is missing.
sv_need() {
	need_cli || return 1
	local h
	for h in "$SV_RAW" "$SV_IDLE"; do
		if [ ! -x "$h" ]; then
			fail "helpers built" "$h missing (run make helpers)"
			return 1
		fi
	done
	need curl "serve tests" || return 1
}

# sv_socks PID / sv_pipes PID / sv_files PID: fds of each kind.
sv_kind() {
	local f n=0 l
	for f in /proc/"$1"/fd/*; do
		l=$(readlink "$f" 2>/dev/null) || continue
		case $l in
		socket:*) [ "$2" = socket ] && n=$((n + 1)) ;;
		pipe:*) [ "$2" = pipe ] && n=$((n + 1)) ;;
		/*) [ "$2" = file ] && n=$((n + 1)) ;;
		esac
	done
	echo "$n"
}

sv_start() {
	local t
	SV_N=$((SV_N + 1))
	SV_OUT=$T_TMP/serve$SV_N.out
	SV_ERR=$T_TMP/serve$SV_N.err
	"$SV_BIN" serve --listen 127.0.0.1:0 "$@" > "$SV_OUT" 2> "$SV_ERR" &
	SV_PID=$! SV_WAIT=$!
	at_exit "kill -9 $SV_PID"
	SV_PORT=
	for t in $(seq 100); do
		SV_PORT=$(sed -n 's|.* on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$SV_ERR")
		[ -n "$SV_PORT" ] && break
		kill -0 "$SV_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$SV_PORT" ]; then
		fail "zcio serve $* starts" "$(head -c 500 "$SV_ERR")"
		return 1
	fi
	SV_URL=http://127.0.0.1:$SV_PORT
	# Behind a wrapper that stays (strace), signal and count the server
	# itself; wait for the wrapper, which exits with its status.
	if [ "$(cat "/proc/$SV_PID/comm" 2>/dev/null)" != zcio ]; then
		t=$(pgrep -P "$SV_WAIT" -x zcio | head -n 1)
		[ -n "$t" ] && SV_PID=$t && at_exit "kill -9 $SV_PID"
	fi
	SV_SOCKS0=$(sv_kind "$SV_PID" socket)
	SV_FILES0=$(sv_kind "$SV_PID" file)
}

sv_stop() {
	local rc=0
	kill -TERM "$SV_PID" 2>/dev/null
	wait_bg "$SV_WAIT" 15 || rc=$?
	if [ "$rc" = 0 ]; then
		pass "$1: SIGTERM, exit 0"
	else
		fail "$1: SIGTERM, exit 0" "status $rc; stderr: $(tail -c 600 "$SV_ERR")"
	fi
}

# sv_fds NAME [MAX_FILES]: sockets back to the count after start (closing
# connections linger up to 2 s), pipes within the pool, regular files
# within what the open-file cache may hold (MAX_FILES, default 100).
sv_fds() {
	local s p f t
	for t in $(seq 40); do
		s=$(sv_kind "$SV_PID" socket)
		[ "$s" -le "$SV_SOCKS0" ] && break
		sleep 0.1
	done
	p=$(sv_kind "$SV_PID" pipe)
	f=$(sv_kind "$SV_PID" file)
	if [ "$s" -le "$SV_SOCKS0" ] && [ "$p" -le 64 ] && [ "$f" -le $((SV_FILES0 + ${2:-100})) ]; then
		pass "$1: no fd leak"
	else
		fail "$1: no fd leak" "sockets $s (at start $SV_SOCKS0), pipes $p, files $f (at start $SV_FILES0)"
	fi
}

sv_code() {
	local url=$1
	shift
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$url"
}

sv_log_wait() {
	local t
	for t in $(seq 30); do
		grep -qE "$1" "$SV_OUT" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# sv_expect NAME WANT GOT
sv_expect() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$3', want '$2'"; fi
}

# sv_raw_status: the status code of the first response sv_raw printed
# (from a file).
sv_first_status() { head -n 1 "$1" | sed -n 's|^HTTP/1\.1 \([0-9]*\) .*|\1|p' | tr -d '\r'; }

# check_truncated_while_sent LABEL: $W/trunc.bin, a copy of the 64 MiB
# $T_TMP/orig64, is cut to 1 MiB while curl fetches it from $SV_URL at
# 16 MB/s: the client must get a true prefix of at least 1 MiB and an early
# close (curl status 18), within 3.5 s.  Leaves what curl got in $T_TMP/got.
check_truncated_while_sent() {
	local t0 cpid crc ms got
	cp "$T_TMP/orig64" "$W/trunc.bin"
	t0=$(now_ms)
	curl -s --max-time 10 --limit-rate 16M -o "$T_TMP/got" "$SV_URL/trunc.bin" &
	cpid=$!
	sleep 0.5
	truncate -s 1M "$W/trunc.bin"
	wait "$cpid"
	crc=$?
	ms=$(($(now_ms) - t0))
	got=$(size_of "$T_TMP/got")
	if [ "$crc" = 18 ] && [ "$got" -lt 67108864 ] && [ "$got" -ge 1048576 ] &&
		is_prefix "$T_TMP/got" "$T_TMP/orig64" && [ "$ms" -lt 3500 ]; then
		pass "$1: truncated while sent: closed early ($got of 67108864 bytes, a true prefix, $ms ms)"
	else
		fail "$1: truncated while sent: closed early" "curl status $crc, $got bytes, prefix: $(is_prefix "$T_TMP/got" "$T_TMP/orig64" && echo yes || echo no), $ms ms"
	fi
}
