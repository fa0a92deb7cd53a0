#!/usr/bin/env bash
# matrix.sh - every pair of fd kinds through `zcio cat`, the pairs of paths
# through `zcio cp`, and through zcopy (the library directly) for the
# sources the CLI cannot name: every byte arrives, in order, and --stats
# names the path that moved it.
#
# Sources:      file operand, file on stdin, pipe, FIFO, TCP socket, unix
#               stream socket, unix datagram socket, /dev/null, a /proc file,
#               an empty file, a small sparse file (+ /dev/zero with a length
#               and a sysfs file with the threshold off, for zcopy)
# Destinations: file, O_APPEND file (>>), pipe, FIFO, TCP socket, unix
#               stream socket, unix datagram socket, /dev/null, a terminal
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"

need_helpers || done_testing

SIZE=3146000 # 3 MiB and a partial page
SRC=$T_TMP/src
EMPTY=$T_TMP/empty
SPARSE=$T_TMP/sparse
FIFO_IN=$T_TMP/fifo-in
FIFO_OUT=$T_TMP/fifo-out
OUT=$T_TMP/out
ERR=$T_TMP/err
WANT=$T_TMP/want
PROC=/proc/version
# sysfs files claim a size (a page) they do not have: a copy must stop at
# the real end, and must not take a first "0 bytes" for it either.
SYSFS=/sys/devices/system/cpu/possible

"$ZGEN" "$SIZE" 1 > "$SRC"
: > "$EMPTY"
"$ZGEN" --sparse "$SPARSE" 3M > /dev/null
mkfifo "$FIFO_IN" "$FIFO_OUT"

SOURCES="file stdin pipe fifo tcp unix dgram devnull proc empty sparse"
DESTS="file append pipe fifo tcp unix dgram devnull"
# A terminal (a pty from script(1), in raw mode so bytes pass unchanged).
have script && DESTS+=" tty"

# The bytes each source delivers, and their checksums (computed once).
cat "$PROC" > "$T_TMP/proc-copy"
cat "$SYSFS" > "$T_TMP/sysfs-copy" 2>/dev/null
head -c "$SIZE" /dev/zero > "$T_TMP/zeros"
declare -A WANT_SIZE WANT_SUM WANT_APPEND_SUM
PREFIX_LINE="already here"
for s in $SOURCES devzero sysfs; do
	case $s in
	devnull | empty) f=$EMPTY ;;
	proc) f=$T_TMP/proc-copy ;;
	sysfs) f=$T_TMP/sysfs-copy ;;
	devzero) f=$T_TMP/zeros ;;
	sparse) f=$SPARSE ;;
	*) f=$SRC ;;
	esac
	WANT_SIZE[$s]=$(size_of "$f")
	WANT_SUM[$s]=$(csum "$f")
	WANT_APPEND_SUM[$s]=$({ echo "$PREFIX_LINE"; cat "$f"; } > "$T_TMP/w" && csum "$T_TMP/w")
done

# Set path to the one that must carry every byte of SRC kind to DST kind
# (the route table of DESIGN.md), or "none" when no byte moves.
expected_path() {
	local s=$1 d=$2
	case $s in
	devnull | empty) path=none; return ;;
	proc | devzero | dgram) path=copy; return ;;
	sysfs) path=any; return ;;
	esac
	case $d in
	append | dgram | tty) path=copy; return ;;
	esac
	case $s:$d in
	file:file | stdin:file | sparse:file) path=copy_file_range ;;
	file:pipe | stdin:pipe | sparse:pipe | file:fifo | stdin:fifo | sparse:fifo) path=splice ;;
	file:tcp | stdin:tcp | sparse:tcp | file:unix | stdin:unix | sparse:unix) path=splice-pipe ;;
	file:* | stdin:* | sparse:*) path=sendfile ;; # /dev/null
	pipe:* | fifo:*) path=splice ;;
	tcp:pipe | tcp:fifo | unix:pipe | unix:fifo) path=splice ;;
	tcp:* | unix:*) path=splice-pipe ;;
	esac
}

