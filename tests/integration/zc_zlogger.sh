#!/usr/bin/env bash
# zc_zlogger.sh - examples/zlogger, the zero-copy logger on a zcio ring, to
# each kind of output, compared byte for byte with the lines it should
# write; and which path moved them (--stats).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"

ZLOGGER=$ROOT/build/examples/zlogger
if [ ! -x "$ZLOGGER" ]; then
	fail "zlogger built" "$ZLOGGER missing (make examples)"
	done_testing
fi
# Built-in thresholds, whatever this machine's calibration says.
export ZCIO_THRESHOLDS=

N=300000
awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) printf "seq=%08d level=info msg=the quick brown fox jumps over the lazy dog\n", i }' >"$T_TMP/want"
size=$(stat -c %s "$T_TMP/want")

# stat_of ERRFILE PATH: bytes a plain "PATH: N bytes" stats line reports.
stat_of() { sed -n "s/^$2: \([0-9]*\) bytes$/\1/p" "$1"; }

# A pipe read with read() (cat of coreutils 9.1): -z, vmsplice() of the
# ring's pages.
timeout 60 "$ZLOGGER" -z -s -n $N - 2>"$T_TMP/pipe.err" | cat >"$T_TMP/pipe.out"
same_bytes "zlogger -z to a pipe" "$T_TMP/want" "$T_TMP/pipe.out"
vm=$(stat_of "$T_TMP/pipe.err" vmsplice)
if [ "${vm:-0}" -gt $((size / 2)) ]; then
	pass "zlogger -z to a pipe: $vm of $size bytes by vmsplice"
else
	fail "zlogger -z to a pipe: mostly by vmsplice" "$(tr '\n' ' ' <"$T_TMP/pipe.err")"
fi

if have pv; then
	# A slow reader that read()s (pv -C): the ring must wait, never
	# overwrite what the pipe holds.
	timeout 60 "$ZLOGGER" -z -n $N - 2>/dev/null | pv -q -C -L 8m | cat >"$T_TMP/slow.out"
	same_bytes "zlogger -z to a slow reader (pv -C, 8 MB/s)" "$T_TMP/want" "$T_TMP/slow.out"
	# A slow reader that splices the pages on (pv): without -z the ring
	# writes copies, which nothing can change afterwards.
	timeout 60 "$ZLOGGER" -s -n $N - 2>"$T_TMP/splice.err" | pv -q -L 8m | cat >"$T_TMP/slow.out"
	same_bytes "zlogger to a slow splicing reader (pv, 8 MB/s)" "$T_TMP/want" "$T_TMP/slow.out"
	if [ "$(stat_of "$T_TMP/splice.err" copy)" = "$size" ]; then
		pass "zlogger without -z: a pipe gets copies"
	else
		fail "zlogger without -z: a pipe gets copies" "$(tr '\n' ' ' <"$T_TMP/splice.err")"
	fi
else
	skip "zlogger to slow pipe readers" "pv not installed"
fi

# A file: written (the built-in memory_file threshold is "never").
timeout 60 "$ZLOGGER" -s -n $N "$T_TMP/file.out" 2>"$T_TMP/file.err"
same_bytes "zlogger to a file" "$T_TMP/want" "$T_TMP/file.out"
if [ "$(stat_of "$T_TMP/file.err" copy)" = "$size" ]; then
	pass "zlogger to a file: write(), since splicing into a file copies anyway"
else
	fail "zlogger to a file: write()" "$(tr '\n' ' ' <"$T_TMP/file.err")"
fi
# Appending: O_APPEND files are written too.
timeout 60 "$ZLOGGER" -a -n $N "$T_TMP/file.out" 2>/dev/null
cat "$T_TMP/want" "$T_TMP/want" >"$T_TMP/want2"
same_bytes "zlogger -a appends" "$T_TMP/want2" "$T_TMP/file.out"

# A TCP socket: MSG_ZEROCOPY until the kernel says it copies, then send().
if [ -x "$ZSOCK" ]; then
	timeout 60 "$ZSOCK" out tcp -- "$ZLOGGER" -s -n $N - >"$T_TMP/tcp.out" 2>"$T_TMP/tcp.err"
	same_bytes "zlogger to a TCP socket" "$T_TMP/want" "$T_TMP/tcp.out"
	if [ "$(stat_of "$T_TMP/tcp.err" total)" = "$size" ] &&
		grep -q "fallback: msg-zerocopy -> copy" "$T_TMP/tcp.err"; then
		pass "zlogger to TCP over loopback: zero-copy turned off by the kernel's COPIED completions"
	else
		fail "zlogger to TCP: stats" "$(tr '\n' ' ' <"$T_TMP/tcp.err")"
	fi
else
	fail "zsock built" "$ZSOCK missing (make helpers)"
fi

# Standard input, with pauses: lines are handed over when input pauses,
# not held back until the end.
{
	printf 'first line\nsecond line\n'
	sleep 0.5
	printf 'third line\n'
} | timeout 30 "$ZLOGGER" - >"$T_TMP/stdin.out" &
zl=$!
sleep 0.3
early=$(wc -l <"$T_TMP/stdin.out")
wait $zl
if [ "$early" = 2 ]; then
	pass "zlogger: lines go out when input pauses ($early of 3 before the pause ended)"
else
	fail "zlogger: lines go out when input pauses" "$early lines before the pause ended"
fi
if [ "$(cut -d' ' -f3- "$T_TMP/stdin.out" | tr '\n' '|')" = "first line|second line|third line|" ] &&
	[ "$(cut -d' ' -f1 "$T_TMP/stdin.out" | tr '\n' ' ')" = "00000000 00000001 00000002 " ]; then
	pass "zlogger: stdin lines numbered and stamped"
else
	fail "zlogger: stdin lines numbered and stamped" "$(tr '\n' '|' <"$T_TMP/stdin.out")"
fi

# A reader that goes away: an error, not a death by SIGPIPE.
timeout 30 "$ZLOGGER" -n 10000000 - 2>"$T_TMP/epipe.err" | head -c 1000 >/dev/null
rc=${PIPESTATUS[0]}
if [ "$rc" = 1 ] && grep -q "Broken pipe" "$T_TMP/epipe.err"; then
	pass "zlogger: a reader that goes away is EPIPE (exit 1), not SIGPIPE"
else
	fail "zlogger: reader gone" "exit $rc: $(tr '\n' ' ' <"$T_TMP/epipe.err")"
fi

done_testing
