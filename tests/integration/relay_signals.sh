#!/usr/bin/env bash
# relay_signals.sh - zcio relay's signals and statistics:
#
#  - SIGUSR1 prints the statistics line and the relay goes on; --stats
#    prints it at exit too, with the bytes each way exactly, and how many
#    were spliced and copied: spliced for a large transfer, none with
#    --copy;
#  - SIGINT / SIGTERM: the relay stops accepting at once (new clients are
#    refused, TCP with one worker or several, and unix), lets a transfer in
#    flight finish within --grace, then exits 0;
#  - past --grace, or on a second signal, it ends what is left and exits 0.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/rl_lib.sh"

need_rl || done_testing

stats_count() { grep -c 'stats: connections' "$RELAY_ERR"; }
stats_more_than() { [ "$(stats_count)" -gt "$1" ]; }

# ---- SIGUSR1 and --stats -------------------------------------------------

stats_test() {
	local n=$1 mode=$2 before
	shift 2
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" "$@" || { peer_stop; return; }
	rl_client "$n: 16 MiB through" --op source --down 16M
	before=$(stats_count)
	kill -USR1 "$RELAY_PID"
	if wait_for 3 stats_more_than "$before"; then
		pass "$n: SIGUSR1 prints the stats line"
	else
		fail "$n: SIGUSR1 prints the stats line" "$(tail -n 2 "$RELAY_ERR")"
	fi
	relay_alive "$n: after SIGUSR1"
	last_stats
	# The client sent its 32-byte header; the server 16 MiB.
	if [ "$S_UP" = 32 ] && [ "$S_DOWN" = 16777216 ]; then
		pass "$n: exact bytes each way"
	else
		fail "$n: exact bytes each way" "$S_LINE"
	fi
	case $mode in
	splice)
		if [ "$S_SPLICED" -ge $((15 * 1024 * 1024)) ]; then
			pass "$n: a large transfer is spliced ($S_SPLICED bytes about)"
		else
			fail "$n: a large transfer is spliced" "$S_LINE"
		fi ;;
	copy)
		if [ "$S_SPLICED" = 0 ] && [ "$S_COPIED" -ge $((15 * 1024 * 1024)) ]; then
			pass "$n: nothing spliced with --copy"
		else
			fail "$n: nothing spliced with --copy" "$S_LINE"
		fi ;;
	esac
	if [[ $S_LINE == *"connections 0 active, 1 accepted, 0 failed to connect"* ]]; then
		pass "$n: connections counted"
	else
		fail "$n: connections counted" "$S_LINE"
	fi
	before=$(stats_count)
	relay_stop "$n"
	if [ "$mode" != nostats ]; then
		if [ "$(stats_count)" -gt "$before" ]; then
			pass "$n: --stats prints the line at exit"
		else
			fail "$n: --stats prints the line at exit" "$(tail -n 2 "$RELAY_ERR")"
		fi
	elif [ "$(stats_count)" = "$before" ]; then
		pass "$n: no stats at exit without --stats"
	else
		fail "$n: no stats at exit without --stats" "$(tail -n 2 "$RELAY_ERR")"
	fi
	peer_stop
}

stats_test "relay --stats" splice --stats
stats_test "relay --stats --copy" copy --stats --copy
stats_test "relay without --stats" nostats

# ---- stopping ------------------------------------------------------------

# slow_client NAME ARGS...: a download in the background, in $RL_DIR/NAME.
slow_client() {
	local name=$1
	shift
	"$RL_PEER" client "$RELAY_ADDR" "$@" > "$RL_DIR/$name.out" 2>&1 &
	SLOW_PID=$!
	at_exit "kill -9 $SLOW_PID"
}

# relay_gone NAME SECONDS: the relay exits 0 within SECONDS; sets GONE_MS,
# when it exited (after $T_SIG).
relay_gone() {
	local rc=0
	wait_bg "$RELAY_PID" "$2" || rc=$?
	GONE_MS=$(($(now_ms) - T_SIG))
	if [ "$rc" = 0 ]; then
		pass "$1: relay exits 0 (after $GONE_MS ms)"
	else
		fail "$1: relay exits 0" "status $rc after $GONE_MS ms: $(tail -n 3 "$RELAY_ERR")"
	fi
}

