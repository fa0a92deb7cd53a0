#!/usr/bin/env bash
# inject.sh - make the zero-copy syscalls fail with strace fault injection,
# at the first call and part-way through, and check that every byte still
# arrives exactly once and that --stats names the fallback, its reason and
# its errno.
#
# Covered: splice ENOSYS/EINVAL/EPERM, copy_file_range EXDEV/EPERM/ENOSYS,
# sendfile EINVAL, pipe2 EMFILE (the pooled pipe), fcntl EPERM (pipe sizing
# and flag reads), and splice EINVAL on the pipe -> destination leg after
# socket -> pipe succeeded, so the bytes already in the pooled pipe must be
# drained by copying.  Real errors (EIO, ENOSPC, ENOMEM) end the copy with an
# exact count of what arrived.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"

need_helpers || done_testing
need_inject "fault injection" || done_testing

SIZE=3146000 # 3 MiB and a partial page
SRC=$T_TMP/src
OUT=$T_TMP/out
ERR=$T_TMP/err
"$ZGEN" "$SIZE" 2 > "$SRC"
SUM=$(csum "$SRC")

# strace prefix failing SYSCALL with ERRNO (at call WHEN, "" for all).
fault() {
	echo "strace -f -qq -o /dev/null -e trace=$1 -e inject=$1:error=$2${3:+:when=$3}"
}

# faults "SYSCALL ERRNO [WHEN]"...: one strace injecting into several
# syscalls (to reach a path that is only tried after another failed).
faults() {
	local spec sc err when trace="" inj=""
	for spec in "$@"; do
		read -r sc err when <<<"$spec"
		trace=${trace:+$trace,}$sc
		inj="$inj -e inject=$sc:error=$err${when:+:when=$when}"
	done
	echo "strace -f -qq -o /dev/null -e trace=$trace$inj"
}

# run NAME CMD: run the shell command CMD (stderr to $ERR, its output to
# $OUT by its own redirections) with a time limit; fail NAME and return 1
# unless it exits 0.
run() {
	local rc=0
	rm -f "$OUT"
	timeout -k 5 60 bash -o pipefail -c "$2" 2> "$ERR" || rc=$?
	if [ "$rc" != 0 ]; then
		fail "$1" "exit status $rc: $(head -c 600 "$ERR" | tr '\n' '|')"
		return 1
	fi
}

# exact NAME [WANT_SUM [N]]: $OUT holds exactly the source's bytes, and
# --stats counted N (default: the source's size) in total.
exact() {
	local got
	got=$(csum "$OUT")
	if [ "$got" = "${2:-$SUM}" ]; then
		pass "$1: bytes"
	else
		fail "$1: bytes" "checksum $got, want ${2:-$SUM} ($(size_of "$OUT") bytes)"
	fi
	expect_bytes "$1: total" "$ERR" total "${3:-$SIZE}"
}

# split NAME PATH_A PATH_B [N]: both paths moved bytes, and together all N
# (default: the source's size): a fallback part-way through continued at
# the exact byte.
split() {
	load_stats "$ERR"
	local a=${STATS[$2]:-0} b=${STATS[$3]:-0} n=${4:-$SIZE}
	if [ "$a" -gt 0 ] && [ "$b" -gt 0 ] && [ $((a + b)) = "$n" ]; then
		pass "$1: $2 then $3"
	else
		fail "$1: $2 then $3" "$2 $a + $3 $b bytes, want both > 0 summing to $n [$STATS_LINES]"
	fi
}

NOSYS='syscall not in this kernel \(Function not implemented\)'
EINVAL='refused for these fds \(Invalid argument\)'
AT0=' at byte 0$'
ATN=' at byte [1-9][0-9]*$'

