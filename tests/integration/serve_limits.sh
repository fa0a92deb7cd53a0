#!/usr/bin/env bash
# serve_limits.sh - zcio serve under clients that hold resources: a head
# sent one byte a second (408 and close after --header-timeout),
# connections that never send, idle keep-alive connections, a client that
# stops reading, 2,000 idle connections while a new client is served (with
# and without a --max-conns below the flood), graceful SIGTERM with a
# transfer in flight, and SIGUSR1 statistics.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/sv_lib.sh"

need_helpers || done_testing
sv_need || done_testing

W=$T_TMP/www
mkdir -p "$W"
"$ZGEN" 10k 1 > "$W/small.bin"
"$ZGEN" 40M 2 > "$W/big.bin"
OUT=$T_TMP/out
ERR=$T_TMP/err

# ended_after FILE: milliseconds sv_raw reported the connection ended after.
ended_after() { sed -n 's/^sv_raw: [a-z]* after \([0-9]*\) ms/\1/p' "$1"; }

sv_start --workers 2 --header-timeout 2 --keepalive-timeout 1 --send-timeout 1 "$W" || done_testing

# ---- slowloris -------------------------------------------------------------------
printf 'GET /small.bin HTTP/1.1\r\nHost: a\r\nX-Slow: 1234567890\r\n\r\n' |
	"$SV_RAW" --chunk 1 --delay 1000 --timeout 10 127.0.0.1 "$SV_PORT" > "$OUT" 2> "$ERR"
ms=$(ended_after "$ERR")
if [ "$(sv_first_status "$OUT")" = 408 ] && grep -q 'closed after' "$ERR" && [ "${ms:-0}" -ge 1900 ] && [ "$ms" -lt 4500 ]; then
	pass "one byte a second: 408 and closed after the 2 s header timeout ($ms ms)"
else
	fail "one byte a second: 408 and closed after the header timeout" "status $(sv_first_status "$OUT"), $(tail -n 1 "$ERR")"
fi
sv_log_wait '"GET[^"]*" 408 ' && pass "slowloris: the 408 is in the access log" ||
	fail "slowloris: the 408 is in the access log" "$(tail -n 2 "$SV_OUT")"

: | "$SV_RAW" --timeout 6 127.0.0.1 "$SV_PORT" > "$OUT" 2> "$ERR"
ms=$(ended_after "$ERR")
if [ ! -s "$OUT" ] && grep -q 'closed after' "$ERR" && [ "${ms:-0}" -ge 1900 ] && [ "$ms" -lt 4500 ]; then
	pass "a connection that sends nothing: closed without a word after 2 s ($ms ms)"
else
	fail "a connection that sends nothing: closed after 2 s" "$(head -c 100 "$OUT"); $(tail -n 1 "$ERR")"
fi

printf 'GET /small.bin HTTP/1.1\r\nHost: a\r\n\r\n' | "$SV_RAW" --timeout 6 127.0.0.1 "$SV_PORT" > "$OUT" 2> "$ERR"
ms=$(ended_after "$ERR")
if [ "$(sv_first_status "$OUT")" = 200 ] && grep -q 'closed after' "$ERR" && [ "${ms:-0}" -ge 900 ] && [ "$ms" -lt 3000 ]; then
	pass "idle after a request: closed after the 1 s keep-alive timeout ($ms ms)"
else
	fail "idle after a request: closed after the keep-alive timeout" "$(tail -n 1 "$ERR")"
fi

# A client that asks for 40 MiB and never reads: after --send-timeout
# without progress the server lets go (its socket count falls back).
exec 3<>"/dev/tcp/127.0.0.1/$SV_PORT"
printf 'GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n' >&3
sleep 0.5
busy=$(sv_kind "$SV_PID" socket)
gone=""
for t in $(seq 40); do
	[ "$(sv_kind "$SV_PID" socket)" -le "$SV_SOCKS0" ] && { gone=$t; break; }
	sleep 0.1
done
if [ "$busy" -gt "$SV_SOCKS0" ] && [ -n "$gone" ]; then
	pass "a client that stops reading is dropped after the 1 s send timeout"
else
	fail "a client that stops reading is dropped" "sockets: $busy while sending, now $(sv_kind "$SV_PID" socket), at start $SV_SOCKS0"
fi
exec 3<&-
sv_fds "timeouts" 10
sv_stop "timeouts"