# graceful NAME KIND SIGNAL [relay options]
graceful() {
	local n=$1 kind=$2 sig=$3 rc=0 done_ms
	shift 3
	peer_start 127.0.0.1:0 || return
	relay_start "$kind" "$PEER_ADDR" --grace 8 "$@" || { peer_stop; return; }
	rl_dir
	# About 2 s at 3 MB/s.
	slow_client slow --op source --down 6M --read-rate 3M --timeout 20
	sleep 0.5
	T_SIG=$(now_ms)
	kill "-$sig" "$RELAY_PID"
	if wait_for 2 grep -q 'stopping: no new connections; 1 active' "$RELAY_ERR"; then
		pass "$n: SIG$sig: stops with 1 connection active"
	else
		fail "$n: SIG$sig: stops with 1 connection active" "$(tail -n 2 "$RELAY_ERR")"
	fi
	# The log line comes just before the workers are woken.
	sleep 0.2
	rl_client "$n: a new client is refused at once" --op source --down 1 --expect refused \
		--timeout 2
	wait "$SLOW_PID" || rc=$?
	done_ms=$(($(now_ms) - T_SIG))
	if [ "$rc" = 0 ]; then
		pass "$n: the transfer in flight finishes whole ($done_ms ms after the signal)"
	else
		fail "$n: the transfer in flight finishes whole" "$(cat "$RL_DIR/slow.out")"
	fi
	relay_gone "$n" 10
	if [ "$GONE_MS" -lt $((done_ms + 1000)) ]; then
		pass "$n: and exits as soon as it is done"
	else
		fail "$n: and exits as soon as it is done" "transfer done at $done_ms ms, exit at $GONE_MS ms"
	fi
	peer_all_ok "$n: the server sent it whole" 1
	peer_stop
}

graceful "relay tcp4" tcp4 INT
graceful "relay tcp4 --workers 1" tcp4 INT --workers 1
graceful "relay unix" unix INT
graceful "relay unix --workers 1, SIGTERM" unix TERM --workers 1

# past_grace NAME [relay options]: a transfer longer than the grace period.
past_grace() {
	local n=$1 rc=0 ms
	shift
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" "$@" || { peer_stop; return; }
	rl_dir
	# About 30 s at 2 MB/s: longer than any grace below.
	slow_client slow --op source --down 60M --read-rate 2M --timeout 40
	sleep 0.5
	T_SIG=$(now_ms)
	kill -INT "$RELAY_PID"
}

n="relay --grace 1"
past_grace "$n" --grace 1
relay_gone "$n" 6
if [ "$GONE_MS" -ge 900 ] && [ "$GONE_MS" -le 2500 ]; then
	pass "$n: ends the transfer when the grace period is over"
else
	fail "$n: ends the transfer when the grace period is over" "exited $GONE_MS ms after SIGINT"
fi
if wait_bg "$SLOW_PID" 3; then
	fail "$n: the client sees its transfer cut" "it completed: $(cat "$RL_DIR/slow.out")"
elif grep -q 'stream ended after' "$RL_DIR/slow.out"; then
	pass "$n: the client sees its transfer cut"
else
	fail "$n: the client sees its transfer cut" "$(cat "$RL_DIR/slow.out")"
fi
peer_stop

n="relay --grace 30, second SIGINT"
past_grace "$n" --grace 30
sleep 0.3
T_SIG=$(now_ms)
kill -INT "$RELAY_PID"
relay_gone "$n" 5
if [ "$GONE_MS" -le 1000 ]; then
	pass "$n: a second signal ends it at once"
else
	fail "$n: a second signal ends it at once" "exited $GONE_MS ms after"
fi
wait_bg "$SLOW_PID" 3
peer_stop

done_testing