# ---- the CLI: splice (file -> pipe) -----------------------------------------
if need_cli; then
	n="cat file->pipe, splice ENOSYS"
	if run "$n" "$(fault splice ENOSYS) $ZCIO cat --stats $SRC | cat > $OUT"; then
		exact "$n"
		expect_bytes "$n: copied" "$ERR" copy "$SIZE"
		expect_fallback "$n: reason" "$ERR" "^splice -> copy: $NOSYS$AT0"
	fi

	n="cat file->pipe, splice ENOSYS from the 3rd call"
	if run "$n" "$(fault splice ENOSYS 3+) $ZCIO cat --stats $SRC | cat > $OUT"; then
		exact "$n"
		split "$n" splice copy
		expect_fallback "$n: reason" "$ERR" "^splice -> copy: $NOSYS$ATN"
	fi

	n="cat file->pipe, splice EINVAL"
	if run "$n" "$(fault splice EINVAL) $ZCIO cat --stats $SRC | cat > $OUT"; then
		exact "$n"
		expect_bytes "$n: copied" "$ERR" copy "$SIZE"
		expect_fallback "$n: reason" "$ERR" "^splice -> copy: $EINVAL$AT0"
	fi

	n="cat file->pipe, splice EINVAL at the 2nd call"
	if run "$n" "$(fault splice EINVAL 2) $ZCIO cat --stats $SRC | cat > $OUT"; then
		exact "$n"
		split "$n" splice copy
		expect_fallback "$n: reason" "$ERR" "^splice -> copy: $EINVAL$ATN"
	fi

	# EPERM everywhere, the probe with fd -1 included: a seccomp filter.
	n="cat file->pipe, splice EPERM (seccomp-like)"
	if run "$n" "$(fault splice EPERM) $ZCIO cat --stats $SRC | cat > $OUT"; then
		exact "$n"
		expect_fallback "$n: reason" "$ERR" \
			'^splice -> copy: syscall forbidden \(seccomp\) \(Operation not permitted\)'"$AT0"
	fi

	n="cat pipe->pipe, splice EINVAL at the 2nd call"
	if run "$n" "cat $SRC | $(fault splice EINVAL 2) $ZCIO cat --stats | cat > $OUT"; then
		exact "$n"
		expect_fallback "$n: reason" "$ERR" "^splice -> copy: $EINVAL"
	fi

	# ---- copy_file_range (file -> file) --------------------------------
	n="cat file->file, copy_file_range EXDEV"
	if run "$n" "$(fault copy_file_range EXDEV) $ZCIO cat --stats $SRC > $OUT"; then
		exact "$n"
		expect_bytes "$n: by sendfile" "$ERR" sendfile "$SIZE"
		expect_fallback "$n: reason" "$ERR" \
			'^copy_file_range -> sendfile: cross-filesystem \(Invalid cross-device link\)'"$AT0"
	fi

	# The first call copies everything; the one that would see EOF fails.
	n="cat file->file, copy_file_range EXDEV at the 2nd call"
	if run "$n" "$(fault copy_file_range EXDEV 2) $ZCIO cat --stats $SRC > $OUT"; then
		exact "$n"
		expect_bytes "$n: by copy_file_range" "$ERR" copy_file_range "$SIZE"
		expect_fallback "$n: reason" "$ERR" "^copy_file_range -> sendfile: cross-filesystem .*$ATN"
	fi

	n="cat file->file, copy_file_range EPERM (seccomp-like)"
	if run "$n" "$(fault copy_file_range EPERM) $ZCIO cat --stats $SRC > $OUT"; then
		exact "$n"
		expect_bytes "$n: by sendfile" "$ERR" sendfile "$SIZE"
		expect_fallback "$n: reason" "$ERR" \
			'^copy_file_range -> sendfile: syscall forbidden \(seccomp\) \(Operation not permitted\)'"$AT0"
	fi

	# EPERM once, then the probe with fd -1 gets EBADF: the syscall
	# exists, these fds were refused (an immutable file, CIFS).
	n="cat file->file, copy_file_range EPERM once"
	if run "$n" "$(fault copy_file_range EPERM 1) $ZCIO cat --stats $SRC > $OUT"; then
		exact "$n"
		expect_bytes "$n: by sendfile" "$ERR" sendfile "$SIZE"
		expect_fallback "$n: reason" "$ERR" \
			'^copy_file_range -> sendfile: refused for these fds \(Operation not permitted\)'"$AT0"
	fi

	n="cat file->file, copy_file_range ENOSYS"
	if run "$n" "$(fault copy_file_range ENOSYS) $ZCIO cat --stats $SRC > $OUT"; then
		exact "$n"
		expect_bytes "$n: by sendfile" "$ERR" sendfile "$SIZE"
		expect_fallback "$n: reason" "$ERR" "^copy_file_range -> sendfile: $NOSYS$AT0"
	fi

	n="cat file->file, copy_file_range EXDEV and sendfile EINVAL"
	if run "$n" "strace -f -qq -o /dev/null -e trace=copy_file_range,sendfile \
		-e inject=copy_file_range:error=EXDEV -e inject=sendfile:error=EINVAL \
		$ZCIO cat --stats $SRC > $OUT"; then
		exact "$n"
		expect_bytes "$n: copied" "$ERR" copy "$SIZE"
		expect_fallback "$n: first" "$ERR" '^copy_file_range -> sendfile: cross-filesystem'
		expect_fallback "$n: second" "$ERR" "^sendfile -> copy: $EINVAL$AT0"
	fi

	n="cp file->file, copy_file_range ENOSYS"
	rm -f "$T_TMP/cp-out"
	if run "$n" "$(fault copy_file_range ENOSYS) $ZCIO cp --stats $SRC $T_TMP/cp-out"; then
		cp "$T_TMP/cp-out" "$OUT"
		exact "$n"
		expect_fallback "$n: reason" "$ERR" "^copy_file_range -> sendfile: $NOSYS"
	fi

	# ---- file -> socket: the pooled pipe, then sendfile, then copy -----
	n="cat file->unix socket, splice EINVAL"
	if run "$n" "$ZSOCK out unix -- $(fault splice EINVAL) $ZCIO cat --stats $SRC > $OUT"; then
		exact "$n"
		expect_bytes "$n: by sendfile" "$ERR" sendfile "$SIZE"
		expect_fallback "$n: reason" "$ERR" "^splice-pipe -> sendfile: $EINVAL$AT0"
	fi

	n="cat file->unix socket, splice and sendfile EINVAL"
	if run "$n" "$ZSOCK out unix -- $(faults "splice EINVAL" "sendfile EINVAL") $ZCIO cat --stats $SRC > $OUT"; then
		exact "$n"
		expect_bytes "$n: copied" "$ERR" copy "$SIZE"
		expect_fallback "$n: first" "$ERR" "^splice-pipe -> sendfile: $EINVAL$AT0"
		expect_fallback "$n: second" "$ERR" "^sendfile -> copy: $EINVAL$AT0"
	fi

	# sendfile moves up to 4 MiB per call to a blocking socket: 9 MiB
	# takes three calls, and the second fails.
	n="cat file->tcp socket, splice EINVAL, sendfile EINVAL at the 2nd call"
	"$ZGEN" 9M 3 > "$T_TMP/big"
	if run "$n" "$ZSOCK out tcp -- $(faults "splice EINVAL" "sendfile EINVAL 2") $ZCIO cat --stats $T_TMP/big > $OUT"; then
		exact "$n" "$(csum "$T_TMP/big")" $((9 << 20))
		split "$n" sendfile copy $((9 << 20))
		expect_fallback "$n: reason" "$ERR" "^sendfile -> copy: $EINVAL$ATN"
	fi

	# ---- pipe2 (the pooled pipe for socket -> file) --------------------
	n="cat tcp->file, pipe2 EMFILE"
	if run "$n" "cat $SRC | $ZSOCK in tcp -- $(fault pipe2 EMFILE) $ZCIO cat --stats > $OUT"; then
		exact "$n"
		expect_bytes "$n: copied" "$ERR" copy "$SIZE"
		expect_fallback "$n: reason" "$ERR" \
			'^splice-pipe -> copy: no pipe available \(Too many open files\)'"$AT0"
	fi

	n="cat unix->file, splice EINVAL on the pipe->file leg"
	if run "$n" "cat $SRC | $ZSOCK in unix -- $(fault splice EINVAL 2) $ZCIO cat --stats > $OUT"; then
		exact "$n"
		expect_fallback "$n: reason" "$ERR" "^splice-pipe -> copy: $EINVAL"
	fi

	# ---- fcntl: pipe sizing and F_GETFL fail ---------------------------
	n="cat file->pipe, fcntl EPERM"
	if run "$n" "$(fault fcntl EPERM) $ZCIO cat --stats $SRC | cat > $OUT"; then
		exact "$n"
		expect_bytes "$n: by splice" "$ERR" splice "$SIZE"
	fi

	# The O_APPEND flag cannot be read: the zero-copy paths are tried and
	# refuse, and the bytes still land after what the file held.
	n="cat file->O_APPEND file, fcntl EPERM"
	echo "already here" > "$T_TMP/app"
	want=$({ cat "$T_TMP/app" "$SRC"; } > "$T_TMP/app-want" && csum "$T_TMP/app-want")
	if timeout 60 bash -c "$(fault fcntl EPERM) $ZCIO cat --stats $SRC >> $T_TMP/app" 2> "$ERR"; then
		cp "$T_TMP/app" "$OUT"
		exact "$n" "$want"
		expect_bytes "$n: copied" "$ERR" copy "$SIZE"
	else
		fail "$n" "exit status $?: $(head -c 300 "$ERR")"
	fi
