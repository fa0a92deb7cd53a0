#!/usr/bin/env bash
# tee_cli.sh - `zcio tee` like tee(1): standard input, byte for byte, to
# standard output and to 1 to 16 destinations of mixed kinds (files,
# O_APPEND files, FIFOs, tcp: and unix: servers), by tee() and not by
# copy; --copy; exit status and messages for outputs that cannot be opened
# or connected to; readers that leave mid-stream (the others unaffected,
# no SIGPIPE death, status 0 like tee -p); a stalled output under --policy
# block (everyone waits, no CPU spent) and --policy drop (it goes, the
# others finish at the source's pace, status 1).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/fo_lib.sh"

need_helpers || done_testing
need_fo_helpers || done_testing
need_cli || done_testing

SIZE=6291457 # 6 MiB and a byte
SRC=$T_TMP/src
ERR=$T_TMP/err
OUT=$T_TMP/stdout
"$ZGEN" "$SIZE" 11 > "$SRC"
SUM=$(csum "$SRC")

# run_tee [OPTION]...: the source, through zcio tee with the options and
# the destinations, into $OUT; RC is zcio tee's exit status.
run_tee() {
	"$ZGEN" "$SIZE" 11 | timeout -k 5 60 "$ZCIO" tee "$@" "${DESTS[@]}" 2> "$ERR" | cat > "$OUT"
	RC=${PIPESTATUS[1]}
}

KINDS=(file fifo tcp unix)

# ---- 1 to 16 destinations of mixed kinds ------------------------------------
for n in 1 2 4 8 16; do
	reset_dests
	for i in $(seq 0 $((n - 1))); do add_dest "${KINDS[$(((i + n) % 4))]}" "$i"; done
	name="stdout + $n destinations"
	run_tee --stats
	status "$name" 0
	check_dests "$name"
	expect_quiet "$name: no message" "$ERR"
	expect_bytes "$name: delivered in total" "$ERR" total $((SIZE * (n + 1)))
	# Outputs beyond the first are duplicated by tee(), not copied.
	load_stats "$ERR"
	if [ "${STATS[tee]:-0}" -gt 0 ] && [ "${STATS[copy]:-0}" = 0 ]; then
		pass "$name: by tee(), not by copy"
	else
		fail "$name: by tee(), not by copy" "[$STATS_LINES]"
	fi
	expect_bytes "$name: standard output's count" "$ERR" "output standard output" "$SIZE"
done

# ---- -a: files keep what they held ---------------------------------------------
# splice() cannot write O_APPEND files: they are copied out of their own
# pipe, the other outputs still get theirs by tee().
reset_dests
for i in 0 1 2; do add_dest append "$i"; done
add_dest fifo 3
add_dest tcp 4
run_tee -a --stats
status "-a" 0
check_dests "-a"
expect_bytes "-a: the files copied from their pipes" "$ERR" copy $((SIZE * 3))
load_stats "$ERR"
if [ $((${STATS[tee]:-0} + ${STATS[splice-pipe]:-0})) = $((SIZE * 3)) ]; then
	pass "-a: the others by tee()"
else
	fail "-a: the others by tee()" "[$STATS_LINES]"
fi

# ---- the copy baseline --------------------------------------------------------
reset_dests
for i in 0 1 2 3; do add_dest "${KINDS[i]}" "$i"; done
add_dest file 4
run_tee --copy --stats
status "--copy" 0
check_dests "--copy"
expect_bytes "--copy: all copied" "$ERR" copy $((SIZE * 6))
expect_fallback "--copy: says why" "$ERR" '^splice-pipe -> copy: copy requested'

# ---- outputs that cannot be had ------------------------------------------------
reset_dests
add_dest file 0
DESTS+=("$T_TMP/no/such/dir/x")
run_tee
status "missing directory" 1
check_dests "missing directory: the others"
if grep -q "zcio: tee: $T_TMP/no/such/dir/x: No such file or directory" "$ERR"; then
	pass "missing directory: message"
else
	fail "missing directory: message" "stderr: $(head -c 300 "$ERR")"
fi

reset_dests
add_dest tcp 0
start_sink 127.0.0.1:0 "$T_TMP/unused" && kill "$SINK_PID" && wait "$SINK_PID" 2>/dev/null
DESTS+=("tcp:127.0.0.1:$SINK_PORT") # nobody listens there now
run_tee
status "connection refused" 1
check_dests "connection refused: the others"
if grep -q "tcp:127.0.0.1:$SINK_PORT: Connection refused" "$ERR"; then
	pass "connection refused: message"
else
	fail "connection refused: message" "stderr: $(head -c 300 "$ERR")"
fi