# Build the shell command running PROG (which reads its source as $IN and
# writes stdout) from source kind $1 to destination kind $2.  Sets CMD,
# and FEEDER/DRAINER for the FIFO cases (run in the background).
build_cmd() {
	local s=$1 d=$2 tool=$3 pre="" wrap="" redir="" post="" in=-
	FEEDER="" DRAINER=""
	case $s in
	file) in=$SRC ;;
	sparse) in=$SPARSE ;;
	devnull) in=/dev/null ;;
	proc) in=$PROC ;;
	sysfs) in=$SYSFS ;;
	empty) in=$EMPTY ;;
	devzero) in=/dev/zero ;;
	stdin) redir=" < $SRC" ;;
	pipe) pre="cat $SRC | " ;;
	fifo) in=$FIFO_IN FEEDER="cat $SRC > $FIFO_IN" ;;
	tcp | unix | dgram) pre="cat $SRC | $ZSOCK in $s -- " ;;
	esac
	case $d in
	file) post=" > $OUT" ;;
	append) post=" >> $OUT" ;;
	pipe) post=" | cat > $OUT" ;;
	fifo) post=" > $FIFO_OUT" DRAINER="cat $FIFO_OUT > $OUT" ;;
	tcp | unix | dgram) wrap="$ZSOCK out $d -- " post=" > $OUT" ;;
	devnull) post=" > /dev/null" ;;
	esac
	local prog
	if [ "$tool" = cat ]; then
		[ "$in" = - ] && in=""
		prog="$ZCIO cat --stats $in"
	else
		case $s in
		devzero) prog="$ZCOPY --len $SIZE $in -" ;;
		sysfs) prog="$ZCOPY --threshold 1 $in -" ;;
		*) prog="$ZCOPY $in -" ;;
		esac
	fi
	CMD="$pre$wrap$prog$redir$post"
	if [ "$d" = tty ]; then
		# Everything runs on the pty; only stdout is the terminal.
		CMD="script -qec \"stty raw -echo; $pre$prog$redir 2> $ERR.tty\" /dev/null > $OUT"
	fi
}

# run_case TOOL SRC DST: one transfer, its checks.
run_case() {
	local tool=$1 s=$2 d=$3 name="$1 $2 -> $3" want got path rc=0 n
	local feeder_pid="" drainer_pid=""
	build_cmd "$s" "$d" "$tool"
	n=${WANT_SIZE[$s]}
	want=${WANT_SUM[$s]}
	rm -f "$OUT"
	if [ "$d" = append ]; then
		echo "$PREFIX_LINE" > "$OUT"
		want=${WANT_APPEND_SUM[$s]}
	fi
	if [ -n "$DRAINER" ]; then
		bash -c "$DRAINER" & drainer_pid=$!
	fi
	if [ -n "$FEEDER" ]; then
		bash -c "$FEEDER" & feeder_pid=$!
	fi
	timeout -k 5 60 bash -o pipefail -c "$CMD" 2> "$ERR" || rc=$?
	if [ -f "$ERR.tty" ]; then
		cat "$ERR.tty" >> "$ERR"
		rm -f "$ERR.tty"
	fi
	if [ -n "$drainer_pid" ]; then
		# A command that failed before opening the FIFO leaves the
		# reader waiting for a writer: open and close it.
		[ "$rc" = 0 ] || : > "$FIFO_OUT" &
		wait_bg "$drainer_pid" 20 || [ "$rc" != 0 ] || rc="(FIFO reader failed)"
	fi
	if [ -n "$feeder_pid" ]; then
		[ "$rc" = 0 ] || cat "$FIFO_IN" > /dev/null &
		wait_bg "$feeder_pid" 20 || [ "$rc" != 0 ] || rc="(FIFO writer failed)"
	fi
	if [ "$rc" != 0 ]; then
		fail "$name" "status $rc: $(head -c 600 "$ERR" | tr '\n' '|')"
		return
	fi
	if [ "$d" != devnull ]; then
		got=$(csum "$OUT")
		if [ "$got" = "$want" ]; then
			pass "$name: bytes"
		else
			fail "$name: bytes" "checksum $got, want $want ($(size_of "$OUT") bytes)"
		fi
	fi
	expect_bytes "$name: total" "$ERR" total "$n"
	expected_path "$s" "$d"
	# sysfs may or may not take zero-copy paths (with the threshold off);
	# the checksum and the count are what matter.
	if [ "$path" != none ] && [ "$path" != any ]; then
		expect_bytes "$name: by $path" "$ERR" "$path" "$n"
	fi
	if [ "$d" = append ] && [[ " file stdin sparse pipe fifo tcp unix " == *" $s "* ]]; then
		expect_fallback "$name: O_APPEND seen" "$ERR" '.* -> copy: destination is O_APPEND'
	fi
	expect_quiet "$name: quiet" "$ERR"
}