fi

# ---- real errors: reported, with an exact count ------------------------------
# An errno that is not "unsupported" ends the copy with an error.  What
# arrived must be a prefix of the source, and --stats must count exactly it.
# fails NAME REGEX CMD: CMD exits 1, stderr matches REGEX, and the output
# ($OUT) is a prefix of the source counted exactly.
fails() {
	local rc=0
	rm -f "$OUT"
	timeout -k 5 60 bash -o pipefail -c "$3" 2> "$ERR" || rc=$?
	if [ "$rc" = 1 ]; then
		pass "$1: exit 1"
	else
		fail "$1: exit 1" "exit $rc: $(head -c 300 "$ERR" | tr '\n' '|')"
	fi
	if grep -Eq "$2" "$ERR"; then
		pass "$1: says why"
	else
		fail "$1: says why" "no '$2' in: $(head -c 300 "$ERR" | tr '\n' '|')"
	fi
	if [ -f "$OUT" ] && is_prefix "$OUT" "${SOURCE:-$SRC}"; then
		pass "$1: output is a prefix"
	else
		fail "$1: output is a prefix" "$(cmp "$OUT" "${SOURCE:-$SRC}" 2>&1 | head -n 1)"
	fi
	expect_bytes "$1: counted exactly" "$ERR" total "$(size_of "$OUT")"
}

