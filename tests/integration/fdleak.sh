#!/usr/bin/env bash
# fdleak.sh - 10,000 copies leak no file descriptor and no pipe: not on
# success, not when pooled pipes are reused, not when dirty pipes are
# thrown away after errors, and not across 10,000 operands of `zcio cat`.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"

need_helpers || done_testing

N=10000
SMALL=$T_TMP/small
ERR=$T_TMP/err
"$ZGEN" 20k 3 > "$SMALL" # above the copy threshold: zero-copy paths
SMALL_SIZE=$(size_of "$SMALL")

# repeat NAME CMD: run CMD (a zcopy --repeat $N ...), then check that the
# fd count after the last copy is not above the one after the first, and
# that at most a pool's worth of pipes is left.
repeat() {
	local rc=0 fds before first last live
	timeout -k 5 120 bash -c "$2" 2> "$ERR" || rc=$?
	fds=$(sed -n 's/^zcopy: fds: //p' "$ERR")
	read -r before first last <<< "$fds"
	live=$(sed -n 's/^zcopy: pool: live \([0-9]*\).*/\1/p' "$ERR")
	if [ -z "$last" ]; then
		fail "$1" "status $rc, no fd report: $(head -c 300 "$ERR")"
		return 1
	fi
	echo "# $1: fds $before before, $first after one copy, $last after $N; $live pipes live"
	if [ "$last" -le "$first" ] && [ "$last" -le $((before + 2 * 8)) ]; then
		pass "$1: no fd leak"
	else
		fail "$1: no fd leak" "fds $before before, $first after one copy, $last after $N"
	fi
	if [ "${live:-99}" -le 8 ]; then
		pass "$1: pipes bounded"
	else
		fail "$1: pipes bounded" "$live pipes live"
	fi
	return "$rc"
}

n="zcopy x$N file -> pipe (splice)"
if repeat "$n" "$ZCOPY --repeat $N $SMALL - | cat > /dev/null"; then
	expect_bytes "$n: total" "$ERR" total $((N * SMALL_SIZE))
else
	fail "$n: exit 0" "$(grep -v stats "$ERR" | head -c 300)"
fi

n="zcopy x$N header+file -> unix socket (pooled pipe reused)"
if repeat "$n" "$ZSOCK out unix -- $ZCOPY --repeat $N --header HDR $SMALL - > /dev/null"; then
	expect_bytes "$n: total" "$ERR" total $((N * (SMALL_SIZE + 3)))
	expect_bytes "$n: by splice-pipe" "$ERR" splice-pipe $((N * SMALL_SIZE))
	created=$(sed -n 's/^zcopy: pool: .* created \([0-9]*\).*/\1/p' "$ERR")
	if [ "${created:-0}" -ge 1 ] && [ "$created" -le 2 ]; then
		pass "$n: one pipe, reused"
	else
		fail "$n: one pipe, reused" "$(grep pool: "$ERR")"
	fi
else
	fail "$n: exit 0" "$(grep -v stats "$ERR" | head -c 300)"
fi

# The socket's reader leaves at once: each send_file fails with bytes in
# its pipe, and each dirty pipe must be closed, never pooled.
n="zcopy x$N header+file -> closed socket (dirty pipes dropped)"
repeat "$n" "$ZSOCK out unix -- $ZCOPY --repeat $N --keep-going --header HDR $SMALL - | true"
errors=$(sed -n 's/^zcopy: errors: //p' "$ERR")
if [ "${errors:-0}" -ge $((N - 100)) ]; then
	pass "$n: every copy failed with EPIPE"
else
	fail "$n: every copy failed with EPIPE" "$errors errors: $(grep result "$ERR")"
fi

# zcio cat with N operands: the process is gone when cat ends, so the
# last operand is a FIFO nobody writes yet: cat blocks opening it, after
# N copies, and its fds can be counted then.  The same FIFO as the first
# operand gives the count before any copy.
if need_cli; then
	FIFO=$T_TMP/fifo
	mkfifo "$FIFO"
	# fds_at_fifo OPERANDS...: fd count of zcio cat while it waits on the
	# FIFO; then let it finish.
	fds_at_fifo() {
		local pid t count=""
		"$ZCIO" cat --stats "$@" > /dev/null 2> "$ERR" &
		pid=$!
		at_exit "kill $pid"
		for t in $(seq 600); do
			# Blocked in open() of the FIFO, waiting for a writer.
			if grep -qE 'wait_for_partner|fifo' "/proc/$pid/wchan" 2>/dev/null; then
				count=$(open_fds "$pid")
				break
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		: > "$FIFO" # open and close: the FIFO reads as empty
		wait_bg "$pid" 30
		echo "$count"
	}
	args=()
	for _ in $(seq $N); do args+=("$SMALL"); done
	b=$(fds_at_fifo "$FIFO" "$SMALL")
	a=$(fds_at_fifo "${args[@]}" "$FIFO")
	n="cat with $N operands"
	echo "# $n: $b fds before the first copy, $a after $N"
	if [ -z "$a" ] || [ -z "$b" ]; then
		skip "$n: no fd leak" "cannot see zcio waiting on the FIFO in /proc/PID/wchan"
	elif [ "$a" -le "$b" ]; then
		pass "$n: no fd leak"
	else
		fail "$n: no fd leak" "'$b' fds before, '$a' after $N copies"
	fi
	expect_bytes "$n: total" "$ERR" total $((N * SMALL_SIZE))
fi

done_testing
