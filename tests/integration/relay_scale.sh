#!/usr/bin/env bash
# relay_scale.sh - zcio relay with many connections, and its limits:
#
#  - 5,000 connections open at once, each with an echo exchange, all
#    established end to end before any closes (the relay raising its own
#    soft fd limit from 1024): idle, they hold no pipe; once all closed the
#    relay is back to its starting fds;
#  - --max-conns N: client N+1 waits in the backlog, unserved, until one
#    of the N closes;
#  - out of fds (ulimit -n 40), clients wait in the backlog: none is
#    accepted only to be dropped;
#  - --idle-timeout: an idle connection is closed after that long, a busy
#    one longer than that is not;
#  - --connect-timeout: a target whose backlog is full (connecting never
#    completes) gets the client closed after that long.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/rl_lib.sh"

need_rl || done_testing

# ---- 5,000 at once -------------------------------------------------------

CONNS=${RELAY_SCALE_CONNS:-5000}
# The relay needs two fds a connection.  It must raise its own soft limit
# (so must the peers), so the soft limit stays at the usual 1024 here; the
# hard one must allow it (raised if we may).
need=$((2 * CONNS + 200))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
	ulimit -Hn "$need" 2> /dev/null
	hard=$(ulimit -Hn)
fi
ulimit -Sn 1024
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
	skip "relay: $CONNS connections at once" "hard fd limit $hard, need $need"
else
	n="relay: $CONNS connections at once"
	peer_start 127.0.0.1:0
	relay_start tcp4 "$PEER_ADDR"
	rl_dir
	"$RL_PEER" client "$RELAY_ADDR" --op echo --up 1000 --count "$CONNS" --conns "$CONNS" \
		--hold "$RL_DIR/held" --release "$RL_DIR/go" --timeout 90 > "$RL_DIR/out" 2>&1 &
	cpid=$!
	at_exit "kill -9 $cpid"
	t0=$(now_ms)
	if wait_for 60 test -e "$RL_DIR/held"; then
		pass "$n: every echo back, $(client_field "$RL_DIR/out" fail) failed ($(($(now_ms) - t0)) ms)"
		# The server's status trails by up to 50 ms.
		wait_for 2 peer_is open "$CONNS"
		if peer_is open "$CONNS"; then
			pass "$n: all $CONNS open end to end at once"
		else
			fail "$n: all $CONNS open end to end at once" "server: $(cat "$PEER_STATUS")"
		fi
		relay_fds
		if [ "$RL_FDS" -ge $((RELAY_FDS0 + 2 * CONNS)) ]; then
			pass "$n: relay holds $RL_FDS fds (2 per connection)"
		else
			fail "$n: relay holds 2 fds per connection" "$RL_FDS fds, baseline $RELAY_FDS0"
		fi
		# A worker's pool keeps up to 8 empty pipes: 2 workers at most
		# 32 fds.  A link that kept its pipe would show thousands.
		if [ $((RL_PIPE_FDS - RELAY_PIPES0)) -le 32 ] && [ "$RL_HELD" = 0 ]; then
			pass "$n: idle links hold no pipe ($((RL_PIPE_FDS - RELAY_PIPES0)) pooled pipe fds)"
		else
			fail "$n: idle links hold no pipe" "$RL_PIPE_FDS pipe fds (baseline $RELAY_PIPES0), $RL_HELD bytes held"
		fi
	else
		fail "$n: every echo back" "$(tail -n 5 "$RL_DIR/out")"
	fi
	touch "$RL_DIR/go"
	if wait "$cpid"; then
		pass "$n: all closed, every byte right ($(($(now_ms) - t0)) ms in all)"
	else
		fail "$n: all closed, every byte right" "$(tail -n 5 "$RL_DIR/out")"
	fi
	peer_all_ok "$n: the server echoed $CONNS" "$CONNS"
	relay_settled "$n" 10
	relay_stop "$n"
	peer_stop
fi

# ---- --max-conns ---------------------------------------------------------

n="relay --max-conns 2"
peer_start 127.0.0.1:0
relay_start tcp4 "$PEER_ADDR" --max-conns 2
rl_dir
check_max_conns_two "$n"
relay_settled "$n"
relay_stop "$n"
peer_stop

# ---- out of fds ----------------------------------------------------------

# With 40 fds the relay can forward about 15 connections at once.  Clients
# beyond that must wait in the listen backlog (accept rests on EMFILE), not
# be accepted and dropped for want of a socket to the target.
n="relay with 40 fds"
peer_start 127.0.0.1:0
RELAY_NOFILE=40 relay_start tcp4 "$PEER_ADDR" --workers 1
rl_client "$n: 60 clients at once, all served in turn" --op duplex --up 1M --down 1M \
	--count 60 --conns 60 --timeout 30
if grep -q 'accept: Too many open files; pausing' "$RELAY_ERR"; then
	pass "$n: accept rests when out of fds"
else
	fail "$n: accept rests when out of fds" "$(grep -v info: "$RELAY_ERR" | head -n 3)"
fi
peer_all_ok "$n: the server saw 60 exchanges whole" 60
relay_settled "$n"
relay_stop "$n" 'accept: Too many open files'
peer_stop

# ---- --idle-timeout ------------------------------------------------------

n="relay --idle-timeout 1"
peer_start 127.0.0.1:0
relay_start tcp4 "$PEER_ADDR" --idle-timeout 1
rl_dir
check_idle_timeout_one "$n"
relay_settled "$n"
relay_stop "$n"
peer_stop

# ---- --connect-timeout ---------------------------------------------------

n="relay --connect-timeout 1"
rl_dir
"$RL_PEER" stuck 127.0.0.1:0 --port-file "$RL_DIR/port" 2> "$RL_DIR/err" &
stuck_pid=$!
at_exit "kill -9 $stuck_pid"
if wait_for 5 test -s "$RL_DIR/port"; then
	relay_start tcp4 "127.0.0.1:$(cat "$RL_DIR/port")" --connect-timeout 1
	if rl_client "$n: the client is closed" --op source --down 1M --expect close --count 3 \
		--conns 3 --timeout 10; then
		ms=$(client_field "$RL_OUT" last_close_ms)
		if [ "$ms" -ge 900 ] && [ "$ms" -le 2500 ]; then
			pass "$n: after about 1 s ($ms ms)"
		else
			fail "$n: after about 1 s" "$ms ms"
		fi
	fi
	if grep -q 'warn: .*connect: Connection timed out' "$RELAY_ERR"; then
		pass "$n: the relay logs a warning"
	else
		fail "$n: the relay logs a warning" "$(head -c 300 "$RELAY_ERR")"
	fi
	relay_settled "$n"
	relay_stop "$n" 'timed out'
else
	fail "$n: a listener whose backlog is full" "$(cat "$RL_DIR/err")"
fi
kill "$stuck_pid"
wait "$stuck_pid" 2> /dev/null

done_testing
