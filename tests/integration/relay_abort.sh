#!/usr/bin/env bash
# relay_abort.sh - zcio relay when a peer misbehaves:
#
#  - a client that aborts mid-transfer, with a reset (SO_LINGER 0) or a
#    plain close, uploading, downloading, both, or idle: the relay survives,
#    the server's side is closed promptly, nothing leaks;
#  - a target that refuses connections (TCP port nobody listens on, unix
#    path that does not exist): the client sees its connection closed at
#    once, the relay logs a warning and goes on;
#  - a target that accepts and never reads: the client sends until every
#    buffer is full; the relay holds at most one pipe's worth, its memory
#    stays small and it does not spin;
#  - a client reading at 1 MB/s from a fast server: the relay's memory
#    stays small and it uses almost no CPU (no busy loop), and the stream
#    still arrives whole.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/rl_lib.sh"

need_rl || done_testing

MAX_RSS_KB=$((64 * 1024))
MAX_CPU_PCT=5

# server_closed NAME N: within 3 s of the client's abort, the server has
# seen all N connections end (none still open).
server_closed() {
	local t0 ms
	t0=$(now_ms)
	wait_for 3 _peer_quiet "$2"
	ms=$(($(now_ms) - t0))
	if peer_is open 0 && peer_is accepted "$2"; then
		pass "$1: server side closed (within $ms ms)"
	else
		fail "$1: server side closed" "$(cat "$PEER_STATUS")"
	fi
}

# ---- clients aborting ----------------------------------------------------

abort_tests() {
	local n="$1" conns=0
	shift
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" "$@" || { peer_stop; return; }
	for how in rst close; do
		rl_client "$n: client ${how}s mid-upload" \
			--op sink --up 1G --abort-after 8M --abort "$how" --count 3 --conns 3
		conns=$((conns + 3))
		server_closed "$n: client ${how}s mid-upload" "$conns"
		rl_client "$n: client ${how}s mid-download" \
			--op source --down 1G --abort-after 8M --abort "$how" --count 3 --conns 3
		conns=$((conns + 3))
		server_closed "$n: client ${how}s mid-download" "$conns"
		rl_client "$n: client ${how}s mid-transfer both ways" \
			--op duplex --up 1G --down 1G --abort-after 16M --abort "$how" --count 3 --conns 3
		conns=$((conns + 3))
		server_closed "$n: client ${how}s mid-transfer both ways" "$conns"
		rl_dir
		rl_client "$n: client ${how}s idle connections" --op echo --up 1000 --count 3 --conns 3 \
			--hold "$RL_DIR/h" --release /dev/null --abort "$how"
		conns=$((conns + 3))
		server_closed "$n: client ${how}s idle connections" "$conns"
		relay_settled "$n: after ${how}s"
	done
	# After its half-close, the client's socket is no longer read: its
	# reset must still end the connection, though the server says nothing.
	rl_dir
	rl_client "$n: client resets after its half-close, server silent" --op quiet --up 100K \
		--count 3 --conns 3 --hold "$RL_DIR/h" --release /dev/null --abort rst
	conns=$((conns + 3))
	server_closed "$n: client resets after its half-close, server silent" "$conns"
	relay_settled "$n: after resets behind half-closes"
	if grep -q 'FAIL.*reset' "$PEER_LOG"; then
		pass "$n: a client's reset reaches the server as a reset"
	else
		fail "$n: a client's reset reaches the server as a reset" "$(grep -c FAIL "$PEER_LOG") failures, none a reset"
	fi
	relay_alive "$n"
	rl_client "$n: a normal exchange afterwards" --op duplex --up 4M --down 4M --count 4 --conns 4
	relay_settled "$n: at the end"
	relay_stop "$n"
	peer_stop
}

abort_tests "aborts"
abort_tests "aborts, --copy" --copy

# ---- a target refusing connections ---------------------------------------

refused() {
	local n=$1 target=$2 kind=$3 ms
	relay_start "$kind" "$target" || return
	if rl_client "$n: the client's connection is closed" --op source --down 1M --expect close \
		--timeout 5; then
		ms=$(client_field "$RL_OUT" last_close_ms)
		if [ "$ms" -lt 2000 ]; then
			pass "$n: closed promptly ($ms ms)"
		else
			fail "$n: closed promptly" "after $ms ms"
		fi
	fi
	if grep -qE 'warn: .*connect.*(refused|No such file)' "$RELAY_ERR"; then
		pass "$n: the relay logs a warning"
	else
		fail "$n: the relay logs a warning" "$(head -c 300 "$RELAY_ERR")"
	fi
	rl_client "$n: 50 more clients closed the same way" --op duplex --up 100K --down 1 \
		--expect close --count 50 --conns 50 --timeout 10
	relay_alive "$n"
	relay_settled "$n"
	kill -USR1 "$RELAY_PID"
	if wait_for 2 grep -q '51 failed to connect' "$RELAY_ERR"; then
		pass "$n: counted as failed to connect"
	else
		fail "$n: counted as failed to connect" "$(grep stats: "$RELAY_ERR")"
	fi
	relay_stop "$n" 'connect'
}

