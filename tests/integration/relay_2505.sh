#!/usr/bin/env bash
# relay_2505.sh - a server that writes N bytes and closes at once: the
# client must get exactly those N bytes through zcio relay, every time.
# HAProxy lost the tail of about 1 in 50,000 such responses by passing the
# close on while bytes still sat in its pipe (issue #2505), so this runs
# 10,000 connections, 16 at a time, of sizes drawn log-uniformly from
# 1 byte to 8 MiB (the first two exactly 1 and 8 MiB), spliced and again
# with --copy.  The client keeps its own sending half open: the relay must
# pass the server's close on regardless.  Then the same with the client
# still sending when the server answers and closes (a reset).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/rl_lib.sh"

need_rl || done_testing

N=${RELAY_2505_COUNT:-10000}

# run NAME LISTEN TARGET SEED [relay options]
run() {
	local n=$1 l=$2 t=$3 seed=$4 start
	shift 4
	case $t in
	tcp4) peer_start 127.0.0.1:0 ;;
	unix) rl_dir; peer_start "unix:$RL_DIR/peer.sock" ;;
	esac || return
	relay_start "$l" "$PEER_ADDR" --stats "$@" || { peer_stop; return; }
	RL_UP=0 RL_DOWN=0
	start=$(now_ms)
	if rl_client "$n: $N servers closing right after N bytes, each got exactly N" \
		--op source --sizes 1:8M --count "$N" --conns 16 --seed "$seed" --timeout 150; then
		echo "# $n: $(client_field "$RL_OUT" down) bytes in $(($(now_ms) - start)) ms"
		grep '^rl_peer: client: sizes' "$RL_OUT" | sed 's/^rl_peer: client: /# /'
	fi
	if [ "$(client_field "$RL_OUT" ok)" = "$N" ]; then
		pass "$n: $N connections counted"
	else
		fail "$n: $N connections counted" "$(head -n 1 "$RL_OUT")"
	fi
	peer_all_ok "$n: the server wrote and closed $N times" "$N"
	relay_settled "$n"
	relay_stop "$n"
	# Every byte the server wrote went through the relay, and not one more.
	RELAY_COPY=0
	[[ " $* " == *" --copy "* ]] && RELAY_COPY=1
	relay_counted "$n"
	peer_stop
}

run "relay tcp4 -> tcp4" tcp4 tcp4 2505
run "relay tcp4 -> tcp4 --copy" tcp4 tcp4 2506 --copy

# ---- an early answer -----------------------------------------------------

# The server answers while the client is still sending and closes without
# reading (an HTTP 413): its close is a reset.  Once the answer has reached
# the relay's socket (the server waits for the acknowledgements), the relay
# must still deliver all of it before passing the reset on, as the kernel
# does for a direct connection.
E=${RELAY_EARLY_COUNT:-600}
EARLY=(--op early --up 1M --sizes 1:1M --count "$E" --conns 8 --timeout 60)

peer_start 127.0.0.1:0
if "$RL_PEER" client "$PEER_ADDR" "${EARLY[@]}" --seed 1 > "$T_TMP/direct.out" 2>&1; then
	pass "early answer, no relay: the client gets every byte ($E connections)"
else
	fail "early answer, no relay: the client gets every byte" "$(head -n 3 "$T_TMP/direct.out")"
fi
peer_stop

# early NAME TARGET [relay options]
early() {
	local n=$1 t=$2
	shift 2
	case $t in
	tcp4) peer_start 127.0.0.1:0 ;;
	unix) rl_dir; peer_start "unix:$RL_DIR/peer.sock" ;;
	esac || return
	relay_start tcp4 "$PEER_ADDR" "$@" || { peer_stop; return; }
	rl_client "$n: $E early answers, then resets: every byte arrives" "${EARLY[@]}" --seed 7
	peer_all_ok "$n: the server answered $E times" "$E"
	relay_settled "$n"
	relay_stop "$n"
	peer_stop
}

early "early answer, relay tcp4 -> tcp4" tcp4
early "early answer, relay tcp4 -> tcp4 --copy" tcp4 --copy
early "early answer, relay tcp4 -> unix" unix

done_testing
