#!/usr/bin/env bash
# broadcast_clients.sh - `zcio broadcast`: 1,000 clients on loopback, each
# with every byte of the stream (checksummed against the source by
# fo_clients); --copy, and tee() failing under fault injection, just as
# exact; --max-clients refusing with a log line; no fd or pipe left behind
# by clients that come and go.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/fo_lib.sh"

need_helpers || done_testing
need_fo_helpers || done_testing
need_cli || done_testing

SIZE=8388617 # 8 MiB and a few bytes
SRC=$T_TMP/src
LOG=$T_TMP/log
REP=$T_TMP/report
"$ZGEN" "$SIZE" 31 > "$SRC"

# clients NAME N [BROADCAST OPTION]...: N clients connect, the stream
# starts once all have joined, and each must receive all of it.
clients() {
	local name=$1 n=$2 fc rc
	shift 2
	if ! bc_start "$LOG" -v --policy block --stats "$@"; then
		fail "$name: listening" "$(head -c 300 "$LOG")"
		return 1
	fi
	"$FO_CLIENTS" -n "$n" -x "$SRC" -R "$REP" "127.0.0.1:$BC_PORT" > "$T_TMP/fc.out" 7>&- &
	fc=$!
	if ! bc_wait_joins "$LOG" "$n"; then
		fail "$name: $n joined" "$(grep -c "joined at" "$LOG") joined"
		bc_end
		return 1
	fi
	cat "$SRC" >&7
	bc_end
	wait_bg "$fc" 90
	rc=$?
	if [ "$rc" = 0 ] && [ "$(grep -c ' 0 '"$SIZE"' ok$' "$REP")" = "$n" ]; then
		pass "$name: $n clients, each with every byte ($(cat "$T_TMP/fc.out"))"
	else
		fail "$name: $n clients, each with every byte" \
			"fo_clients $rc: $(cat "$T_TMP/fc.out"); $(grep -v ' ok$' "$REP" | head -3)"
	fi
	wait_bg "$BC_PID" 30
	rc=$?
	if [ "$rc" = 0 ] && grep -q "stats: clients 0 connected, $n joined" "$LOG"; then
		pass "$name: broadcast ended cleanly"
	else
		fail "$name: broadcast ended cleanly" "status $rc: $(grep -v "joined\|left\|ended" "$LOG" | head -c 400)"
	fi
}

clients "block" 1000
if grep -q "tee [1-9][0-9]*, splice" "$LOG"; then
	pass "block: by tee()"
else
	fail "block: by tee()" "$(grep stats "$LOG")"
fi

clients "--copy" 100 --copy
if grep -q "tee 0, splice 0, copy $((SIZE * 100))" "$LOG"; then
	pass "--copy: all copied"
else
	fail "--copy: all copied" "$(grep stats "$LOG")"
fi

if need_inject "tee EINVAL under strace"; then
	# strace runs zcio broadcast: its pid is strace's, which is fine.
	ZCIO_REAL=$ZCIO
	ZCIO=$T_TMP/zcio-injected
	printf '#!/bin/sh\nexec strace -f -qq -o /dev/null -e trace=tee -e inject=tee:error=EINVAL:when=4+ %s "$@"\n' \
		"$ZCIO_REAL" > "$ZCIO"
	chmod +x "$ZCIO"
	clients "tee EINVAL from the 4th call" 50
	ZCIO=$ZCIO_REAL
	expect_fallback "tee EINVAL from the 4th call: reason" "$LOG" \
		'^tee -> copy: refused for these fds \(Invalid argument\) at byte [1-9]'
	load_stats "$LOG"
	if [ "${STATS[tee]:-0}" -gt 0 ] && [ "${STATS[copy]:-0}" -gt 0 ]; then
		pass "tee EINVAL from the 4th call: tee() first, then copies"
	else
		fail "tee EINVAL from the 4th call: tee() first, then copies" "[$STATS_LINES]"
	fi
fi

# ---- --max-clients ---------------------------------------------------------------
if bc_start "$LOG" -v --max-clients 3 --policy block; then
	"$FO_CLIENTS" -n 5 -x "$SRC" -R "$REP" "127.0.0.1:$BC_PORT" > "$T_TMP/fc.out" 7>&- &
	fc=$!
	for i in $(seq 100); do
		[ "$(grep -c "refused" "$LOG")" -ge 2 ] && break
		sleep 0.05
	done
	bc_wait_joins "$LOG" 3
	cat "$SRC" >&7
	bc_end
	wait_bg "$fc" 30
	wait_bg "$BC_PID" 30
	if [ "$(grep -c "refused: 3 clients already (--max-clients)" "$LOG")" = 2 ]; then
		pass "--max-clients 3: two of five refused, with a log line each"
	else
		fail "--max-clients 3: two of five refused" "$(head -c 400 "$LOG")"
	fi
	if [ "$(grep -c ' 0 '"$SIZE"' ok$' "$REP")" = 3 ] && [ "$(grep -c ' 0 0 ok$' "$REP")" = 2 ]; then
		pass "--max-clients 3: the three others got everything"
	else
		fail "--max-clients 3: the three others got everything" "$(cat "$REP")"
	fi
else
	fail "--max-clients: listening" "$(head -c 300 "$LOG")"
fi

# ---- clients come and go: nothing left open ---------------------------------------
if bc_start "$LOG" --policy drop --stats; then
	head -c 1048576 "$SRC" >&7
	sleep 0.3
	base=$(open_fds_of "$BC_PID")
	for round in 1 2 3; do
		"$FO_CLIENTS" -n 200 "127.0.0.1:$BC_PORT" > /dev/null 7>&- &
		fc=$!
		sleep 0.5
		head -c 1048576 "$SRC" >&7
		sleep 0.3
		kill "$fc"
		wait "$fc" 2>/dev/null
		# Writing to the departed clients is how the broadcast learns
		# they are gone.
		head -c 1048576 "$SRC" >&7
		sleep 0.3
	done
	head -c 1048576 "$SRC" >&7
	sleep 0.5
	now=$(open_fds_of "$BC_PID")
	kill -USR1 "$BC_PID"
	sleep 0.3
	# At most the pool's 8 idle pipes (16 fds) more than with no client.
	if [ "$now" -le $((base + 16)) ]; then
		pass "600 clients came and went: $now fds open, $base before"
	else
		fail "600 clients came and went: fds" "$now open, $base before"
	fi
	if grep -q "stats: clients 0 connected, 600 joined" "$LOG"; then
		pass "600 clients came and went: all gone"
	else
		fail "600 clients came and went: all gone" "$(grep stats "$LOG" | tail -1)"
	fi
	bc_end
	wait_bg "$BC_PID" 10
else
	fail "fd leak: listening" "$(head -c 300 "$LOG")"
fi

done_testing
