#!/usr/bin/env bash
# truncate.sh - the source file is truncated while it is being copied (a
# slow reader holds the copy back, the test truncates the file meanwhile).
# No hang, no padding: the output is a byte-exact prefix of the original,
# at least as long as the size at truncation, and --stats counts exactly the
# bytes that arrived.  zcio_send_file() says -ENODATA when the file came up
# short of the length it promised.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"

need_helpers || done_testing
need pv "truncated sources (pv rate-limits the reader)" || done_testing

SRC=$T_TMP/src
ORIG=$T_TMP/orig
OUT=$T_TMP/out
ERR=$T_TMP/err

# truncated NAME SIZE CUT CMD: make SRC (SIZE bytes), run CMD (writing to
# stdout; stderr to $ERR) into a reader limited to 16 MiB/s, and truncate
# SRC to CUT once 1 MiB has arrived.  Sets RC (CMD's status) and DURING
# (yes when CMD was still running at the truncation).  CUT is page-aligned:
# truncating inside a page zeroes the rest of that page in the page cache,
# which a pipe may still reference (spliced bytes are by reference).
truncated() {
	local pid t
	"$ZGEN" "$2" 9 > "$SRC"
	cp "$SRC" "$ORIG"
	rm -f "$OUT"
	bash -o pipefail -c "$4 2> $ERR | pv -q -L 16M > $OUT" &
	pid=$!
	at_exit "kill $pid"
	for t in $(seq 500); do
		[ -s "$OUT" ] && [ "$(size_of "$OUT")" -ge $((1 << 20)) ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	DURING=no
	kill -0 "$pid" 2>/dev/null && DURING=yes
	truncate -s "$3" "$SRC"
	RC=0
	wait_bg "$pid" 60 || RC=$?
	if [ "$RC" = 124 ]; then
		fail "$1: no hang" "still running 60 s after the truncation"
	else
		pass "$1: no hang"
	fi
	if [ "$DURING" = yes ]; then
		pass "$1: truncated during the copy"
	else
		fail "$1: truncated during the copy" "the copy had ended before (status $RC)"
	fi
}

# prefix NAME CUT [SKIP]: OUT (after SKIP header bytes) is a prefix of the
# original, CUT bytes or more.
prefix() {
	local got=$(($(size_of "$OUT") - ${3:-0}))
	echo "# $1: $got bytes arrived, cut at $2"
	if [ "$got" -ge "$2" ] && cmp -s -n "$got" -i "${3:-0}:0" "$OUT" "$ORIG"; then
		pass "$1: exact prefix"
	else
		fail "$1: exact prefix" "$got bytes out, cut at $2, prefix: $(cmp -n "$got" -i "${3:-0}:0" "$OUT" "$ORIG" 2>&1)"
	fi
}

if need_cli; then
	for opt in "" --copy; do
		n="cat ${opt:+$opt }file -> pipe"
		truncated "$n" 16M 4M "$ZCIO cat --stats $opt $SRC"
		check "$n: exit 0" [ "$RC" = 0 ]
		prefix "$n" $((4 << 20))
		expect_bytes "$n: counted" "$ERR" total "$(size_of "$OUT")"
	done

	# sendfile to a socket; loopback buffers hold several MiB, so cut later.
	n="cat file -> tcp socket"
	truncated "$n" 32M 16M "$ZSOCK out tcp -- $ZCIO cat --stats $SRC"
	check "$n: exit 0" [ "$RC" = 0 ]
	prefix "$n" $((16 << 20))
	expect_bytes "$n: counted" "$ERR" total "$(size_of "$OUT")"
fi

n="zcopy file -> pipe"
truncated "$n" 16M 4M "$ZCOPY $SRC -"
check "$n: exit 0" [ "$RC" = 0 ]
prefix "$n" $((4 << 20))
expect_bytes "$n: counted" "$ERR" total "$(size_of "$OUT")"

# A header promised 16 MiB; the file shrank: -ENODATA, never padding.
n="zcopy send_file header+file -> tcp"
HDR="Content-Length: 16777216"
truncated "$n" 16M 4M "$ZSOCK out tcp -- $ZCOPY --header '$HDR' $SRC -"
check "$n: exit 1" [ "$RC" = 1 ]
if [ "$(zcopy_result "$ERR")" = -61 ]; then
	pass "$n: result -ENODATA"
else
	fail "$n: result -ENODATA" "$(grep -v stats: "$ERR" | head -c 300)"
fi
if [ "$(head -c ${#HDR} "$OUT")" = "$HDR" ]; then
	pass "$n: header first"
else
	fail "$n: header first" "output starts '$(head -c ${#HDR} "$OUT")'"
fi
prefix "$n" $((4 << 20)) ${#HDR}
expect_bytes "$n: counted" "$ERR" total "$(size_of "$OUT")"

done_testing