if need_cli; then
	for s in $SOURCES; do
		for d in $DESTS; do
			run_case cat "$s" "$d"
		done
	done
fi

# zcio cp: SRC and DST are paths, so the kinds are those a path can name.
# Regular to regular copies the data extents at their offsets (positional
# reads); anything else is one stream.
run_cp_case() {
	local s=$1 d=$2 name="cp $1 -> $2" src dst rc=0 want n drainer_pid="" feeder_pid=""
	case $s in
	file) src=$SRC ;;
	sparse) src=$SPARSE ;;
	fifo) src=$FIFO_IN ;;
	devnull) src=/dev/null ;;
	proc) src=$PROC ;;
	empty) src=$EMPTY ;;
	esac
	case $d in
	file) dst=$OUT ;;
	existing) dst=$OUT; "$ZGEN" 5M 9 > "$OUT" ;; # longer than any source
	fifo) dst=$FIFO_OUT ;;
	devnull) dst=/dev/null ;;
	esac
	[ "$d" = existing ] || rm -f "$OUT"
	[ "$d" = fifo ] && { bash -c "cat $FIFO_OUT > $OUT" & drainer_pid=$!; }
	[ "$s" = fifo ] && { bash -c "cat $SRC > $FIFO_IN" & feeder_pid=$!; }
	timeout -k 5 60 "$ZCIO" cp --stats "$src" "$dst" 2> "$ERR" || rc=$?
	if [ -n "$drainer_pid" ]; then
		[ "$rc" = 0 ] || : > "$FIFO_OUT" &
		wait_bg "$drainer_pid" 20 || [ "$rc" != 0 ] || rc="(FIFO reader failed)"
	fi
	if [ -n "$feeder_pid" ]; then
		[ "$rc" = 0 ] || cat "$FIFO_IN" > /dev/null &
		wait_bg "$feeder_pid" 20 || [ "$rc" != 0 ] || rc="(FIFO writer failed)"
	fi
	if [ "$rc" != 0 ]; then
		fail "$name" "status $rc: $(head -c 600 "$ERR" | tr '\n' '|')"
		return
	fi
	want=${WANT_SUM[$s]} n=${WANT_SIZE[$s]}
	if [ "$d" != devnull ]; then
		got=$(csum "$OUT")
		if [ "$got" = "$want" ]; then
			pass "$name: bytes"
		else
			fail "$name: bytes" "checksum $got, want $want ($(size_of "$OUT") bytes)"
		fi
	fi
	# A sparse source moves only its data extents (the filesystem rounds
	# them to blocks): fewer bytes than its size, never more.
	if [ "$s" = sparse ] && [ "$d" != fifo ] && [ "$d" != devnull ]; then
		load_stats "$ERR"
		if [ "${STATS[total]:-0}" -gt 0 ] && [ "${STATS[total]}" -lt "$n" ]; then
			pass "$name: only data extents moved"
		else
			fail "$name: only data extents moved" "[$STATS_LINES]"
		fi
	else
		expect_bytes "$name: total" "$ERR" total "$n"
	fi
	case $s:$d in
	file:file | file:existing) expect_bytes "$name: by copy_file_range" "$ERR" copy_file_range "$n" ;;
	file:fifo | fifo:*) expect_bytes "$name: by splice" "$ERR" splice "$n" ;;
	file:devnull) expect_bytes "$name: by sendfile" "$ERR" sendfile "$n" ;;
	esac
	expect_quiet "$name: quiet" "$ERR"
}

if [ -x "$ZCIO" ]; then
	for s in file fifo devnull proc empty sparse; do
		for d in file existing fifo devnull; do
			# The same file twice: refused, as cp(1) does (cli.sh).
			[ "$s:$d" = devnull:devnull ] && continue
			run_cp_case "$s" "$d"
		done
	done
fi

# The library itself, for sources the CLI reaches only through stdin (and
# so only as the kinds above), plus /dev/zero with a length and a /proc file
# with the size threshold disabled.
ZCOPY_SOURCES="tcp unix dgram pipe devzero"
if [ -s "$T_TMP/sysfs-copy" ]; then
	ZCOPY_SOURCES+=" sysfs"
else
	skip "zcopy sysfs sources" "$SYSFS not readable"
fi
for s in $ZCOPY_SOURCES; do
	for d in $DESTS; do
		run_case zcopy "$s" "$d"
	done
done

done_testing