refused "refusing TCP target" "127.0.0.1:$(free_port)" tcp4
rl_dir
refused "missing unix target" "unix:$RL_DIR/nobody.sock" unix

# ---- a target that never reads -------------------------------------------

blackhole() {
	local n=$1 t0 c0 c1 ms pct rss
	shift
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" "$@" || { peer_stop; return; }
	rl_dir
	"$RL_PEER" client "$RELAY_ADDR" --op blackhole --stall-ms 1000 --hold "$RL_DIR/h" \
		--release "$RL_DIR/r" --timeout 30 > "$RL_DIR/out" 2>&1 &
	local cpid=$!
	at_exit "kill -9 $cpid"
	if ! wait_for 20 test -e "$RL_DIR/h"; then
		fail "$n: the client's sending stalls" "$(cat "$RL_DIR/out")"
		return
	fi
	pass "$n: the client's sending stalls after $(client_field "$RL_DIR/out" stall_sent) bytes"
	t0=$(now_ms) c0=$(cpu_ticks "$RELAY_PID")
	sleep 1
	c1=$(cpu_ticks "$RELAY_PID") ms=$(($(now_ms) - t0))
	pct=$(((c1 - c0) * 1000 * 100 / RL_HZ / ms))
	if [ "$pct" -lt "$MAX_CPU_PCT" ]; then
		pass "$n: relay idle while stalled (${pct}% CPU)"
	else
		fail "$n: relay idle while stalled" "${pct}% CPU over $ms ms"
	fi
	relay_fds
	if [ $((RL_PIPE_FDS - RELAY_PIPES0)) -le 4 ] && [ "$RL_HELD" -le $((2 * 1024 * 1024)) ]; then
		pass "$n: at most a pipe per direction ($(((RL_PIPE_FDS - RELAY_PIPES0) / 2)) pipes, $RL_HELD bytes)"
	else
		fail "$n: at most a pipe per direction" "$RL_PIPE_FDS pipe fds (baseline $RELAY_PIPES0), $RL_HELD bytes held"
	fi
	rss=$(rss_kb "$RELAY_PID")
	if [ "$rss" -lt "$MAX_RSS_KB" ]; then
		pass "$n: relay memory bounded (${rss} KiB)"
	else
		fail "$n: relay memory bounded" "VmRSS ${rss} KiB"
	fi
	touch "$RL_DIR/r"
	wait "$cpid" || fail "$n: client exits 0" "$(cat "$RL_DIR/out")"
	# The client is gone, but the relay still owes the server the bytes
	# it holds: only the server's end releases them.
	peer_stop
	relay_settled "$n: after the server went"
	relay_stop "$n"
}

blackhole "target never reads"
blackhole "target never reads, --copy" --copy

# ---- a slow reader -------------------------------------------------------

slow_reader() {
	local n=$1 t0 c0 c1 ms pct rss cpid
	shift
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" "$@" || { peer_stop; return; }
	rl_dir
	"$RL_PEER" client "$RELAY_ADDR" --op source --down 24M --read-rate 1M --slow-for 3.5 \
		--timeout 30 > "$RL_DIR/out" 2>&1 &
	cpid=$!
	at_exit "kill -9 $cpid"
	sleep 0.5
	t0=$(now_ms) c0=$(cpu_ticks "$RELAY_PID")
	sleep 2.5
	c1=$(cpu_ticks "$RELAY_PID") ms=$(($(now_ms) - t0))
	relay_fds
	rss=$(rss_kb "$RELAY_PID")
	pct=$(((c1 - c0) * 1000 * 100 / RL_HZ / ms))
	if [ "$pct" -lt "$MAX_CPU_PCT" ]; then
		pass "$n: relay CPU low while the client reads at 1 MB/s (${pct}%)"
	else
		fail "$n: relay CPU low while the client reads at 1 MB/s" "${pct}% over $ms ms"
	fi
	if [ "$rss" -lt "$MAX_RSS_KB" ] && [ "$RL_HELD" -le $((2 * 1024 * 1024)) ]; then
		pass "$n: relay memory bounded (${rss} KiB, $RL_HELD bytes in pipes)"
	else
		fail "$n: relay memory bounded" "VmRSS ${rss} KiB, $RL_HELD bytes in pipes"
	fi
	if wait "$cpid"; then
		pass "$n: the stream arrives whole at the end"
	else
		fail "$n: the stream arrives whole at the end" "$(cat "$RL_DIR/out")"
	fi
	relay_settled "$n"
	relay_stop "$n"
	peer_stop
}

slow_reader "slow reader"
slow_reader "slow reader, --copy" --copy

done_testing
