#!/usr/bin/env bash
# library.sh - promises of zcio_copy() and zcio_send_file() that need real
# peers, driven through zcopy: exact length limits (nothing taken from a
# pipe or socket beyond them), source offsets (positional reads leave the
# fd alone; plain ones end just past the last byte delivered), headers in
# front of file slices, the copy threshold, --stable snapshots versus
# by-reference splicing, and timeouts on a silent nonblocking source.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"

need_helpers || done_testing

cd "$T_TMP" || exit 1
SIZE=3146000
"$ZGEN" "$SIZE" 21 > src
"$ZGEN" 1000 22 > tiny
ERR=$T_TMP/err

# zc NAME CMD: run the shell command CMD (stderr to $ERR); fail NAME and
# return 1 unless it exits 0.
zc() {
	local rc=0
	timeout -k 5 60 bash -o pipefail -c "$2" 2> "$ERR" || rc=$?
	if [ "$rc" != 0 ]; then
		fail "$1" "exit status $rc: $(head -c 400 "$ERR" | tr '\n' '|')"
		return 1
	fi
}

# ---- length limits: exactly N, the rest left for the next reader ---------
LEN=1000001
head -c "$LEN" src > want-head
tail -c +$((LEN + 1)) src > want-tail
for kind in file pipe tcp unix; do
	n="--len $LEN from a $kind leaves the rest"
	case $kind in
	file) cmd="{ $ZCOPY --len $LEN - head.out; cat > tail.out; } < src" ;;
	pipe) cmd="cat src | { $ZCOPY --len $LEN - head.out; cat > tail.out; }" ;;
	*) cmd="cat src | $ZSOCK in $kind -- sh -c '$ZCOPY --len $LEN - head.out && cat > tail.out'" ;;
	esac
	rm -f head.out tail.out
	if zc "$n" "$cmd"; then
		same_bytes "$n: first $LEN bytes" want-head head.out
		same_bytes "$n: the rest, untouched" want-tail tail.out
		expect_bytes "$n: counted" "$ERR" total "$LEN"
	fi
done

# ---- offsets --------------------------------------------------------------
OFF=12345
tail -c +$((OFF + 1)) src | head -c 100000 > want-slice
n="--offset $OFF --len 100000 reads positionally"
rm -f slice.out
if zc "$n" "exec 3< src; $ZCOPY --offset $OFF --len 100000 fd:3 slice.out && cat <&3 > after.out"; then
	same_bytes "$n: the slice" want-slice slice.out
	same_bytes "$n: fd offset not moved" src after.out
fi

n="a file source continues from its fd offset"
tail -c +1001 src > want-rest
rm -f rest.out
if zc "$n" "{ dd bs=1000 count=1 of=/dev/null status=none; $ZCOPY - rest.out && cat > after.out; } < src"; then
	same_bytes "$n: from byte 1000" want-rest rest.out
	check "$n: offset at the end afterwards" test ! -s after.out
fi

