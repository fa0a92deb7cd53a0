#!/usr/bin/env bash
# broadcast_slow.sh - `zcio broadcast` with clients that do not keep up and
# clients that join late.
#
#  - drop: two clients that never read are disconnected, each with a log
#    line, within a pipe's worth; the others get every byte at the pace
#    of the input.
#  - block: everyone waits for a client that does not read, the broadcast
#    spends no CPU waiting, and says who holds the stream back; once that
#    client goes, the others get everything.
#  - late joiners receive exactly the bytes after their join point, the
#    offset the broadcast logged for them.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/fo_lib.sh"

need_helpers || done_testing
need_fo_helpers || done_testing
need_cli || done_testing
need pv "slow clients (pv paces the input)" || done_testing

SIZE=16777259 # 16 MiB and a few bytes
SRC=$T_TMP/src
LOG=$T_TMP/log
REP=$T_TMP/report
"$ZGEN" "$SIZE" 41 > "$SRC"

# ---- drop --------------------------------------------------------------------------
# 20 clients, the first two never read; the input comes at 8 MB/s, a live
# stream the 18 others keep up with.
if bc_start "$LOG" -v --policy drop --drop-after 1 --stats; then
	"$FO_CLIENTS" -n 20 -S 2 -x "$SRC" -R "$REP" "127.0.0.1:$BC_PORT" > "$T_TMP/fc.out" 7>&- &
	fc=$!
	bc_wait_joins "$LOG" 20
	t0=$(now_ms)
	pv -q -L 8m < "$SRC" >&7
	bc_end
	t1=$(now_ms)
	wait_bg "$fc" 60
	rc=$?
	t2=$(now_ms)
	wait_bg "$BC_PID" 20
	if [ "$rc" = 0 ] && [ "$(grep -c ' 0 '"$SIZE"' ok$' "$REP")" = 18 ]; then
		pass "drop: the 18 readers got every byte ($(cat "$T_TMP/fc.out"))"
	else
		fail "drop: the 18 readers got every byte" "$rc: $(cat "$T_TMP/fc.out"); $(grep -v ' ok$' "$REP" | head -4)"
	fi
	# 16 MiB at 8 MB/s: about 2.1 s of input.  Held back by the stalled
	# two, the readers would never finish; keeping pace, they finish as
	# the input ends (5 s of slack for a loaded machine).
	if [ $((t2 - t1)) -lt 5000 ]; then
		pass "drop: at the input's pace (input $((t1 - t0)) ms, readers done $((t2 - t1)) ms later)"
	else
		fail "drop: at the input's pace" "input $((t1 - t0)) ms, readers done $((t2 - t1)) ms later"
	fi
	drops=$(grep -c "dropped: could not keep up" "$LOG")
	if [ "$drops" = 2 ] && grep -q "2 dropped" "$LOG"; then
		pass "drop: the two stalled clients dropped, a log line each"
	else
		fail "drop: the two stalled clients dropped" "$drops lines: $(grep -v "joined\|left\|ended" "$LOG" | head -c 500)"
	fi
	# Dropped within a pipe's worth: what they were given is their socket
	# buffer, their 1 MiB pipe, and at most the 1 MiB intake behind that.
	ok=1
	while read -r line; do
		after=${line##*after }
		after=${after%% bytes*}
		[ "$after" -le $((16 * 1048576)) ] || ok=0
		case $line in *"(1.00 MiB behind)"* | *"KiB behind)"*) ;; *) ok=0 ;; esac
	done < <(grep "dropped: could not keep up" "$LOG")
	if [ "$ok" = 1 ]; then
		pass "drop: removed at most the intake's 1 MiB behind"
	else
		fail "drop: removed at most the intake's 1 MiB behind" "$(grep dropped "$LOG")"
	fi
else
	fail "drop: listening" "$(head -c 300 "$LOG")"
fi

