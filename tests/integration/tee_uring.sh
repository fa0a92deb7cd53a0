#!/usr/bin/env bash
# tee_uring.sh - `zcio tee --uring` keeps every promise of `zcio tee`:
#
#  - 0 B, 1 B, 65535 B, 1 MiB + 7 and 64 MiB to standard output and 1, 2,
#    4 and 8 destinations of mixed kinds (files, a FIFO read by another
#    process, tcp: and unix: servers), from a pipe (tee()d straight from
#    it) and from a file (through an intake pipe): every output's sha256 is
#    the input's, and --stats says io_uring moved every byte;
#  - a standard input that cannot be spliced from (/dev/null, a datagram
#    socket) and outputs splice() refuses (a datagram socket, /dev/full's
#    EINVAL, O_APPEND files with -a): read and written instead, exact;
#  - O_NONBLOCK standard input and output (EAGAIN, then a poll): exact;
#  - only pipes, read in odd amounts through small pipes: tee()s and the
#    consuming splice() come up short, and every output is still exact;
#  - a slow reader (one that sleeps between reads) still gets every byte,
#    and paces the others; a stalled one costs no CPU while it stalls;
#  - readers that leave early: status and messages as without --uring
#    (a pipe's reader quietly, a socket peer with a message and status 1),
#    the others exact, the early one got a prefix; when every reader has
#    gone, it stops reading;
#  - --policy drop and --copy are refused with --uring;
#  - io_uring_setup failing with ENOSYS (no io_uring in the kernel) or EPERM
#    (io_uring_disabled, seccomp; also only for the real ring, after the
#    probe's), io_uring_register failing (a kernel that cannot say whether
#    it has IORING_OP_TEE), pipe2 failing with EMFILE: one warning, then the
#    poll() fan-out, bytes exact; ENOMEM is a failure, not a fallback.
#
# The errnos io_uring's own operations answer cannot be injected with
# strace (they are not system calls); they are caused instead: /dev/null
# as standard input (no splice_read: EINVAL), /dev/full as an output (no
# splice_write: EINVAL, as the consuming output and as one with a pipe of
# its own), O_NONBLOCK ends (EAGAIN).
#
# Without io_uring here (or a zcio built without liburing) each part that
# needs it is skipped, visibly.  ZCIO=build/asan/zcio runs it all under
# ASan and UBSan.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/fo_lib.sh"

need_helpers || done_testing
need_fo_helpers || done_testing
need_cli || done_testing

ERR=$T_TMP/err
OUT=$T_TMP/stdout
SRC=$T_TMP/src

# ---- does --uring run here? ---------------------------------------------------
URING_WHY=
printf 'x' | "$ZCIO" tee --uring --stats > /dev/null 2> "$ERR"
if grep -q -- '--uring' "$ERR" || ! grep -q 'stats: io_uring: .* rounds' "$ERR"; then
	URING_WHY=$(grep -m1 -- '--uring' "$ERR" || head -n 1 "$ERR")
fi

# uring NAME: skip NAME and return 1 when the io_uring path cannot run.
uring() {
	if [ -n "$URING_WHY" ]; then
		skip "$1" "io_uring path unavailable: $URING_WHY"
		return 1
	fi
}

KINDS=(file fifo tcp unix)

# mixed N: N destinations, the kinds in turn.
mixed() {
	local i
	reset_dests
	for i in $(seq 0 $(($1 - 1))); do add_dest "${KINDS[$((i % 4))]}" "$i"; done
}

# by_uring NAME TOTAL HOW [COPIED]: --stats says io_uring delivered TOTAL
# bytes, COPIED (default 0) of them written from memory and the others
# tee()d or spliced, with the source HOW ("tee()d from standard input",
# "through an intake pipe").
by_uring() {
	local copied=${4:-0}
	load_stats "$ERR"
	if [ "${STATS[total]:-x}" = "$2" ] && [ "${STATS[io_uring]:-0}" = $(($2 - copied)) ] &&
		[ "${STATS[copy]:-0}" = "$copied" ] && [[ $STATS_LINES == *"rounds,"*"$3"* ]]; then
		pass "$1: $2 bytes through io_uring, $copied of them copied, $3"
	else
		fail "$1: $2 bytes through io_uring, $copied of them copied, $3" "[$STATS_LINES]"
	fi
}

