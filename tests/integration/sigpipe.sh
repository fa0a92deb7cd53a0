#!/usr/bin/env bash
# sigpipe.sh - the reader leaves early.  `zcio cat` must stop at once and
# die of SIGPIPE, silently, like cat(1) (status 141 in the shell), however
# big the input; the library itself must never die of it (zcopy gets
# -EPIPE and says so).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"

need_helpers || done_testing

BIG=$T_TMP/big
ERR=$T_TMP/err
"$ZGEN" --sparse "$BIG" 5G > /dev/null
"$ZGEN" 4M 4 > "$T_TMP/small"
# Give back the page cache the reads below fill.
at_exit "dd if=$BIG iflag=nocache count=0 status=none"

# early NAME MAX_MS CMD: run the pipeline CMD (ending in `head -c 100`);
# sets RCS to its PIPESTATUS and MS to how long it took.
early() {
	local t0 t1 out
	t0=$(now_ms)
	out=$(timeout -k 5 30 bash -c "$3; echo \"\${PIPESTATUS[*]}\" >&3" 3> "$T_TMP/rcs" 2> "$ERR" | wc -c)
	t1=$(now_ms)
	MS=$((t1 - t0))
	RCS=$(cat "$T_TMP/rcs")
	if [ "$out" = 100 ]; then
		pass "$1: reader got its 100 bytes"
	else
		fail "$1: reader got its 100 bytes" "got $out"
	fi
	if [ "$MS" -lt "$2" ]; then
		pass "$1: prompt"
	else
		fail "$1: prompt" "took $MS ms (limit $2 ms)"
	fi
}

# status NAME WANT: the first command of the pipeline exited with WANT.
status() {
	local first=${RCS%% *}
	if [ "$first" = "$2" ]; then
		pass "$1: status $2"
	else
		fail "$1: status $2" "statuses '$RCS', stderr: $(head -c 300 "$ERR")"
	fi
}

quiet() {
	if [ -s "$ERR" ]; then
		fail "$1: quiet" "stderr: $(head -c 300 "$ERR")"
	else
		pass "$1: quiet"
	fi
}

if need_cli; then
	n="cat 5 GiB file | head -c 100"
	early "$n" 1000 "$ZCIO cat $BIG | head -c 100"
	status "$n" 141
	quiet "$n"

	n="cat --copy 5 GiB file | head -c 100"
	early "$n" 1000 "$ZCIO cat --copy $BIG | head -c 100"
	status "$n" 141
	quiet "$n"

	n="cat 5 GiB from a pipe | head -c 100"
	early "$n" 1000 "$ZGEN 5G | $ZCIO cat | head -c 100"
	status "$n" 141
	# The producer dies of SIGPIPE too, once zcio has gone.
	if [ "${RCS#* }" = "141 0" ]; then
		pass "$n: producer and zcio both got SIGPIPE"
	else
		fail "$n: producer and zcio both got SIGPIPE" "statuses '$RCS'"
	fi
	quiet "$n"

	# Several operands: the first EPIPE ends it; no message per file.
	n="cat many operands | head -c 100"
	early "$n" 1000 "$ZCIO cat $T_TMP/small $BIG $T_TMP/small $T_TMP/small | head -c 100"
	status "$n" 141
	quiet "$n"

	# --stats still reports what was delivered before the reader left.
	n="cat --stats 5 GiB file | head -c 100"
	early "$n" 1000 "$ZCIO cat --stats $BIG | head -c 100"
	status "$n" 141
	expect_quiet "$n: only stats on stderr" "$ERR"

	# An ignored SIGPIPE (inherited, as under some daemons) cannot kill:
	# then cat reports the error like cat(1) does, and exits 1.
	n="cat with SIGPIPE ignored | head -c 100"
	early "$n" 1000 "trap '' PIPE; $ZCIO cat $BIG | head -c 100"
	status "$n" 1
	if grep -q '^zcio: cat: .*Broken pipe' "$ERR"; then
		pass "$n: says Broken pipe"
	else
		fail "$n: says Broken pipe" "stderr: $(head -c 300 "$ERR")"
	fi
fi

# The library never lets SIGPIPE kill its caller: -EPIPE instead.
n="zcopy 5 GiB file | head -c 100"
early "$n" 1000 "$ZCOPY $BIG - | head -c 100"
status "$n" 1
if [ "$(zcopy_result "$ERR")" = -32 ]; then
	pass "$n: result -EPIPE"
else
	fail "$n: result -EPIPE" "$(grep result "$ERR")"
fi

n="zcopy pipe -> tcp, reader gone"
early "$n" 2000 "$ZGEN 5G | $ZSOCK out tcp -- $ZCOPY - - | head -c 100"
# zgen dies of SIGPIPE once zcopy has gone; zsock passes zcopy's status.
if [ "$RCS" = "141 1 0" ]; then
	pass "$n: statuses"
else
	fail "$n: statuses" "'$RCS', want '141 1 0'"
fi
first=$(sed -n 's/^zcopy: result: \(-[0-9]*\).*/\1/p' "$ERR")
case $first in
-32 | -104) pass "$n: result -EPIPE or -ECONNRESET" ;;
*) fail "$n: result -EPIPE or -ECONNRESET" "$(grep -v stats "$ERR" | head -c 300)" ;;
esac

done_testing