# ---- 2,000 idle connections ---------------------------------------------------------
# flood NAME SERVER-OPTIONS... : 2,000 idle connections (sv_idle), then a
# new client must get its file at once.
flood() {
	local name=$1 send=$2 fifo=$T_TMP/idle.in pid ready="" t0 ms closed
	shift 2
	sv_start --workers 2 "$@" "$W" || return
	rm -f "$fifo"
	mkfifo "$fifo"
	if [ -n "$send" ]; then
		"$SV_IDLE" --send "$send" 127.0.0.1 "$SV_PORT" 2000 < "$fifo" > "$T_TMP/idle.out" 2> "$T_TMP/idle.err" &
	else
		"$SV_IDLE" 127.0.0.1 "$SV_PORT" 2000 < "$fifo" > "$T_TMP/idle.out" 2> "$T_TMP/idle.err" &
	fi
	pid=$!
	at_exit "kill $pid"
	exec 4> "$fifo"
	for t in $(seq 200); do
		grep -q '^ready' "$T_TMP/idle.out" && { ready=1; break; }
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$ready" ]; then
		fail "$name: 2,000 connections opened" "$(cat "$T_TMP/idle.err")"
		exec 4>&-
		sv_stop "$name"
		return
	fi
	sleep 0.3 # let the workers accept them all
	t0=$(now_ms)
	curl -s --max-time 5 -o "$T_TMP/got" "$SV_URL/small.bin"
	ms=$(($(now_ms) - t0))
	if cmp -s "$T_TMP/got" "$W/small.bin" && [ "$ms" -lt 2000 ]; then
		pass "$name: a new client is served ($ms ms)"
	else
		fail "$name: a new client is served" "$ms ms, $(size_of "$T_TMP/got" 2>/dev/null) bytes"
	fi
	curl -s --max-time 5 -o "$T_TMP/got" "$SV_URL/big.bin"
	if cmp -s "$T_TMP/got" "$W/big.bin"; then
		pass "$name: and a 40 MiB body too"
	else
		fail "$name: and a 40 MiB body too" "$(size_of "$T_TMP/got" 2>/dev/null) bytes"
	fi
	exec 4>&-
	wait "$pid"
	closed=$(sed -n 's/^closed //p' "$T_TMP/idle.out")
	FLOOD_CLOSED=${closed:-?}
	echo "# $name: the server closed $FLOOD_CLOSED of the 2,000"
	sv_fds "$name" 10
	sv_stop "$name"
}

flood "2,000 idle connections" ""
if [ "$FLOOD_CLOSED" = 0 ]; then
	pass "2,000 idle connections: all kept (within the limits)"
else
	fail "2,000 idle connections: all kept" "$FLOOD_CLOSED closed"
fi
flood "2,000 idle connections over --max-conns 300" "" --max-conns 300
if [ "$FLOOD_CLOSED" != "?" ] && [ "$FLOOD_CLOSED" -ge 1690 ]; then
	pass "--max-conns 300: the oldest idle connections were closed to make room"
else
	fail "--max-conns 300: the oldest idle connections were closed" "$FLOOD_CLOSED closed"
fi
flood "2,000 half-sent heads over --max-conns 300" $'GET / HTTP/1.1\r\nHost: a\r\n' --max-conns 300

# ---- graceful stop ----------------------------------------------------------------
sv_start --workers 2 "$W" || done_testing
curl -s --limit-rate 20M -o "$T_TMP/got" "$SV_URL/big.bin" &
cpid=$!
sleep 0.5
kill -TERM "$SV_PID"
sleep 0.3
code=$(sv_code "$SV_URL/small.bin" --connect-timeout 2)
wait "$cpid"
crc=$?
if [ "$crc" = 0 ] && cmp -s "$T_TMP/got" "$W/big.bin"; then
	pass "SIGTERM: the transfer in flight finishes, same bytes"
else
	fail "SIGTERM: the transfer in flight finishes" "curl status $crc, $(size_of "$T_TMP/got") bytes"
fi
sv_expect "SIGTERM: new connections are refused" 000 "$code"
rc=0
wait_bg "$SV_WAIT" 10 || rc=$?
sv_expect "SIGTERM: exit 0 once the transfer is done" 0 "$rc"

sv_start --workers 2 "$W" || done_testing
curl -s --limit-rate 2M -o "$T_TMP/got" "$SV_URL/big.bin" &
cpid=$!
sleep 0.3
kill -TERM "$SV_PID"
sleep 0.3
kill -TERM "$SV_PID"
rc=0
wait_bg "$SV_WAIT" 5 || rc=$?
wait "$cpid"
crc=$?
if [ "$rc" = 0 ] && [ "$crc" != 0 ] && is_prefix "$T_TMP/got" "$W/big.bin"; then
	pass "a second SIGTERM stops at once; the client gets a short, correct prefix"
else
	fail "a second SIGTERM stops at once" "server status $rc, curl status $crc"
fi

# ---- SIGUSR1 ------------------------------------------------------------------------
sv_start --workers 2 "$W" || done_testing
curl -s -o /dev/null "$SV_URL/small.bin" -o /dev/null "$SV_URL/big.bin" -o /dev/null "$SV_URL/nope"
sleep 0.2
kill -USR1 "$SV_PID"
sleep 0.3
line=$(grep 'stats:' "$SV_ERR" | tail -n 1)
if [[ $line =~ requests\ 3\ \(2xx\ 2,\ 3xx\ 0,\ 4xx\ 1,\ 5xx\ 0\) ]] && [[ $line =~ linked\ bodies\ 1 ]]; then
	pass "SIGUSR1: a statistics line with the requests by status"
else
	fail "SIGUSR1: a statistics line" "$line"
fi
sv_stop "SIGUSR1"
done_testing