if [ -x "$ZCIO" ]; then
	fails "cat --copy file->pipe, read EIO" "^zcio: cat: .*: Input/output error$" \
		"$(fault read EIO 6) $ZCIO cat --stats --copy $SRC | cat > $OUT"
	fails "cat file->pipe, splice EIO at the 3rd call" "^zcio: cat: .*: Input/output error$" \
		"$(fault splice EIO 3) $ZCIO cat --stats $SRC | cat > $OUT"
	SOURCE=$T_TMP/big fails "cat file->tcp, splice EINVAL, sendfile EIO at the 2nd call" \
		"^zcio: cat: .*: Input/output error$" \
		"$ZSOCK out tcp -- $(faults "splice EINVAL" "sendfile EIO 2") $ZCIO cat --stats $T_TMP/big > $OUT"
	SOURCE=$T_TMP/big fails "cat file->tcp, splice EIO at the 3rd call" \
		"^zcio: cat: .*: Input/output error$" \
		"$ZSOCK out tcp -- $(fault splice EIO 3) $ZCIO cat --stats $T_TMP/big > $OUT"
	fails "cat --copy file->file, write ENOSPC at the 3rd call" \
		"^zcio: cat: write error: No space left on device$" \
		"$(fault write ENOSPC 3) $ZCIO cat --stats --copy $SRC > $OUT"
fi

# The pipe -> file leg fails for real with bytes in the pooled pipe: they
# are lost with the error, and zcio_copy says how many (stats.stranded).
n="zcopy tcp->file, splice ENOMEM on the pipe->file leg"
rm -f "$OUT"
cat "$SRC" | "$ZSOCK" in tcp -- $(fault splice ENOMEM 2) "$ZCOPY" - "$OUT" 2> "$ERR"
rc=$?
stranded=$(sed -n 's/^zcopy: stranded: //p' "$ERR")
if [ "$rc" = 1 ] && [ "$(zcopy_result "$ERR")" = -12 ] && [ "${stranded:-0}" -gt 0 ]; then
	pass "$n: -ENOMEM, stranded bytes reported"
else
	fail "$n: -ENOMEM, stranded bytes reported" "status $rc: $(grep -v stats: "$ERR" | tr '\n' '|')"