# ---- readers that leave mid-stream ---------------------------------------------
reset_dests
add_dest file 0
add_dest tcp 1
mkfifo "$T_TMP/fifo.early"
head -c 1000000 "$T_TMP/fifo.early" > "$T_TMP/early" &
EARLY=$!
DESTS+=("$T_TMP/fifo.early")
run_tee
wait_bg "$EARLY" 10
status "a FIFO reader leaves after 1 MB" 0
check_dests "a FIFO reader leaves after 1 MB: the others"
expect_quiet "a FIFO reader leaves after 1 MB: no message, like tee -p" "$ERR"
if is_prefix "$T_TMP/early" "$SRC" && [ "$(size_of "$T_TMP/early")" = 1000000 ]; then
	pass "a FIFO reader leaves after 1 MB: it got its prefix"
else
	fail "a FIFO reader leaves after 1 MB: it got its prefix" "$(size_of "$T_TMP/early") bytes"
fi

reset_dests
add_dest file 0
add_dest fifo 1
"$ZGEN" "$SIZE" 11 | timeout -k 5 60 "$ZCIO" tee "${DESTS[@]}" 2> "$ERR" | head -c 777777 > "$OUT"
RC=${PIPESTATUS[1]}
status "standard output's reader leaves (no SIGPIPE death)" 0
OUT_SAVED=$T_TMP/out.head
mv "$OUT" "$OUT_SAVED"
cp "$SRC" "$OUT" # check_dests looks at $OUT too; what head got is checked below
check_dests "standard output's reader leaves: the others"
if is_prefix "$OUT_SAVED" "$SRC" && [ "$(size_of "$OUT_SAVED")" = 777777 ]; then
	pass "standard output's reader leaves: it got its prefix"
else
	fail "standard output's reader leaves: it got its prefix" "$(size_of "$OUT_SAVED") bytes"
fi

# ---- a stalled output ------------------------------------------------------------
# The FIFO's reader opens it and reads nothing for 2.5 s, then everything.
reset_dests
add_dest file 0
add_dest tcp 1
mkfifo "$T_TMP/fifo.slow"
( exec 3< "$T_TMP/fifo.slow"; sleep 2.5; cat <&3 > "$T_TMP/out.slow" ) &
WAITS+=($!)
DESTS+=("$T_TMP/fifo.slow") CHECK+=("$T_TMP/out.slow") SKIPB+=(0)
"$ZCIO" tee "${DESTS[@]}" < "$SRC" 2> "$ERR" > "$OUT" &
TEE=$!
t0=$(now_ms)
sleep 0.7
c0=$(cpu_ms "$TEE")
sleep 1.2
c1=$(cpu_ms "$TEE")
wait_bg "$TEE" 30
RC=$?
t1=$(now_ms)
status "block: a stalled FIFO" 0
check_dests "block: a stalled FIFO: everyone, in the end"
if [ -n "$c0" ] && [ -n "$c1" ] && [ $((c1 - c0)) -le 30 ]; then
	pass "block: no CPU while waiting ($((c1 - c0)) ms in 1.2 s)"
else
	fail "block: no CPU while waiting" "${c0:-?} -> ${c1:-?} ms of CPU in 1.2 s"
fi
if [ $((t1 - t0)) -ge 2000 ]; then
	pass "block: everyone waited for it"
else
	fail "block: everyone waited for it" "done after $((t1 - t0)) ms"
fi

# Drop: the FIFO's reader never reads; the source comes at 60 MB/s (a live
# stream), the other outputs keep up and finish at that pace.  A second of
# --drop-after, so that an output the scheduler forgets for a moment on a
# loaded machine is not taken for the stalled one.
reset_dests
add_dest file 0
add_dest unix 1
mkfifo "$T_TMP/fifo.stuck"
sleep 30 < "$T_TMP/fifo.stuck" &
STUCK=$!
at_exit "kill $STUCK"
DESTS+=("$T_TMP/fifo.stuck")
t0=$(now_ms)
pv -q -L 60m < "$SRC" | timeout -k 5 60 "$ZCIO" tee --policy drop --drop-after 1 --stats "${DESTS[@]}" 2> "$ERR" | cat > "$OUT"
RC=${PIPESTATUS[1]}
t1=$(now_ms)
kill "$STUCK" 2>/dev/null
status "drop: a stalled FIFO" 1
check_dests "drop: a stalled FIFO: the others"
if grep -q "zcio: tee: $T_TMP/fifo.stuck: dropped: could not keep up" "$ERR"; then
	pass "drop: a stalled FIFO: message"
else
	fail "drop: a stalled FIFO: message" "stderr: $(head -c 300 "$ERR")"
fi
# 6 MiB at 60 MB/s is 0.1 s, plus the second; waiting for the sleeper
# would take 30.
if [ $((t1 - t0)) -lt 5000 ]; then
	pass "drop: the others finished at the source's pace ($((t1 - t0)) ms)"
else
	fail "drop: the others finished at the source's pace" "$((t1 - t0)) ms"
fi
load_stats "$ERR"
got=${STATS["output $T_TMP/fifo.stuck"]:-x}
if [ "$got" != x ] && [ "$got" -le $((2 * 1048576)) ]; then
	pass "drop: removed within a pipe's worth ($got bytes delivered to it)"
else
	fail "drop: removed within a pipe's worth" "[$STATS_LINES]"
fi

done_testing
