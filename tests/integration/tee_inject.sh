#!/usr/bin/env bash
# tee_inject.sh - make the fan-out's syscalls fail with strace fault
# injection, from the first call and part-way through, and check that every
# output of `zcio tee` still gets every byte exactly once, in order, and
# that --stats names the fallback with its reason and errno.
#
# Every errno the fan-out treats as "unsupported" is injected: tee()
# ENOSYS, EPERM (everywhere, as seccomp does), EINVAL; splice() ENOSYS,
# EPERM, EINVAL, EOPNOTSUPP, ESPIPE; pipe2() EMFILE and ENFILE (no pipe);
# fcntl() EPERM (pipes that cannot be sized).  A real error (EIO) from the
# source ends the command with status 1 and a message.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/fo_lib.sh"

need_helpers || done_testing
need_fo_helpers || done_testing
need_cli || done_testing
need_inject "fault injection" || done_testing

SIZE=4194389 # 4 MiB and a few bytes
SRC=$T_TMP/src
ERR=$T_TMP/err
OUT=$T_TMP/stdout
"$ZGEN" "$SIZE" 21 > "$SRC"
SUM=$(csum "$SRC")

NOSYS='syscall not in this kernel \(Function not implemented\)'
FORBID='syscall forbidden \(seccomp\) \(Operation not permitted\)'
EINVAL='refused for these fds \(Invalid argument\)'

# run NAME SYSCALL ERRNO WHEN: the source through zcio tee (under
# injection) to stdout, a file, a FIFO and a unix server; RC, and the
# outputs in OUTS.
run() {
	local fifo=$T_TMP/fifo sock=$T_TMP/sock cat_pid
	rm -f "$fifo" "$OUT" "$T_TMP"/o.*
	mkfifo "$fifo"
	cat "$fifo" > "$T_TMP/o.fifo" &
	cat_pid=$!
	start_sink "unix:$sock" "$T_TMP/o.unix" || { fail "$1" "no sink"; return 1; }
	"$ZGEN" "$SIZE" 21 |
		timeout -k 5 60 strace -f -qq -o /dev/null -e trace="$2" \
			-e inject="$2:error=$3${4:+:when=$4}" \
			"$ZCIO" tee --stats "$T_TMP/o.file" "$fifo" "unix:$sock" 2> "$ERR" |
		cat > "$OUT"
	RC=${PIPESTATUS[1]}
	wait_bg "$cat_pid" 20
	wait_bg "$SINK_PID" 20
	OUTS=("$OUT" "$T_TMP/o.file" "$T_TMP/o.fifo" "$T_TMP/o.unix")
}

# exact NAME: status 0, every output holds the source, 4 x SIZE delivered.
exact() {
	local o bad=""
	for o in "${OUTS[@]}"; do
		[ "$(csum "$o")" = "$SUM" ] || bad+=" ${o##*/}($(size_of "$o"))"
	done
	if [ "$RC" = 0 ] && [ -z "$bad" ]; then
		pass "$1: every output exact"
	else
		fail "$1: every output exact" "status $RC, wrong:$bad; $(grep -v stats "$ERR" | head -c 300)"
	fi
	expect_bytes "$1: total" "$ERR" total $((SIZE * 4))
}

# moved NAME PATH CMP N: --stats says PATH moved (-eq, -gt...) N bytes.
moved() {
	load_stats "$ERR"
	if [ "${STATS[$2]:-0}" "$3" "$4" ]; then
		pass "$1: $2 $3 $4"
	else
		fail "$1: $2 $3 $4" "[$STATS_LINES]"
	fi
}

# ---- tee() --------------------------------------------------------------------
n="tee EINVAL"
run "$n" tee EINVAL ""
exact "$n"
moved "$n" tee -eq 0
expect_fallback "$n: reason" "$ERR" "^tee -> copy: $EINVAL"

n="tee ENOSYS"
run "$n" tee ENOSYS ""
exact "$n"
moved "$n" tee -eq 0
expect_fallback "$n: reason" "$ERR" "^tee -> copy: $NOSYS"

