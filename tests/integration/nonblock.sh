#!/usr/bin/env bash
# nonblock.sh - nonblocking stdin/stdout (pipes and sockets) with a slow
# peer.  zcio must wait in poll() on the fd that blocked, not spin (CPU
# time stays a small part of the wall time), must leave O_NONBLOCK set
# (it belongs to the open file description, shared with other processes),
# and must deliver every byte.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"

need_helpers || done_testing
need pv "nonblocking fds with a slow peer (pv rate-limits it)" || done_testing

SRC=$T_TMP/src
OUT=$T_TMP/out
ERR=$T_TMP/err
CPU=$T_TMP/cpu
SIZE=$((4 << 20))
"$ZGEN" "$SIZE" 6 > "$SRC"
SUM=$(csum "$SRC")
SLOW="pv -q -L 8M" # 4 MiB: about half a second

# nb NAME CMD: run the pipeline CMD (a `znb ... -c $CPU --` inside it,
# output into $OUT) and check status, bytes, flags, and CPU time against
# the wall time.
nb() {
	local t0 t1 rc=0 ms cpu got
	rm -f "$OUT" "$CPU"
	t0=$(now_ms)
	timeout -k 5 60 bash -o pipefail -c "$2" 2> "$ERR" || rc=$?
	t1=$(now_ms)
	ms=$((t1 - t0))
	if [ "$rc" = 3 ]; then
		fail "$1: O_NONBLOCK kept" "$(grep znb: "$ERR")"
	elif [ "$rc" != 0 ]; then
		fail "$1" "exit status $rc: $(head -c 400 "$ERR" | tr '\n' '|')"
		return
	else
		pass "$1: O_NONBLOCK kept"
	fi
	got=$(csum "$OUT")
	if [ "$got" = "$SUM" ]; then
		pass "$1: bytes"
	else
		fail "$1: bytes" "checksum $got, want $SUM ($(size_of "$OUT") bytes)"
	fi
	cpu=$(cat "$CPU" 2>/dev/null || echo "?")
	echo "# $1: $cpu ms CPU in $ms ms"
	if [ "$cpu" != "?" ] && [ $((cpu * 4)) -lt "$ms" ]; then
		pass "$1: no busy loop"
	else
		fail "$1: no busy loop" "$cpu ms of CPU in $ms ms"
	fi
}

W="$ZNB -c $CPU"
if need_cli; then
	nb "cat file -> nonblocking pipe, slow reader" \
		"$W -o -- $ZCIO cat $SRC | $SLOW > $OUT"
	nb "cat --copy file -> nonblocking pipe, slow reader" \
		"$W -o -- $ZCIO cat --copy $SRC | $SLOW > $OUT"
	nb "cat nonblocking pipe -> file, slow writer" \
		"cat $SRC | $SLOW | $W -i -- $ZCIO cat > $OUT"
	nb "cat nonblocking pipe -> nonblocking pipe, slow both" \
		"cat $SRC | $SLOW | $W -i -o -- $ZCIO cat | $SLOW > $OUT"
	nb "cat --copy nonblocking pipe -> nonblocking pipe, slow both" \
		"cat $SRC | $SLOW | $W -i -o -- $ZCIO cat --copy | $SLOW > $OUT"
	nb "cat file -> nonblocking tcp socket, slow reader" \
		"$ZSOCK out tcp -- $W -o -- $ZCIO cat $SRC | $SLOW > $OUT"
	nb "cat nonblocking unix socket -> nonblocking pipe, slow both" \
		"cat $SRC | $SLOW | $ZSOCK in unix -- $W -i -o -- $ZCIO cat | $SLOW > $OUT"
fi

nb "zcopy nonblocking tcp socket -> file (pooled pipe), slow writer" \
	"cat $SRC | $SLOW | $ZSOCK in tcp -- $W -i -- $ZCOPY - $OUT"
nb "zcopy nonblocking tcp -> nonblocking unix socket, slow both" \
	"cat $SRC | $SLOW | $ZSOCK in tcp -- $ZSOCK out unix -- $W -i -o -- $ZCOPY - - | $SLOW > $OUT"
nb "zcopy nonblocking dgram socket -> nonblocking pipe, slow both" \
	"cat $SRC | $SLOW | $ZSOCK in dgram -- $W -i -o -- $ZCOPY - - | $SLOW > $OUT"

done_testing