# ---- sizes x destinations --------------------------------------------------------
# From a pipe: every size to 1, 2, 4, 8 destinations.  From a file (an
# intake pipe): every size to 4.
for size in 0 1 65535 1048583 67108864; do
	"$ZGEN" "$size" "$((size % 97))" > "$SRC"
	SUM=$(csum "$SRC")
	for n in 1 2 4 8 f4; do
		name="$size B, stdout + ${n#f} destinations, from a ${n:0:1}"
		name=${name/from a f/from a file}
		name=${name/from a [0-9]/from a pipe}
		uring "$name" || continue
		mixed "${n#f}"
		if [ "${n:0:1}" = f ]; then
			timeout -k 5 60 "$ZCIO" tee --uring --stats "${DESTS[@]}" < "$SRC" 2> "$ERR" |
				cat > "$OUT"
			RC=${PIPESTATUS[0]} how="through an intake pipe"
		else
			cat "$SRC" | timeout -k 5 60 "$ZCIO" tee --uring --stats "${DESTS[@]}" 2> "$ERR" |
				cat > "$OUT"
			RC=${PIPESTATUS[1]} how="tee()d from standard input"
		fi
		status "$name" 0
		check_dests "$name" "$SUM"
		by_uring "$name" $((size * (${n#f} + 1))) "$how"
	done
done

# ---- standard input and outputs splice() cannot use ----------------------------------
SIZE=3145739 # 3 MiB and 11 bytes
"$ZGEN" "$SIZE" 5 > "$SRC"
SUM=$(csum "$SRC")

n="-a: O_APPEND files (written from their pipes), a FIFO, a tcp server"
if uring "$n"; then
	reset_dests
	add_dest append 0
	add_dest append 1
	add_dest fifo 2
	add_dest tcp 3
	cat "$SRC" | timeout -k 5 60 "$ZCIO" tee -a --uring --stats "${DESTS[@]}" 2> "$ERR" | cat > "$OUT"
	RC=${PIPESTATUS[1]}
	status "$n" 0
	check_dests "$n" "$SUM"
	by_uring "$n" $((SIZE * 5)) "tee()d from standard input" $((SIZE * 2))
fi

n="standard input /dev/null (no splice_read: EINVAL, then read)"
if uring "$n"; then
	reset_dests
	add_dest file 0
	timeout -k 5 20 "$ZCIO" tee --uring --stats "${DESTS[@]}" < /dev/null 2> "$ERR" > "$OUT"
	RC=$?
	status "$n" 0
	check_dests "$n" "$(csum /dev/null)"
	expect_quiet "$n: no message" "$ERR"
fi

n="standard input a datagram socket (read), stdout a datagram socket (written)"
if uring "$n"; then
	reset_dests
	add_dest file 0
	add_dest fifo 1
	"$ZSOCK" in dgram -- "$ZSOCK" out dgram -- \
		timeout -k 5 60 "$ZCIO" tee --uring --stats "${DESTS[@]}" < "$SRC" 2> "$ERR" > "$OUT"
	RC=$?
	status "$n" 0
	check_dests "$n" "$SUM"
	by_uring "$n" $((SIZE * 3)) "through an intake pipe" "$SIZE"
fi

# /dev/full has no splice_write (EINVAL): it is written to, fails with
# ENOSPC, and is reported as without --uring.
# First, /dev/full is the output that consumes the source (the first that
# could be spliced to); then a file is, and /dev/full's own pipe is
# spliced out.
for order in first second; do
n="an output splice() refuses (/dev/full), $order"
if uring "$n"; then
	reset_dests
	add_dest file 0
	if [ $order = first ]; then
		set -- /dev/full "${DESTS[@]}"
	else
		set -- "${DESTS[@]}" /dev/full
	fi
	cat "$SRC" | timeout -k 5 60 "$ZCIO" tee --uring --stats "$@" 2> "$ERR" | cat > "$OUT"
	RC=${PIPESTATUS[1]}
	status "$n" 1
	check_dests "$n: the others" "$SUM"
	if grep -q '^zcio: tee: /dev/full: No space left on device$' "$ERR" &&
		[[ $(grep 'rounds,' "$ERR") =~ \ [1-9][0-9]*\ read\+write, ]]; then
		pass "$n: written to after EINVAL, its ENOSPC reported"
	else
		fail "$n: written to after EINVAL, its ENOSPC reported" "$(head -c 400 "$ERR")"
	fi
fi
done

n="O_NONBLOCK standard input and output"
if uring "$n"; then
	reset_dests
	add_dest file 0
	add_dest fifo 1
	cat "$SRC" | timeout -k 5 60 "$ZNB" -i -o -- "$ZCIO" tee --uring --stats "${DESTS[@]}" 2> "$ERR" |
		(sleep 0.3; cat > "$OUT")
	RC=${PIPESTATUS[1]}
	status "$n" 0
	check_dests "$n" "$SUM"
	by_uring "$n" $((SIZE * 3)) "tee()d from standard input"
	# EAGAIN came, and the operation was retried behind a poll.
	if [[ $(grep 'rounds,' "$ERR") =~ \ [1-9][0-9]*\ poll\ operations ]]; then
		pass "$n: EAGAIN answered with polls"
	else
		fail "$n: EAGAIN answered with polls" "$(grep 'rounds,' "$ERR")"
	fi
fi

# ---- partial tee()s and splice()s ------------------------------------------------
# irregular FROM OUT: read FROM in chunks of 1 byte to 96 KiB, napping now
# and then, into OUT.
irregular() {
	local part=$2.part n
	exec 3< "$1"
	: > "$2"
	while :; do
		n=$((RANDOM % 4 == 0 ? RANDOM % 3 + 1 : RANDOM * 3 + 1))
		head -c "$n" <&3 > "$part" || break
		[ -s "$part" ] || break
		cat "$part" >> "$2"
		[ $((RANDOM % 8)) = 0 ] && sleep 0.005
	done
	exec 3<&-
}

# Only pipes (the consuming output is then a pipe too, whose free room
# decides how much a splice moves), small pipes, readers taking odd
# amounts: tee()s and the consuming splice() come up short, each output
# at its own position; nothing may be lost or reordered.
for ps in 4096 65536; do
	n="stdout + 3 FIFOs, all read irregularly, --pipe-size $ps"
	uring "$n" || continue
	reset_dests
	"$ZGEN" 4194311 "$ps" > "$T_TMP/src.irr"
	for i in 1 2 3; do
		mkfifo "$T_TMP/fifo.$i"
		irregular "$T_TMP/fifo.$i" "$T_TMP/out.$i" &
		WAITS+=($!)
		at_exit "kill $!"
		DESTS+=("$T_TMP/fifo.$i") CHECK+=("$T_TMP/out.$i") SKIPB+=(0)
	done
	cat "$T_TMP/src.irr" | timeout -k 5 60 "$ZCIO" tee --uring --pipe-size "$ps" --stats \
		"${DESTS[@]}" 2> "$ERR" | irregular /dev/stdin "$OUT"
	RC=${PIPESTATUS[1]}
	status "$n" 0
	check_dests "$n" "$(csum "$T_TMP/src.irr")"
	by_uring "$n" $((4194311 * 4)) "tee()d from standard input"
	line=$(grep 'rounds,' "$ERR")
	if [[ $line =~ short:\ ([0-9]+)\ tee,\ ([0-9]+)\ consuming ]] &&
		[ $((BASH_REMATCH[1] + BASH_REMATCH[2])) -gt 0 ]; then
		pass "$n: partial results happened (${line##*short: })"
	else
		fail "$n: partial results happened" "$line"
	fi
done

# ---- slow and stalled readers ----------------------------------------------------
n="a slow FIFO reader (64 KiB, then 20 ms asleep)"
if uring "$n"; then
	reset_dests
	add_dest file 0
	add_dest slowfifo 1
	add_dest tcp 2
	"$ZGEN" 4194304 7 > "$T_TMP/src4"
	t0=$(now_ms)
	"$ZGEN" 4194304 7 | timeout -k 5 60 "$ZCIO" tee --uring --stats "${DESTS[@]}" 2> "$ERR" |
		cat > "$OUT"
	RC=${PIPESTATUS[1]}
	t1=$(now_ms)
	status "$n" 0
	check_dests "$n" "$(csum "$T_TMP/src4")"
	# 64 reads of 64 KiB, 20 ms apart: at least about a second.
	if [ $((t1 - t0)) -ge 1000 ]; then
		pass "$n: it paced the others ($((t1 - t0)) ms)"
	else
		fail "$n: it paced the others" "done after $((t1 - t0)) ms"
	fi
fi

n="a stalled FIFO (2.5 s without reading)"
if uring "$n"; then
	reset_dests
	add_dest file 0
	add_dest unix 1
	mkfifo "$T_TMP/fifo.slow"
	(exec 3< "$T_TMP/fifo.slow"; sleep 2.5; cat <&3 > "$T_TMP/out.slow") &
	WAITS+=($!)
	DESTS+=("$T_TMP/fifo.slow") CHECK+=("$T_TMP/out.slow") SKIPB+=(0)
	"$ZCIO" tee --uring "${DESTS[@]}" < "$SRC" 2> "$ERR" > "$OUT" &
	TEE=$!
	sleep 0.7
	c0=$(cpu_ms "$TEE")
	sleep 1.2
	c1=$(cpu_ms "$TEE")
	wait_bg "$TEE" 30
	RC=$?
	status "$n" 0
	check_dests "$n" "$SUM"
	if [ -n "$c0" ] && [ -n "$c1" ] && [ $((c1 - c0)) -le 30 ]; then
		pass "$n: no CPU while waiting ($((c1 - c0)) ms in 1.2 s)"
	else
		fail "$n: no CPU while waiting" "${c0:-?} -> ${c1:-?} ms of CPU in 1.2 s"
	fi
fi

# ---- readers that leave early --------------------------------------------------
SIZE=6291457
"$ZGEN" "$SIZE" 11 > "$SRC"
SUM=$(csum "$SRC")

# early NAME LEAVER [--uring]: a file, a tcp server and LEAVER (fifo: a
# FIFO whose reader takes 1,000,000 bytes and goes; stdout: standard
# output's reader takes 777,777 and goes; tcp: a server that takes
# 1,000,000 and closes).  Sets RC, EARLY (what the leaver got).
early() {
	local leaver=$2
	shift 2
	reset_dests
	add_dest file 0
	add_dest unix 1
	EARLY=$T_TMP/early
	case $leaver in
	fifo)
		mkfifo "$T_TMP/fifo.early"
		head -c 1000000 "$T_TMP/fifo.early" > "$EARLY" &
		at_exit "kill $!"
		DESTS+=("$T_TMP/fifo.early")
		;;
	tcp)
		port=$(free_port)
		socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" SYSTEM:"head -c 1000000 > $EARLY" \
			2> /dev/null &
		at_exit "kill $!"
		for _ in $(seq 50); do
			ss -Htln "( sport = :$port )" | grep -q . && break
			sleep 0.05
		done
		DESTS+=("tcp:127.0.0.1:$port")
		;;
	esac
	if [ "$leaver" = stdout ]; then
		cat "$SRC" | timeout -k 5 60 "$ZCIO" tee "$@" "${DESTS[@]}" 2> "$ERR" |
			head -c 777777 > "$EARLY"
		RC=${PIPESTATUS[1]}
		cp "$SRC" "$OUT" # checked below instead
	else
		cat "$SRC" | timeout -k 5 60 "$ZCIO" tee "$@" "${DESTS[@]}" 2> "$ERR" | cat > "$OUT"
		RC=${PIPESTATUS[1]}
	fi
}

for leaver in fifo stdout tcp; do
	n="--uring: $leaver reader leaves early"
	uring "$n" || continue
	if [ "$leaver" = tcp ] && ! need socat "$n"; then
		continue
	fi
	# What zcio tee does without --uring is the rule.
	early "$n" "$leaver"
	want_rc=$RC
	want_msg=$(grep -c . "$ERR")
	early "$n" "$leaver" --uring
	status "$n (as without --uring)" "$want_rc"
	check_dests "$n: the others" "$SUM"
	got_msg=$(grep -c . "$ERR")
	if [ "$got_msg" = "$want_msg" ]; then
		pass "$n: $got_msg message lines, as without --uring"
	else
		fail "$n: messages as without --uring" "$got_msg lines, want $want_msg: $(head -c 300 "$ERR")"
	fi
	want=1000000
	[ "$leaver" = stdout ] && want=777777
	if is_prefix "$EARLY" "$SRC" && [ "$(size_of "$EARLY")" = "$want" ]; then
		pass "$n: it got its prefix"
	else
		fail "$n: it got its prefix" "$(size_of "$EARLY") bytes"
	fi
done

# Every reader leaves: zcio tee stops reading (its source sees EPIPE long
# before 1 GiB), status 0, as without --uring.
n="--uring: every reader leaves"
if uring "$n"; then
	rm -f "$T_TMP/fifo.all"
	mkfifo "$T_TMP/fifo.all"
	head -c 1000 "$T_TMP/fifo.all" > /dev/null &
	"$ZGEN" 1073741824 3 | timeout -k 5 30 "$ZCIO" tee --uring "$T_TMP/fifo.all" 2> "$ERR" |
		head -c 5000 > /dev/null
	st=("${PIPESTATUS[@]}")
	RC=${st[1]}
	status "$n" 0
	if [ "${st[0]}" = 141 ] && ! grep -q . "$ERR"; then
		pass "$n: it stopped reading (its source died of SIGPIPE), no message"
	else
		fail "$n: it stopped reading" "source status ${st[0]}: $(head -c 300 "$ERR")"
	fi
fi

# ---- options that do not go with --uring ----------------------------------------
for opt in "--policy drop" "--copy"; do
	n="$opt --uring: refused"
	# shellcheck disable=SC2086
	echo x | "$ZCIO" tee $opt --uring "$T_TMP/unused" > /dev/null 2> "$ERR"
	RC=$?
	if [ "$RC" = 2 ] && grep -q -- "--uring" "$ERR" && [ ! -e "$T_TMP/unused" ]; then
		pass "$n: status 2, says why, opens nothing"
	else
		fail "$n: status 2, says why" "status $RC: $(head -c 300 "$ERR")"
	fi
done

# ---- io_uring refused: the poll() fan-out ------------------------------------
# ENOSYS: a kernel without CONFIG_IO_URING.  EPERM: kernel.io_uring_disabled,
# or a seccomp profile; from the second call on: the probe's ring allowed,
# the real one not.  io_uring_register failing: a kernel before 5.6, which
# cannot say whether it has IORING_OP_TEE (5.8).  pipe2 failing EMFILE:
# no fd for an output's pipe (the fan-out then copies).
SIZE=4194389
"$ZGEN" "$SIZE" 21 > "$SRC"
SUM=$(csum "$SRC")
for case in io_uring_setup:ENOSYS: io_uring_setup:EPERM: io_uring_setup:EPERM:2+ \
	io_uring_register:EINVAL: pipe2:EMFILE:; do
	IFS=: read -r sc err when <<< "$case"
	n="--uring with $sc failing $err${when:+ from call $when}"
	uring "$n" || continue
	need_inject "$n" || continue
	case $sc:$err:$when in
	*ENOSYS:) msg='io_uring not in this kernel (Function not implemented); using the poll() fan-out' ;;
	*EPERM:) msg='io_uring not permitted (Operation not permitted); using the poll() fan-out' ;;
	*EPERM:2+) msg='io_uring_setup refused (Operation not permitted); using the poll() fan-out' ;;
	*EINVAL:) msg='cannot say what it supports (before 5.6) (Operation not supported); using the poll() fan-out' ;;
	pipe2*) msg='no pipe (Too many open files); using the poll() fan-out' ;;
	esac
	reset_dests
	add_dest file 0
	add_dest fifo 1
	add_dest tcp 2
	# LeakSanitizer cannot run under ptrace (an ASan build of zcio).
	cat "$SRC" | ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		timeout -k 5 60 strace -f -qq -o /dev/null -e trace="$sc" \
		-e inject="$sc:error=$err${when:+:when=$when}" \
		"$ZCIO" tee --uring --stats "${DESTS[@]}" 2> "$ERR" | cat > "$OUT"
	RC=${PIPESTATUS[1]}
	status "$n" 0
	check_dests "$n" "$SUM"
	load_stats "$ERR"
	if [ "$(grep -c -- '--uring' "$ERR")" = 1 ] && grep -qF -- "$msg" "$ERR"; then
		pass "$n: one warning naming it"
	else
		fail "$n: one warning naming it" "$(grep -v stats: "$ERR" | head -c 300)"
	fi
	if [ "$sc" = pipe2 ] && [ "${STATS[copy]:-0}" = $((SIZE * 4)) ] &&
		[ -z "${STATS[io_uring]:-}" ]; then
		pass "$n: --stats: the poll() fan-out, copying without pipes, no ring"
	elif [ "$sc" != pipe2 ] && [ "${STATS[tee]:-0}" -gt 0 ] && [ -z "${STATS[io_uring]:-}" ] &&
		[ "${STATS[total]:-0}" = $((SIZE * 4)) ]; then
		pass "$n: --stats: the poll() fan-out's tee(), no ring"
	else
		fail "$n: --stats: the poll() fan-out" "[$STATS_LINES]"
	fi
done

n="--uring with io_uring_setup failing ENOMEM"
if uring "$n" && need_inject "$n"; then
	echo x | ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		timeout -k 5 20 strace -f -qq -o /dev/null -e trace=io_uring_setup \
		-e inject=io_uring_setup:error=ENOMEM "$ZCIO" tee --uring "$T_TMP/enomem" > /dev/null 2> "$ERR"
	RC=$?
	if [ "$RC" = 1 ] && grep -q 'zcio: tee: --uring: io_uring_setup failed: Cannot allocate memory' "$ERR"; then
		pass "$n: not taken for an absent feature: status 1, says why"
	else
		fail "$n: not taken for an absent feature" "status $RC: $(head -c 300 "$ERR")"
	fi
fi

done_testing