# EPERM everywhere, the probe with fd -1 included: a seccomp filter.
n="tee EPERM (seccomp-like)"
run "$n" tee EPERM ""
exact "$n"
moved "$n" tee -eq 0
expect_fallback "$n: reason" "$ERR" "^tee -> copy: $FORBID"

# Part-way: the bytes before the failure went by tee(), the rest by copy,
# from exactly where tee() stopped.
n="tee EINVAL from the 7th call"
run "$n" tee EINVAL 7+
exact "$n"
moved "$n" tee -gt 0
moved "$n" copy -gt 0
expect_fallback "$n: reason" "$ERR" "^tee -> copy: $EINVAL at byte [1-9]"

n="tee ENOSYS from the 5th call"
run "$n" tee ENOSYS 5+
exact "$n"
moved "$n" tee -gt 0
expect_fallback "$n: reason" "$ERR" "^tee -> copy: $NOSYS at byte [1-9]"

# ---- splice() -------------------------------------------------------------------
n="splice EINVAL"
run "$n" splice EINVAL ""
exact "$n"
moved "$n" copy -eq $((SIZE * 4))
expect_fallback "$n: reason" "$ERR" "^splice-pipe -> copy: $EINVAL at byte 0"

n="splice ENOSYS"
run "$n" splice ENOSYS ""
exact "$n"
moved "$n" copy -eq $((SIZE * 4))
expect_fallback "$n: reason" "$ERR" "^splice-pipe -> copy: $NOSYS at byte 0"

n="splice EPERM (seccomp-like)"
run "$n" splice EPERM ""
exact "$n"
moved "$n" copy -eq $((SIZE * 4))
expect_fallback "$n: reason" "$ERR" "^splice-pipe -> copy: $FORBID"

n="splice EOPNOTSUPP"
run "$n" splice EOPNOTSUPP ""
exact "$n"
expect_fallback "$n: reason" "$ERR" '^splice-pipe -> copy: refused for these fds \(Operation not supported\)'

n="splice ESPIPE"
run "$n" splice ESPIPE ""
exact "$n"
expect_fallback "$n: reason" "$ERR" '^splice-pipe -> copy: refused for these fds \(Illegal seek\)'

# Part-way, at calls that land on the intake, on a destination's own pipe
# and on the last consumer: whichever it hits, nothing is lost or doubled.
for when in 3 6 9 12+; do
	n="splice EINVAL at call $when"
	run "$n" splice EINVAL "$when"
	exact "$n"
	load_stats "$ERR"
	if [ -n "$STATS_FALLBACKS" ]; then
		pass "$n: a fallback recorded"
	else
		fail "$n: a fallback recorded" "[$STATS_LINES]"
	fi
done

# ---- no pipe ------------------------------------------------------------------------
n="pipe2 EMFILE"
run "$n" pipe2 EMFILE ""
exact "$n"
moved "$n" copy -eq $((SIZE * 4))
expect_fallback "$n: reason" "$ERR" '^splice-pipe -> copy: no pipe available \(Too many open files\) at byte 0'

# The intake gets its pipe, the first destination that needs one does not.
n="pipe2 ENFILE from the 2nd call"
run "$n" pipe2 ENFILE 2+
exact "$n"
expect_fallback "$n: reason" "$ERR" '^tee -> copy: no pipe available \(Too many open files in system\)'

# F_SETPIPE_SZ (and F_GETFL) refused: pipes stay at 64 KiB, or are refused
# as clamped; either way every byte arrives.
n="fcntl EPERM"
run "$n" fcntl EPERM ""
exact "$n"

# ---- a real error ----------------------------------------------------------------------
# The first splice is the source's: it fails, zcio tee says so and exits 1.
n="splice EIO from the source"
run "$n" splice EIO 1
if [ "$RC" = 1 ] && grep -q "zcio: tee: standard input: Input/output error" "$ERR"; then
	pass "$n: status 1 and message"
else
	fail "$n: status 1 and message" "status $RC: $(head -c 300 "$ERR")"
fi

done_testing