# ---- send_file: a header and a slice of a file, one stream ---------------
HDR=$'HTTP/1.1 200 OK\r\nContent-Length: 500000\r\n\r\n'
{ printf '%s' "$HDR"; tail -c +$((OFF + 1)) src | head -c 500000; } > want-resp
for how in "" --via-pipe --via-sendfile; do
	for kind in tcp unix pipe; do
		n="send_file ${how:+$how }header + slice -> $kind"
		case $kind in
		pipe) cmd="$ZCOPY $how --header '$HDR' --offset $OFF --len 500000 src - | cat > resp.out" ;;
		*) cmd="$ZSOCK out $kind -- $ZCOPY $how --header '$HDR' --offset $OFF --len 500000 src - > resp.out" ;;
		esac
		rm -f resp.out
		if zc "$n" "$cmd"; then
			same_bytes "$n: bytes" want-resp resp.out
			expect_bytes "$n: counted" "$ERR" total $((500000 + ${#HDR}))
		fi
	done
done

n="send_file header + tiny file -> tcp (below the threshold: one write)"
{ printf 'HDR'; cat tiny; } > want-tiny
rm -f tiny.out
if zc "$n" "$ZSOCK out tcp -- $ZCOPY --header HDR tiny - > tiny.out"; then
	same_bytes "$n: bytes" want-tiny tiny.out
	expect_bytes "$n: copied" "$ERR" copy 1003
fi

n="send_file past the end of the file"
"$ZCOPY" --header HDR --offset $((SIZE - 10)) --len 100 src - > past.out 2> "$ERR"
rc=$?
if [ "$rc" = 1 ] && [ "$(zcopy_result "$ERR")" = -61 ] && [ "$(size_of past.out)" = 13 ]; then
	pass "$n: -ENODATA after header + 10 bytes"
else
	fail "$n: -ENODATA after header + 10 bytes" "status $rc, $(grep result "$ERR"), $(size_of past.out) bytes"
fi
{ printf HDR; tail -c 10 src; } > want-past
same_bytes "$n: no padding" want-past past.out

# ---- the copy threshold ------------------------------------------------------
n="a tiny file is copied, not spliced"
if zc "$n" "$ZCOPY tiny - | cat > tiny.out"; then
	same_bytes "$n: bytes" tiny tiny.out
	expect_bytes "$n: copied" "$ERR" copy 1000
	expect_fallback "$n: says why" "$ERR" '^splice -> copy: below copy threshold at byte 0$'
fi

n="threshold 1 splices even a tiny file"
if zc "$n" "$ZCOPY --threshold 1 tiny - | cat > tiny.out"; then
	same_bytes "$n: bytes" tiny tiny.out
	expect_bytes "$n: spliced" "$ERR" splice 1000
fi

if need_cli; then
	n="ZCIO_COPY_THRESHOLD raises the threshold for zcio cat"
	if zc "$n" "ZCIO_COPY_THRESHOLD=8000000 $ZCIO cat --stats src | cat > big.out"; then
		same_bytes "$n: bytes" src big.out
		expect_bytes "$n: copied" "$ERR" copy "$SIZE"
		expect_fallback "$n: says why" "$ERR" '^splice -> copy: below copy threshold'
	fi
fi

# ---- by reference, or a snapshot with --stable -------------------------------
# 32 KiB go into a FIFO nobody reads yet (it fits: 64 KiB pipe); then the
# file is overwritten in place; then the FIFO is read.  Spliced bytes are
# page references and show the new bytes (documented in zcio.h); --stable
# copies and must show the old ones.
mkfifo fifo
"$ZGEN" 32k 23 > snap-old
head -c 32768 /dev/zero > snap-new
for opt in --stable ""; do
	n="file -> pipe ${opt:-without --stable}, file rewritten before the read"
	cp snap-old snap
	exec 3<> fifo
	if zc "$n" "$ZCOPY $opt snap fifo"; then
		dd if=snap-new of=snap bs=32k count=1 conv=notrunc status=none
		head -c 32768 <&3 > snap.out
		if [ -n "$opt" ]; then
			same_bytes "$n: reader sees the old bytes" snap-old snap.out
			expect_fallback "$n: copied" "$ERR" '^splice -> copy: stable source requested'
		else
			same_bytes "$n: reader sees the new bytes (by reference)" snap-new snap.out
			expect_bytes "$n: spliced" "$ERR" splice 32768
		fi
	fi
	exec 3<&-
done

# ---- timeouts ------------------------------------------------------------------
n="--timeout 300 on a silent nonblocking pipe"
timeout -k 5 30 bash -c "sleep 3 | {
	t0=\$(date +%s%N)
	$ZNB -i -- $ZCOPY --timeout 300 - /dev/null
	rc=\$?
	echo \$(( (\$(date +%s%N) - t0) / 1000000 )) > ms
	exit \$rc
}" 2> "$ERR"
rc=$?
ms=$(cat ms)
if [ "$rc" = 1 ] && [ "$(zcopy_result "$ERR")" = -110 ]; then
	pass "$n: -ETIMEDOUT"
else
	fail "$n: -ETIMEDOUT" "status $rc: $(grep -v stats "$ERR" | head -c 300)"
fi
if [ "$ms" -ge 290 ] && [ "$ms" -lt 2500 ]; then
	pass "$n: after about 300 ms"
else
	fail "$n: after about 300 ms" "after $ms ms"
fi

done_testing