fi
expect_bytes "$n: counted exactly" "$ERR" total "$(size_of "$OUT")"

# ---- the library: routes through the pooled pipe (zcopy) --------------------
n="zcopy tcp->file, pipe2 EMFILE"
if run "$n" "cat $SRC | $ZSOCK in tcp -- $(fault pipe2 EMFILE) $ZCOPY - $OUT"; then
	exact "$n"
	expect_bytes "$n: copied" "$ERR" copy "$SIZE"
	expect_fallback "$n: reason" "$ERR" \
		'^splice-pipe -> copy: no pipe available \(Too many open files\)'"$AT0"
fi

n="zcopy tcp->file, fcntl EPERM"
if run "$n" "cat $SRC | $ZSOCK in tcp -- $(fault fcntl EPERM) $ZCOPY - $OUT"; then
	exact "$n"
	expect_bytes "$n: by splice-pipe" "$ERR" splice-pipe "$SIZE"
fi

# Splice #1 fills the pooled pipe from the socket (a blocking socket: it
# waits for data, so it moves bytes); splice #2, pipe -> file, fails.  The
# bytes in the pipe are already out of the socket: they must be drained by
# copying, then copying goes on from the socket.
n="zcopy tcp->file, splice EINVAL on the pipe->file leg"
if run "$n" "cat $SRC | $ZSOCK in tcp -- $(fault splice EINVAL 2) $ZCOPY - $OUT"; then
	exact "$n"
	expect_bytes "$n: all copied" "$ERR" copy "$SIZE"
	expect_bytes "$n: none spliced out" "$ERR" splice-pipe 0
	expect_fallback "$n: drained, then fell back" "$ERR" "^splice-pipe -> copy: $EINVAL$ATN"
fi

n="zcopy tcp->file, splice EINVAL from the 4th call"
if run "$n" "cat $SRC | $ZSOCK in tcp -- $(fault splice EINVAL 4+) $ZCOPY - $OUT"; then
	exact "$n"
	split "$n" splice-pipe copy
	expect_fallback "$n: reason" "$ERR" "^splice-pipe -> copy: $EINVAL$ATN"
fi

n="zcopy unix->unix, splice ENOSYS"
if run "$n" "cat $SRC | $ZSOCK in unix -- $ZSOCK out unix -- $(fault splice ENOSYS) $ZCOPY - - > $OUT"; then
	exact "$n"
	expect_bytes "$n: copied" "$ERR" copy "$SIZE"
	expect_fallback "$n: reason" "$ERR" "^splice-pipe -> copy: $NOSYS$AT0"
fi

n="zcopy tcp->pipe, splice EINVAL at the 2nd call"
if run "$n" "cat $SRC | $ZSOCK in tcp -- $(fault splice EINVAL 2) $ZCOPY - - | cat > $OUT"; then
	exact "$n"
	split "$n" splice copy
	expect_fallback "$n: reason" "$ERR" "^splice -> copy: $EINVAL$ATN"
fi

# A header written into the pooled pipe, the file spliced behind it, and the
# pipe -> socket splice refused: header and body arrive once, in order.
HDR="HTTP/1.1 200 OK"
{ printf '%s' "$HDR"; cat "$SRC"; } > "$T_TMP/hdr-want"
HSUM=$(csum "$T_TMP/hdr-want")
HSIZE=$((SIZE + ${#HDR}))
for when in 1 2 3; do
	n="zcopy send_file header+file->tcp, splice EINVAL at call $when"
	if run "$n" "$ZSOCK out tcp -- $(fault splice EINVAL $when) $ZCOPY --header '$HDR' $SRC - > $OUT"; then
		exact "$n" "$HSUM" "$HSIZE"
		expect_fallback "$n: reason" "$ERR" "^splice-pipe -> sendfile: $EINVAL"
	fi
	# With sendfile refused as well, the rest is copied.
	n="zcopy send_file header+file->tcp, splice EINVAL at call $when, sendfile EINVAL"
	if run "$n" "$ZSOCK out tcp -- $(faults "splice EINVAL $when" "sendfile EINVAL") $ZCOPY --header '$HDR' $SRC - > $OUT"; then
		exact "$n" "$HSUM" "$HSIZE"
		expect_fallback "$n: reason" "$ERR" "^sendfile -> copy: $EINVAL"
	fi
done

done_testing