# ---- block ----------------------------------------------------------------------------
# A client connects and reads nothing; five others read.  Everyone waits,
# without spinning; after 5 s the broadcast names the client holding the
# stream back; once it leaves, the five get everything.
if bc_start "$LOG" -v --policy block --stats; then
	exec 6<> "/dev/tcp/127.0.0.1/$BC_PORT"
	bc_wait_joins "$LOG" 1
	stuck_port=$(grep -m1 "joined at byte" "$LOG" | sed 's/.*127\.0\.0\.1:\([0-9]*\): joined.*/\1/')
	"$FO_CLIENTS" -n 5 -x "$SRC" -R "$REP" "127.0.0.1:$BC_PORT" > "$T_TMP/fc.out" 7>&- 6>&- &
	fc=$!
	bc_wait_joins "$LOG" 6
	cat "$SRC" >&7 6>&- &
	feeder=$!
	sleep 1
	c0=$(cpu_ms "$BC_PID")
	sleep 1.5
	c1=$(cpu_ms "$BC_PID")
	if [ -n "$c0" ] && [ -n "$c1" ] && [ $((c1 - c0)) -le 40 ]; then
		pass "block: everyone waits, no CPU spent ($((c1 - c0)) ms in 1.5 s)"
	else
		fail "block: everyone waits, no CPU spent" "${c0:-?} -> ${c1:-?} ms"
	fi
	kill -USR1 "$BC_PID"
	sleep 0.2
	in=$(grep "stats:" "$LOG" | tail -1 | sed 's/.*(\([0-9]*\) bytes); out.*/\1/')
	# The socket buffer, its pipe and the intake: a few MiB, not 16.
	if [ -n "$in" ] && [ "$in" -lt $((8 * 1048576)) ]; then
		pass "block: the stream is held back ($in bytes taken)"
	else
		fail "block: the stream is held back" "$(grep stats: "$LOG" | tail -1)"
	fi
	for i in $(seq 60); do
		grep -q "holding the stream back" "$LOG" && break
		sleep 0.1
	done
	if grep -q "1 slow client holding the stream back for 5 s: 127.0.0.1:$stuck_port" "$LOG"; then
		pass "block: a log line names the slow client"
	else
		fail "block: a log line names the slow client" "$(grep -v "joined" "$LOG" | head -c 400)"
	fi
	exec 6>&- # it leaves, with unread bytes: a reset
	wait_bg "$feeder" 30
	bc_end
	wait_bg "$fc" 30
	rc=$?
	if [ "$rc" = 0 ] && [ "$(grep -c ' 0 '"$SIZE"' ok$' "$REP")" = 5 ]; then
		pass "block: after it left, the five got every byte"
	else
		fail "block: after it left, the five got every byte" "$rc: $(cat "$T_TMP/fc.out")"
	fi
	wait_bg "$BC_PID" 20
else
	fail "block: listening" "$(head -c 300 "$LOG")"
fi

# ---- late joiners ----------------------------------------------------------------------
# The input comes at 6 MB/s; groups of clients join before it starts and
# at about 0.7 s and 1.4 s.  Each must receive exactly the bytes from the
# offset the broadcast logged when it joined to the end.
if bc_start "$LOG" -v --policy block; then
	"$FO_CLIENTS" -n 3 -x "$SRC" -R "$REP.0" "127.0.0.1:$BC_PORT" > /dev/null 7>&- &
	g0=$!
	bc_wait_joins "$LOG" 3
	pv -q -L 6m < "$SRC" >&7 &
	feeder=$!
	sleep 0.7
	"$FO_CLIENTS" -n 3 -x "$SRC" -R "$REP.1" "127.0.0.1:$BC_PORT" > /dev/null 7>&- &
	g1=$!
	sleep 0.7
	"$FO_CLIENTS" -n 3 -x "$SRC" -R "$REP.2" "127.0.0.1:$BC_PORT" > /dev/null 7>&- &
	g2=$!
	wait_bg "$feeder" 30
	bc_end
	for g in $g0 $g1 $g2; do wait_bg "$g" 30; done
	wait_bg "$BC_PID" 20
	# Ports and join offsets as the broadcast logged them.
	sed -n 's/.*127\.0\.0\.1:\([0-9]*\): joined at byte \([0-9]*\)$/\1 \2/p' "$LOG" | sort > "$T_TMP/joins"
	cat "$REP".0 "$REP".1 "$REP".2 | sort > "$T_TMP/got"
	bad="" late=0
	while read -r port off bytes status; do
		logged=$(awk -v p="$port" '$1 == p { print $2 }' "$T_TMP/joins")
		[ "$off" -gt 0 ] && late=$((late + 1))
		if [ "$status" != ok ] || [ "$off" != "$logged" ] || [ $((off + bytes)) != "$SIZE" ]; then
			bad+=" [$port: from $off ($logged logged), $bytes bytes, $status]"
		fi
	done < "$T_TMP/got"
	if [ "$(wc -l < "$T_TMP/got")" = 9 ] && [ -z "$bad" ]; then
		pass "late joiners: exactly the bytes after their join point (9 clients)"
	else
		fail "late joiners: exactly the bytes after their join point" "$(wc -l < "$T_TMP/got") reports:$bad"
	fi
	if [ "$late" -ge 6 ]; then
		pass "late joiners: $late joined mid-stream"
	else
		fail "late joiners: joined mid-stream" "only $late did: $(cat "$T_TMP/joins" | tr '\n' ' ')"
	fi
else
	fail "late joiners: listening" "$(head -c 300 "$LOG")"
fi

done_testing
